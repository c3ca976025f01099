//! Code actions: `Research “<topic>”` on a selection (or on a heading line with an empty selection),
//! beside it `Insert the report from <date>` when the topic was researched before (the newest stored
//! report of that topic, matched by `store::topic_key`), and `Refresh this report` inside an inserted
//! report.

use serde_json::json;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CodeActionResponse, Command,
};

use super::documents::{line_text, range_to_chars};
use super::scan::{heading, strip_markdown};
use super::{CMD_INSERT_STORED, CMD_REFRESH, CMD_RESEARCH, State};
use crate::sanitize::truncate_chars;

pub fn code_actions(state: &State, params: &CodeActionParams) -> Option<CodeActionResponse> {
    if let Some(only) = &params.context.only
        && !only
            .iter()
            .any(|k| k.as_str().is_empty() || k.as_str() == CodeActionKind::REFACTOR.as_str())
    {
        return Some(Vec::new());
    }
    let uri = &params.text_document.uri;
    let (snap, idx) = state.indexed(uri.as_str())?;
    let (s, e) = range_to_chars(&snap.rope, params.range, state.encoding());
    let line = snap.rope.char_to_line(s);
    let mut actions = Vec::new();
    if idx.complete_report_at(line).is_some() {
        actions.push(action(
            "Refresh this report".into(),
            CMD_REFRESH,
            json!([{ "uri": uri, "range": params.range }]),
        ));
        return Some(actions);
    }
    let topic = if s < e {
        strip_markdown(&snap.rope.slice(s..e).to_string())
    } else {
        let text = line_text(&snap.rope, line);
        heading(&text)
            .map(|(_, t)| strip_markdown(t))
            .unwrap_or_default()
    };
    if !topic.is_empty() {
        actions.push(action(
            format!("Research “{}”", truncate_chars(&topic, 60)),
            CMD_RESEARCH,
            json!([{ "uri": uri, "range": params.range, "topic": topic }]),
        ));
        match state.store.latest_for_topic(&topic) {
            Ok(Some((id, date))) => actions.push(action(
                format!("Insert the report from {}", crate::store::day(&date)),
                CMD_INSERT_STORED,
                json!([{ "uri": uri, "range": params.range, "topic": topic, "report": id }]),
            )),
            Ok(None) => {}
            Err(e) => tracing::debug!("no stored report looked up: {e}"),
        }
    }
    Some(actions)
}

fn action(title: String, command: &str, args: serde_json::Value) -> CodeActionOrCommand {
    let arguments = match args {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    CodeActionOrCommand::CodeAction(CodeAction {
        title: title.clone(),
        kind: Some(CodeActionKind::REFACTOR),
        command: Some(Command {
            title,
            command: command.into(),
            arguments: Some(arguments),
        }),
        ..Default::default()
    })
}
