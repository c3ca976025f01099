//! The optional claim judge (`[verify]`) against loopback stand-ins for an OpenAI-compatible server
//! (Ollama's `/v1`, as for bespoke-minicheck) and Anthropic Messages: one that answers Yes/No, one that
//! fails, one that hangs past the deadline, one that answers something else. Nothing reaches the
//! internet.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use common::{Loopback, Reply, ok, status};
use conductor::check::{self, Check, CheckLine, JudgeConfig, Status, Verdict, judge};
use conductor::config::{Env, LlmBackend, VerifySettings};
use conductor::net::{Http, HttpLimits};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-judge-SECRET-0123456789";

const SQLITE: &str = "Write-Ahead Logging. Beginning with version 3.7.0, SQLite offers a new Write-Ahead \
Log option. WAL is significantly faster in most scenarios. By default, SQLite does a checkpoint \
automatically when the WAL file reaches a threshold size of 1000 pages.";
const TOKIO: &str = "Tokio is an asynchronous runtime for the Rust programming language. The \
multi-thread scheduler uses a work-stealing strategy.";

/// A supported sentence, a wrong number, a sentence citing a source that says nothing about it, and
/// an uncited one.
const SUMMARY: &str = "SQLite has offered write-ahead logging since version 3.7.0 [1]. \
By default it checkpoints when the WAL file reaches 10,000 pages [1]. \
Raft elects a single leader per term [2]. \
Both projects are widely used.";

fn sources() -> Vec<(usize, &'static str)> {
    vec![(1, SQLITE), (2, TOKIO)]
}

fn http() -> Http {
    Http::new(HttpLimits::default())
}

/// The judge of `[verify] backend = "ollama"` pointed at the stand-in.
fn ollama_judge(lb_url: &str, concurrency: Option<usize>) -> JudgeConfig {
    let env = Env::from_pairs([("CONDUCTOR_OLLAMA_BASE_URL", lb_url)]);
    let settings = VerifySettings {
        backend: Some(LlmBackend::Ollama),
        concurrency,
        ..VerifySettings::default()
    };
    check::judge::configured(&env, &settings).unwrap().unwrap()
}

/// An OpenAI-compatible whole chat completion answering `text`.
fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "bespoke-minicheck",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51}
    })
}

/// The claim line of a judge prompt.
fn claim_of(body: &Value) -> String {
    let content = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    content
        .rsplit_once("\nClaim: ")
        .map(|(_, c)| c.to_string())
        .unwrap_or_default()
}

fn statuses(c: &Check) -> Vec<Status> {
    c.claims.iter().map(|c| c.status).collect()
}

#[tokio::test]
async fn a_judge_that_answers_records_its_verdict_beside_the_check() {
    // Yes unless the claim carries the wrong number.
    let lb = Loopback::start(|req, _| {
        let claim = claim_of(&req.json());
        ok(completion(if claim.contains("10,000") {
            "No"
        } else {
            "Yes"
        }))
    })
    .await;
    let cfg = ollama_judge(&lb.url(), None);
    let deterministic = check::check(SUMMARY, &sources());
    assert_eq!(
        statuses(&deterministic),
        vec![
            Status::Supported,
            Status::Unsupported,
            Status::Unsupported,
            Status::Uncited
        ]
    );
    let mut c = deterministic.clone();
    let report = judge(
        &http(),
        &cfg,
        &mut c,
        &sources(),
        Instant::now() + Duration::from_secs(10),
        &CancellationToken::new(),
    )
    .await;

    // Only the cited sentences the check could not mark supported were asked.
    assert_eq!(lb.count(), 2);
    assert_eq!(
        (report.asked, report.answered, report.yes, report.no),
        (2, 2, 1, 1)
    );
    assert_eq!(report.error, None);
    assert!(!report.timed_out);
    let verdicts: Vec<Option<Verdict>> = c.claims.iter().map(|c| c.judge).collect();
    assert_eq!(
        verdicts,
        vec![None, Some(Verdict::No), Some(Verdict::Yes), None]
    );
    // The deterministic statuses and counts stand; the verdict is beside them.
    assert_eq!(statuses(&c), statuses(&deterministic));
    assert_eq!(c.counts, deterministic.counts);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["claims"][1]["judge"], json!("no"));
    assert_eq!(v["claims"][1]["status"], json!("unsupported"));
    assert!(v["claims"][0].get("judge").is_none());

    // The request: bespoke-minicheck's own prompt, no system turn, a whole answer, temperature 0.
    for req in lb.requests() {
        assert_eq!(req.path, "/v1/chat/completions");
        let body = req.json();
        assert_eq!(body["model"], json!("bespoke-minicheck"));
        assert_eq!(body["stream"], json!(false));
        assert_eq!(body["temperature"].as_f64(), Some(0.0));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["role"], json!("user"));
        let content = messages[0]["content"].as_str().unwrap();
        assert!(content.starts_with("Document: "), "{content}");
        assert!(content.contains("\nClaim: "), "{content}");
    }
    // The wrong-number claim's document is the cited source's text.
    let asked_wal = lb
        .requests()
        .into_iter()
        .map(|r| r.json())
        .find(|b| claim_of(b).contains("10,000"))
        .unwrap();
    assert!(
        asked_wal["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("1000 pages")
    );

    let line = CheckLine::new(&c, Some(&report)).sentence();
    assert_eq!(
        line,
        "Checked: 1 of 3 cited sentences backed by their sources; 2 unsupported; 1 uncited; the judge \
         (ollama bespoke-minicheck) backs 1 of 2 it was asked about."
    );
}

#[tokio::test]
async fn a_judge_that_fails_costs_only_its_verdicts() {
    // An OpenAI-compatible judge with a key, answering 500 and echoing the key.
    let lb = Loopback::start(|_, _| {
        status(
            500,
            json!({"error": {"message": format!("internal error for key {KEY}"), "type": "server_error"}}),
        )
    })
    .await;
    let url = lb.url();
    let env = Env::from_pairs([
        ("OPENAI_API_KEY", KEY),
        ("CONDUCTOR_OPENAI_BASE_URL", url.as_str()),
    ]);
    let settings = VerifySettings {
        backend: Some(LlmBackend::Openai),
        model: Some("gpt-4o-mini".into()),
        concurrency: Some(1),
        ..VerifySettings::default()
    };
    let cfg = check::judge::configured(&env, &settings).unwrap().unwrap();
    let deterministic = check::check(SUMMARY, &sources());
    let mut c = deterministic.clone();
    let report = judge(
        &http(),
        &cfg,
        &mut c,
        &sources(),
        Instant::now() + Duration::from_secs(20),
        &CancellationToken::new(),
    )
    .await;
    // Everything the check found is kept; only the verdicts are missing, and the report says why.
    assert_eq!(c, deterministic);
    assert_eq!((report.asked, report.answered), (2, 0));
    let error = report.error.clone().unwrap();
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains(KEY), "the key never shows: {error}");
    // The first failure stops further calls: the second claim was never sent (one claim's attempts,
    // with the HTTP layer's retries of a 5xx).
    assert!(lb.count() <= HttpLimits::default().max_attempts as usize);
    assert!(
        lb.requests()
            .iter()
            .all(|r| claim_of(&r.json()).contains("10,000"))
    );
    // A general model gets the instructions as a system turn.
    let body = lb.requests()[0].json();
    assert_eq!(body["messages"][0]["role"], json!("system"));
    let line = CheckLine::new(&c, Some(&report)).sentence();
    assert!(
        line.contains("the judge (openai gpt-4o-mini) gave no verdict"),
        "{line}"
    );
    assert!(!line.contains(KEY));
}

#[tokio::test]
async fn a_judge_that_hangs_is_given_up_at_the_deadline() {
    let lb = Loopback::start(|_, _| Reply::Hang).await;
    let cfg = ollama_judge(&lb.url(), None);
    let deterministic = check::check(SUMMARY, &sources());
    let mut c = deterministic.clone();
    let started = std::time::Instant::now();
    let report = judge(
        &http(),
        &cfg,
        &mut c,
        &sources(),
        Instant::now() + Duration::from_millis(800),
        &CancellationToken::new(),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(800 + 700),
        "returned {elapsed:?} after a deadline of 800 ms"
    );
    assert!(report.timed_out);
    assert!(report.error.unwrap().contains("in time"));
    assert_eq!(report.answered, 0);
    assert_eq!(c, deterministic);
}

#[tokio::test]
async fn a_judge_answering_neither_yes_nor_no_gives_no_verdict() {
    let lb = Loopback::start(|_, _| ok(completion("The document partly supports it."))).await;
    let cfg = ollama_judge(&lb.url(), Some(1));
    let mut c = check::check(SUMMARY, &sources());
    let report = judge(
        &http(),
        &cfg,
        &mut c,
        &sources(),
        Instant::now() + Duration::from_secs(10),
        &CancellationToken::new(),
    )
    .await;
    assert!(report.error.unwrap().contains("neither Yes nor No"));
    assert!(c.claims.iter().all(|c| c.judge.is_none()));
    assert_eq!(lb.count(), 1, "the first bad answer stops the judge");
}

#[tokio::test]
async fn an_anthropic_judge_answers_too() {
    let lb = Loopback::start(|_, _| {
        ok(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "No."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 60, "output_tokens": 2}
        }))
    })
    .await;
    let url = lb.url();
    let env = Env::from_pairs([
        ("ANTHROPIC_API_KEY", KEY),
        ("CONDUCTOR_ANTHROPIC_BASE_URL", url.as_str()),
    ]);
    let settings = VerifySettings {
        backend: Some(LlmBackend::Anthropic),
        ..VerifySettings::default()
    };
    let cfg = check::judge::configured(&env, &settings).unwrap().unwrap();
    let mut c = check::check(SUMMARY, &sources());
    let report = judge(
        &http(),
        &cfg,
        &mut c,
        &sources(),
        Instant::now() + Duration::from_secs(10),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!((report.asked, report.no, report.error), (2, 2, None));
    let req = &lb.requests()[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("x-api-key"), Some(KEY));
    assert!(req.json()["system"].as_str().unwrap().contains("Yes or No"));
}

#[tokio::test]
async fn judge_calls_are_bounded_by_the_concurrency_setting() {
    // A stand-in that counts requests in flight.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    // Calls are answered in pairs, once both are in flight (the event itself), so the client must have
    // two going at once; each is then held a moment more, so a third one it should not start would be
    // seen in flight.
    let pair = Arc::new(tokio::sync::Barrier::new(2));
    let app = {
        let (in_flight, max_seen, served) = (in_flight.clone(), max_seen.clone(), served.clone());
        axum::Router::new().fallback(move |_body: Bytes| {
            let (in_flight, max_seen, served, pair) = (
                in_flight.clone(),
                max_seen.clone(),
                served.clone(),
                pair.clone(),
            );
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                pair.wait().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                served.fetch_add(1, Ordering::SeqCst);
                axum::Json(completion("Yes"))
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    // Six sentences no source backs.
    let summary = (1..=6)
        .map(|i| format!("Claim number {i} says the moon is made of cheese {i} [1]."))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = check::check(&summary, &sources());
    assert_eq!(c.counts.unsupported, 6);
    let cfg = ollama_judge(&format!("http://{addr}"), Some(2));
    let report = judge(
        &http(),
        &cfg,
        &mut c,
        &sources(),
        Instant::now() + Duration::from_secs(20),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!((report.asked, report.yes, report.error), (6, 6, None));
    assert_eq!(served.load(Ordering::SeqCst), 6);
    let max = max_seen.load(Ordering::SeqCst);
    assert_eq!(max, 2, "{max} calls were in flight at once");
}

#[tokio::test]
async fn a_cancelled_research_stops_the_judge_at_once() {
    let lb = Loopback::start(|_, _| Reply::Hang).await;
    let cfg = ollama_judge(&lb.url(), None);
    let mut c = check::check(SUMMARY, &sources());
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    let http = http();
    let sources = sources();
    let task = judge(
        &http,
        &cfg,
        &mut c,
        &sources,
        Instant::now() + Duration::from_secs(30),
        &cancel,
    );
    tokio::pin!(task);
    // Cancel once the first request has reached the stand-in.
    let report = tokio::select! {
        r = &mut task => r,
        _ = lb.wait_for_requests(1) => {
            canceller.cancel();
            task.await
        }
    };
    assert_eq!(report.error.as_deref(), Some("cancelled"));
    assert_eq!(report.answered, 0);
}
