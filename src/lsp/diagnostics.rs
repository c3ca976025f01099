//! Diagnostics: a citation marker with no citation entry (inside a report, or a footnote reference
//! anywhere without its definition). Recomputed after edits settle (debounced), so a burst of typing
//! costs one pass over the document.

use std::sync::Arc;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Uri};

use super::State;
use super::documents::chars_to_range;

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
    let diags = idx
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
    Some((snap.version, diags))
}
