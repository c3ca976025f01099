//! Property tests of the safety promise: whatever text and URLs providers return, the rendered report
//! has exactly our structure. One link per source, our headings only, no HTML, no code, no images.

use conductor::config::{CitationStyle, ProviderName};
use conductor::providers::Hit;
use conductor::render::{self, RenderOptions};
use conductor::research::{Research, merge::merge};
use proptest::prelude::*;
use pulldown_cmark::{Event, Options, Parser, Tag};

/// Strings rich in what markdown and HTML react to, plus invisible and non-Latin characters.
fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "[",
        "]",
        "(",
        ")",
        "<",
        ">",
        "`",
        "```",
        "*",
        "_",
        "#",
        "# ",
        "\n",
        "\r\n",
        "\u{2028}",
        "|",
        "!",
        "&amp;",
        "&lt;b&gt;",
        "<b>",
        "</b>",
        "<!--",
        "-->",
        "<script>",
        "https://evil.example/x",
        "www.evil.example",
        "javascript:alert(1)",
        "\\",
        "~",
        "$",
        ":",
        "-",
        "1.",
        "=",
        "\u{202E}",
        "\u{200B}",
        "é",
        "漢字",
        "😀",
        " ",
        "a",
        "word",
        "\t",
        "[x](y)",
        "![i](u)",
        "<http://a.b>",
    ]);
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://example.com/a_(b)".to_string()),
        Just("https://example.com/x?q=1&utm_source=y#frag".to_string()),
        Just("javascript:alert(1)".to_string()),
        Just("data:text/html,hi".to_string()),
        Just("http://www.example.org/".to_string()),
        "[a-z]{1,8}".prop_map(|p| format!("https://site.example/{p}")),
        hostile(),
    ]
}

fn hits() -> impl Strategy<Value = Vec<(ProviderName, Vec<Hit>)>> {
    let hit = (
        url(),
        prop::option::of(hostile()),
        prop::option::of(hostile()),
    )
        .prop_map(|(url, title, snippet)| Hit {
            url,
            title,
            snippet,
            ..Hit::default()
        });
    let providers = [ProviderName::Tavily, ProviderName::Brave, ProviderName::Exa];
    prop::collection::vec(prop::collection::vec(hit, 0..6), 1..=3).prop_map(move |lists| {
        lists
            .into_iter()
            .enumerate()
            .map(|(i, l)| (providers[i], l))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn web_text_never_adds_structure(results in hits(), topic in hostile(), style in prop::sample::select(vec![
        CitationStyle::Links, CitationStyle::Numbered, CitationStyle::Footnotes,
    ])) {
        let sources = merge(&results, 100);
        let research = Research {
            topic,
            date: "2026-01-01T00:00:00Z".into(),
            elapsed_ms: 1,
            providers: vec![],
            sources: sources.clone(),
            synthesis: None,
        };
        let md = render::markdown(&research, &RenderOptions { style, ..RenderOptions::default() });
        let mut links = Vec::new();
        let mut headings = 0;
        let mut footnote_defs = 0;
        for ev in Parser::new_ext(&md, Options::ENABLE_FOOTNOTES | Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
            match ev {
                Event::Start(Tag::Link { dest_url, .. }) => links.push(dest_url.to_string()),
                Event::Start(Tag::Heading { .. }) => headings += 1,
                Event::Start(Tag::FootnoteDefinition(_)) => footnote_defs += 1,
                Event::Start(Tag::Image { .. }) => prop_assert!(false, "an image in:\n{md}"),
                Event::Start(Tag::CodeBlock(_)) | Event::Code(_) => prop_assert!(false, "code in:\n{md}"),
                Event::Html(_) | Event::InlineHtml(_) => prop_assert!(false, "HTML in:\n{md}"),
                Event::Start(Tag::Table(_)) => prop_assert!(false, "a table in:\n{md}"),
                _ => {}
            }
        }
        // Exactly one link per source, each to that source's (http) URL, in order.
        let expected: Vec<String> = sources.iter().map(|s| s.url.clone()).collect();
        prop_assert_eq!(&links, &expected, "{}", md);
        prop_assert!(links.iter().all(|l| l.starts_with("https://") || l.starts_with("http://")));
        // Title, Objective, Research, and Citations when there are sources.
        prop_assert_eq!(headings, if sources.is_empty() { 3 } else { 4 }, "{}", md);
        if style == CitationStyle::Footnotes {
            prop_assert_eq!(footnote_defs, sources.len());
        }
        // No invisible or bidi character survives.
        let invisible = md.chars().any(|c| matches!(c, '\u{202E}' | '\u{200B}' | '\u{2028}'));
        prop_assert!(!invisible, "invisible characters in:\n{}", md);
    }

    #[test]
    fn every_source_credits_its_providers_and_ranks_are_dense(results in hits(), max in 1usize..20) {
        let sources = merge(&results, max);
        prop_assert!(sources.len() <= max);
        for (i, s) in sources.iter().enumerate() {
            prop_assert_eq!(s.n, i + 1);
            prop_assert!(!s.providers.is_empty());
            prop_assert!(!s.title.is_empty());
            prop_assert!(!s.title.contains('\n') && !s.snippet.contains('\n'));
        }
        let keys: std::collections::HashSet<String> = sources
            .iter()
            .map(|s| conductor::research::merge::normalize(&url::Url::parse(&s.url).unwrap()))
            .collect();
        prop_assert_eq!(keys.len(), sources.len(), "no duplicates after merging");
    }
}
