//! The index of a document: one pass finding its reports, citation entries, markers and headings, and
//! resolving each marker to its entry.

use std::collections::HashMap;

use ropey::Rope;

use super::blocks::{Heading, blocks, is_citations_heading};
use super::{EntryLine, Marker, Prefix, entry, is_report_end, markers, report_begin};

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

    fn index(text: &str) -> Index {
        Index::build(&Rope::from_str(text), 1)
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
