//! Reading a research or refresh command's arguments and placing its anchors, synchronously, in
//! exactly the text the client had when it sent the command.

use serde::Deserialize;
use serde_json::Value;
use tower_lsp_server::jsonrpc::{self, Result};
use tower_lsp_server::ls_types::{Range, Uri};

use super::State;
use super::documents::{Gravity, line_content_end, line_text, range_to_chars};
use super::edit::RenderSpec;
use super::scan::{heading, is_fence, report_begin, strip_markdown, unescape};
use crate::config::Placement;

#[derive(Deserialize)]
struct Args {
    uri: Uri,
    range: Range,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    placement: Option<Placement>,
    /// `conductor.insertStored`: the stored report to insert.
    #[serde(default)]
    report: Option<String>,
}

/// Which command is prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `conductor.research`: research the selection and insert the report under it.
    Research,
    /// `conductor.refresh`: research a report's topic again and replace it.
    Refresh,
    /// `conductor.insertStored`: insert a stored report under the selection, as `Research` would.
    InsertStored,
}

/// Everything a job needs, decided synchronously when the command arrives.
pub(super) struct Prepared {
    pub(super) uri: Uri,
    /// On refresh: the id of the report being replaced.
    pub(super) replaces: Option<String>,
    pub(super) topic: String,
    pub(super) placement: Placement,
    pub(super) anchors: Vec<u64>,
    pub(super) spec: RenderSpec,
    /// `conductor.insertStored`: the id of the stored report to insert (no research runs).
    pub(super) stored: Option<String>,
}

fn new_report_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

fn invalid(msg: impl Into<String>) -> jsonrpc::Error {
    jsonrpc::Error::invalid_params(msg.into())
}

/// The topic of a selection: its text without markdown, or the heading under an empty selection.
pub fn topic_of(rope: &ropey::Rope, start: usize, end: usize) -> String {
    if start < end {
        strip_markdown(&rope.slice(start..end).to_string())
    } else {
        let line = rope.char_to_line(start);
        heading(&line_text(rope, line))
            .map(|(_, t)| strip_markdown(t))
            .unwrap_or_default()
    }
}

pub(super) fn prepare(state: &State, args: &[Value], kind: Kind) -> Result<Prepared> {
    let first = args
        .first()
        .ok_or_else(|| invalid("expected [{ uri, range, topic?, placement? }]"))?;
    let a: Args = serde_json::from_value(first.clone()).map_err(|e| invalid(e.to_string()))?;
    let stored = match kind {
        Kind::InsertStored => Some(
            a.report
                .clone()
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .ok_or_else(|| invalid("expected [{ uri, range, report, placement? }]"))?,
        ),
        _ => None,
    };
    let refresh = kind == Kind::Refresh;
    let uri_s = a.uri.as_str().to_string();
    let enc = state.encoding();
    let settings = state.settings.get();
    let not_open = || invalid(format!("the document is not open: {uri_s}"));
    if refresh {
        let (snap, idx) = state.indexed(&uri_s).ok_or_else(not_open)?;
        let (s, _) = range_to_chars(&snap.rope, a.range, enc);
        let line = snap.rope.char_to_line(s);
        let block = idx
            .complete_report_at(line)
            .map(|b| idx.reports[b].clone())
            .ok_or_else(|| {
                invalid(
                    "the range is not inside a complete Conductor report (its begin and end \
                     markers must both be there)",
                )
            })?;
        let stored = state.store.report(&block.id).ok().flatten();
        let title_line = (block.begin..=block.end.min(snap.rope.len_lines() - 1))
            .map(|l| line_text(&snap.rope, l))
            .find_map(|t| heading(&t).map(|(h, text)| (h, text.to_string())));
        let topic = stored
            .as_ref()
            .map(|r| r.topic.clone())
            .or_else(|| {
                title_line
                    .as_ref()
                    .and_then(|(_, t)| t.strip_prefix("Conductor Report: ").map(unescape))
            })
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| invalid("cannot tell this report's topic"))?;
        let begin = snap.rope.line_to_char(block.begin);
        let end = line_content_end(&snap.rope, block.end.min(snap.rope.len_lines() - 1));
        let anchors = vec![
            state.docs.add_anchor(&uri_s, begin, Gravity::Right),
            state.docs.add_anchor(&uri_s, end, Gravity::Left),
        ]
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(not_open)?;
        return Ok(Prepared {
            uri: a.uri,
            replaces: Some(block.id.clone()),
            topic,
            placement: Placement::Replace,
            anchors,
            spec: RenderSpec {
                // Same footnote labels as the report it replaces.
                id: crate::render::refreshed_report_id(&block.id),
                style: stored.map_or(settings.citation_style, |r| r.style),
                fixed_level: title_line.map(|(h, _)| h),
                cited_only: settings.cited_only,
                mark_dead: settings.dead_links != crate::config::DeadLinks::Keep,
            },
            stored: None,
        });
    }
    let snap = match state.docs.snapshot(&uri_s) {
        Some(snap) => snap,
        // Opened, but too large or unreadable for the server to follow: with the topic given, the
        // research runs and its report is saved as a file.
        None if state.docs.is_out_of_sync(&uri_s) => {
            let topic = a
                .topic
                .as_deref()
                .map(strip_markdown)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    invalid(format!(
                        "the server could not read {uri_s}: reopen it, or pass the topic"
                    ))
                })?;
            return Ok(Prepared {
                uri: a.uri,
                replaces: None,
                topic,
                placement: a.placement.unwrap_or(settings.placement),
                anchors: Vec::new(),
                spec: RenderSpec {
                    id: new_report_id(),
                    style: settings.citation_style,
                    fixed_level: None,
                    cited_only: settings.cited_only,
                    mark_dead: settings.dead_links != crate::config::DeadLinks::Keep,
                },
                stored,
            });
        }
        None => return Err(not_open()),
    };
    let rope = &snap.rope;
    let (s, e) = range_to_chars(rope, a.range, enc);
    let topic = match a.topic.as_deref().map(strip_markdown) {
        Some(t) if !t.is_empty() => t,
        _ => topic_of(rope, s, e),
    };
    if topic.is_empty() {
        return Err(invalid(
            "nothing to research: select some text, or put the cursor on a heading",
        ));
    }
    let placement = a.placement.unwrap_or(settings.placement);
    let anchors: Option<Vec<u64>> = match placement {
        Placement::Below => {
            let mut line = rope.char_to_line(e);
            if e > s && e == rope.line_to_char(line) && line > rope.char_to_line(s) {
                line -= 1;
            }
            if heading(&line_text(rope, line)).is_none() {
                while line + 1 < rope.len_lines() {
                    let next = line_text(rope, line + 1);
                    if next.trim().is_empty()
                        || heading(&next).is_some()
                        || is_fence(&next)
                        || report_begin(&next).is_some()
                    {
                        break;
                    }
                    line += 1;
                }
            }
            let p = line_content_end(rope, line);
            state
                .docs
                .add_anchor(&uri_s, p, Gravity::Right)
                .map(|a| vec![a])
        }
        Placement::Replace => [
            state.docs.add_anchor(&uri_s, s, Gravity::Right),
            state.docs.add_anchor(&uri_s, e, Gravity::Left),
        ]
        .into_iter()
        .collect(),
        Placement::End => state
            .docs
            .add_anchor(&uri_s, rope.len_chars(), Gravity::Right)
            .map(|a| vec![a]),
    };
    Ok(Prepared {
        uri: a.uri,
        replaces: None,
        topic,
        placement,
        anchors: anchors.ok_or_else(not_open)?,
        spec: RenderSpec {
            id: new_report_id(),
            style: settings.citation_style,
            fixed_level: None,
            cited_only: settings.cited_only,
            mark_dead: settings.dead_links != crate::config::DeadLinks::Keep,
        },
        stored,
    })
}
