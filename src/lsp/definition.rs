//! Go to definition: from a citation marker to its citation entry (resolved as hover resolves it).

use tower_lsp_server::ls_types::{GotoDefinitionParams, GotoDefinitionResponse, Location};

use super::State;
use super::documents::{line_text, position_to_char};
use super::hover::line_range;

pub fn definition(state: &State, params: &GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
    let tdp = &params.text_document_position_params;
    let uri = &tdp.text_document.uri;
    let (snap, idx) = state.indexed(uri.as_str())?;
    let enc = state.encoding();
    let ch = position_to_char(&snap.rope, tdp.position, enc);
    let line = snap.rope.char_to_line(ch);
    let col = ch - snap.rope.line_to_char(line);
    let (m, scope) = idx.marker_at(line, &line_text(&snap.rope, line), col)?;
    let entry = idx.entry_for(scope, &m)?;
    Some(GotoDefinitionResponse::Scalar(Location {
        uri: uri.clone(),
        range: line_range(&snap, entry.line, enc),
    }))
}
