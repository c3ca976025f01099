//! Property tests of the safety promise: whatever text and URLs providers return, the rendered report
//! has exactly our structure. One link per source, our headings only, no HTML, no code, no images.
//! Each report is read by pulldown-cmark and by comrak (the cmark-gfm port, with GitHub's autolink,
//! table, strikethrough and footnote extensions); `renderers.rs` runs the external renderers.

mod corpus;

use conductor::config::{CitationStyle, ProviderName};
use conductor::providers::Hit;
use conductor::render::{self, RenderOptions};
use conductor::research::{Research, Source, merge::merge};
use conductor::synth::{BlockKind, Summary, Synthesis, Usage, grounding};
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
        // What GFM, linkify and pandoc's extensions react to (issue 9).
        "{",
        "}",
        "^",
        "@",
        ".",
        "admin@evil.example",
        "mailto:",
        "xmpp:",
        ".com",
        "evil.com/x",
        "//",
        ":smile:",
        ":::",
        "&copy;",
        "&",
        ";",
        "{.x}",
        "snake_case",
    ]);
    let corpus = prop::sample::select(corpus::WEB_TEXT.to_vec());
    prop_oneof![
        3 => prop::collection::vec(pieces.clone(), 0..24).prop_map(|v| v.concat()),
        1 => (corpus, prop::collection::vec(pieces, 0..4)).prop_map(|(c, v)| format!("{}{c}", v.concat())),
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://example.com/a_(b)".to_string()),
        Just("https://example.com/x?q=1&utm_source=y#frag".to_string()),
        Just("javascript:alert(1)".to_string()),
        Just("data:text/html,hi".to_string()),
        Just("http://www.example.org/".to_string()),
        "[a-z]{1,8}".prop_map(|p| format!("https://site.example/{p}")),
        prop::sample::select(corpus::URLS.to_vec()).prop_map(String::from),
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

fn topic() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => hostile(),
        1 => prop::sample::select(corpus::TOPICS.to_vec()).prop_map(String::from),
    ]
}

/// A model's answer: hostile text, citations (some of sources that do not exist), block markup.
fn answer() -> impl Strategy<Value = Option<String>> {
    let block = (
        prop::sample::select(vec!["", "- ", "1. ", "## ", "> ", "::: ", ": ", "| "]),
        hostile(),
        prop::sample::select(vec!["", " [1]", " [2][3]", " [^1]", " [9]", " [1, 2]"]),
    )
        .prop_map(|(start, text, cite)| format!("{start}{text}{cite}"));
    prop::option::of(prop_oneof![
        3 => prop::collection::vec(block, 1..6).prop_map(|b| b.join("\n\n")),
        1 => Just(corpus::ANSWER.to_string()),
    ])
}

fn summary(answer: &str, sources: &[Source]) -> Summary {
    let valid = sources.iter().map(|s| s.n).collect();
    let g = grounding::ground(answer, &valid);
    Summary {
        text: String::new(),
        uncited: g.cited.is_empty(),
        cited: g.cited,
        blocks: g.blocks,
        truncated: false,
        removed_citations: g.removed_citations,
        removed_links: g.removed_links,
        sources_sent: sources.len(),
        usage: Usage::default(),
        backend: "openai".into(),
        model: "m".into(),
        claims: Vec::new(),
        check: None,
        judge: None,
    }
}

/// What comrak, with GitHub's extensions, makes of a report.
#[derive(Debug, Default)]
struct Comrak {
    links: Vec<String>,
    headings: usize,
    footnote_defs: usize,
    items: usize,
    /// Anything the report did not write: images, code, HTML, tables, rules, quotes, strikethrough.
    foreign: Vec<String>,
}

fn comrak_reads(md: &str) -> Comrak {
    use comrak::nodes::NodeValue;
    let mut o = comrak::Options::default();
    o.extension.autolink = true;
    o.extension.table = true;
    o.extension.strikethrough = true;
    o.extension.footnotes = true;
    o.extension.tasklist = true;
    let arena = comrak::Arena::new();
    let root = comrak::parse_document(&arena, md, &o);
    let mut seen = Comrak::default();
    for node in root.descendants() {
        match &node.data().value {
            NodeValue::Link(l) => seen.links.push(l.url.clone()),
            NodeValue::Heading(_) => seen.headings += 1,
            NodeValue::FootnoteDefinition(_) => seen.footnote_defs += 1,
            NodeValue::Item(_) => seen.items += 1,
            NodeValue::Image(_)
            | NodeValue::Code(_)
            | NodeValue::CodeBlock(_)
            | NodeValue::HtmlBlock(_)
            | NodeValue::HtmlInline(_)
            | NodeValue::Table(_)
            | NodeValue::ThematicBreak
            | NodeValue::BlockQuote
            | NodeValue::Strikethrough
            | NodeValue::TaskItem(_)
            | NodeValue::LineBreak => seen.foreign.push(format!("{:?}", node.data().value)),
            _ => {}
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn web_text_never_adds_structure(results in hits(), topic in topic(), answer in answer(), style in prop::sample::select(vec![
        CitationStyle::Links, CitationStyle::Numbered, CitationStyle::Footnotes,
    ])) {
        let sources = merge(&results, 100);
        let summary = answer.filter(|_| !sources.is_empty()).map(|a| summary(&a, &sources));
        let bullets = summary.as_ref().map_or(0, |s| s.blocks.iter().filter(|b| b.kind == BlockKind::Bullet).count());
        let mut research = Research {
            topic,
            date: "2026-01-01T00:00:00Z".into(),
            elapsed_ms: 1,
            providers: vec![],
            sources,
            dropped: Vec::new(),
            cost: None,
            synthesis: summary.map(Synthesis::Written),
        };
        // As the CLI and the server do before rendering: footnotes numbered in reading order.
        render::number_in_reading_order(&mut research, style);
        let sources = research.sources.clone();
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
        // Title, Objective, the summary when there is one, Research, and Citations when there are sources.
        let ours = 3 + usize::from(research.synthesis.is_some()) + usize::from(!sources.is_empty());
        prop_assert_eq!(headings, ours, "{}", md);
        if style == CitationStyle::Footnotes {
            prop_assert_eq!(footnote_defs, sources.len());
        }
        // The same in comrak, with GitHub's autolinks: no e-mail, www. or URL in web text is a link.
        let c = comrak_reads(&md);
        prop_assert!(c.foreign.is_empty(), "{:?} in:\n{}", c.foreign, md);
        let mut comrak_links = c.links.clone();
        let mut expected = expected;
        if style == CitationStyle::Footnotes {
            // Footnotes come in the order they are first referenced.
            comrak_links.sort();
            expected.sort();
        }
        prop_assert_eq!(&comrak_links, &expected, "{}", md);
        prop_assert_eq!(c.headings, ours, "{}", md);
        let citation_items = if style == CitationStyle::Footnotes { 0 } else { sources.len() };
        prop_assert_eq!(c.items, sources.len() + citation_items + bullets, "{}", md);
        if style == CitationStyle::Footnotes {
            prop_assert_eq!(c.footnote_defs, sources.len(), "{}", md);
        }
        // No invisible or bidi character survives.
        let invisible = md.chars().any(|c| matches!(c, '\u{202E}' | '\u{200B}' | '\u{2028}'));
        prop_assert!(!invisible, "invisible characters in:\n{}", md);
    }

    #[test]
    fn a_hover_makes_no_markup_but_its_url(results in hits()) {
        use comrak::nodes::NodeValue;
        for s in merge(&results, 100) {
            let hover = render::hover(&s);
            let mut o = comrak::Options::default();
            o.extension.autolink = true;
            o.extension.strikethrough = true;
            o.extension.table = true;
            o.extension.footnotes = true;
            let arena = comrak::Arena::new();
            let root = comrak::parse_document(&arena, &hover, &o);
            let mut links = Vec::new();
            let mut title = String::new();
            for node in root.descendants() {
                match &node.data().value {
                    NodeValue::Link(l) => links.push(l.url.clone()),
                    NodeValue::Strong => {
                        for d in node.descendants() {
                            if let NodeValue::Text(t) = &d.data().value {
                                title.push_str(t);
                            }
                        }
                    }
                    // The URL is a code span only when it has entity-like text, and then a link's text.
                    NodeValue::Code(_) => prop_assert!(s.url.contains('&'), "code in {}", hover),
                    NodeValue::Image(_) | NodeValue::CodeBlock(_) | NodeValue::HtmlBlock(_)
                    | NodeValue::HtmlInline(_) | NodeValue::Table(_) | NodeValue::Strikethrough
                    | NodeValue::Heading(_) | NodeValue::List(_) | NodeValue::BlockQuote
                    | NodeValue::ThematicBreak | NodeValue::Emph | NodeValue::FootnoteReference(_) => {
                        prop_assert!(false, "{:?} in {}", node.data().value, hover)
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(links, vec![s.url.clone()], "{}", hover);
            prop_assert_eq!(title.replace('＠', "@"), s.title.clone(), "{}", hover);
        }
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
