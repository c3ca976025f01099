//! The claim check in a research, seen from outside: a loopback LLM writes a summary that mixes a
//! sentence its source backs, one with a wrong number, one citing a source that says nothing about it,
//! and one with no citation. Each gets its status in the report, the JSON, the editor's diagnostics and
//! hover (after a restart too); a loopback judge answers, or fails.

mod common;
mod lsp_support;

use std::time::Duration;

use axum::http::StatusCode;
use common::{Loopback, Reply, ok, run_cli, wikipedia_response};
use conductor::config::Env;
use serde_json::{Value, json};

const KEY: &str = "sk-test-check-0001";

const TOKIO: &str = "Tokio is an asynchronous runtime for the Rust programming language. It provides the \
building blocks needed for writing network applications. Tokio was first released in December 2020 as \
version 1.0, after several years of development. Its scheduler uses work stealing, and its I/O driver \
is built on the operating system's event queue.";
const ASYNC: &str = "Async/await is a syntactic pattern that lets an asynchronous function be written like \
an ordinary one. Rust stabilised the syntax in version 1.39, released in November 2019. Futures in Rust are lazy: they \
do nothing until an executor polls them, which is why a runtime such as Tokio is needed to drive them.";

const SUPPORTED: &str = "Tokio is an asynchronous runtime for the Rust programming language [1].";
const WRONG_NUMBER: &str = "Tokio was first released in December 2016 as version 1.0 [1].";
const UNRELATED: &str = "Async/await makes every program run on the graphics card [2].";
const UNCITED: &str = "Many companies depend on it in production.";

fn summary() -> String {
    format!("{SUPPORTED} {WRONG_NUMBER} {UNRELATED} {UNCITED}")
}

/// An OpenAI-compatible stand-in: the summary, streamed, for the synthesis request; `judge` for the
/// (non-streamed) judge requests.
async fn llm(judge: fn(&str) -> Reply) -> Loopback {
    Loopback::start(move |seen, _| {
        let body = seen.json();
        if body["stream"] == true {
            let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": summary()}, "finish_reason": null}]});
            let last = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            Reply::Raw {
                status: StatusCode::OK,
                headers: vec![("content-type", "text/event-stream".into())],
                body: format!("data: {chunk}\n\ndata: {last}\n\ndata: [DONE]\n\n").into_bytes(),
            }
        } else {
            let prompt = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_string();
            judge(&prompt)
        }
    })
    .await
}

/// A judge that backs the claims about the release (the check's "wrong number") and nothing else.
fn judge_yes_no(prompt: &str) -> Reply {
    let answer = if prompt.contains("first released") {
        "Yes"
    } else {
        "No"
    };
    ok(
        json!({"id": "j", "object": "chat.completion", "created": 1, "model": "judge-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51}}),
    )
}

fn judge_fails(_: &str) -> Reply {
    common::status(500, json!({"error": {"message": "the judge is down"}}))
}

async fn wiki() -> Loopback {
    Loopback::start(|_, _| {
        ok(wikipedia_response(&[
            ("Tokio (software)", TOKIO),
            ("Async/await", ASYNC),
        ]))
    })
    .await
}

fn env(wiki: &Loopback, llm: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        ("CONDUCTOR_PROVIDERS", "wikipedia".into()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ("OPENAI_API_KEY", KEY.into()),
        ("CONDUCTOR_OPENAI_BASE_URL", llm.url()),
        ("CONDUCTOR_LLM_MODEL", "test-model".into()),
        // Wikipedia's intros are the sources' text: read from the provider, nothing fetched.
        ("CONDUCTOR_READ", "5".into()),
    ]
}

fn statuses(json: &Value) -> Vec<(String, String)> {
    json["synthesis"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["text"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn plain(sentence: &str) -> String {
    sentence
        .replace(" [1]", "")
        .replace(" [2]", "")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sentence_gets_its_status_in_the_json_and_the_report() {
    let (wiki, llm) = (wiki().await, llm(judge_yes_no).await);
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(
        &["research", "tokio runtime", "--format", "json"],
        &env(&wiki, &llm),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        statuses(&json),
        vec![
            (plain(SUPPORTED), "supported".into()),
            (plain(WRONG_NUMBER), "unsupported".into()),
            (plain(UNRELATED), "unsupported".into()),
            (UNCITED.to_string(), "uncited".into()),
        ],
        "{:#}",
        json["synthesis"]["claims"]
    );
    // Both sources were read from Wikipedia's intros: no page was fetched.
    for s in json["sources"].as_array().unwrap() {
        assert_eq!(
            s["read"],
            json!({"status": "read", "via": "provider"}),
            "{s:#}"
        );
    }
    let claims = &json["synthesis"]["claims"];
    assert_eq!(claims[0]["citations"], json!([1]));
    let backing = claims[0]["evidence"][0]["passage"].as_str().unwrap();
    assert_eq!(claims[0]["evidence"][0]["source"], 1);
    assert!(
        TOKIO.contains(backing),
        "the backing passage is verbatim: {backing}"
    );
    assert!(backing.contains("asynchronous runtime"), "{backing}");
    assert_eq!(claims[1]["evidence"], json!([]));
    assert!(
        claims[1]["why"].as_str().unwrap().contains("2016"),
        "{:#}",
        claims[1]
    );
    assert_eq!(
        json["synthesis"]["check"],
        json!({"sentences": 4, "cited": 3, "supported": 1, "partial": 0, "unsupported": 2, "uncited": 1})
    );

    let run = run_cli(
        &["research", "tokio runtime"],
        &env(&wiki, &llm),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let md = run.stdout;
    assert!(
        md.contains(
            "Tokio is an asynchronous runtime for the Rust programming language [1]. Tokio was first \
             released in December 2016 as version 1.0 [1]. **(unsupported)** Async/await makes every \
             program run on the graphics card [2]. **(unsupported)** Many companies depend on it in \
             production. *(uncited)*"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "*Checked: 1 of 3 cited sentences backed by their sources; 2 unsupported; 1 uncited.*"
        ),
        "{md}"
    );
    // The marks render as emphasis a reader sees, not as text with asterisks.
    let html = comrak::markdown_to_html(&md, &comrak::Options::default());
    assert!(html.contains("<strong>(unsupported)</strong>"), "{html}");
    assert!(html.contains("<em>(uncited)</em>"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_adds_its_verdicts_and_a_failing_judge_costs_only_its_verdicts() {
    let wiki = wiki().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config/conductor")).unwrap();
    std::fs::write(
        dir.path().join("config/conductor/config.toml"),
        "[verify]\nbackend = \"openai\"\nmodel = \"judge-model\"\n",
    )
    .unwrap();

    let llm = llm(judge_yes_no).await;
    let args = ["research", "tokio runtime", "--format", "json"];
    let run = run_cli(&args, &env(&wiki, &llm), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let claims = &json["synthesis"]["claims"];
    // The judge is asked only about cited sentences the check did not back.
    assert_eq!(claims[0].get("judge"), None);
    assert_eq!(claims[1]["judge"], "yes");
    assert_eq!(claims[2]["judge"], "no");
    assert_eq!(claims[3].get("judge"), None);
    // The deterministic statuses stand beside the verdicts.
    assert_eq!(claims[1]["status"], "unsupported");
    let judge_requests = llm
        .requests()
        .iter()
        .filter(|r| r.json()["stream"] != true)
        .count();
    assert_eq!(judge_requests, 2);
    assert_eq!(
        json["synthesis"]["judge"],
        json!({"model": "openai judge-model", "asked": 2, "yes": 1, "no": 1})
    );

    let failing = self::llm(judge_fails).await;
    let run = run_cli(
        &["research", "tokio runtime"],
        &env(&wiki, &failing),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let md = run.stdout;
    // The summary and the check are all there; only the judge's verdicts are missing, and it says so.
    assert!(md.contains("**(unsupported)**"), "{md}");
    assert!(
        md.contains("2 unsupported; 1 uncited; the judge (openai judge-model) gave no verdict:"),
        "{md}"
    );
    assert!(!md.contains(KEY) && !run.stderr.contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_shows_diagnostics_and_hover_per_sentence_even_after_a_restart() {
    let (wiki, llm) = (wiki().await, llm(judge_yes_no).await);
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = env(&wiki, &llm);
    pairs.push((
        "CONDUCTOR_CACHE_DIR",
        dir.path().join("cache").display().to_string(),
    ));
    pairs.push((
        "XDG_CONFIG_HOME",
        dir.path().join("config").display().to_string(),
    ));
    pairs.push(("HOME", dir.path().join("home").display().to_string()));
    let uri = "file:///notes/runtime.md";
    let text = "# Notes\n\ntokio runtime\n";
    let mut h = lsp_support::start(
        Env::from_pairs(pairs.clone()),
        lsp_support::Config::default(),
    )
    .await;
    let c = &mut h.client;
    c.open(uri, text).await;
    let range = lsp_support::range_of(text, "tokio runtime", &c.enc);
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": uri, "range": range}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let doc = c.text(uri).to_string();

    check_editor(c, uri, doc.clone()).await;
    c.shutdown_and_exit().await;
    assert!(h.server.await.unwrap());

    // A new server on the same store: the same diagnostics and hovers, from the stored check.
    let mut h2 = lsp_support::start(Env::from_pairs(pairs), lsp_support::Config::default()).await;
    h2.client.open(uri, &doc).await;
    check_editor(&mut h2.client, uri, doc.clone()).await;
}

/// The diagnostics and hovers the editor shows for the checked report in `doc`.
async fn check_editor(c: &mut lsp_support::Client, uri: &str, doc: String) {
    let published = c
        .wait_for(Duration::from_secs(10), |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty())
        })
        .await
        .expect("diagnostics for the report");
    let diags = published["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .clone();
    let seen: Vec<(String, String)> = diags
        .iter()
        .map(|d| {
            let r = &d["range"];
            let line = doc
                .lines()
                .nth(r["start"]["line"].as_u64().unwrap() as usize)
                .unwrap();
            let (from, to) = (
                r["start"]["character"].as_u64().unwrap() as usize,
                r["end"]["character"].as_u64().unwrap() as usize,
            );
            let covered: String = line.chars().skip(from).take(to - from).collect();
            (d["code"].as_str().unwrap().to_string(), covered)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "unsupported-sentence".to_string(),
                "Tokio was first released in December 2016 as version 1.0 [1]. **(unsupported)**"
                    .to_string()
            ),
            (
                "unsupported-sentence".to_string(),
                "Async/await makes every program run on the graphics card [2]. **(unsupported)**"
                    .to_string()
            ),
            (
                "uncited-sentence".to_string(),
                "Many companies depend on it in production. *(uncited)*".to_string()
            ),
        ]
    );
    for d in &diags {
        assert_eq!(d["severity"], 3, "information: {d}");
    }
    assert!(
        diags[0]["message"].as_str().unwrap().contains("2016"),
        "{}",
        diags[0]["message"]
    );

    // Hover on the [1] of the backed sentence: the passage that backs it.
    let first = doc.find("language [1]").unwrap() + "language [".len();
    let (l, ch) = lsp_support::position(&doc, first, "utf-16");
    let hover = c.hover(uri, json!({"line": l, "character": ch})).await;
    let value = hover["result"]["contents"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        value.contains("*This sentence is backed by its sources.*"),
        "{value}"
    );
    assert!(
        value.contains("Source [1] says:\n\n> Tokio is an asynchronous runtime"),
        "{value}"
    );
    // On the [1] of the sentence with the wrong number: none backs it, and why.
    let second = doc.find("1.0 [1]").unwrap() + "1.0 [".len();
    let (l, ch) = lsp_support::position(&doc, second, "utf-16");
    let hover = c.hover(uri, json!({"line": l, "character": ch})).await;
    let value = hover["result"]["contents"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        value.contains("*This sentence is not backed by its sources.*"),
        "{value}"
    );
    assert!(
        value.contains("No passage of source [1] was found that backs it"),
        "{value}"
    );
}
