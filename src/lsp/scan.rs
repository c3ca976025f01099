//! Reading markdown the way the server needs it: headings, topics from selections, inserted reports,
//! citation markers (`[n]`, `[^n]`, `[^c1a2b3c-n]`), citation entries and URLs. Markers and entries are
//! read line by line (columns are char indices); the block structure (headings, ATX or setext, and code
//! blocks) comes from pulldown-cmark, so a `#` line inside a fence is no heading and `Title\n---` is one.

use std::collections::HashMap;
use std::fmt;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
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

/// A heading as renderers see it: ATX or setext, outside code, lists and block quotes. `line` is the
/// line its text starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heading {
    pub line: usize,
    pub level: u8,
    pub text: String,
}

/// What pulldown-cmark sees of a document's blocks: its headings, and the lines of its code blocks
/// (inclusive ranges, in order).
#[derive(Debug, Default)]
pub struct Blocks {
    pub headings: Vec<Heading>,
    pub code: Vec<(usize, usize)>,
}

/// The markdown a note is written in: CommonMark with GitHub's tables, footnotes, strikethrough and task
/// lists, and front matter (`---` YAML or `+++` TOML) at the top, which is no setext heading.
pub fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS
}

/// The headings and code blocks of `text`, with line numbers counted as ropey counts them (`\n`,
/// `\r\n` and `\r` end a line).
pub fn blocks(text: &str) -> Blocks {
    let mut starts = vec![0];
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
        }
        if b[i] == b'\n' || b[i] == b'\r' {
            starts.push(i + 1);
        }
        i += 1;
    }
    let line_of = |offset: usize| starts.partition_point(|&s| s <= offset) - 1;
    // pulldown-cmark misreads fences and front matter in lines ended by a lone `\r`: give it `\n`
    // instead (one byte for one, so offsets and line numbers stay the same).
    let lone_cr = |i: usize| b[i] == b'\r' && b.get(i + 1) != Some(&b'\n');
    let normalized: std::borrow::Cow<str> = if (0..b.len()).any(lone_cr) {
        let bytes: Vec<u8> = (0..b.len())
            .map(|i| if lone_cr(i) { b'\n' } else { b[i] })
            .collect();
        String::from_utf8(bytes).map_or(text.into(), Into::into)
    } else {
        text.into()
    };
    let mut out = Blocks::default();
    let mut containers = 0usize;
    let mut heading: Option<Heading> = None;
    for (event, range) in Parser::new_ext(&normalized, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::BlockQuote(_) | Tag::Item | Tag::FootnoteDefinition(_)) => {
                containers += 1
            }
            Event::End(TagEnd::BlockQuote(_) | TagEnd::Item | TagEnd::FootnoteDefinition) => {
                containers = containers.saturating_sub(1)
            }
            Event::Start(Tag::Heading { level, .. }) if containers == 0 => {
                heading = Some(Heading {
                    line: line_of(range.start),
                    level: level as u8,
                    text: String::new(),
                });
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.text.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => out.headings.extend(heading.take()),
            Event::Start(Tag::CodeBlock(_)) => {
                let last = line_of(range.end.saturating_sub(1).max(range.start));
                out.code.push((line_of(range.start), last));
            }
            _ => {}
        }
    }
    out
}

/// A heading that opens a citation list: `Citations`, `References` or `Sources`.
pub fn is_citations_heading(text: &str) -> bool {
    let t = text.trim().trim_end_matches(':').trim();
    ["citations", "references", "sources"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
}

/// An inserted report: its id and lines (begin marker line to end marker line, inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    pub id: String,
    pub begin: usize,
    pub end: usize,
    /// Closed by its own end marker (outside fenced code). Only a complete report may be rewritten.
    pub complete: bool,
}

/// What a marker is resolved within: an inserted report, or, outside reports, the section that holds a
/// numbered citation list (the section of the heading above its `Citations`, `References` or `Sources`
/// heading), as in a report saved from the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Report(usize),
    Section(usize),
}

/// A citation entry found in the document.
#[derive(Clone, Debug)]
pub struct Entry {
    pub line: usize,
    /// Where it belongs; `None` outside reports and citation lists.
    pub scope: Option<Scope>,
    pub entry: EntryLine,
}

impl Entry {
    /// The report it belongs to (index into `Index::reports`).
    pub fn report(&self) -> Option<usize> {
        match self.scope {
            Some(Scope::Report(r)) => Some(r),
            _ => None,
        }
    }
}

/// A marker found in the document.
#[derive(Clone, Copy, Debug)]
pub struct FoundMarker {
    pub line: usize,
    pub scope: Option<Scope>,
    pub marker: Marker,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Numbered(usize),
    /// `[^n]` (no prefix).
    Footnote(usize),
    /// Any footnote entry numbered n: a repeated citation `[n]` in a footnote-style report names it.
    AnyFootnote(usize),
}

/// What one pass over a document finds: reports, entries, markers.
#[derive(Debug, Default)]
pub struct Index {
    pub version: i32,
    pub reports: Vec<ReportBlock>,
    pub entries: Vec<Entry>,
    pub markers: Vec<FoundMarker>,
    /// Every heading, in order (inside reports too).
    pub headings: Vec<Heading>,
    /// Sections holding a citation list, outside reports: inclusive line ranges.
    pub sections: Vec<(usize, usize)>,
    by_ref: HashMap<(Option<Scope>, Key), usize>,
    /// Prefixed footnote labels are the document's: the first definition wins, as in renderers.
    by_label: HashMap<(Prefix, usize), usize>,
}

impl Index {
    pub fn build(rope: &Rope, version: i32) -> Index {
        let mut idx = Index {
            version,
            ..Index::default()
        };
        let blocks = blocks(&rope.to_string());
        let mut code = blocks.code.iter().peekable();
        let mut open: Option<usize> = None;
        let mut line_buf = String::new();
        for (ln, line) in rope.lines().enumerate() {
            line_buf.clear();
            for chunk in line.chunks() {
                line_buf.push_str(chunk);
            }
            let text = line_buf.trim_end_matches(['\n', '\r']);
            while code.next_if(|c| c.1 < ln).is_some() {}
            if code.peek().is_some_and(|c| c.0 <= ln) {
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
                    complete: false,
                });
                open = Some(idx.reports.len() - 1);
                continue;
            }
            if is_report_end(text) {
                if let Some(o) = open.take() {
                    idx.reports[o].end = ln;
                    idx.reports[o].complete = true;
                }
                continue;
            }
            if !text.contains('[') {
                continue;
            }
            let scope = open.map(Scope::Report);
            if let Some(e) = entry(text) {
                idx.entries.push(Entry {
                    line: ln,
                    scope,
                    entry: e,
                });
                continue;
            }
            for m in markers(text) {
                if m.footnote || open.is_some() {
                    idx.markers.push(FoundMarker {
                        line: ln,
                        scope,
                        marker: m,
                    });
                }
            }
        }
        if let Some(o) = open {
            idx.reports[o].end = rope.len_lines().saturating_sub(1);
        }
        idx.citation_sections(&blocks.headings);
        idx.key_entries();
        idx.headings = blocks.headings;
        idx
    }

    /// Outside reports: each `Citations`/`References`/`Sources` heading's list belongs to the section of
    /// the heading above it (the whole document when there is none), and so do the markers in it.
    fn citation_sections(&mut self, headings: &[Heading]) {
        let hs: Vec<&Heading> = headings
            .iter()
            .filter(|h| self.report_at(h.line).is_none())
            .collect();
        let last_line = usize::MAX;
        for (i, h) in hs.iter().enumerate() {
            if !is_citations_heading(&h.text) {
                continue;
            }
            let parent = hs[..i].iter().rposition(|p| p.level < h.level);
            let range = match parent {
                Some(p) => {
                    let end = hs[p + 1..]
                        .iter()
                        .find(|x| x.level <= hs[p].level)
                        .map_or(last_line, |x| x.line - 1);
                    (hs[p].line, end)
                }
                None => (0, last_line),
            };
            let sid = match self.sections.iter().position(|s| *s == range) {
                Some(sid) => sid,
                None => {
                    self.sections.push(range);
                    self.sections.len() - 1
                }
            };
            // The list: from the heading to the next heading.
            let list_end = hs.get(i + 1).map_or(last_line, |x| x.line);
            let from = self.entries.partition_point(|e| e.line <= h.line);
            for e in self.entries[from..].iter_mut() {
                if e.line >= list_end {
                    break;
                }
                if e.scope.is_none() {
                    e.scope = Some(Scope::Section(sid));
                }
            }
        }
        if self.sections.is_empty() {
            return;
        }
        for i in 0..self.markers.len() {
            if self.markers[i].scope.is_none() {
                self.markers[i].scope = self.scope_at(self.markers[i].line);
            }
        }
    }

    fn key_entries(&mut self) {
        for (i, e) in self.entries.iter().enumerate() {
            let Some(n) = e.entry.n else { continue };
            if !e.entry.footnote {
                self.by_ref.entry((e.scope, Key::Numbered(n))).or_insert(i);
                continue;
            }
            self.by_ref
                .entry((e.scope, Key::AnyFootnote(n)))
                .or_insert(i);
            match e.entry.prefix {
                Some(p) => {
                    self.by_label.entry((p, n)).or_insert(i);
                }
                None => {
                    self.by_ref.entry((e.scope, Key::Footnote(n))).or_insert(i);
                    if e.report().is_none() {
                        // Outside reports a footnote is the document's, wherever it is defined.
                        self.by_ref.entry((None, Key::Footnote(n))).or_insert(i);
                    }
                }
            }
        }
    }

    /// The report whose lines include `line`.
    pub fn report_at(&self, line: usize) -> Option<usize> {
        let i = self.reports.partition_point(|r| r.begin <= line);
        let i = i.checked_sub(1)?;
        (line <= self.reports[i].end).then_some(i)
    }

    /// The complete report (begin and end markers, in order) whose lines include `line`: the only kind
    /// that may be refreshed, since its extent is known exactly.
    pub fn complete_report_at(&self, line: usize) -> Option<usize> {
        self.report_at(line).filter(|&i| self.reports[i].complete)
    }

    /// What markers on `line` resolve within: its report, else the innermost section with a citation
    /// list that holds it.
    pub fn scope_at(&self, line: usize) -> Option<Scope> {
        if let Some(r) = self.report_at(line) {
            return Some(Scope::Report(r));
        }
        self.sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.0 <= line && line <= s.1)
            .max_by_key(|(_, s)| s.0)
            .map(|(i, _)| Scope::Section(i))
    }

    /// The entry a marker refers to. A prefixed footnote names the document's definition of its label;
    /// `[^n]` its scope's, then one outside reports; `[n]` its scope's numbered entry, or in a
    /// footnote-style report the footnote numbered n (a source cited again).
    pub fn entry_for(&self, scope: Option<Scope>, m: &Marker) -> Option<&Entry> {
        let found = match (m.footnote, m.prefix) {
            (true, Some(p)) => self.by_label.get(&(p, m.n)),
            (true, None) => self
                .by_ref
                .get(&(scope, Key::Footnote(m.n)))
                .or_else(|| self.by_ref.get(&(None, Key::Footnote(m.n)))),
            (false, _) => {
                scope?;
                self.by_ref
                    .get(&(scope, Key::Numbered(m.n)))
                    .or_else(|| self.by_ref.get(&(scope, Key::AnyFootnote(m.n))))
            }
        };
        found.map(|&i| &self.entries[i])
    }

    /// The marker at char column `col` of `line` (whose text is `text`) that cites something: footnotes
    /// anywhere, `[n]` inside a report or a section with a citation list. With its scope.
    pub fn marker_at(
        &self,
        line: usize,
        text: &str,
        col: usize,
    ) -> Option<(Marker, Option<Scope>)> {
        let m = markers(text)
            .into_iter()
            .find(|m| (m.start..m.end).contains(&col))?;
        let scope = self.scope_at(line);
        (m.footnote || scope.is_some()).then_some((m, scope))
    }

    /// The level of the heading that encloses `line`: the last heading starting at or before it, not
    /// counting the headings of reports that end above it.
    pub fn enclosing_level(&self, line: usize) -> Option<u8> {
        let upto = self.headings.partition_point(|h| h.line <= line);
        self.headings[..upto]
            .iter()
            .rev()
            .find(|h| {
                self.report_at(h.line)
                    .is_none_or(|r| line <= self.reports[r].end)
            })
            .map(|h| h.level)
    }

    pub fn entry_at_line(&self, line: usize) -> Option<&Entry> {
        let i = self.entries.partition_point(|e| e.line < line);
        self.entries.get(i).filter(|e| e.line == line)
    }

    /// Markers with no entry to cite (in reports, and footnote references anywhere).
    pub fn dangling(&self) -> impl Iterator<Item = &FoundMarker> {
        self.markers
            .iter()
            .filter(|m| self.entry_for(m.scope, &m.marker).is_none())
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

    fn index(text: &str) -> Index {
        Index::build(&Rope::from_str(text), 1)
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

    #[test]
    fn setext_and_fenced_headings_set_the_report_level() {
        let doc = "---\ntitle: front matter\n---\n\nTitle\n-----\n\n```sh\n# not a heading\n```\n\n    # indented code\n\n- # in a list\n\n> # in a quote\n\nTopic here\n";
        let idx = index(doc);
        assert_eq!(
            idx.headings
                .iter()
                .map(|h| (h.line, h.level, h.text.as_str()))
                .collect::<Vec<_>>(),
            vec![(4, 2, "Title")]
        );
        let topic = doc.lines().position(|l| l == "Topic here").unwrap();
        assert_eq!(idx.enclosing_level(topic), Some(2));
        // Lines are counted as the rope counts them, whatever the line breaks.
        for eol in ["\r\n", "\r"] {
            let idx = index(&doc.replace('\n', eol));
            assert_eq!(idx.headings[0].line, 4, "{eol:?} {:?}", idx.headings);
            assert_eq!(idx.enclosing_level(topic), Some(2));
        }
        // A fence that a longer or other fence does not close hides everything after it.
        let doc = "# Top\n\n````\n```\n## Not this\n````\n\nText\n";
        assert_eq!(index(doc).enclosing_level(7), Some(1));
        // Headings of a report above do not count; a `[1]` in code is no marker.
        let doc = "## Notes\n<!-- conductor:report a1 -->\n### Conductor Report: x\n#### Citations\n<!-- /conductor:report -->\n\n```\n[1] <!-- conductor:report zz -->\n```\nText\n";
        let idx = index(doc);
        assert_eq!(idx.enclosing_level(9), Some(2));
        assert_eq!(idx.reports.len(), 1);
        assert!(idx.markers.is_empty());
    }

    #[test]
    fn two_reports_footnote_labels_resolve_to_their_own_entries() {
        let doc = "\
<!-- conductor:report aaaaaa01 -->
A [^caaaaaa-1] and again [1].
[^caaaaaa-1]: [A1](https://a.example/1) - exa
<!-- /conductor:report -->
<!-- conductor:report bbbbbb02 -->
B [^cbbbbbb-1] and [^1].
[^cbbbbbb-1]: [B1](https://b.example/1) - exa
[^1]: [Old](https://old.example/1) - exa
<!-- /conductor:report -->
Outside, citing report A: [^caaaaaa-1], and [^cdddddd-1] defined nowhere.
";
        let idx = index(doc);
        let url = |line: usize, col: usize| {
            let text = doc.lines().nth(line).unwrap();
            let (m, scope) = idx.marker_at(line, text, col)?;
            idx.entry_for(scope, &m).map(|e| e.entry.url.clone())
        };
        assert_eq!(url(1, 3).as_deref(), Some("https://a.example/1"));
        assert_eq!(url(1, 26).as_deref(), Some("https://a.example/1"));
        assert_eq!(url(5, 3).as_deref(), Some("https://b.example/1"));
        assert_eq!(url(5, 21).as_deref(), Some("https://old.example/1"));
        assert_eq!(url(9, 28).as_deref(), Some("https://a.example/1"));
        let dangling: Vec<String> = idx.dangling().map(|m| m.marker.to_string()).collect();
        assert_eq!(dangling, vec!["[^cdddddd-1]"]);
    }

    #[test]
    fn numbered_markers_outside_reports_resolve_in_their_section() {
        let doc = "\
# Conductor Report: one

See [1] and [2].

## Citations

1. [One](https://one.example/1) - wikipedia
2. [Two](https://one.example/2) - wikipedia

# Conductor Report: two

Also [1], and [3] that has no entry.

## References

1. [Uno](https://two.example/1) - wikipedia

# Unrelated

Array [1] here.
";
        let idx = index(doc);
        let url = |needle: &str, nth: usize| {
            let line = doc.lines().position(|l| l.contains(needle)).unwrap();
            let text = doc.lines().nth(line).unwrap();
            let col = text.match_indices('[').nth(nth).unwrap().0;
            let (m, scope) = idx.marker_at(line, text, col)?;
            idx.entry_for(scope, &m).map(|e| e.entry.url.clone())
        };
        assert_eq!(url("See", 0).as_deref(), Some("https://one.example/1"));
        assert_eq!(url("See", 1).as_deref(), Some("https://one.example/2"));
        assert_eq!(url("Also", 0).as_deref(), Some("https://two.example/1"));
        assert_eq!(url("Also", 1), None);
        assert_eq!(url("Array", 0), None);
        // Outside reports, `[n]` with no entry is not flagged: it may not be a citation at all.
        assert_eq!(idx.dangling().count(), 0);
    }
}
