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

/// Escapes text for inline markdown so it can form no link, image, emphasis, code, HTML, heading-close,
/// table cell or autolink. Kept readable: only characters that can start markup are escaped.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // An entity (`&copy;`, `&#169;`) would be decoded by a renderer; a lone `&` is harmless.
            '&' if starts_entity(&chars[i + 1..]) => {
                out.push_str("\\&");
            }
            // `http://x` would become a link in renderers with extended autolinks: break the scheme.
            ':' if chars.get(i + 1) == Some(&'/') && chars.get(i + 2) == Some(&'/') => {
                out.push_str("\\:");
            }
            _ => out.push(c),
        }
    }
    out
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

/// A link destination: bare when safe, `<...>` when the URL holds parentheses or spaces.
pub fn link_destination(url: &str) -> String {
    let chars: Vec<char> = url.chars().collect();
    let mut out = String::with_capacity(url.len() + 2);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            ' ' => out.push_str("%20"),
            // Renderers decode entities and backslash escapes in destinations: keep both literal.
            '\\' => out.push_str("\\\\"),
            '&' if starts_entity(&chars[i + 1..]) => out.push_str("\\&"),
            _ => out.push(c),
        }
    }
    if out.contains(['(', ')']) {
        format!("<{out}>")
    } else {
        out
    }
}

pub fn link(title: &str, url: &str) -> String {
    format!("[{}]({})", escape_text(title), link_destination(url))
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
    let topic = escape_text(&crate::sanitize::one_line(&r.topic, 500));
    let mut out = String::new();
    if let Some(id) = &opts.marker_id {
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let _ = writeln!(out, "{REPORT_BEGIN}{id} -->");
    }
    let _ = writeln!(
        out,
        "{}\n",
        heading(h1, &format!("Conductor Report: {topic}"))
    );
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
        "_Researched {date} in {} with {}{cost}._\n",
        seconds(r.elapsed_ms),
        if ok.is_empty() {
            "no provider answering".to_string()
        } else {
            ok.join(", ")
        }
    );
    let _ = writeln!(out, "{}\n\n{topic}\n", heading(h2, "Objective"));
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
    let _ = writeln!(
        out,
        "Research results for '{topic}' via parallel:{}:\n",
        r.provider_names().join(",")
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
            let why = escape_text(f.error.as_deref().unwrap_or("failed"));
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

/// A hover preview of one source: title, snippet, providers, date and URL, capped in size.
pub fn hover(s: &Source) -> String {
    let mut out = format!("**{}**", escape_text(&s.title));
    if !s.snippet.is_empty() {
        let _ = write!(out, "\n\n{}", escape_text(&s.snippet));
    }
    let providers = s
        .providers
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(out, "\n\nFound by {providers}");
    if let Some(p) = &s.published {
        let _ = write!(out, " · published {}", escape_text(short_date(p)));
    }
    let _ = write!(out, "\n\n{}", link(&s.url, &s.url));
    crate::sanitize::truncate_chars(&out, 4000)
}

// ---- Claim check -------------------------------------------------------------------------------------

/// The check line under a summary, as one italic markdown line: "*Checked: 5 of 6 cited sentences
/// backed by their sources; 1 unsupported; 1 uncited.*" (the judge's model name and errors escaped).
pub fn check_line(line: &crate::check::CheckLine) -> String {
    format!("*{}*", escape_text(&line.sentence()))
}

/// The visible mark written right after a sentence (after its citation markers) that its sources do
/// not back: plain markdown, readable in any renderer. `None` for a supported sentence.
pub fn claim_mark(status: crate::check::Status) -> Option<&'static str> {
    use crate::check::Status;
    match status {
        Status::Supported => None,
        Status::Partial => Some(" *(partly backed)*"),
        Status::Unsupported => Some(" **(unsupported)**"),
        Status::Uncited => Some(" *(uncited)*"),
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
        assert_eq!(escape_text("see https://x.y"), "see https\\://x.y");
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
            "**Tokio 1.0 \\*released\\***\n\n420 points\n\nFound by hackernews, brave · published 2020-12-23\n\n[https\\://tokio.rs/blog/2020-12-tokio-1-0](https://tokio.rs/blog/2020-12-tokio-1-0)"
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
        assert_eq!(
            link_destination("https://a.com/?a=1&b=2&amp;"),
            "https://a.com/?a=1&b=2\\&amp;"
        );
    }
}
