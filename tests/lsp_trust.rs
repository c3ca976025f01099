//! Issue 8 ("Trust"): the user's text is never harmed. Each test is one promise, driven as an editor
//! would drive the server (in-process over pipes; `lsp_stdio_trust.rs` drives the real binary), with
//! hostile timing expressed as messages sent in one write, never as sleeps.

mod lsp_support;

use std::time::Duration;

use lsp_support::*;
use serde_json::{Value, json};

const URI: &str = "file:///tmp/conductor-trust/notes.md";
const BEGIN: &str = "<!-- conductor:report ";

async fn setup(cfg: Config) -> (Harness, Providers, tempfile::TempDir) {
    let p = Providers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let h = start(test_env(&p, dir.path()), cfg).await;
    (h, p, dir)
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

fn command(id: i64, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "workspace/executeCommand",
           "params": {"command": name, "arguments": [args]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typing_right_after_the_command_never_moves_the_report() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    for i in 0..50 {
        let uri = format!("file:///tmp/conductor-trust/race-{i}.md");
        let text = "Keep this line safe.\nBeta paragraph.\n";
        c.open(&uri, text).await;
        let range = range_of(text, "Beta paragraph", &c.enc);
        let id = c.take_id();
        let research = command(
            id,
            "conductor.research",
            json!({"uri": uri, "range": range, "placement": "replace"}),
        );
        // The command and the next keystroke leave the editor together.
        let typing = c.change_message(&uri, (0, 0), (0, 0), "X\n");
        c.send_all(&[research, typing]).await;
        let res = c.response(id, Duration::from_secs(20)).await;
        assert_eq!(res["result"]["applied"], true, "run {i}: {res}");
        let out = c.text(&uri).to_string();
        assert!(
            out.starts_with("X\nKeep this line safe.\n"),
            "run {i}: the user's line was touched:\n{out}"
        );
        assert!(
            !out.lines().any(|l| l == "Beta paragraph.") && out.ends_with("\n\n.\n"),
            "run {i}: the selection was not the text replaced:\n{out}"
        );
        assert_eq!(count(&out, BEGIN), 1, "run {i}:\n{out}");
        assert_eq!(c.server_text(&uri).await["text"], out.as_str(), "run {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_never_touches_text_below_a_report_without_its_end_marker() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    let text = "# Notes\n\n<!-- conductor:report 00000000000000aa -->\n## Conductor Report: Rust\n\nOld body.\n\nMy own paragraph, written after the report.\n\nAnother one of mine.\n";
    c.open(URI, text).await;
    let mine = range_of(text, "My own paragraph", &c.enc);
    let actions = c.code_actions(URI, mine.clone()).await;
    let titles: Vec<&str> = actions["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["title"].as_str())
        .collect();
    assert!(
        !titles.iter().any(|t| t.contains("Refresh")),
        "refresh offered on the user's own paragraph: {titles:?}"
    );
    let inside = range_of(text, "Old body", &c.enc);
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.refresh", "arguments": [{"uri": URI, "range": inside}]}),
        )
        .await;
    assert!(res.get("error").is_some(), "refresh ran: {res}");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("complete"),
        "{res}"
    );
    assert!(c.requests_named("workspace/applyEdit").is_empty());
    assert_eq!(c.text(URI), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_applied_report_is_never_sent_twice_when_its_change_comes_late() {
    let cfg = Config {
        // A client that applies plain `changes` (no version check), as some editors do.
        document_changes: false,
        ..Config::default()
    };
    let (mut h, _p, _dir) = setup(cfg).await;
    let c = &mut h.client;
    let text = "Topic here\n\nTail.\n";
    c.open(URI, text).await;
    // The user types at the end just before the editor applies the report, and the report's own
    // didChange reaches the server only after the server's verification window.
    c.policy.type_before_apply = Some((3, 0, "typed\n".into()));
    c.policy.hold_report_change = true;
    let range = range_of(text, "Topic here", &c.enc);
    let id = c
        .send_request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range}]}),
        )
        .await;
    c.wait_for(Duration::from_secs(20), |m| {
        m["method"] == "workspace/applyEdit"
    })
    .await
    .expect("the report was sent");
    // Fault injection: the editor is slow to send the change (longer than the 1 s verify window).
    c.pump(Duration::from_millis(1300)).await;
    let held = std::mem::take(&mut c.held);
    for m in &held {
        c.send(m).await;
    }
    let res = c.response(id, Duration::from_secs(20)).await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    // The job sends its edits before it answers the command, and the answer has been read.
    assert_eq!(
        c.requests_named("workspace/applyEdit").len(),
        1,
        "the report was sent again"
    );
    assert_eq!(count(c.text(URI), BEGIN), 1, "{}", c.text(URI));
}

async fn many_researches_in_one_document(n: usize) {
    let (mut h, p, _dir) = setup(Config::default()).await;
    // Every provider answers after the same delay, so the researches finish together.
    p.slow(300);
    let c = &mut h.client;
    let text: String = (0..n).map(|i| format!("Topic number {i}\n\n")).collect();
    c.open(URI, &text).await;
    let mut msgs = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = c.take_id();
        ids.push(id);
        let range = range_of(&text, &format!("Topic number {i}\n"), &c.enc);
        let range = json!({"start": range["start"], "end": {"line": range["start"]["line"], "character": 14 + i.to_string().len()}});
        msgs.push(command(
            id,
            "conductor.research",
            json!({"uri": URI, "range": range}),
        ));
    }
    // All at once: they finish together.
    c.send_all(&msgs).await;
    for id in ids {
        let res = c.response(id, Duration::from_secs(60)).await;
        assert_eq!(res["result"]["applied"], true, "{res}");
        assert!(res["result"].get("fallback").is_none(), "{res}");
    }
    let out = c.text(URI).to_string();
    assert_eq!(count(&out, BEGIN), n, "{out}");
    // Each report sits under its own topic.
    let lines: Vec<&str> = out.lines().collect();
    for i in 0..n {
        let at = lines
            .iter()
            .position(|l| *l == format!("Topic number {i}"))
            .unwrap();
        assert!(
            lines[at + 2].starts_with(BEGIN),
            "topic {i} has no report under it:\n{out}"
        );
        let title = lines[at + 3];
        assert!(
            title.ends_with(&format!("Topic number {i}")),
            "topic {i} has another's report: {title}"
        );
    }
    assert_eq!(c.server_text(URI).await["text"], out.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_researches_finishing_together_all_land_under_their_topics() {
    many_researches_in_one_document(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_researches_finishing_together_all_land_under_their_topics() {
    many_researches_in_one_document(10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_after_the_edit_was_sent_answers_what_happened() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    let text = "Topic here\n";
    c.open(URI, text).await;
    let range = range_of(text, "Topic here", &c.enc);
    let id = c.take_id();
    c.policy.hold_report_change = true;
    c.send(&command(
        id,
        "conductor.research",
        json!({"uri": URI, "range": range}),
    ))
    .await;
    c.wait_for(Duration::from_secs(20), |m| {
        m["method"] == "workspace/applyEdit"
    })
    .await
    .expect("the report was sent");
    // The editor applied it; the user presses cancel (both ways) before the change reaches the
    // server. The change is sent once the server has answered the cancel.
    c.send_all(&[
        json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": id}}),
        json!({"jsonrpc": "2.0", "id": 9999, "method": "workspace/executeCommand",
               "params": {"command": "conductor.cancel", "arguments": []}}),
    ])
    .await;
    let cancel = c.response(9999, Duration::from_secs(5)).await;
    assert_eq!(cancel["result"]["cancelled"], 0, "{cancel}");
    let held = std::mem::take(&mut c.held);
    c.send_all(&held).await;
    let res = c.response(id, Duration::from_secs(20)).await;
    assert!(res.get("error").is_none(), "answered cancelled: {res}");
    assert_eq!(res["result"]["applied"], true, "{res}");
    assert_eq!(count(c.text(URI), BEGIN), 1);
    let end = c
        .wait_for(Duration::from_secs(5), |m| {
            m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
        })
        .await
        .unwrap();
    let msg = end["params"]["value"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(!msg.contains("Cancelled"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_the_server_cannot_read_stops_insertion_until_reopened() {
    let (mut h, _p, dir) = setup(Config::default()).await;
    let c = &mut h.client;
    let text = "Topic here\n\nMore.\n";
    c.open(URI, text).await;
    // A lone surrogate escape: not valid JSON for serde, so the change cannot be applied.
    let bad = format!(
        r#"{{"jsonrpc":"2.0","method":"textDocument/didChange","params":{{"textDocument":{{"uri":"{URI}","version":2}},"contentChanges":[{{"range":{{"start":{{"line":0,"character":0}},"end":{{"line":0,"character":0}}}},"text":"\ud800"}}]}}}}"#
    );
    c.send_raw(bad.as_bytes()).await;
    c.send_raw(bad.as_bytes()).await;
    let shown = c
        .wait_for(Duration::from_secs(5), |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .is_some_and(|s| s.contains("reopen"))
        })
        .await;
    assert!(shown.is_some(), "the user was not told");
    let range = range_of(text, "Topic here", &c.enc);
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], false, "{res}");
    let file = res["result"]["fallback"].as_str().expect("saved as a file");
    assert!(file.starts_with(dir.path().to_str().unwrap()));
    assert!(
        std::fs::read_to_string(file)
            .unwrap()
            .contains("Topic here")
    );
    assert!(c.requests_named("workspace/applyEdit").is_empty());
    let told = c
        .notifications_named("window/showMessage")
        .iter()
        .filter(|m| {
            m["params"]["message"]
                .as_str()
                .unwrap()
                .contains("lost track")
        })
        .count();
    assert_eq!(told, 1, "told more than once");
    // Reopened: the server follows the document again and inserts.
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": URI}}),
    )
    .await;
    c.docs.remove(URI);
    c.open(URI, text).await;
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_open_is_told_and_research_goes_to_a_file() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    let big = "word ".repeat(14 * 1024 * 1024); // 70 MB
    let uri = "file:///tmp/conductor-trust/huge.md";
    let open = json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": big}}});
    c.send(&open).await;
    drop(big);
    let shown = c
        .wait_for(Duration::from_secs(20), |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .is_some_and(|s| s.contains("huge.md") && s.contains("reopen"))
        })
        .await;
    assert!(shown.is_some(), "the user was not told");
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": uri,
                   "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 4}},
                   "topic": "word"}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], false, "{res}");
    assert!(res["result"]["fallback"].is_string(), "{res}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_cjk_topic_still_gets_its_fallback_file() {
    let cfg = Config {
        ..Config::default()
    };
    let (mut h, _p, _dir) = setup(cfg).await;
    let c = &mut h.client;
    c.policy.ignore_apply_edit = true;
    let topic = "漢字".repeat(52); // 104 chars, 312 bytes
    let text = format!("{topic}\n");
    c.open(URI, &text).await;
    let range = range_of(&text, &topic, &c.enc);
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], false, "{res}");
    let file = res["result"]["fallback"]
        .as_str()
        .unwrap_or_else(|| panic!("not saved: {res}"));
    let name = std::path::Path::new(file).file_name().unwrap();
    assert!(name.len() <= 255, "{} bytes", name.len());
    assert!(std::fs::read_to_string(file).unwrap().contains(&topic));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_users_selection_is_not_grown_over_the_report() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    for (text, topic) in [
        ("Rust async\nNext line.\n", "Rust async"),
        ("Rust async\n\nNext paragraph.\n", "Rust async"),
        ("Intro.\nRust async\n", "Rust async"),
    ] {
        c.docs.clear();
        c.open(URI, text).await;
        c.server_requests.clear();
        let range = range_of(text, topic, &c.enc);
        let res = c
            .request(
                "workspace/executeCommand",
                json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range}]}),
            )
            .await;
        assert_eq!(res["result"]["applied"], true, "{res}");
        let edit = c.requests_named("workspace/applyEdit")[0].clone();
        let at = &edit["params"]["edit"]["documentChanges"][0]["edits"][0]["range"]["start"];
        // The insertion starts at the beginning of a line after the selection's (after the topic's
        // paragraph), so a selection ending at the topic's end does not grow over the report.
        assert!(
            at["line"].as_u64().unwrap() > range["end"]["line"].as_u64().unwrap(),
            "{text:?}: {at}"
        );
        assert_eq!(at["character"], 0, "{text:?}: {at}");
        let out = c.text(URI).to_string();
        assert!(out.starts_with(&text[..text.find(topic).unwrap() + topic.len()]));
        assert_eq!(c.server_text(URI).await["text"], out.as_str());
        c.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": URI}}),
        )
        .await;
    }
}
