//! Rendering research as markdown or JSON. The only place web text becomes markdown: every title and
//! snippet is escaped here, every link destination is built here from a validated URL.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::config::CitationStyle;
use crate::report::{Passage, ReadStatus, Research, RunStatus, Source, Synthesis};

pub mod check;
pub mod summary;

pub use check::{check_line, claim_mark};

/// Begin and end lines of a report inserted by the language server: HTML comments, invisible when the
/// markdown is rendered, that let the server find the report again (refresh, hover after a restart).
pub const REPORT_BEGIN: &str = "<!-- conductor:report ";
pub const REPORT_END: &str = "<!-- /conductor:report -->";

#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub style: CitationStyle,
    /// Level of the report's title (1 and up); sections go one level below. Markdown has six heading
    /// levels: deeper titles are written as bold paragraph titles, so the report still reads as
    /// subordinate to a `######` parent.
    pub heading_level: u8,
    /// Wrap the report in begin/end markers carrying this id (the language server does).
    pub marker_id: Option<String>,
    /// With a written summary, cite only the sources it cites.
    pub cited_only: bool,
    /// Mark dead sources that are still listed (`dead_links = "mark"`); false for `"keep"`.
    pub mark_dead: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            style: CitationStyle::Links,
            heading_level: 1,
            marker_id: None,
            cited_only: false,
            mark_dead: true,
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

/// A section title at `level`: an ATX heading up to 6; deeper, a bold paragraph title ending with a
/// full stop (a run-in title, which markdownlint does not take for a heading made of emphasis).
fn heading(level: u8, text: &str) -> String {
    match level {
        0..=6 => format!("{} {}", "#".repeat(level.max(1) as usize), text),
        _ => format!("**{text}.**"),
    }
}

/// The report's title line at `level`; deeper than 6, a bold paragraph title.
/// The report's title line (`Conductor Report: topic`, escaped): a heading, or past level 6 a bold
/// paragraph.
fn title_line(level: u8, title: &str) -> String {
    match level {
        0..=6 => heading(level, title),
        _ => match title.strip_prefix("Conductor Report: ") {
            Some(topic) => format!("**Conductor Report:** {topic}"),
            None => format!("**{title}**"),
        },
    }
}

/// The prefix of a report's footnote labels (`c1a2b3c` in `[^c1a2b3c-4]`), so that two reports in one
/// note never share a label: `c` and the first six hex digits of `key` (a report id, which a refresh
/// keeps: see [`refreshed_report_id`]), or of a hash of it when it does not start with six.
pub fn footnote_prefix(key: &str) -> String {
    let head = key
        .get(..6)
        .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    match head {
        Some(h) => format!("c{}", h.to_ascii_lowercase()),
        None => format!("c{:06x}", fnv1a(key) & 0xff_ffff),
    }
}

/// A new id for the report that replaces report `old` on refresh: new, so the refreshed report is told
/// apart from the old one, but with the same first six hex digits, so its footnote labels stay the same.
pub fn refreshed_report_id(old: &str) -> String {
    let keep = &footnote_prefix(old)[1..];
    format!("{keep}{:010x}", fastrand::u64(..) >> 24)
}

/// FNV-1a, 64 bits: a hash that stays the same across Rust releases and platforms (std's does not
/// promise that), for labels written into documents. Eight lines do not warrant a crate.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Writes citation markers for one report. In the footnote style each source's label is referenced
/// once, where the reader first meets it (pandoc makes a note per reference, so a label cited twice
/// would number the notes differently from cmark-gfm and from the report); later citations of it are
/// written `[n]`, the number the renderers show for it (see [`number_in_reading_order`]).
struct Citer {
    style: CitationStyle,
    prefix: String,
    seen: HashSet<usize>,
}

impl Citer {
    fn cite(&mut self, n: usize) -> String {
        match self.style {
            CitationStyle::Links => String::new(),
            CitationStyle::Numbered => format!("[{n}]"),
            CitationStyle::Footnotes if self.seen.insert(n) => format!("[^{}-{n}]", self.prefix),
            CitationStyle::Footnotes => format!("[{n}]"),
        }
    }
}

/// In the footnote style with a summary, numbers the sources in the order the reader first meets them:
/// those the summary cites, in the order it first cites them, then the others by rank. Renderers number
/// footnotes by first reference, so this makes the numbers they show the report's own numbers (the ones
/// stored, hovered and in the JSON). Call it before the report is stored; idempotent.
pub fn number_in_reading_order(r: &mut Research, style: CitationStyle) {
    if style != CitationStyle::Footnotes {
        return;
    }
    let known: HashSet<usize> = r.sources.iter().map(|s| s.n).collect();
    let mut order: Vec<usize> = Vec::new();
    match &r.synthesis {
        Some(Synthesis::Written(summary)) => {
            for b in &summary.blocks {
                for seg in &b.segments {
                    if let crate::synth::Segment::Cite { n } = seg
                        && known.contains(n)
                        && !order.contains(n)
                    {
                        order.push(*n);
                    }
                }
            }
        }
        // Without a summary, the key passages are what the reader meets first.
        _ => {
            for (n, _) in key_passages(r) {
                if !order.contains(&n) {
                    order.push(n);
                }
            }
        }
    }
    let mut rest: Vec<usize> = r
        .sources
        .iter()
        .map(|s| s.n)
        .filter(|n| !order.contains(n))
        .collect();
    rest.sort_unstable();
    order.extend(rest);
    if order.iter().enumerate().all(|(i, &n)| n == i + 1) {
        return;
    }
    let new: std::collections::HashMap<usize, usize> =
        order.iter().enumerate().map(|(i, &n)| (n, i + 1)).collect();
    let map = |n: usize| new.get(&n).copied().unwrap_or(n);
    if let Some(Synthesis::Written(summary)) = &mut r.synthesis {
        summary.renumber(&map);
    }
    for s in &mut r.sources {
        s.n = map(s.n);
    }
    r.sources.sort_by_key(|s| s.n);
}

/// How many passages the "Key passages" section lists.
pub const KEY_PASSAGES: usize = 6;

/// The best passages across the sources, most relevant first (ties by rank), at most [`KEY_PASSAGES`]:
/// what a report without a summary opens with. Each with its source's number.
pub fn key_passages(r: &Research) -> Vec<(usize, &Passage)> {
    let mut all: Vec<(usize, &Passage)> = r
        .sources
        .iter()
        .flat_map(|s| s.passages.iter().map(move |p| (s.n, p)))
        .collect();
    all.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    all.truncate(KEY_PASSAGES);
    all
}

/// A source's quotes as a block quote, one paragraph each, indented by `indent` (to sit inside a list
/// item). Web text: escaped like any other.
fn quote_block(passages: &[Passage], indent: &str) -> String {
    passages
        .iter()
        .map(|p| {
            let text = crate::sanitize::one_line(&p.text, 600);
            format!("{indent}> {}", escape_line_start(&escape_text(&text)))
        })
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}>\n"))
}

/// What a listed source's entry says of its reading: ` (dead link: HTTP 404)` (when dead sources are
/// marked), ` (not read: bot check)`; nothing for a source read or not tried.
fn read_mark(s: &Source, mark_dead: bool) -> String {
    let Some(read) = &s.read else {
        return String::new();
    };
    // A source the stage chose not to read (past the `read` count, reading off) says nothing; one it
    // could not read (a PDF, out of time) says why.
    let chosen = |d: &str| d.starts_with("not among the top") || d == "reading is off";
    let what = match read.status {
        ReadStatus::Dead if mark_dead => "dead link",
        ReadStatus::Blocked | ReadStatus::Failed => "not read",
        ReadStatus::Skipped if read.detail.as_deref().is_some_and(|d| !chosen(d)) => "not read",
        _ => return String::new(),
    };
    match read.detail.as_deref() {
        Some(d) => format!(
            " ({what}: {})",
            escape_text(&crate::sanitize::one_line(d, 100))
        ),
        None => format!(" ({what})"),
    }
}

/// One line of the Citations section; `prefix` is the report's footnote prefix ([`footnote_prefix`]).
pub fn citation_line(style: CitationStyle, prefix: &str, s: &Source) -> String {
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
        CitationStyle::Footnotes => format!("[^{prefix}-{}]: {link} - {providers}", s.n),
    }
}

/// How old a cached answer is, for people: "12 s ago", "5 min ago", "3 h ago", "2 days ago".
fn age(s: u64) -> String {
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
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

/// What the research cost, as its "Researched" line says it: `; cost: \$0.0130 (estimated)`, with the
/// parts whose price is unknown; nothing for a research that surely cost nothing. A research made
/// outside the pipeline (with no `cost`) is priced from the built-in table.
fn cost_text(r: &Research) -> String {
    let computed;
    let cost = match &r.cost {
        Some(c) => c,
        None => {
            computed = crate::cost::of(r, &crate::config::Prices::default(), None);
            &computed
        }
    };
    if cost.usd == 0.0 && !cost.estimated && cost.unpriced.is_empty() {
        return String::new();
    }
    let unpriced =
        (!cost.unpriced.is_empty()).then(|| format!("no price for {}", cost.unpriced.join(", ")));
    let text = match unpriced {
        // Nothing priced cost anything: the total is what is not known.
        Some(u) if cost.usd == 0.0 => format!("; cost: unknown ({u})"),
        Some(u) => format!(
            "; cost: {} (estimated; {u})",
            crate::cost::dollars(cost.usd)
        ),
        None if cost.estimated => format!("; cost: {} (estimated)", crate::cost::dollars(cost.usd)),
        None => format!("; cost: {}", crate::cost::dollars(cost.usd)),
    };
    escape_text(&text)
}

/// The report as markdown, in the seed report's shape: title, Objective, the steps that ran, Citations.
pub fn markdown(r: &Research, opts: &RenderOptions) -> String {
    // Callers number the sources before storing them; this keeps any other caller's output right.
    let mut ordered;
    let mut r = r;
    if opts.style == CitationStyle::Footnotes {
        ordered = r.clone();
        number_in_reading_order(&mut ordered, opts.style);
        r = &ordered;
    }
    let h1 = opts.heading_level.max(1);
    let h2 = h1.saturating_add(1);
    let summary = match &r.synthesis {
        Some(Synthesis::Written(s)) => Some(s),
        _ => None,
    };
    // Without a summary, the best passages open the report.
    let key = if summary.is_none() {
        key_passages(r)
    } else {
        Vec::new()
    };
    // A summary or key passages cite by number, so the links style numbers its citations then.
    let style = match opts.style {
        CitationStyle::Links if summary.is_some() || !key.is_empty() => CitationStyle::Numbered,
        style => style,
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
    let id: Option<String> = opts.marker_id.as_ref().map(|id| {
        id.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    });
    if let Some(id) = &id {
        let _ = writeln!(out, "{REPORT_BEGIN}{id} -->");
    }
    let mut citer = Citer {
        style,
        // A report without an id (the CLI's) takes its labels from what it is about and when.
        prefix: footnote_prefix(
            id.as_deref()
                .unwrap_or(&format!("{}\n{}\n{}", r.topic, r.date, r.elapsed_ms)),
        ),
        seen: HashSet::new(),
    };
    let _ = writeln!(out, "{}\n", title_line(h1, &title));
    let date = r.date.get(..10).unwrap_or(&r.date);
    let ok: Vec<String> = r
        .providers
        .iter()
        .filter(|p| p.status == RunStatus::Ok)
        .map(|p| match p.cached {
            Some(c) => format!("{} ({}, cached {})", p.name, p.results, age(c.age_s)),
            None => format!("{} ({})", p.name, p.results),
        })
        .collect();
    let cost = cost_text(r);
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
    let over_budget: Vec<&str> = r
        .providers
        .iter()
        .filter(|p| p.is_over_budget())
        .map(|p| p.name.as_str())
        .collect();
    if !over_budget.is_empty() {
        let max = r
            .cost
            .as_ref()
            .and_then(|c| c.max_cost)
            .map(|m| format!(" {}", crate::cost::cap(m)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "*{}*\n",
            escape_text(&format!(
                "Not asked, to stay within max_cost{max}: {}.",
                over_budget.join(", ")
            ))
        );
    }
    let _ = writeln!(
        out,
        "{}\n\n{}\n",
        heading(h2, "Objective"),
        escape_line_start(&topic)
    );
    if !key.is_empty() {
        let _ = writeln!(out, "{}\n", heading(h2, "Key passages"));
        for (n, p) in &key {
            let text = crate::sanitize::one_line(&p.text, 600);
            let _ = writeln!(out, "- {} {}", escape_text(&text), citer.cite(*n));
        }
        out.push('\n');
    }
    let mut step = 1;
    if let Some(synthesis) = &r.synthesis {
        let _ = writeln!(out, "{}\n", heading(h2, &format!("Step {step}: Synthesis")));
        let body = summary::render_synthesis_markdown_styled(synthesis, &mut |n| citer.cite(n));
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
            let m = citer.cite(s.n);
            let m = if m.is_empty() { m } else { format!(" {m}") };
            let title = escape_text(&s.title);
            let dead = read_mark(s, opts.mark_dead);
            if s.snippet.is_empty() {
                let _ = writeln!(out, "- **{title}**{dead}{m}");
            } else {
                let _ = writeln!(out, "- **{title}**{dead}: {}{m}", escape_text(&s.snippet));
            }
            if !s.passages.is_empty() {
                let _ = writeln!(out, "{}", quote_block(&s.passages, "  "));
            }
        }
        out.push('\n');
    }
    if !r.dropped.is_empty() {
        let _ = writeln!(out, "Dead links dropped:\n");
        for d in &r.dropped {
            let why = d
                .detail
                .as_deref()
                .map(|d| format!(" ({})", crate::sanitize::one_line(d, 100)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {}: {}",
                escape_text(&crate::sanitize::one_line(&d.title, 300)),
                escape_text(&format!("{}{why}", d.url))
            );
        }
        out.push('\n');
    }
    // Providers `max_cost` kept from being asked did not fail: the "Not asked" line names them.
    let failures: Vec<_> = r.failures().filter(|f| !f.is_over_budget()).collect();
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
            let _ = writeln!(out, "{}", citation_line(style, &citer.prefix, s));
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
    // The quotes, verbatim from the page, say more than the search engine's snippet.
    for p in &s.passages {
        let text = crate::sanitize::one_line(&p.text, 600);
        let _ = write!(out, "\n\n> {}", escape_line_start(&escape_hover(&text)));
    }
    if s.passages.is_empty() && !s.snippet.is_empty() {
        let _ = write!(out, "\n\n{}", escape_line_start(&escape_hover(&s.snippet)));
    }
    if s.is_dead() {
        let _ = write!(out, "\n\n*Dead link*");
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
            read: None,
            passages: Vec::new(),
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
    fn an_entry_says_why_its_page_was_not_read_but_not_that_it_was_not_chosen() {
        let mut r = research(3, &[]);
        let info = |status, detail: &str| {
            Some(crate::report::ReadInfo {
                status,
                detail: Some(detail.into()),
                via: crate::report::Via::Page,
                cached: None,
            })
        };
        r.sources[0].read = info(ReadStatus::Skipped, "PDF");
        r.sources[1].read = info(ReadStatus::Blocked, "bot check");
        r.sources[2].read = info(ReadStatus::Skipped, "not among the top 2 sources");
        let md = markdown(&r, &RenderOptions::default());
        let entries: Vec<&str> = md.lines().filter(|l| l.starts_with("- **")).collect();
        assert!(entries[0].contains("(not read: PDF)"), "{md}");
        assert!(entries[1].contains("(not read: bot check)"), "{md}");
        assert!(!entries[2].contains("not read"), "{md}");
    }

    fn research(sources: usize, cites: &[usize]) -> Research {
        use crate::synth::{Block, BlockKind, Segment, Summary, Usage};
        let mut segments = vec![Segment::Text {
            text: "Summary".into(),
        }];
        for &n in cites {
            segments.push(Segment::Cite { n });
            segments.push(Segment::Text { text: ".".into() });
        }
        let mut cited: Vec<usize> = cites.to_vec();
        cited.sort_unstable();
        cited.dedup();
        Research {
            topic: "Rust".into(),
            date: "2026-01-01T00:00:00Z".into(),
            elapsed_ms: 5,
            providers: vec![],
            sources: (1..=sources)
                .map(|n| Source {
                    n,
                    url: format!("https://s.example/{n}"),
                    title: format!("Source {n}"),
                    snippet: String::new(),
                    providers: vec![crate::config::ProviderName::Wikipedia],
                    published: None,
                    score: 1.0 / n as f64,
                    content: None,
                    read: None,
                    passages: Vec::new(),
                })
                .collect(),
            dropped: Vec::new(),
            cost: None,
            synthesis: (!cites.is_empty()).then(|| {
                Synthesis::Written(Summary {
                    blocks: vec![Block {
                        kind: BlockKind::Paragraph,
                        segments,
                    }],
                    text: String::new(),
                    cited,
                    uncited: false,
                    truncated: false,
                    removed_citations: vec![],
                    removed_links: 0,
                    sources_sent: sources,
                    usage: Usage {
                        prompt_tokens: 1,
                        completion_tokens: 1,
                        estimated: false,
                        cost_usd: None,
                    },
                    backend: "openai".into(),
                    model: "m".into(),
                    claims: Vec::new(),
                    check: None,
                    judge: None,
                })
            }),
        }
    }

    #[test]
    fn footnote_sources_are_numbered_in_reading_order_and_referenced_once() {
        let mut r = research(12, &[9, 3, 9, 1]);
        number_in_reading_order(&mut r, CitationStyle::Footnotes);
        // 9, 3, 1 first, then the rest by rank.
        let urls: Vec<&str> = r.sources.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(
            &urls[..4],
            [
                "https://s.example/9",
                "https://s.example/3",
                "https://s.example/1",
                "https://s.example/2"
            ]
        );
        assert!(r.sources.iter().enumerate().all(|(i, s)| s.n == i + 1));
        let Some(Synthesis::Written(sum)) = &r.synthesis else {
            panic!()
        };
        assert_eq!(sum.text, "Summary[1].[2].[1].[3].");
        assert_eq!(sum.cited, vec![1, 2, 3]);
        let again = r.clone();
        number_in_reading_order(&mut r, CitationStyle::Footnotes);
        assert_eq!(r, again, "idempotent");
        let md = markdown(
            &r,
            &RenderOptions {
                style: CitationStyle::Footnotes,
                marker_id: Some("abcdef0123456789".into()),
                ..RenderOptions::default()
            },
        );
        // Each label is referenced once, in order; a source cited again is `[n]`.
        let refs: Vec<&str> = md
            .match_indices("[^cabcdef-")
            .filter(|(i, _)| {
                md[*i..]
                    .find(']')
                    .is_some_and(|c| !md[*i + c + 1..].starts_with(':'))
            })
            .map(|(i, _)| &md[i..i + md[i..].find(']').unwrap() + 1])
            .collect();
        let expected: Vec<String> = (1..=12).map(|n| format!("[^cabcdef-{n}]")).collect();
        assert_eq!(refs, expected, "{md}");
        assert!(
            md.contains("Summary[^cabcdef-1].[^cabcdef-2].[1].[^cabcdef-3]."),
            "{md}"
        );
        assert!(md.contains("- **Source 9** [1]\n"), "{md}");
        assert!(
            md.contains("[^cabcdef-1]: [Source 9](https://s.example/9) - wikipedia"),
            "{md}"
        );
        // The numbered style keeps the rank order.
        let mut n = research(12, &[9, 3]);
        number_in_reading_order(&mut n, CitationStyle::Numbered);
        assert_eq!(n.sources[0].url, "https://s.example/1");
    }

    #[test]
    fn footnote_prefixes_differ_per_report_and_survive_refresh() {
        assert_eq!(footnote_prefix("0123abcdef987654"), "c0123ab");
        let other = footnote_prefix("report-1");
        assert!(other.len() == 7 && other.starts_with('c'), "{other}");
        assert_ne!(other, footnote_prefix("report-2"));
        for old in ["0123abcdef987654", "report-1"] {
            let new = refreshed_report_id(old);
            assert_ne!(new, old);
            assert_eq!(new.len(), 16);
            assert_eq!(footnote_prefix(&new), footnote_prefix(old));
        }
    }

    #[test]
    fn titles_past_level_six_are_bold_paragraphs() {
        let r = research(2, &[]);
        let md = |level| {
            markdown(
                &r,
                &RenderOptions {
                    style: CitationStyle::Numbered,
                    heading_level: level,
                    ..RenderOptions::default()
                },
            )
        };
        let five = md(5);
        assert!(five.starts_with("##### Conductor Report: Rust\n"), "{five}");
        assert!(five.contains("\n###### Objective\n"), "{five}");
        let six = md(6);
        assert!(six.starts_with("###### Conductor Report: Rust\n"), "{six}");
        assert!(
            six.contains("\n**Objective.**\n") && six.contains("\n**Citations.**\n"),
            "{six}"
        );
        let seven = md(7);
        assert!(seven.starts_with("**Conductor Report:** Rust\n"), "{seven}");
        assert!(!seven.contains('#'), "{seven}");
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
