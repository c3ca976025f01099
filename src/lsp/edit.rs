//! Inserting a finished report: built against the newest text at the anchors' current positions, sent as
//! a versioned `TextDocumentEdit`, retried (bounded) when refused, and verified by waiting for the
//! `didChange` that carries it. The user's text is never part of what we replace, except the selection
//! for `placement: "replace"` and the old report for refresh.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::request::ApplyWorkspaceEdit;
use tower_lsp_server::ls_types::{
    ApplyWorkspaceEditParams, DocumentChanges, OneOf, OptionalVersionedTextDocumentIdentifier,
    Range, TextDocumentEdit, TextEdit, Uri, WorkspaceEdit,
};

use super::State;
use super::documents::{Encoding, Snapshot, chars_to_range, line_content_end, line_text};
use super::scan::Index;
use crate::config::{CitationStyle, Placement};
use crate::render::{self, REPORT_BEGIN, RenderOptions};
use crate::research::Research;

/// How to render the report.
#[derive(Clone, Debug)]
pub struct RenderSpec {
    pub id: String,
    pub style: CitationStyle,
    /// The title's heading level, when fixed (refresh keeps the old one).
    pub fixed_level: Option<u8>,
    /// With a written summary, cite only the sources it cites.
    pub cited_only: bool,
    /// Mark dead sources that are listed (`dead_links = "mark"`).
    pub mark_dead: bool,
}

impl RenderSpec {
    pub fn begin_line(&self) -> String {
        format!("{REPORT_BEGIN}{} -->", self.id)
    }
}

/// One edit to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Insertion {
    pub version: i32,
    pub range: Range,
    pub text: String,
}

/// The level of the heading that encloses `line` (ATX or setext, never a `#` line in code; reports above
/// are skipped).
pub fn enclosing_level(snap: &Snapshot, line: usize) -> Option<u8> {
    Index::build(&snap.rope, snap.version).enclosing_level(line)
}

/// One level below the enclosing heading, at any depth: past 6, `render` writes bold paragraph titles.
fn level_below(snap: &Snapshot, line: usize) -> u8 {
    enclosing_level(snap, line).map_or(2, |h| h.saturating_add(1))
}

/// Builds the edit for `research` at the anchors' positions in `snap`.
pub fn build(
    snap: &Snapshot,
    anchors: &[usize],
    placement: Placement,
    research: &Research,
    spec: &RenderSpec,
    enc: Encoding,
) -> Insertion {
    let rope = &snap.rope;
    let len = rope.len_chars();
    let render = |level: u8| {
        render::markdown(
            research,
            &RenderOptions {
                style: spec.style,
                heading_level: spec.fixed_level.unwrap_or(level),
                marker_id: Some(spec.id.clone()),
                cited_only: spec.cited_only,
                mark_dead: spec.mark_dead,
            },
        )
        .trim_end_matches('\n')
        .to_string()
    };
    let (start, end, text) = match placement {
        Placement::Below => {
            let line = rope.char_to_line(anchors.first().copied().unwrap_or(len).min(len));
            let report = render(level_below(snap, line));
            if line + 1 < rope.len_lines() {
                // At the start of the next line, not at the end of the selection's line: an editor grows
                // a selection that ends exactly where text is inserted (VS Code does), and the next
                // keystroke would then replace the topic and the report.
                let p = rope.line_to_char(line + 1);
                let next_blank = line_text(rope, line + 1).trim().is_empty();
                let mut text = format!("\n{report}\n");
                if !next_blank {
                    text.push('\n');
                }
                (p, p, text)
            } else {
                // The last line has no line break: nothing follows it to insert before.
                let p = line_content_end(rope, line);
                (p, p, format!("\n\n{report}\n"))
            }
        }
        Placement::Replace => {
            let a = anchors.first().copied().unwrap_or(len).min(len);
            let b = anchors.get(1).copied().unwrap_or(a).min(len);
            let (a, b) = (a.min(b), a.max(b));
            let line = rope.char_to_line(a);
            let mut text = String::new();
            if a > rope.line_to_char(line) {
                text.push_str("\n\n");
            }
            text.push_str(&render(level_below(snap, line)));
            let bl = rope.char_to_line(b);
            if b < line_content_end(rope, bl) {
                text.push_str("\n\n");
            }
            (a, b, text)
        }
        Placement::End => {
            let last = rope.len_lines().saturating_sub(1);
            let prefix = if len == 0 {
                ""
            } else if matches!(rope.char(len - 1), '\n' | '\r') {
                "\n"
            } else {
                "\n\n"
            };
            (
                len,
                len,
                format!("{prefix}{}\n", render(level_below(snap, last))),
            )
        }
    };
    // Inserted lines end the way the document's lines do.
    let eol = document_eol(rope);
    let text = if eol == "\n" {
        text
    } else {
        text.replace('\n', eol)
    };
    Insertion {
        version: snap.version,
        range: chars_to_range(rope, start, end, enc),
        text,
    }
}

/// The line break of the document's first line (`\n` when it has none).
fn document_eol(rope: &ropey::Rope) -> &'static str {
    if rope.len_lines() < 2 {
        return "\n";
    }
    let end = rope.line_to_char(1);
    match (end >= 2).then(|| (rope.char(end - 2), rope.char(end - 1))) {
        Some(('\r', '\n')) => "\r\n",
        _ if rope.char(end - 1) == '\r' => "\r",
        _ => "\n",
    }
}

pub fn workspace_edit(uri: &Uri, ins: &Insertion, document_changes: bool) -> WorkspaceEdit {
    let edit = TextEdit {
        range: ins.range,
        new_text: ins.text.clone(),
    };
    if document_changes {
        WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: Some(ins.version),
                },
                edits: vec![OneOf::Left(edit)],
            }])),
            ..Default::default()
        }
    } else {
        WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
            ..Default::default()
        }
    }
}

/// A report the editor applied.
#[derive(Debug)]
pub enum Inserted {
    /// Its didChange arrived (or the editor sent no change at all, as some do only later).
    Verified,
    /// The editor said it applied the edit, but the document changed without it: it is not sent again
    /// (that could duplicate it); the reason is logged and a copy is saved.
    Unverified(String),
}

/// Why a report could not be inserted.
#[derive(Debug)]
pub enum InsertError {
    /// A reason for the user; the report is offered another way.
    Failed(String),
}

enum Seen {
    Present,
    Absent,
    Unknown,
}

fn contains(snap: &Snapshot, needle: &str) -> bool {
    snap.rope.to_string().contains(needle)
}

/// Watches the document until `deadline` for the report's begin line. `Present` as soon as a version
/// holds it; at the deadline `Absent` if the document changed without it (the editor skipped the edit),
/// `Unknown` if nothing changed at all (some editors send the didChange only later). Every version is
/// checked, so typing that arrives before the report's own didChange is not mistaken for a skip.
async fn wait_for_change(
    state: &State,
    uri: &str,
    version: i32,
    needle: &str,
    deadline: Instant,
) -> Seen {
    let mut changed = false;
    loop {
        let notified = state.docs.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match state.docs.snapshot(uri) {
            None => return Seen::Unknown,
            Some(s) if s.version != version => {
                if contains(&s, needle) {
                    return Seen::Present;
                }
                changed = true;
            }
            Some(_) => {}
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return if changed { Seen::Absent } else { Seen::Unknown };
        }
    }
}

/// Inserts the report, retrying a refused edit against the newest text.
pub async fn insert(
    state: &Arc<State>,
    client: &Client,
    uri: &Uri,
    anchors: &[u64],
    placement: Placement,
    research: &Research,
    spec: &RenderSpec,
) -> Result<Inserted, InsertError> {
    let caps = state.caps();
    let needle = spec.begin_line();
    let mut reason = String::from("the editor refused the edit");
    for attempt in 1..=state.opts.max_edit_attempts.max(1) {
        let Some((snap, positions)) = state.docs.snapshot_with_anchors(uri.as_str(), anchors)
        else {
            return Err(InsertError::Failed("the document was closed".into()));
        };
        let ins = build(&snap, &positions, placement, research, spec, caps.encoding);
        let params = ApplyWorkspaceEditParams {
            label: Some("Insert Conductor report".into()),
            edit: workspace_edit(uri, &ins, caps.document_changes),
        };
        let answer = tokio::time::timeout(
            state.opts.client_timeout,
            client.send_request::<ApplyWorkspaceEdit>(params),
        )
        .await;
        let verify_deadline = Instant::now() + state.opts.verify_timeout;
        match answer {
            Err(_) => {
                // It may still apply it later: never send it again (no duplicates), offer it elsewhere.
                if state
                    .docs
                    .snapshot(uri.as_str())
                    .is_some_and(|s| contains(&s, &needle))
                {
                    return Ok(Inserted::Verified);
                }
                return Err(InsertError::Failed(format!(
                    "the editor did not answer workspace/applyEdit within {} s",
                    state.opts.client_timeout.as_secs_f32()
                )));
            }
            Ok(Err(e)) => {
                reason = format!("the editor could not apply the edit: {}", e.message);
            }
            Ok(Ok(r)) if r.applied => {
                // Never sent again once the editor said it applied it: a late didChange (behind the
                // user's typing) must not turn into a second report.
                match wait_for_change(state, uri.as_str(), snap.version, &needle, verify_deadline)
                    .await
                {
                    Seen::Present => return Ok(Inserted::Verified),
                    Seen::Unknown => {
                        tracing::info!("no didChange after an applied report; trusting the editor");
                        return Ok(Inserted::Verified);
                    }
                    Seen::Absent => {
                        // Give a slow editor the rest of the client timeout before saying so.
                        let later = Instant::now() + state.opts.client_timeout;
                        return Ok(
                            match wait_for_change(state, uri.as_str(), snap.version, &needle, later)
                                .await
                            {
                                Seen::Present => Inserted::Verified,
                                _ => Inserted::Unverified(
                                    "the editor said it applied the report, but the document \
                                     changed without it"
                                        .into(),
                                ),
                            },
                        );
                    }
                }
            }
            Ok(Ok(r)) => {
                reason = match r.failure_reason {
                    Some(why) => format!("the editor refused the edit: {why}"),
                    None => "the editor refused the edit".into(),
                };
                // Usually the document changed: wait briefly for that change before rebuilding.
                let _ = wait_for_change(
                    state,
                    uri.as_str(),
                    snap.version,
                    &needle,
                    Instant::now() + std::time::Duration::from_millis(300),
                )
                .await;
            }
        }
        tracing::info!(attempt, "report not inserted yet: {reason}");
    }
    Err(InsertError::Failed(reason))
}
