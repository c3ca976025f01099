//! `conductor-lsp research` with an LLM: the summary step in the report and the JSON, `--no-llm`, and an
//! LLM failure that costs only the summary. Loopback stand-ins only. The reports are snapshots
//! (`tests/snapshots/research_llm__*.snap`); what the model must never get into a report stays an
//! explicit assertion.

mod common;
mod snap_support;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

const OPENAI_KEY: &str = "sk-test-secret-llm-0001";
const ANTHROPIC_KEY: &str = "sk-ant-test-secret-0002";

fn sse(chunks: &[&str]) -> Reply {
    let mut body = String::from(": keep-alive\n\n");
    for c in chunks {
        let chunk = json!({
            "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]
        });
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    let last = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [], "usage": {"prompt_tokens": 420, "completion_tokens": 42, "total_tokens": 462}});
    body.push_str(&format!(
        "data: {last}\n\ndata: {usage}\n\ndata: [DONE]\n\n"
    ));
    Reply::Raw {
        status: StatusCode::OK,
        headers: vec![("content-type", "text/event-stream".into())],
        body: body.into_bytes(),
    }
}

async fn wiki() -> Loopback {
    Loopback::start(|_, _| {
        ok(wikipedia_response(&[
            (
                "Tokio (software)",
                "Tokio is an asynchronous runtime for Rust.",
            ),
            ("Async/await", "Syntax for asynchronous functions."),
        ]))
    })
    .await
}

fn env(wiki: &Loopback, llm: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        ("CONDUCTOR_PROVIDERS", "wikipedia".into()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ("OPENAI_API_KEY", OPENAI_KEY.into()),
        ("CONDUCTOR_OPENAI_BASE_URL", llm.url()),
        ("CONDUCTOR_LLM_MODEL", "test-model".into()),
        // Each run asks the stand-ins (the cache has tests of its own).
        ("CONDUCTOR_CACHE_HOURS", "0".into()),
    ]
}

fn no_keys(run: &Run) {
    for k in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(
            !run.stdout.contains(k) && !run.stderr.contains(k),
            "key leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_cites_only_retrieved_sources() {
    let wiki = wiki().await;
    let llm = Loopback::start(|_, _| {
        sse(&[
            "<think>the user wants tokio</think>",
            "## Overview\n\nTokio is the most used runtime [1], ",
            "and async/await is its syntax [2]. It is fast [9]. ",
            "See https://evil.example/phish and [this](https://evil.example).",
        ])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(&["research", "tokio"], &env(&wiki, &llm), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let md = &run.stdout;
    // The summary first, its citations numbered so that [1] and [2] resolve, every link a retrieved
    // source, and the tokens it took.
    snap_support::assert_cli("summary", md, &run.stderr);
    assert!(
        !md.contains("[9]"),
        "an unknown source number is removed:\n{md}"
    );
    assert!(
        !md.contains("evil.example"),
        "no URL the model wrote:\n{md}"
    );
    assert!(!md.contains("<think>") && !md.contains("the user wants"));
    assert!(
        !md.contains("## Overview"),
        "the model's heading is neutralised:\n{md}"
    );
    let req = &llm.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.json()["model"], "test-model");
    no_keys(&run);

    // The same research as JSON carries the summary and its usage.
    let run = run_cli(
        &["research", "tokio", "--format", "json"],
        &env(&wiki, &llm),
        dir.path(),
    )
    .await;
    snap_support::assert_report_json("summary_json", &run.stdout);
    no_keys(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_llm_skips_synthesis_and_a_failing_llm_costs_only_the_summary() {
    let wiki = wiki().await;
    let llm = Loopback::start(|_, _| {
        Reply::Raw {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers: vec![("retry-after", "60".into()), ("content-type", "application/json".into())],
            body: json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
                .to_string()
                .into_bytes(),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(
        &["research", "tokio", "--no-llm"],
        &env(&wiki, &llm),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0);
    // No synthesis step at all.
    snap_support::assert_cli("no_llm", &run.stdout, &run.stderr);
    assert_eq!(llm.count(), 0, "--no-llm asks no LLM");

    let run = run_cli(&["research", "tokio"], &env(&wiki, &llm), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // The synthesis step says why there is no summary (and stderr warns); the research is intact.
    snap_support::assert_cli("llm_rate_limited", &run.stdout, &run.stderr);
    no_keys(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_with_a_bad_key_is_named_without_the_key() {
    let wiki = wiki().await;
    let llm = Loopback::start(|_, _| {
        status(401, json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("CONDUCTOR_PROVIDERS", "wikipedia".to_string()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY.into()),
        ("CONDUCTOR_ANTHROPIC_BASE_URL", llm.url()),
    ];
    let run = run_cli(&["research", "tokio"], &env, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    snap_support::assert_cli("anthropic_bad_key", &run.stdout, &run.stderr);
    assert_eq!(llm.requests()[0].path, "/v1/messages");
    assert_eq!(llm.requests()[0].header("x-api-key"), Some(ANTHROPIC_KEY));
    no_keys(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cited_only_limits_the_citations_to_what_the_summary_cites() {
    let wiki = wiki().await;
    let llm = Loopback::start(|_, _| sse(&["Tokio is a runtime [2]."])).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config/conductor")).unwrap();
    std::fs::write(
        dir.path().join("config/conductor/config.toml"),
        "cited_only = true\n",
    )
    .unwrap();
    let run = run_cli(&["research", "tokio"], &env(&wiki, &llm), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Only source 2 is listed, under its own number.
    snap_support::assert_cli("cited_only", &run.stdout, &run.stderr);
}
