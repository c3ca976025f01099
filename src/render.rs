//! Rendering research as markdown or JSON. The only place web text becomes markdown: every title and
//! snippet is escaped here, every link destination is built here from a validated URL.

use std::fmt::Write as _;

use crate::config::CitationStyle;
use crate::research::{Research, RunStatus, Source};
use crate::synth::Synthesis;

/// Begin and end lines of a report inserted by the language server: HTML comments, invisible when the
/// markdown is rendered, that let the server find the report again (refresh, hover after a restart).
pub const REPORT_BEGIN: &str = "<!-- conductor:report ";
pub const REPORT_END: &str = "<!-- /conductor:report -->";

#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub style: CitationStyle,
    /// Level of the report's title heading (1 to 6); sections go one level below.
    pub heading_level: u8,
    /// Wrap the report in begin/end markers carrying this id (the language server does).
    pub marker_id: Option<String>,
    /// With a written summary, cite only the sources it cites.
    pub cited_only: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            style: CitationStyle::Links,
            heading_level: 1,
            marker_id: None,
            cited_only: false,
        }
    }
}

/// Where escaped text goes. Each renderer reacts to different characters; these are the places web
/// text lands, and each escapes what the renderers that show that place would turn into markup.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Report text, read in cmark-gfm (GitHub), pandoc (`gfm`, `commonmark_x`), VS Code's preview
    /// (markdown-it with linkify) and markdownlint.
    Report,
    /// The text of a link in the report: no renderer makes a link inside a link, but pandoc still nests
    /// an autolink there, and everything else the report escapes still applies.
    LinkText,
    /// A hover float (VS Code, Neovim, Emacs), where escapes are read as typed: only what would form
    /// CommonMark or GFM markup is escaped.
    Hover,
}

/// Escapes web text for a line of the report so it forms no markup in any renderer people read notes
/// with: no link, autolink, image, emphasis, code, HTML, entity, heading close, table, strikethrough,
/// math, attribute, span, superscript, subscript or emoji. Line-start markup (lists, quotes, rules) is
/// [`escape_line_start`]'s job.
///
/// One case cannot be escaped: cmark-gfm (GitHub) merges escaped text before it looks for e-mail
/// addresses, so the `@` of an address is written as a full-width `＠` instead.
pub fn escape_text(text: &str) -> String {
    escape(text, Place::Report)
}

/// [`escape_text`] for the text of a link: the same, but an e-mail address keeps its `@` (no renderer
/// links an address inside a link once its dots are escaped).
pub fn escape_link_text(text: &str) -> String {
    escape(text, Place::LinkText)
}

/// Escapes web text for a hover float: only what CommonMark and GFM (VS Code's hover, Neovim's
/// treesitter markdown, Emacs' markdown-mode) would read as markup, so the float reads as the text.
/// `snake_case` stays as it is; `Vec<T>` becomes `Vec\<T>`, `*` becomes `\*`.
pub fn escape_hover(text: &str) -> String {
    escape(text, Place::Hover)
}

fn escape(text: &str, place: Place) -> String {
    let report = place != Place::Hover;
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let escaped = match c {
            '`' | '*' | '[' | '~' => true,
            // A backslash escapes only ASCII punctuation (and breaks a line at the end of one).
            '\\' => report || next.is_none_or(|n| n.is_ascii_punctuation()),
            // `snake_case`: an underscore between letters or digits can open or close nothing.
            '_' => {
                !(prev.is_some_and(char::is_alphanumeric)
                    && next.is_some_and(char::is_alphanumeric))
            }
            // `<` opens HTML or an autolink only before a letter, `/`, `!` or `?`.
            '<' => report || next.is_some_and(|n| n.is_ascii_alphabetic() || "/!?".contains(n)),
            // `]` closes nothing once every `[` is escaped; `#`, `|`, `>` matter at the start of a line.
            ']' | '>' | '#' | '|' => report,
            // pandoc: `$math$`, `{attributes}`, `^superscript^` (`~subscript~` is escaped above).
            '$' | '{' | '}' | '^' => report,
            // An entity (`&copy;`, `&#169;`) would be decoded; a lone `&` is harmless.
            '&' => starts_entity(&chars[i + 1..]),
            // `https://x` is an autolink in GFM and linkify; `:smile:` an emoji in pandoc.
            ':' => {
                (next == Some('/') && chars.get(i + 2) == Some(&'/'))
                    || (report && starts_emoji_name(&chars[i + 1..]))
            }
            // `www.x.example`, `evil.com/x` and `a@b.example` are links in GFM or linkify: a domain
            // whose dots are escaped is none (in the hover, only `www.` needs it).
            '.' => {
                let in_domain = prev.is_some_and(|p| p.is_alphanumeric() || p == '-' || p == '_')
                    && next.is_some_and(char::is_alphabetic);
                in_domain
                    && (report
                        || (i >= 3
                            && chars[i - 3..i]
                                .iter()
                                .collect::<String>()
                                .eq_ignore_ascii_case("www")
                            && (i == 3 || !chars[i - 4].is_alphanumeric())))
            }
            '@' if place != Place::LinkText && is_email_at(&chars, i) => {
                out.push('＠');
                continue;
            }
            _ => false,
        };
        if escaped {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `smile:` after a `:`: what pandoc's emoji extension reads as `:smile:`.
fn starts_emoji_name(rest: &[char]) -> bool {
    let name = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'))
        .count();
    name > 0 && rest.get(name) == Some(&':')
}

/// The `@` at `i` could be that of an e-mail address cmark-gfm links: one before a domain with a dot
/// followed by a letter or digit. What comes before does not matter: cmark-gfm also links `mailto:@x.y`
/// and `xmpp:@x.y`, and linkify takes `:;&=+$,` into an address.
fn is_email_at(chars: &[char], i: usize) -> bool {
    let domain: Vec<char> = chars[i + 1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .copied()
        .collect();
    domain
        .windows(2)
        .any(|w| w[0] == '.' && w[1].is_ascii_alphanumeric())
}

/// Escapes what would make escaped text at the start of a line a block: a list (`- `, `+ `, `1. `,
/// `a) `, `(1) `), a quote, a rule, a heading, a fenced div or definition (`:::`, `: `), a table. Takes
/// the output of [`escape_text`] or [`escape_hover`].
pub fn escape_line_start(escaped: &str) -> String {
    let first = escaped.chars().next();
    if first.is_some_and(|c| "-+=:(>#|~*_`<[".contains(c)) {
        return format!("\\{escaped}");
    }
    // `1.`, `1)`, `a.`, `iv)`: an ordered list in CommonMark or pandoc's fancy lists.
    let word = escaped
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .count();
    let after = escaped[word..].chars().next();
    if word > 0 && matches!(after, Some('.' | ')')) {
        let rest = &escaped[word + 1..];
        if rest.is_empty() || rest.starts_with(char::is_whitespace) {
            return format!("{}\\{}", &escaped[..word], &escaped[word..]);
        }
    }
    escaped.to_string()
}

/// `name;` or `#123;` after an `&`: what a renderer would decode as an entity.
fn starts_entity(rest: &[char]) -> bool {
    let rest = rest.strip_prefix(&['#']).unwrap_or(rest);
    let name = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    name > 0 && rest.get(name) == Some(&';')
}

/// A link destination every renderer opens as exactly `url`: bare, or `<...>` when the URL holds
/// parentheses. Renderers decode entities and backslash escapes in destinations, so an `&` that would
/// start an entity is written `&amp;` and a backslash `\\` (a backslash before `&` is not honoured by
/// cmark-gfm: `\&copy;` opens `%5C©`). [`url_from_destination`] undoes it.
pub fn link_destination(url: &str) -> String {
    let chars: Vec<char> = url.chars().collect();
    let mut out = String::with_capacity(url.len() + 2);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            // Never in a URL `sanitize::web_url` or the notes provider produced; encoded if one were.
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            ' ' => out.push_str("%20"),
            '\\' => out.push_str("\\\\"),
            '&' if starts_entity(&chars[i + 1..]) => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }
    if out.contains(['(', ')']) {
        format!("<{out}>")
    } else {
        out
    }
}

/// The URL a destination written by [`link_destination`] opens (the `<...>` already removed):
/// backslash escapes and `&amp;` undone.
pub fn url_from_destination(dest: &str) -> String {
    let mut out = String::with_capacity(dest.len());
    let mut rest = dest;
    while let Some(c) = rest.chars().next() {
        if c == '\\'
            && let Some(n) = rest[1..].chars().next()
            && n.is_ascii_punctuation()
        {
            out.push(n);
            rest = &rest[1 + n.len_utf8()..];
        } else if let Some(after) = rest.strip_prefix("&amp;") {
            out.push('&');
            rest = after;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

pub fn link(title: &str, url: &str) -> String {
    format!("[{}]({})", escape_link_text(title), link_destination(url))
}

fn heading(level: u8, text: &str) -> String {
    format!("{} {}", "#".repeat(level.clamp(1, 6) as usize), text)
}

/// The citation marker of source `n` in `style` (empty for the links style).
pub fn marker(style: CitationStyle, n: usize) -> String {
    match style {
        CitationStyle::Links => String::new(),
        CitationStyle::Numbered => format!("[{n}]"),
        CitationStyle::Footnotes => format!("[^{n}]"),
    }
}

/// One line of the Citations section.
pub fn citation_line(style: CitationStyle, s: &Source) -> String {
    let providers = s
        .providers
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let link = link(&s.title, &s.url);
    match style {
        CitationStyle::Links => format!("- {link} - {providers}"),
        CitationStyle::Numbered => format!("{}. {link} - {providers}", s.n),
        CitationStyle::Footnotes => format!("[^{}]: {link} - {providers}", s.n),
    }
}

fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `2020-12-23T00:00:00Z` → `2020-12-23`; anything not starting with an ISO date is kept as it is.
fn short_date(date: &str) -> &str {
    let b = date.as_bytes();
    let iso = b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if iso { &date[..10] } else { date }
}

/// The report as markdown, in the seed report's shape: title, Objective, the steps that ran, Citations.
pub fn markdown(r: &Research, opts: &RenderOptions) -> String {
    let h1 = opts.heading_level.clamp(1, 6);
    let h2 = (h1 + 1).min(6);
    let summary = match &r.synthesis {
        Some(Synthesis::Written(s)) => Some(s),
        _ => None,
    };
    // A summary cites by number, so the links style numbers its citations when there is one.
    let style = match (opts.style, summary) {
        (CitationStyle::Links, Some(_)) => CitationStyle::Numbered,
        (style, _) => style,
    };
    let cited: Vec<&Source> = r
        .sources
        .iter()
        .filter(|s| !opts.cited_only || summary.is_none_or(|sum| sum.cited.contains(&s.n)))
        .collect();
    let topic_line = crate::sanitize::one_line(&r.topic, 500);
    let topic = escape_text(&topic_line);
    // A heading ending in `.,;:!` is a markdownlint finding (MD026): the title drops that punctuation,
    // the Objective keeps the topic as written.
    let title_topic =
        topic_line.trim_end_matches(['.', ',', ';', ':', '!', '。', '，', '；', '：', '！']);
    let title = if title_topic.is_empty() {
        "Conductor Report".to_string()
    } else {
        format!("Conductor Report: {}", escape_text(title_topic))
    };
    let mut out = String::new();
    if let Some(id) = &opts.marker_id {
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let _ = writeln!(out, "{REPORT_BEGIN}{id} -->");
    }
    let _ = writeln!(out, "{}\n", heading(h1, &title));
    let date = r.date.get(..10).unwrap_or(&r.date);
    let ok: Vec<String> = r
        .providers
        .iter()
        .filter(|p| p.status == RunStatus::Ok)
        .map(|p| format!("{} ({})", p.name, p.results))
        .collect();
    let mut costs: Vec<String> = Vec::new();
    for p in &r.providers {
        if let Some(usd) = p.cost_usd {
            costs.push(format!("{} \\${usd:.4}", p.name));
        }
        if let Some(c) = p.credits {
            costs.push(format!(
                "{} {c} credit{}",
                p.name,
                if c == 1.0 { "" } else { "s" }
            ));
        }
    }
    let cost = if costs.is_empty() {
        String::new()
    } else {
        format!("; cost: {}", costs.join(", "))
    };
    let _ = writeln!(
        out,
        // `*`, like the summary's notes: one emphasis style in a report (markdownlint MD049).
        "*Researched {date} in {} with {}{cost}.*\n",
        seconds(r.elapsed_ms),
        if ok.is_empty() {
            "no provider answering".to_string()
        } else {
            ok.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "{}\n\n{}\n",
        heading(h2, "Objective"),
        escape_line_start(&topic)
    );
    let mut step = 1;
    if let Some(synthesis) = &r.synthesis {
        let _ = writeln!(out, "{}\n", heading(h2, &format!("Step {step}: Synthesis")));
        let body = crate::synth::render_synthesis_markdown_styled(
            synthesis,
            style == CitationStyle::Footnotes,
        );
        let _ = writeln!(out, "{}\n", body.trim_end());
        step += 1;
    }
    let _ = writeln!(out, "{}\n", heading(h2, &format!("Step {step}: Research")));
    // Escaped too: `parallel:notes:` would be pandoc's emoji 🎶.
    let _ = writeln!(
        out,
        "Research results for '{topic}' {}\n",
        escape_text(&format!("via parallel:{}:", r.provider_names().join(",")))
    );
    if r.sources.is_empty() {
        let _ = writeln!(out, "No sources were found.\n");
    } else {
        for s in &cited {
            let m = marker(style, s.n);
            let m = if m.is_empty() { m } else { format!(" {m}") };
            let title = escape_text(&s.title);
            if s.snippet.is_empty() {
                let _ = writeln!(out, "- **{title}**{m}");
            } else {
                let _ = writeln!(out, "- **{title}**: {}{m}", escape_text(&s.snippet));
            }
        }
        out.push('\n');
    }
    let failures: Vec<_> = r.failures().collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "Providers that failed:\n");
        for f in failures {
            // A provider's error can quote its answer: one line, escaped like any web text.
            let why = crate::sanitize::one_line(f.error.as_deref().unwrap_or("failed"), 500);
            let why = escape_text(&why);
            let _ = writeln!(out, "- {}: {why}", f.name);
        }
        out.push('\n');
    }
    if !cited.is_empty() {
        let _ = writeln!(out, "{}\n", heading(h2, "Citations"));
        for s in &cited {
            let _ = writeln!(out, "{}", citation_line(style, s));
        }
    }
    if opts.marker_id.is_some() {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = writeln!(out, "{REPORT_END}");
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The report as JSON (pretty-printed): the same data as the markdown.
pub fn json(r: &Research) -> String {
    serde_json::to_string_pretty(r).expect("research serialises")
}

/// A hover preview of one source: title, snippet, providers, date and URL, capped in size. Hovers are
/// read where escapes show (Neovim, Emacs) as well as where they are rendered (VS Code), so web text is
/// escaped only as far as CommonMark needs ([`escape_hover`]) and the URL is an autolink, which needs
/// no escaping at all.
pub fn hover(s: &Source) -> String {
    let mut out = format!("**{}**", escape_hover(&s.title));
    if !s.snippet.is_empty() {
        let _ = write!(out, "\n\n{}", escape_line_start(&escape_hover(&s.snippet)));
    }
    let providers = s
        .providers
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(out, "\n\nFound by {providers}");
    if let Some(p) = &s.published {
        let _ = write!(out, " · published {}", escape_hover(short_date(p)));
    }
    let _ = write!(out, "\n\n{}", hover_url(&s.url));
    crate::sanitize::truncate_chars(&out, 4000)
}

/// A URL as it reads best in a hover: `<url>`, an autolink, which every renderer shows as typed. An
/// autolink decodes entities in cmark-gfm, so a URL with entity-like text (`&copy;`) is a link whose
/// text is the URL in a code span instead.
fn hover_url(url: &str) -> String {
    let chars: Vec<char> = url.chars().collect();
    let autolink = chars.iter().enumerate().all(|(i, &c)| {
        c.is_ascii_graphic()
            && c != '<'
            && c != '>'
            && !(c == '&' && starts_entity(&chars[i + 1..]))
    });
    if autolink {
        format!("<{url}>")
    } else {
        format!("[{}]({})", code_span(url), link_destination(url))
    }
}

/// `text` as a code span: fenced by one more backtick than its longest run, padded when it starts or
/// ends with one.
fn code_span(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_form_markup() {
        assert_eq!(
            escape_text("a [b](c) *d* <e> `f`"),
            "a \\[b\\](c) \\*d\\* \\<e\\> \\`f\\`"
        );
        assert_eq!(escape_text("AT&T &amp; you"), "AT&T \\&amp; you");
        assert_eq!(escape_text("see https://x.y"), "see https\\://x\\.y");
        // pandoc's attributes, spans, superscript, emoji; GFM's and linkify's autolinks.
        assert_eq!(
            escape_text("me{onclick=x} [s]{.x} ^up^ :smile: at 12:30"),
            "me\\{onclick=x\\} \\[s\\]\\{.x\\} \\^up\\^ \\:smile: at 12:30"
        );
        assert_eq!(
            escape_text("www.evil.example, evil.com/x or a@b.example"),
            "www\\.evil\\.example, evil\\.com/x or a＠b\\.example"
        );
        assert_eq!(escape_link_text("a@b.example"), "a@b\\.example");
        // An underscore inside a word can open nothing; at a word's edge it could.
        assert_eq!(escape_text("snake_case _x_"), "snake_case \\_x\\_");
        assert_eq!(
            escape_hover("snake_case https://x.y Vec<T> a < b"),
            "snake_case https\\://x.y Vec\\<T> a < b"
        );
        assert_eq!(escape_hover("C:\\dir ends\\"), "C:\\dir ends\\\\");
    }

    #[test]
    fn hover_shows_title_snippet_providers_short_date_and_url() {
        let s = Source {
            n: 1,
            url: "https://tokio.rs/blog/2020-12-tokio-1-0".into(),
            title: "Tokio 1.0 *released*".into(),
            snippet: "420 points".into(),
            providers: vec![
                crate::config::ProviderName::Hackernews,
                crate::config::ProviderName::Brave,
            ],
            published: Some("2020-12-23T00:00:00Z".into()),
            score: 0.0,
            content: None,
        };
        assert_eq!(
            hover(&s),
            "**Tokio 1.0 \\*released\\***\n\n420 points\n\nFound by hackernews, brave · published 2020-12-23\n\n<https://tokio.rs/blog/2020-12-tokio-1-0>"
        );
        assert_eq!(short_date("2 days ago"), "2 days ago");
    }

    #[test]
    fn destinations_with_parentheses_stay_links() {
        assert_eq!(
            link_destination("https://en.wikipedia.org/wiki/Rust_(programming_language)"),
            "<https://en.wikipedia.org/wiki/Rust_(programming_language)>"
        );
        assert_eq!(link_destination("https://a.com/x y"), "https://a.com/x%20y");
        // cmark-gfm reads `\&copy;` as `\©`: an entity-like `&` is written as the entity `&amp;`.
        let url = "https://a.com/?a=1&b=2&amp;&copy;=3";
        assert_eq!(
            link_destination(url),
            "https://a.com/?a=1&b=2&amp;amp;&amp;copy;=3"
        );
        assert_eq!(url_from_destination(&link_destination(url)), url);
        assert_eq!(
            url_from_destination("https://a.com/x\\\\y"),
            "https://a.com/x\\y"
        );
    }

    #[test]
    fn a_line_that_would_start_a_block_stays_text() {
        let line = |t: &str| escape_line_start(&escape_text(t));
        assert_eq!(line("---"), "\\---");
        assert_eq!(line("1. Rust"), "1\\. Rust");
        assert_eq!(line("- Rust"), "\\- Rust");
        assert_eq!(line("> Rust"), "\\> Rust");
        assert_eq!(line("a) Rust"), "a\\) Rust");
        assert_eq!(line("(1) Rust"), "\\(1) Rust");
        assert_eq!(line("iv. Rust"), "iv\\. Rust");
        assert_eq!(line("::: warning"), "\\::: warning");
        assert_eq!(line(": Rust"), "\\: Rust");
        assert_eq!(line("Rust 1.0"), "Rust 1.0");
    }

    #[test]
    fn a_hover_url_needs_no_escapes() {
        assert_eq!(
            hover_url("https://a.example/x_(y)"),
            "<https://a.example/x_(y)>"
        );
        assert_eq!(
            hover_url("https://a.example/?a=1&copy;=2"),
            "[`https://a.example/?a=1&copy;=2`](https://a.example/?a=1&amp;copy;=2)"
        );
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`a"), "`` `a ``");
    }
}
