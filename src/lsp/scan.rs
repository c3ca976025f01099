//! Reading markdown the way the server needs it: headings, topics from selections, inserted reports,
//! citation markers (`[n]`, `[^n]`, `[^c1a2b3c-n]`), citation entries and URLs. Markers and entries are
//! read line by line (columns are char indices); the block structure (headings, ATX or setext, and code
//! blocks) comes from pulldown-cmark, so a `#` line inside a fence is no heading and `Title\n---` is one.

use std::fmt;

use crate::render::{REPORT_BEGIN, REPORT_END};

mod blocks;
mod index;

pub use blocks::{Blocks, Heading, blocks, is_citations_heading, markdown_options};
pub use index::{Entry, FoundMarker, Index, ReportBlock, Scope};

/// An ATX heading: its level and text (without the closing `#`s).
pub fn heading(line: &str) -> Option<(u8, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let after = &rest[hashes..];
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let text = after.trim();
    let stripped = text.trim_end_matches('#');
    let text = if stripped.is_empty() {
        ""
    } else if stripped.ends_with([' ', '\t']) {
        stripped.trim_end()
    } else {
        text
    };
    Some((hashes as u8, text))
}

pub fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// The id of a report's begin line.
pub fn report_begin(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix(REPORT_BEGIN)?;
    let id = rest.strip_suffix("-->")?.trim();
    (!id.is_empty()).then_some(id)
}

pub fn is_report_end(line: &str) -> bool {
    line.trim() == REPORT_END
}

/// A selection as a one-line research topic: markdown syntax stripped, whitespace collapsed.
pub fn strip_markdown(text: &str) -> String {
    let mut out = String::new();
    for raw in text.lines() {
        let mut line = raw.trim();
        loop {
            let before = line;
            line = line.trim_start_matches('>').trim_start();
            if let Some((_, t)) = heading(line) {
                line = t;
            }
            for bullet in ["- ", "* ", "+ "] {
                if let Some(rest) = line.strip_prefix(bullet) {
                    line = rest.trim_start();
                }
            }
            let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 && (line[digits..].starts_with(". ") || line[digits..].starts_with(") "))
            {
                line = line[digits + 2..].trim_start();
            }
            for task in ["[ ] ", "[x] ", "[X] "] {
                if let Some(rest) = line.strip_prefix(task) {
                    line = rest;
                }
            }
            if line == before {
                break;
            }
        }
        out.push(' ');
        out.push_str(&strip_inline(line));
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::sanitize::truncate_chars(&collapsed, 500)
}

fn strip_inline(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() => {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            '<' => {
                if let Some(len) = chars[i..].iter().position(|&c| c == '>') {
                    let inner: String = chars[i + 1..i + len].iter().collect();
                    if inner.starts_with("http") {
                        out.push_str(&inner);
                    }
                    i += len + 1;
                    continue;
                }
            }
            '!' if chars.get(i + 1) == Some(&'[') => {
                i += 1;
                continue;
            }
            '[' => {
                if let Some(close) = matching(&chars, i, '[', ']') {
                    let inner: String = chars[i + 1..close].iter().collect();
                    let is_ref =
                        inner.starts_with('^') || inner.chars().all(|c| c.is_ascii_digit());
                    let mut j = close + 1;
                    if chars.get(j) == Some(&'(') {
                        j = matching(&chars, j, '(', ')').map_or(chars.len(), |k| k + 1);
                    } else if chars.get(j) == Some(&'[') {
                        j = matching(&chars, j, '[', ']').map_or(chars.len(), |k| k + 1);
                    } else if is_ref && !inner.is_empty() {
                        i = j;
                        continue;
                    }
                    out.push_str(&strip_inline(&inner));
                    i = j;
                    continue;
                }
            }
            '*' | '`' | '~' => {
                i += 1;
                continue;
            }
            '_' => {
                let prev_word = i > 0 && chars[i - 1].is_alphanumeric();
                let next_word = chars.get(i + 1).is_some_and(|c| c.is_alphanumeric());
                if !(prev_word && next_word) {
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The index of the bracket closing the one at `open`, skipping escaped characters.
fn matching(chars: &[char], open: usize, o: char, c: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            x if x == o => depth += 1,
            x if x == c => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The report part of a footnote label: `c1a2b3c` in `[^c1a2b3c-4]` (`c` and 1 to 16 hex digits).
/// Each report writes its own, so two reports in one note never share a footnote label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    value: u64,
    digits: u8,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{:0w$x}", self.value, w = self.digits as usize)
    }
}

/// A footnote label after its `^`: `12` or `c1a2b3c-12`. Returns the prefix, the number and the chars
/// it spans; `None` for any other label (a person's own `[^note]`).
fn footnote_label(chars: &[char]) -> Option<(Option<Prefix>, usize, usize)> {
    let mut i = 0;
    let mut prefix = None;
    if chars.first() == Some(&'c') {
        let hex = chars[1..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        if !(1..=16).contains(&hex) || chars.get(1 + hex) != Some(&'-') {
            return None;
        }
        let digits: String = chars[1..1 + hex].iter().collect();
        prefix = Some(Prefix {
            value: u64::from_str_radix(&digits, 16).ok()?,
            digits: hex as u8,
        });
        i = hex + 2;
    }
    let (n, len) = number(&chars[i..])?;
    Some((prefix, n, i + len))
}

/// A citation number at the start of `chars` (1 to 5 digits) and its length.
fn number(chars: &[char]) -> Option<(usize, usize)> {
    let len = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..6).contains(&len) {
        return None;
    }
    let n: String = chars[..len].iter().collect();
    Some((n.parse().ok()?, len))
}

/// A citation marker in a line: `[3]`, `[^3]` or `[^c1a2b3c-3]`, at char columns `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub start: usize,
    pub end: usize,
    pub n: usize,
    pub footnote: bool,
    /// The report part of a footnote label, when it has one.
    pub prefix: Option<Prefix>,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.footnote, self.prefix) {
            (true, Some(p)) => write!(f, "[^{p}-{}]", self.n),
            (true, None) => write!(f, "[^{}]", self.n),
            (false, _) => write!(f, "[{}]", self.n),
        }
    }
}

/// Every citation marker of a line (not link texts, not footnote definitions, not escaped brackets, not
/// inside code spans).
pub fn markers(line: &str) -> Vec<Marker> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == '`' {
            i = after_code_span(&chars, i);
            continue;
        }
        if chars[i] == '[' && (i == 0 || chars[i - 1] != ']') {
            let footnote = chars.get(i + 1) == Some(&'^');
            let from = (i + 1 + footnote as usize).min(chars.len());
            let label = if footnote {
                footnote_label(&chars[from..])
            } else {
                number(&chars[from..]).map(|(n, len)| (None, n, len))
            };
            if let Some((prefix, n, len)) = label
                && chars.get(from + len) == Some(&']')
            {
                let close = from + len;
                let next = chars.get(close + 1);
                let definition = next == Some(&':') && chars[..i].iter().all(|c| c.is_whitespace());
                if !matches!(next, Some('(') | Some('[')) && !definition {
                    out.push(Marker {
                        start: i,
                        end: close + 1,
                        n,
                        footnote,
                        prefix,
                    });
                }
                i = close + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Where the code span opened by the backticks at `i` ends (CommonMark: the next run of exactly as many
/// backticks); a run that closes nothing is literal text.
fn after_code_span(chars: &[char], i: usize) -> usize {
    let run = chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut j = i + run;
    while j < chars.len() {
        if chars[j] == '`' {
            let r = chars[j..].iter().take_while(|&&c| c == '`').count();
            if r == run {
                return j + r;
            }
            j += r;
        } else {
            j += 1;
        }
    }
    i + run
}

/// A line of a Citations section: `- [T](url) - p`, `n. [T](url) - p` or `[^n]: [T](url) - p`.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryLine {
    pub n: Option<usize>,
    pub footnote: bool,
    /// The report part of a footnote label (`[^c1a2b3c-2]:`).
    pub prefix: Option<Prefix>,
    /// Link text, markdown escapes undone.
    pub title: String,
    pub url: String,
    pub providers: Vec<String>,
}

pub fn entry(line: &str) -> Option<EntryLine> {
    let t = line.trim_start();
    let (n, footnote, prefix, rest) = if let Some(rest) = t.strip_prefix("[^") {
        let close = rest.find("]:")?;
        let label: Vec<char> = rest[..close].chars().collect();
        let (prefix, n, len) = footnote_label(&label)?;
        if len != label.len() {
            return None;
        }
        (Some(n), true, prefix, rest[close + 2..].trim_start())
    } else if let Some(rest) = t.strip_prefix("- ") {
        (None, false, None, rest)
    } else {
        let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let rest = t[digits..].strip_prefix(". ")?;
        (Some(t[..digits].parse().ok()?), false, None, rest)
    };
    let chars: Vec<char> = rest.chars().collect();
    if chars.first() != Some(&'[') {
        return None;
    }
    let close = matching(&chars, 0, '[', ']')?;
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let title: String = unescape(&chars[1..close].iter().collect::<String>());
    let (url, after) = if chars.get(close + 2) == Some(&'<') {
        let end = close + 2 + chars[close + 2..].iter().position(|&c| c == '>')?;
        (
            chars[close + 3..end].iter().collect::<String>(),
            end + 2, // '>' and ')'
        )
    } else {
        let end = matching(&chars, close + 1, '(', ')')?;
        (chars[close + 2..end].iter().collect::<String>(), end + 1)
    };
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file:")) {
        return None;
    }
    let tail: String = chars.get(after..).unwrap_or_default().iter().collect();
    let providers = tail
        .trim()
        .strip_prefix("- ")
        .map(|p| p.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    Some(EntryLine {
        n,
        footnote,
        prefix,
        title,
        url: undo_destination(&url),
        providers,
    })
}

/// Undoes markdown backslash escapes.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_punctuation()) {
            out.push(chars.next().unwrap_or('\\'));
        } else {
            out.push(c);
        }
    }
    out
}

/// The URL a rendered link destination came from (what `render::link_destination` wrote, undone).
pub fn undo_destination(dest: &str) -> String {
    crate::render::url_from_destination(dest)
}

/// The http(s) URL at char column `col` of `line`, with its columns.
pub fn url_at(line: &str, col: usize) -> Option<(usize, usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
        if rest.starts_with("http://") || rest.starts_with("https://") {
            let bracketed = i > 0 && chars[i - 1] == '<';
            let mut depth = 0i32;
            let mut end = i;
            while end < chars.len() {
                let c = chars[end];
                if bracketed {
                    if c == '>' {
                        break;
                    }
                } else if c.is_whitespace() || c == '>' || c == ']' || c == '<' {
                    break;
                } else if c == '(' {
                    depth += 1;
                } else if c == ')' {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                end += 1;
            }
            if (i..end).contains(&col) {
                let url: String = chars[i..end].iter().collect();
                return Some((i, end, undo_destination(&url)));
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_lose_markdown() {
        assert_eq!(
            strip_markdown("## The **Rust** [borrow checker](https://x.y) [3] and `lifetimes`_!_"),
            "The Rust borrow checker and lifetimes!"
        );
        assert_eq!(
            strip_markdown("- item one\n- item *two*"),
            "item one item two"
        );
        assert_eq!(strip_markdown("snake_case stays"), "snake_case stays");
        assert_eq!(heading("### Title ##"), Some((3, "Title")));
        assert_eq!(heading("#hashtag"), None);
    }

    #[test]
    fn markers_and_entries() {
        let m = markers("- **T**: snippet \\[1\\] [2] [^3] [x](y) [4](z)");
        assert_eq!(
            m.iter().map(|m| (m.n, m.footnote)).collect::<Vec<_>>(),
            vec![(2, false), (3, true)]
        );
        let e = entry("3. [A \\[b\\]](<https://e.org/a_(b)>) - wikipedia, hackernews").unwrap();
        assert_eq!(e.n, Some(3));
        assert_eq!(e.title, "A [b]");
        assert_eq!(e.url, "https://e.org/a_(b)");
        assert_eq!(e.providers, vec!["wikipedia", "hackernews"]);
        let e = entry("[^2]: [T](https://e.org/x%20y?a=1&amp;copy;=2) - exa").unwrap();
        assert_eq!(
            (e.n, e.footnote, e.url.as_str()),
            (Some(2), true, "https://e.org/x%20y?a=1&copy;=2")
        );
        assert_eq!(
            url_at("see <https://a.b/(c)> now", 8).map(|u| u.2),
            Some("https://a.b/(c)".to_string())
        );
    }

    #[test]
    fn prefixed_footnote_labels_are_markers_and_entries() {
        let m = markers("x [^c1a2b3c-4] y [^12] `[^c1a2b3c-5]` [^note] [^C1-2] [3]");
        assert_eq!(
            m.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            vec!["[^c1a2b3c-4]", "[^12]", "[3]"]
        );
        let e = entry("[^c0b1a2c-7]: [T](https://e.org/t) - exa").unwrap();
        assert_eq!((e.n, e.footnote), (Some(7), true));
        assert_eq!(e.prefix.unwrap().to_string(), "c0b1a2c");
        assert!(entry("[^c0b1a2c-7x]: [T](https://e.org/t)").is_none());
    }
}
