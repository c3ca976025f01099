//! Hover on a citation marker (`[n]`, `[^n]`, `[^c1a2b3c-n]`), a citation entry line, or a cited URL
//! inside a report. `[n]` works inside reports and, outside them, where a numbered citation list under a
//! `Citations`, `References` or `Sources` heading belongs to the same section (a report saved by the CLI):
//! the source's preview from `render::hover`. Sources come from memory, then the persistent store, so
//! hover works on reports written before a restart; an entry the store does not know is previewed from
//! the line itself.

use std::sync::Arc;

use tower_lsp_server::ls_types::{
    Hover, HoverContents, HoverParams, MarkupContent, MarkupKind, Range,
};

use super::State;
use super::documents::{Snapshot, chars_to_range, line_text, position_to_char};
use super::scan::{self, EntryLine, Index};
use crate::config::ProviderName;
use crate::research::Source;

/// What the cursor is on: a source and the columns (chars) of what names it.
pub struct Target {
    pub source: Arc<Source>,
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

pub fn hover(state: &State, params: &HoverParams) -> Option<Hover> {
    let tdp = &params.text_document_position_params;
    let (snap, idx) = state.indexed(tdp.text_document.uri.as_str())?;
    let enc = state.encoding();
    let ch = position_to_char(&snap.rope, tdp.position, enc);
    let line = snap.rope.char_to_line(ch);
    let col = ch - snap.rope.line_to_char(line);
    let t = target(state, &snap, &idx, line, col)?;
    let base = snap.rope.line_to_char(t.line);
    let mut value = crate::render::hover(&t.source);
    // A citation inside a checked summary: what the check found for its sentence.
    if let Some(r) = idx.report_at(line)
        && let Some((m, _)) = idx.marker_at(line, &line_text(&snap.rope, line), col)
    {
        let claims = state.claims(&idx.reports[r].id);
        let text = line_text(&snap.rope, line);
        if let Some(claim) = super::claims::at_marker(&claims, &text, m.start, m.n) {
            value.push_str("\n\n");
            value.push_str(&super::claims::hover_note(claim, m.n));
        }
    }
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: Some(chars_to_range(
            &snap.rope,
            base + t.start,
            base + t.end,
            enc,
        )),
    })
}

/// The source under char column `col` of `line`.
pub fn target(
    state: &State,
    snap: &Snapshot,
    idx: &Index,
    line: usize,
    col: usize,
) -> Option<Target> {
    let text = line_text(&snap.rope, line);
    let report_id = idx.report_at(line).map(|s| idx.reports[s].id.as_str());
    if let Some((m, scope)) = idx.marker_at(line, &text, col) {
        let entry = idx.entry_for(scope, &m);
        // The report whose source it is: the entry's (a footnote label names its own report's), else
        // the one the marker is in.
        let id = match entry {
            Some(e) => e.report().map(|r| idx.reports[r].id.as_str()),
            None => report_id,
        };
        let source = id
            .and_then(|id| state.source_by_ref(id, m.n))
            .filter(|s| entry.is_none_or(|e| s.url == e.entry.url))
            .or_else(|| entry.and_then(|e| state.source_by_url(&e.entry.url)))
            .or_else(|| entry.map(|e| Arc::new(from_entry(&e.entry))))?;
        return Some(Target {
            source,
            line,
            start: m.start,
            end: m.end,
        });
    }
    if let Some(e) = idx.entry_at_line(line) {
        let source = e
            .entry
            .n
            .zip(report_id)
            .and_then(|(n, id)| state.source_by_ref(id, n))
            .filter(|s| s.url == e.entry.url)
            .or_else(|| state.source_by_url(&e.entry.url))
            .unwrap_or_else(|| Arc::new(from_entry(&e.entry)));
        let indent = text.chars().take_while(|c| c.is_whitespace()).count();
        return Some(Target {
            source,
            line,
            start: indent,
            end: text.chars().count(),
        });
    }
    if report_id.is_some()
        && let Some((start, end, url)) = scan::url_at(&text, col)
    {
        let source = state.source_by_url(&url)?;
        return Some(Target {
            source,
            line,
            start,
            end,
        });
    }
    None
}

/// A preview from an entry line alone (a report whose data is not in the store).
pub fn from_entry(e: &EntryLine) -> Source {
    Source {
        n: e.n.unwrap_or(0),
        url: e.url.clone(),
        title: e.title.clone(),
        snippet: String::new(),
        providers: e
            .providers
            .iter()
            .filter_map(|p| p.parse::<ProviderName>().ok())
            .collect(),
        published: None,
        score: 0.0,
        content: None,
        read: None,
        passages: Vec::new(),
    }
}

/// A whole line as a range (for definition targets).
pub fn line_range(snap: &Snapshot, line: usize, enc: super::documents::Encoding) -> Range {
    let start = snap.rope.line_to_char(line);
    let end = super::documents::line_content_end(&snap.rope, line);
    chars_to_range(&snap.rope, start, end, enc)
}
