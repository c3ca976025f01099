//! Diagnostics: a citation marker with no citation entry (inside a report, or a footnote reference
//! anywhere without its definition), and, inside an inserted report, each summary sentence the claim
//! check did not find backed by its sources (information: unsupported, partly backed, uncited). Recomputed after edits settle (debounced), so a burst of typing
//! costs one pass over the document.

use std::sync::Arc;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Uri};

use super::State;
use super::documents::{chars_to_range, line_text};
use crate::report::Status;

/// Publishes diagnostics for `uri` once edits pause; at most one pending publish per document.
pub fn schedule(state: &Arc<State>, client: &Client, uri: Uri) {
    let key = uri.as_str().to_string();
    if state.diag_pending.insert(key.clone(), ()).is_some() {
        return;
    }
    let (state, client) = (state.clone(), client.clone());
    tokio::spawn(async move {
        tokio::time::sleep(state.opts.diagnostics_debounce).await;
        state.diag_pending.remove(&key);
        if let Some((version, diags)) = compute(&state, &key) {
            client.publish_diagnostics(uri, diags, Some(version)).await;
        }
    });
}

pub async fn clear(state: &State, client: &Client, uri: Uri) {
    state.diag_pending.remove(uri.as_str());
    client.publish_diagnostics(uri, Vec::new(), None).await;
}

pub fn compute(state: &State, uri: &str) -> Option<(i32, Vec<Diagnostic>)> {
    let (snap, idx) = state.indexed(uri)?;
    let enc = state.encoding();
    let mut diags: Vec<Diagnostic> = idx
        .dangling()
        .map(|m| {
            let base = snap.rope.line_to_char(m.line);
            let label = m.marker.to_string();
            Diagnostic {
                range: chars_to_range(&snap.rope, base + m.marker.start, base + m.marker.end, enc),
                severity: Some(DiagnosticSeverity::WARNING),
                code: Some(NumberOrString::String("missing-citation".into())),
                source: Some("conductor".into()),
                message: format!("citation {label} has no entry in the citation list"),
                ..Default::default()
            }
        })
        .collect();
    for report in &idx.reports {
        let claims = state.claims(&report.id);
        if claims.iter().all(|c| c.status == Status::Supported) {
            continue;
        }
        let last = report.end.min(snap.rope.len_lines().saturating_sub(1));
        let lines: Vec<(usize, String)> = (report.begin..=last)
            .map(|l| (l, line_text(&snap.rope, l)))
            .collect();
        for found in super::claims::marked(&claims, &lines) {
            let claim = &claims[found.claim];
            let base = snap.rope.line_to_char(found.line);
            diags.push(Diagnostic {
                range: chars_to_range(&snap.rope, base + found.start, base + found.end, enc),
                severity: Some(DiagnosticSeverity::INFORMATION),
                code: Some(NumberOrString::String(
                    match claim.status {
                        Status::Uncited => "uncited-sentence",
                        Status::Partial => "partly-backed-sentence",
                        _ => "unsupported-sentence",
                    }
                    .into(),
                )),
                source: Some("conductor".into()),
                message: super::claims::message(claim),
                ..Default::default()
            });
        }
    }
    Some((snap.version, diags))
}
