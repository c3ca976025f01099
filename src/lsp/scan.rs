//! Reading markdown the way the server needs it: headings, topics from selections, inserted reports,
//! citation markers (`[n]`, `[^n]`), citation entries and URLs. Line-based; columns are char indices.

use std::collections::HashMap;

use ropey::Rope;

use crate::render::{REPORT_BEGIN, REPORT_END};

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

/// A citation marker in a line: `[3]` or `[^3]`, at char columns `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub start: usize,
    pub end: usize,
    pub n: usize,
    pub footnote: bool,
}

/// Every citation marker of a line (not link texts, not footnote definitions, not escaped brackets).
pub fn markers(line: &str) -> Vec<Marker> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == '[' && (i == 0 || chars[i - 1] != ']') {
            let footnote = chars.get(i + 1) == Some(&'^');
            let digits_from = i + 1 + footnote as usize;
            let digits = chars[digits_from.min(chars.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let close = digits_from + digits;
            if digits > 0 && digits < 6 && chars.get(close) == Some(&']') {
                let next = chars.get(close + 1);
                let definition = next == Some(&':') && chars[..i].iter().all(|c| c.is_whitespace());
                if !matches!(next, Some('(') | Some('[')) && !definition {
                    let n: String = chars[digits_from..close].iter().collect();
                    if let Ok(n) = n.parse() {
                        out.push(Marker {
                            start: i,
                            end: close + 1,
                            n,
                            footnote,
                        });
                    }
                }
                i = close + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// A line of a Citations section: `- [T](url) - p`, `n. [T](url) - p` or `[^n]: [T](url) - p`.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryLine {
    pub n: Option<usize>,
    pub footnote: bool,
    /// Link text, markdown escapes undone.
    pub title: String,
    pub url: String,
    pub providers: Vec<String>,
}

pub fn entry(line: &str) -> Option<EntryLine> {
    let t = line.trim_start();
    let (n, footnote, rest) = if let Some(rest) = t.strip_prefix("[^") {
        let close = rest.find("]:")?;
        let n: usize = rest[..close].parse().ok()?;
        (Some(n), true, rest[close + 2..].trim_start())
    } else if let Some(rest) = t.strip_prefix("- ") {
        (None, false, rest)
    } else {
        let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let rest = t[digits..].strip_prefix(". ")?;
        (Some(t[..digits].parse().ok()?), false, rest)
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

/// An inserted report: its id and lines (begin marker line to end marker line, inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    pub id: String,
    pub begin: usize,
    pub end: usize,
}

/// A citation entry found in the document.
#[derive(Clone, Debug)]
pub struct Entry {
    pub line: usize,
    /// The report it belongs to (index into `Index::reports`), `None` outside reports.
    pub scope: Option<usize>,
    pub entry: EntryLine,
}

/// A marker found in the document.
#[derive(Clone, Copy, Debug)]
pub struct FoundMarker {
    pub line: usize,
    pub scope: Option<usize>,
    pub marker: Marker,
}

/// What one pass over a document finds: reports, entries, markers.
#[derive(Debug, Default)]
pub struct Index {
    pub version: i32,
    pub reports: Vec<ReportBlock>,
    pub entries: Vec<Entry>,
    pub markers: Vec<FoundMarker>,
    by_ref: HashMap<(Option<usize>, usize, bool), usize>,
}

impl Index {
    pub fn build(rope: &Rope, version: i32) -> Index {
        let mut idx = Index {
            version,
            ..Index::default()
        };
        let mut in_fence = false;
        let mut open: Option<usize> = None;
        let mut line_buf = String::new();
        for (ln, line) in rope.lines().enumerate() {
            line_buf.clear();
            for chunk in line.chunks() {
                line_buf.push_str(chunk);
            }
            let text = line_buf.trim_end_matches(['\n', '\r']);
            if is_fence(text) {
                in_fence = !in_fence;
                continue;
            }
            if in_fence {
                continue;
            }
            if let Some(id) = report_begin(text) {
                if let Some(o) = open {
                    idx.reports[o].end = ln.saturating_sub(1);
                }
                idx.reports.push(ReportBlock {
                    id: id.to_string(),
                    begin: ln,
                    end: usize::MAX,
                });
                open = Some(idx.reports.len() - 1);
                continue;
            }
            if is_report_end(text) {
                if let Some(o) = open.take() {
                    idx.reports[o].end = ln;
                }
                continue;
            }
            if !text.contains('[') {
                continue;
            }
            if let Some(e) = entry(text) {
                if let Some(n) = e.n {
                    idx.by_ref
                        .entry((open, n, e.footnote))
                        .or_insert(idx.entries.len());
                }
                idx.entries.push(Entry {
                    line: ln,
                    scope: open,
                    entry: e,
                });
                continue;
            }
            for m in markers(text) {
                if m.footnote || open.is_some() {
                    idx.markers.push(FoundMarker {
                        line: ln,
                        scope: open,
                        marker: m,
                    });
                }
            }
        }
        if let Some(o) = open {
            idx.reports[o].end = rope.len_lines().saturating_sub(1);
        }
        idx
    }

    /// The report whose lines include `line`.
    pub fn report_at(&self, line: usize) -> Option<usize> {
        let i = self.reports.partition_point(|r| r.begin <= line);
        let i = i.checked_sub(1)?;
        (line <= self.reports[i].end).then_some(i)
    }

    /// The entry a marker refers to: in its report, and for footnotes also at document level.
    pub fn entry_for(&self, scope: Option<usize>, n: usize, footnote: bool) -> Option<&Entry> {
        self.by_ref
            .get(&(scope, n, footnote))
            .or_else(|| {
                footnote
                    .then(|| self.by_ref.get(&(None, n, true)))
                    .flatten()
            })
            .map(|&i| &self.entries[i])
    }

    pub fn entry_at_line(&self, line: usize) -> Option<&Entry> {
        let i = self.entries.partition_point(|e| e.line < line);
        self.entries.get(i).filter(|e| e.line == line)
    }

    /// Markers with no entry to cite.
    pub fn dangling(&self) -> impl Iterator<Item = &FoundMarker> {
        self.markers.iter().filter(|m| {
            self.entry_for(m.scope, m.marker.n, m.marker.footnote)
                .is_none()
        })
    }
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
}
