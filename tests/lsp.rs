//! The language server driven in-process as an editor would, with loopback providers. Documents are
//! written as fixtures (`lsp_support::fixture`: `|` the cursor, `<<…>>` a range) where positions are
//! asked for; an inserted report is a snapshot (`tests/snapshots/lsp__*.snap`).

mod lsp_support;
mod snap_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use lsp_support::*;
use serde_json::{Value, json};
use tokio::time::Instant;

const URI: &str = "file:///notes/doc.md";

async fn setup(cfg: Config) -> (Harness, Providers, tempfile::TempDir) {
    let p = Providers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let h = start(test_env(&p, dir.path()), cfg).await;
    (h, p, dir)
}

/// Runs the first code action on `range` and waits for the command's answer.
async fn research_via_code_action(c: &mut Client, range: Value) -> (String, Value) {
    let actions = c.code_actions(URI, range).await;
    let action = actions["result"][0].clone();
    let title = action["title"].as_str().unwrap().to_string();
    let cmd = &action["command"];
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": cmd["command"], "arguments": cmd["arguments"]}),
        )
        .await;
    (title, res)
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_action_research_inserts_report_and_hover_works_after_restart() {
    let (mut h, p, dir) = setup(Config::default()).await;
    let c = &mut h.client;
    let f = Fixture::parse(
        "# Notes\n\nSome text about <<**Rust ownership**>> and more.\nSecond line of the paragraph.\n\n## Later\n\nEnd.\n",
    );
    c.open(URI, &f.text).await;
    let (title, res) = research_via_code_action(c, f.range(0, &c.enc)).await;
    assert_eq!(title, "Research “Rust ownership”");
    let r = &res["result"];
    assert_eq!(r["applied"], true, "{res}");
    assert_eq!(r["sources"], 3);
    assert_eq!(r["failed"], json!([]));

    // The report sits below the paragraph, one level below "# Notes", and the user's text is intact.
    let doc = c.text(URI).to_string();
    snap_support::assert_text("code_action_report", &doc);
    assert_eq!(count(&doc, "<!-- conductor:report "), 1);
    assert_eq!(
        c.server_text(URI).await["text"],
        doc,
        "server and client agree"
    );

    // Progress: created, begun (cancellable), a report per provider, ended.
    let progress: Vec<Value> = c
        .notifications_named("$/progress")
        .into_iter()
        .map(|n| n["params"]["value"].clone())
        .collect();
    assert_eq!(c.requests_named("window/workDoneProgress/create").len(), 1);
    assert_eq!(progress.first().unwrap()["kind"], "begin");
    assert_eq!(progress.first().unwrap()["cancellable"], true);
    assert!(
        progress.iter().any(|v| v["message"]
            .as_str()
            .unwrap_or("")
            .contains("wikipedia 2 results")),
        "{progress:?}"
    );
    assert_eq!(progress.last().unwrap()["kind"], "end");

    // Hover on the marker of the Wikipedia source: title and snippet.
    let marker = doc.find("began long ago [").unwrap() + "began long ago ".len();
    let (l, ch) = position(&doc, marker + 1, "utf-16");
    let pos = json!({"line": l, "character": ch});
    let hover = c.hover(URI, pos.clone()).await;
    let value = hover["result"]["contents"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    snap_support::assert_text("code_action_report_hover", &value);
    // On the citation entry line and on its URL too: the same preview.
    let entry = c
        .hover(
            URI,
            find(
                &doc,
                "https://en.wikipedia.org/wiki/Rust_ownership_history",
                "utf-16",
            ),
        )
        .await;
    assert_eq!(entry["result"]["contents"]["value"], value.as_str());
    // Definition: from the marker to its entry.
    let def = c
        .request(
            "textDocument/definition",
            json!({"textDocument": {"uri": URI}, "position": pos}),
        )
        .await;
    let def_line = def["result"]["range"]["start"]["line"].as_u64().unwrap() as usize;
    assert!(
        doc.lines()
            .nth(def_line)
            .unwrap()
            .contains("](https://en.wikipedia.org/wiki/Rust_ownership_history)")
    );

    c.shutdown_and_exit().await;
    assert!(h.server.await.unwrap(), "shutdown came before exit");

    // A new server on the same cache dir: hover still shows the preview.
    let mut h2 = start(test_env(&p, dir.path()), Config::default()).await;
    h2.client.open(URI, &doc).await;
    let hover = h2.client.hover(URI, pos).await;
    assert_eq!(hover["result"]["contents"]["value"], value.as_str());
}

async fn selection_after_emoji_and_cjk(encodings: Option<Vec<&'static str>>, expect: &str) {
    let cfg = Config {
        encodings,
        ..Config::default()
    };
    let (mut h, _p, _dir) = setup(cfg).await;
    let c = &mut h.client;
    assert_eq!(
        c.initialize_result["capabilities"]["positionEncoding"],
        expect
    );
    let f = Fixture::parse(
        "# 日本語 😀 ノート\r\n\r\n😀👩‍👩‍👧 中文字 𐐀 **<<Rust traits>>** 😀 tail\r\nnext line\r\n\r\nafter\r\n",
    );
    c.open(URI, &f.text).await;
    let (title, res) = research_via_code_action(c, f.range(0, expect)).await;
    assert_eq!(title, "Research “Rust traits”");
    assert_eq!(res["result"]["applied"], true, "{res}");
    let doc = c.text(URI).to_string();
    assert!(
        doc.starts_with("# 日本語 😀 ノート\r\n\r\n😀👩‍👩‍👧 中文字 𐐀 **Rust traits** 😀 tail\r\nnext line\r\n\r\n<!-- conductor:report "),
        "{doc}"
    );
    assert!(
        doc.ends_with("<!-- /conductor:report -->\r\n\r\nafter\r\n"),
        "{doc}"
    );
    assert!(doc.contains("## Conductor Report: Rust traits"));
    assert_eq!(c.server_text(URI).await["text"], doc);
    // Hover on a marker after the multi-byte text works in this encoding.
    let b = doc.find("began long ago [").unwrap() + "began long ago ".len();
    let (l, ch) = position(&doc, b, expect);
    let hover = c.hover(URI, json!({"line": l, "character": ch})).await;
    assert!(
        hover["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("Rust traits history")
    );
    let r = &hover["result"]["range"];
    assert_eq!(r["start"], json!({"line": l, "character": ch}));
}

#[tokio::test]
async fn selection_after_emoji_and_cjk_in_utf16() {
    selection_after_emoji_and_cjk(None, "utf-16").await;
}

#[tokio::test]
async fn selection_after_emoji_and_cjk_in_utf8() {
    selection_after_emoji_and_cjk(Some(vec!["utf-8", "utf-16"]), "utf-8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_changes_interleaved_with_hovers_keep_server_text_equal() {
    for round in 0..2u64 {
        let (mut h, _p, _dir) = setup(Config::default()).await;
        let c = &mut h.client;
        c.open(URI, "start é 😀\r\nline two\rthree\n").await;
        let mut rng = fastrand::Rng::with_seed(42 + round);
        let pieces = [
            "a",
            "é",
            "日本",
            "😀",
            "\r\n",
            "\n",
            "\r",
            "xy",
            "👩‍👩‍👧",
            "\u{2028}",
        ];
        let mut hovers = Vec::new();
        for i in 0..5000 {
            let text = c.text(URI).to_string();
            let lines = line_starts(&text).len() as u32;
            let pick = |rng: &mut fastrand::Rng| {
                let l = rng.u32(0..lines + 1);
                let ch = rng.u32(0..12);
                let b = offset(&text, l, ch, "utf-16");
                position(&text, b, "utf-16")
            };
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            let (s, e) = if a <= b { (a, b) } else { (b, a) };
            let insert = if rng.bool() {
                pieces[rng.usize(0..pieces.len())]
            } else {
                ""
            };
            // Mostly small edits; now and then a deletion across lines.
            let e = if rng.u8(0..10) < 8 { s } else { e };
            c.change(URI, s.0, s.1, e.0, e.1, insert).await;
            if i % 10 == 0 {
                let id = c
                    .send_request(
                        "textDocument/hover",
                        json!({"textDocument": {"uri": URI}, "position": {"line": s.0, "character": s.1}}),
                    )
                    .await;
                hovers.push(id);
            }
        }
        for id in hovers {
            let r = c.response(id, Duration::from_secs(20)).await;
            assert!(r.get("error").is_none(), "{r}");
        }
        let server = c.server_text(URI).await;
        let doc = &c.docs[URI];
        assert_eq!(server["version"], doc.version);
        assert_eq!(server["text"].as_str().unwrap(), doc.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_above_the_topic_while_research_runs_keeps_report_under_topic() {
    let (mut h, p, _dir) = setup(Config::default()).await;
    // The providers answer when the test has typed, not after a delay it hopes is long enough.
    p.hold();
    let c = &mut h.client;
    let f = Fixture::parse(
        "# Title\n\nIntro paragraph.\n\n## Topic\n\nWe study <<quantum tunneling>> here.\n\nOutro.\n",
    );
    c.open(URI, &f.text).await;
    let id = c
        .send_request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": f.range(0, &c.enc)}]}),
        )
        .await;
    c.pump_until(
        Duration::from_secs(10),
        "the providers being asked",
        p.state.until(|s| s.requests.load(Ordering::SeqCst) >= 2),
    )
    .await;
    // Type above the topic: a new line at the top, text inside the intro, and a line under "## Topic".
    c.change(URI, 0, 0, 0, 0, "Typed first line\n").await;
    c.change(URI, 3, 5, 3, 5, " (edited)").await;
    c.change(URI, 7, 0, 7, 0, "Inserted above the topic paragraph.\n\n")
        .await;
    // And after it: the report still goes right under its paragraph.
    let outro = c.text(URI).find("Outro.").unwrap();
    let (l, ch) = position(c.text(URI), outro, "utf-16");
    c.change(URI, l, ch, l, ch, "Later ").await;
    p.release();
    let res = c.response(id, Duration::from_secs(10)).await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let doc = c.text(URI).to_string();
    assert!(doc.starts_with("Typed first line\n# Title\n\nIntro (edited) paragraph.\n\n## Topic\n\nInserted above the topic paragraph.\n\nWe study quantum tunneling here.\n\n<!-- conductor:report "), "{doc}");
    assert!(
        doc.contains("### Conductor Report: quantum tunneling"),
        "{doc}"
    );
    assert!(
        doc.ends_with("<!-- /conductor:report -->\n\nLater Outro.\n"),
        "{doc}"
    );
    assert_eq!(c.server_text(URI).await["text"], doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_edit_is_rebuilt_against_the_newest_text() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    c.policy.refuse_edits = 1;
    c.policy.type_on_refuse = Some((0, 0, "Typed while the edit was in flight. ".into()));
    let text = "Graph databases compared.\n";
    c.open(URI, text).await;
    let (_, res) = research_via_code_action(c, range_of(text, "Graph databases", "utf-16")).await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let edits = c.requests_named("workspace/applyEdit");
    assert_eq!(edits.len(), 2);
    let v = |e: &Value| {
        e["params"]["edit"]["documentChanges"][0]["textDocument"]["version"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((v(edits[0]), v(edits[1])), (1, 2));
    let doc = c.text(URI).to_string();
    assert!(doc.starts_with("Typed while the edit was in flight. Graph databases compared.\n\n<!-- conductor:report "), "{doc}");
    assert_eq!(count(&doc, "<!-- conductor:report "), 1);
    assert!(doc.ends_with("<!-- /conductor:report -->\n"), "{doc}");
}

#[tokio::test]
async fn a_client_without_progress_support_gets_log_messages() {
    let cfg = Config {
        progress: false,
        ..Config::default()
    };
    let (mut h, _p, _dir) = setup(cfg).await;
    let c = &mut h.client;
    let text = "Solar sails\n";
    c.open(URI, text).await;
    let (_, res) = research_via_code_action(c, range_of(text, "Solar sails", "utf-16")).await;
    assert_eq!(res["result"]["applied"], true);
    assert!(
        c.requests_named("window/workDoneProgress/create")
            .is_empty()
    );
    assert!(c.notifications_named("$/progress").is_empty());
    let logs: Vec<String> = c
        .notifications_named("window/logMessage")
        .iter()
        .map(|n| n["params"]["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        logs.iter()
            .any(|m| m.starts_with("Conductor: Research “Solar sails”")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|m| m.contains("wikipedia 2 results")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_apply_edit_gets_the_report_as_a_file() {
    let mut cfg = Config::default();
    cfg.opts.client_timeout = Duration::from_millis(500);
    let (mut h, _p, _dir) = setup(cfg).await;
    let c = &mut h.client;
    c.policy.ignore_apply_edit = true;
    let text = "Tidal energy\n";
    c.open(URI, text).await;
    let started = Instant::now();
    let (_, res) = research_via_code_action(c, range_of(text, "Tidal energy", "utf-16")).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = &res["result"];
    assert_eq!(r["applied"], false, "{res}");
    assert_eq!(
        c.requests_named("workspace/applyEdit").len(),
        1,
        "never sent twice"
    );
    let path = r["fallback"].as_str().unwrap();
    let saved = std::fs::read_to_string(path).unwrap();
    assert!(saved.contains("Conductor Report: Tidal energy"));
    assert_eq!(c.requests_named("window/showDocument").len(), 1);
    let warned = c.notifications_named("window/showMessage");
    assert!(
        warned
            .iter()
            .any(|m| m["params"]["message"].as_str().unwrap().contains(path))
    );
    assert_eq!(c.text(URI), text);
    assert_eq!(c.server_text(URI).await["text"], text);
    // The server still answers.
    assert!(
        c.hover(URI, json!({"line": 0, "character": 0}))
            .await
            .get("error")
            .is_none()
    );
}

enum CancelWay {
    CancelRequest,
    ProgressCancel,
    Command,
}

async fn cancellation(way: CancelWay) {
    let (mut h, p, _dir) = setup(Config::default()).await;
    p.slow(10_000);
    let c = &mut h.client;
    let text = "Dark matter\n";
    c.open(URI, text).await;
    let id = c
        .send_request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range_of(text, "Dark matter", "utf-16")}]}),
        )
        .await;
    let begin = c
        .wait_for(Duration::from_secs(5), |m| {
            m["params"]["value"]["kind"] == "begin"
        })
        .await
        .expect("progress begins");
    let token = begin["params"]["token"].clone();
    c.pump_until(
        Duration::from_secs(5),
        "the providers being asked",
        p.state.until(|s| s.requests.load(Ordering::SeqCst) >= 2),
    )
    .await;
    let t0 = Instant::now();
    match way {
        CancelWay::CancelRequest => c.notify("$/cancelRequest", json!({"id": id})).await,
        CancelWay::ProgressCancel => {
            c.notify("window/workDoneProgress/cancel", json!({"token": token}))
                .await
        }
        CancelWay::Command => {
            let r = c
                .request(
                    "workspace/executeCommand",
                    json!({"command": "conductor.cancel", "arguments": [{"uri": URI}]}),
                )
                .await;
            assert_eq!(r["result"]["cancelled"], 1);
        }
    }
    let res = c.response(id, Duration::from_millis(200)).await;
    let ended = c
        .wait_for(Duration::from_millis(200), |m| {
            m["params"]["token"] == token && m["params"]["value"]["kind"] == "end"
        })
        .await;
    let elapsed = t0.elapsed();
    assert!(ended.is_some(), "progress ended");
    assert!(
        elapsed < Duration::from_millis(200),
        "stopped in {elapsed:?}"
    );
    match way {
        CancelWay::CancelRequest => assert_eq!(res["error"]["code"], -32800, "{res}"),
        _ => {
            assert_eq!(res["result"]["cancelled"], true, "{res}");
            assert_eq!(res["result"]["applied"], false);
        }
    }
    // The in-flight HTTP requests were dropped, and nothing was inserted.
    c.pump_until(
        Duration::from_secs(2),
        "both HTTP requests being dropped",
        p.state.until(|s| s.dropped.load(Ordering::SeqCst) >= 2),
    )
    .await;
    assert_eq!(p.state.dropped.load(Ordering::SeqCst), 2);
    assert_eq!(p.state.completed.load(Ordering::SeqCst), 0);
    // A job sends its edit, if any, before it ends its progress, and the end has been read above.
    assert!(c.requests_named("workspace/applyEdit").is_empty());
    assert_eq!(c.server_text(URI).await["text"], text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_research_within_200ms() {
    cancellation(CancelWay::CancelRequest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_cancel_stops_research_within_200ms() {
    cancellation(CancelWay::ProgressCancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_command_stops_research_within_200ms() {
    cancellation(CancelWay::Command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_research_runs() {
    let (mut h, p, _dir) = setup(Config::default()).await;
    p.slow(10_000);
    let c = &mut h.client;
    c.open(URI, "Fusion power\n").await;
    // Several jobs at once: they hold handler slots but nothing else.
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(
            c.send_request(
                "workspace/executeCommand",
                json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range_of("Fusion power\n", "Fusion power", "utf-16")}]}),
            )
            .await,
        );
    }
    // All eight are in flight: each asked both providers.
    c.pump_until(
        Duration::from_secs(10),
        "every job asking the providers",
        p.state.until(|s| s.requests.load(Ordering::SeqCst) >= 16),
    )
    .await;
    let t0 = Instant::now();
    let r = c.request("shutdown", Value::Null).await;
    assert!(r.get("error").is_none(), "{r}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    for id in ids {
        let res = c.response(id, Duration::from_secs(2)).await;
        assert_eq!(res["result"]["cancelled"], true, "{res}");
    }
    assert!(c.requests_named("workspace/applyEdit").is_empty());
    c.notify("exit", Value::Null).await;
    let shut = tokio::time::timeout(Duration::from_secs(2), h.server).await;
    assert!(shut.expect("server stops after exit").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_far_positions_and_unknown_documents_are_survived() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    c.open(URI, "line one\nline two").await;
    c.send_raw(b"{this is not json").await;
    c.send_raw(b"Content-Type: nonsense\r\n\r\n").await;
    c.send_raw(br#"{"jsonrpc":"2.0","id":901,"params":{}}"#)
        .await;
    let invalid = c.response(901, Duration::from_secs(5)).await;
    let code = invalid["error"]["code"].as_i64().unwrap();
    assert!(code == -32600 || code == -32601, "{invalid}");
    c.send_raw(br#"{"jsonrpc":"2.0","id":902,"method":7}"#)
        .await;
    let invalid = c.response(902, Duration::from_secs(5)).await;
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    c.send(&json!({"jsonrpc": "2.0", "id": 900, "method": "textDocument/hover", "params": {"bogus": true}}))
        .await;
    let bad = c.response(900, Duration::from_secs(5)).await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    // A position far past the end: clamped, never a panic.
    let far = json!({"line": 1_000_000, "character": 1_000_000});
    let r = c.hover(URI, far.clone()).await;
    assert_eq!(r["result"], Value::Null, "{r}");
    c.change(URI, 1_000_000, 5, 1_000_000, 9, "!").await;
    c.docs.get_mut(URI).unwrap().text = "line one\nline two!".into();
    assert_eq!(c.server_text(URI).await["text"], "line one\nline two!");
    let r = c.code_actions(URI, json!({"start": far, "end": far})).await;
    assert!(r.get("error").is_none(), "{r}");
    // An unknown document: nothing, or an error, and the server keeps answering.
    let unknown = "file:///nowhere.md";
    assert_eq!(
        c.hover(unknown, json!({"line": 0, "character": 0})).await["result"],
        Value::Null
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": unknown, "version": 3}, "contentChanges": [{"text": "x"}]}),
    )
    .await;
    let r = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": unknown, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}}]}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    // A panicking request answers with an error; the next request works.
    let r = c.request("conductor/debugPanic", Value::Null).await;
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("panicked"));
    assert_eq!(c.server_text(URI).await["text"], "line one\nline two!");
}

#[tokio::test]
async fn definition_and_diagnostics_for_markers() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    // Ranges: 0 the marker hovered, 1 and 3 the markers with no entry, 2 the entry of [1].
    let f = Fixture::parse(
        "# Doc\n\n<!-- conductor:report abc -->\n## Report\n\n- **A**: snippet <<[|1]>>\n- **B**: snippet <<[3]>>\n\n### Citations\n\n<<1. [A](https://a.example/x) - wikipedia>>\n<!-- /conductor:report -->\n\nA footnote ref<<[^7]>> with no definition and [2] outside a report.\n",
    );
    c.open(URI, &f.text).await;
    let diags = c
        .wait_for(Duration::from_secs(5), |m| {
            m["method"] == "textDocument/publishDiagnostics"
        })
        .await
        .unwrap();
    let list = diags["params"]["diagnostics"].as_array().unwrap();
    let msgs: Vec<&str> = list
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        vec![
            "citation [3] has no entry in the citation list",
            "citation [^7] has no entry in the citation list"
        ]
    );
    assert_eq!(list[0]["range"], f.range(1, &c.enc));
    assert_eq!(list[1]["range"], f.range(3, &c.enc));
    let def = c
        .request(
            "textDocument/definition",
            json!({"textDocument": {"uri": URI}, "position": f.cursor(&c.enc)}),
        )
        .await;
    assert_eq!(def["result"]["range"], f.range(2, &c.enc), "{def}");
    // Hover on a marker whose report is not in the store: previewed from the entry line.
    let hover = c.hover(URI, f.cursor(&c.enc)).await;
    assert_eq!(hover["result"]["range"], f.range(0, &c.enc), "{hover}");
    assert!(
        hover["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("https://a.example/x")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_replaces_the_report_in_place_and_settings_apply() {
    let (mut h, _p, _dir) = setup(Config::default()).await;
    let c = &mut h.client;
    let text = "## Ideas\n\nBatteries\n\nTrailing text.\n";
    c.open(URI, text).await;
    let (_, res) = research_via_code_action(c, range_of(text, "Batteries", "utf-16")).await;
    assert_eq!(res["result"]["applied"], true);
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"conductor": {"citation_style": "footnotes"}}}),
    )
    .await;
    let doc = c.text(URI).to_string();
    let inside = find(&doc, "### Citations", "utf-16");
    let actions = c
        .code_actions(URI, json!({"start": inside, "end": inside}))
        .await;
    let a = &actions["result"][0];
    assert_eq!(a["title"], "Refresh this report");
    assert_eq!(a["command"]["command"], "conductor.refresh");
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.refresh", "arguments": a["command"]["arguments"]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let after = c.text(URI).to_string();
    assert_eq!(count(&after, "<!-- conductor:report "), 1, "{after}");
    // A new report uses the new setting.
    let (_, res) = research_via_code_action(c, range_of(&after, "Trailing text.", "utf-16")).await;
    assert_eq!(res["result"]["applied"], true);
    // The refreshed report in place of the old one and in its stored style (numbered), the new one in
    // the new setting's (footnotes, labels carrying the report's prefix: `[^c[prefix]-1]`).
    snap_support::assert_text("refreshed_then_new_report", c.text(URI));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_streams_into_progress_and_lands_in_the_report() {
    use axum::http::StatusCode;
    let p = Providers::start().await;
    // An OpenAI-compatible stand-in streaming a summary slowly, citing [1] and an unknown [9].
    let llm = axum::Router::new().fallback(|| async {
        let chunks = ["Rust ownership ", "moves values [1]. ", "It is checked at compile time [9]."];
        let stream = futures::stream::iter(chunks.into_iter().enumerate()).then(|(i, c)| async move {
            tokio::time::sleep(Duration::from_millis(if i == 0 { 0 } else { 300 })).await;
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]});
            Ok::<_, std::io::Error>(format!("data: {chunk}\n\n"))
        });
        let tail = futures::stream::once(async {
            Ok::<_, std::io::Error>(
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
                    .to_string(),
            )
        });
        axum::response::Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream")
            .body(axum::body::Body::from_stream(stream.chain(tail)))
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let llm_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, llm).await });
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(&p, dir.path());
    env.set("OPENAI_API_KEY", "sk-lsp-test-key-0001");
    env.set("CONDUCTOR_OPENAI_BASE_URL", format!("http://{llm_addr}"));
    let mut h = start(env, Config::default()).await;
    let c = &mut h.client;
    let text = "# Notes\n\nRust ownership\n";
    c.open(URI, text).await;
    let (_, res) = research_via_code_action(c, range_of(text, "Rust ownership", "utf-16")).await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let doc = c.text(URI).to_string();
    snap_support::assert_text("streamed_summary_report", &doc);
    assert!(!doc.contains("[9]"), "{doc}");
    assert!(!doc.contains("sk-lsp-test-key-0001"));
    let messages: Vec<String> = c
        .notifications_named("$/progress")
        .into_iter()
        .filter_map(|n| n["params"]["value"]["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("summary: Rust ownership")),
        "{messages:?}"
    );
}

#[test]
fn fixture_markers_give_positions_in_each_encoding() {
    let f = Fixture::parse("# 😀 <<a|b>>\r\nsecond <<line>>\n");
    assert_eq!(f.text, "# 😀 ab\r\nsecond line\n");
    assert_eq!(f.range_text(0), "ab");
    assert_eq!(f.range_text(1), "line");
    assert_eq!(f.range_line(1), 1);
    // 😀 is 4 bytes, 2 UTF-16 units, 1 code point.
    for (enc, col) in [("utf-8", 8), ("utf-16", 6), ("utf-32", 5)] {
        assert_eq!(f.cursor(enc), json!({"line": 0, "character": col}), "{enc}");
        assert_eq!(
            f.range(0, enc),
            json!({"start": {"line": 0, "character": col - 1}, "end": {"line": 0, "character": col + 1}}),
            "{enc}"
        );
    }
    assert_eq!(
        f.range(1, "utf-16"),
        json!({"start": {"line": 1, "character": 7}, "end": {"line": 1, "character": 11}})
    );
}

#[test]
#[should_panic(expected = "two cursors")]
fn a_fixture_with_two_cursors_is_refused() {
    Fixture::parse("| a | b |");
}

#[test]
#[should_panic(expected = "without `>>`")]
fn a_fixture_with_an_open_range_is_refused() {
    Fixture::parse("<<open");
}
