//! The cache of provider answers and read pages, and the memory of rate limits, through the CLI with
//! loopback stand-ins: what is asked again, what is not, and what the report says.

mod common;
mod evidence_support;

use axum::http::StatusCode;
use common::{Loopback, Reply, hn_response, ok, run_cli, wikipedia_response};
use serde_json::{Value, json};

fn wiki_answer() -> Value {
    wikipedia_response(&[
        (
            "Tokio (software)",
            "Tokio is an asynchronous runtime for Rust.",
        ),
        ("Async/await", "Syntax for asynchronous functions."),
    ])
}

fn env(wiki: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        // The default (the test runner turns the cache off).
        ("CONDUCTOR_CACHE_HOURS", "24".into()),
        ("CONDUCTOR_PROVIDERS", "wikipedia".into()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
    ]
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_identical_research_asks_no_provider_and_says_cached() {
    let wiki = Loopback::start(|_, _| ok(wiki_answer())).await;
    let dir = tempfile::tempdir().unwrap();
    let first = run_cli(&["research", "tokio runtime"], &env(&wiki), dir.path()).await;
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert_eq!(wiki.count(), 1);
    assert!(!first.stdout.contains("cached"), "{}", first.stdout);

    // The same topic, however it is spaced or capitalised: answered from the cache.
    let second = run_cli(&["research", "Tokio   Runtime"], &env(&wiki), dir.path()).await;
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(wiki.count(), 1, "no request the second time");
    assert!(
        second.stdout.contains("with wikipedia (2, cached ") && second.stdout.contains(" ago)"),
        "{}",
        second.stdout
    );
    let args = ["research", "tokio runtime", "--format", "json"];
    let third = run_cli(&args, &env(&wiki), dir.path()).await;
    assert_eq!(wiki.count(), 1);
    let j = json(&third.stdout);
    assert!(j["providers"][0]["cached"]["age_s"].is_u64(), "{j:#}");
    // A cached answer cost nothing this time.
    assert_eq!(j["cost"]["usd"], 0.0, "{j:#}");
    assert_eq!(j["sources"][0]["title"], "Tokio (software)");

    // A cache of 0 hours is no cache.
    let mut off = env(&wiki);
    off.push(("CONDUCTOR_CACHE_HOURS", "0".into()));
    let run = run_cli(&["research", "tokio runtime"], &off, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(wiki.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_and_refresh_ask_again() {
    let wiki = Loopback::start(|_, _| ok(wiki_answer())).await;
    let dir = tempfile::tempdir().unwrap();
    // --no-cache neither reads nor writes: the next research still asks.
    let run = run_cli(
        &["research", "tokio", "--no-cache"],
        &env(&wiki),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let run = run_cli(&["research", "tokio"], &env(&wiki), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(wiki.count(), 2);
    let run = run_cli(
        &["research", "tokio", "--no-cache"],
        &env(&wiki),
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        wiki.count(),
        3,
        "--no-cache asks although the cache holds an answer"
    );
    // --refresh asks again, and keeps the new answer for the next research.
    let run = run_cli(&["research", "tokio", "--refresh"], &env(&wiki), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(wiki.count(), 4);
    assert!(!run.stdout.contains("cached"), "{}", run.stdout);
    let run = run_cli(&["research", "tokio"], &env(&wiki), dir.path()).await;
    assert_eq!(wiki.count(), 4);
    assert!(run.stdout.contains("cached"), "{}", run.stdout);
    // Both at once is a usage error.
    let both = ["research", "tokio", "--refresh", "--no-cache"];
    assert_eq!(run_cli(&both, &env(&wiki), dir.path()).await.status, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_never_cached() {
    // The first answer is a server error (and its retries too), then the stand-in recovers.
    let wiki = Loopback::start(|_, n| {
        if n < 3 {
            common::status(500, json!({"error": "down"}))
        } else {
            ok(wiki_answer())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut e = env(&wiki);
    e.push(("CONDUCTOR_TIMEOUT", "5".into()));
    let first = run_cli(&["research", "tokio"], &e, dir.path()).await;
    assert_eq!(first.status, 1, "every provider failed: {}", first.stderr);
    let failed_requests = wiki.count();
    let second = run_cli(&["research", "tokio"], &e, dir.path()).await;
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert!(
        wiki.count() > failed_requests,
        "asked again after a failure"
    );
    assert!(!second.stdout.contains("cached"), "{}", second.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_past_the_deadline_suspends_the_provider_for_later_runs() {
    let wiki = Loopback::start(|_, _| ok(wiki_answer())).await;
    let hn = Loopback::start(|_, _| Reply::Raw {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: vec![
            ("retry-after", "3600".into()),
            ("content-type", "application/json".into()),
        ],
        body: br#"{"message":"slow down"}"#.to_vec(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let e = vec![
        ("CONDUCTOR_CACHE_HOURS", "24".to_string()),
        ("CONDUCTOR_PROVIDERS", "wikipedia,hackernews".to_string()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
    ];
    let first = run_cli(&["research", "tokio", "--format", "json"], &e, dir.path()).await;
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert_eq!(hn.count(), 1, "a wait of an hour is not waited out");
    assert_eq!(
        json(&first.stdout)["providers"][1]["error_kind"],
        "rate_limited"
    );

    // Another topic (nothing cached): Hacker News is not asked until the hour is over.
    let second = run_cli(
        &["research", "async rust", "--format", "json"],
        &e,
        dir.path(),
    )
    .await;
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(hn.count(), 1, "the suspended provider gets no request");
    let j = json(&second.stdout);
    let run = &j["providers"][1];
    assert_eq!(run["name"], "hackernews");
    assert_eq!(run["error_kind"], "rate_limited");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("rate limited until "),
        "{run:#}"
    );
    assert!(run["elapsed_ms"].as_u64().unwrap() < 100, "{run:#}");

    // `providers` says so too.
    let list = run_cli(&["providers"], &e, dir.path()).await;
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("hackernews"))
        .unwrap()
        .to_string();
    assert!(line.contains("rate limited until "), "{}", list.stdout);
    let list = run_cli(&["providers", "--format", "json"], &e, dir.path()).await;
    let j = json(&list.stdout);
    let hn_row = j["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hackernews")
        .unwrap();
    assert!(hn_row["suspended_until"].is_string(), "{hn_row:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_read_once_is_read_from_the_cache_for_another_topic() {
    let site =
        evidence_support::serve(|_, _| async { evidence_support::html(evidence_support::ARTICLE) })
            .await;
    let url = site.url("/article");
    let hn = Loopback::start(move |_, _| {
        ok(hn_response(&[(
            "How Tokio schedules tasks",
            Some(url.as_str()),
            "1",
        )]))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let e = vec![
        ("CONDUCTOR_CACHE_HOURS", "24".to_string()),
        ("CONDUCTOR_PROVIDERS", "hackernews".to_string()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
        ("CONDUCTOR_FETCH_ALLOW", site.addr.to_string()),
        ("CONDUCTOR_READ", "1".to_string()),
    ];
    let hits = || site.hits.load(std::sync::atomic::Ordering::SeqCst);
    let args = ["research", "tokio work stealing", "--format", "json"];
    let first = run_cli(&args, &e, dir.path()).await;
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert_eq!(hits(), 1);
    let j = json(&first.stdout);
    assert_eq!(
        j["sources"][0]["read"],
        json!({"status": "read", "via": "page"})
    );

    // Another topic: the provider is asked, the page is not fetched again, and its passages are ranked
    // for the new topic.
    let args = ["research", "tokio blocking thread pool", "--format", "json"];
    let second = run_cli(&args, &e, dir.path()).await;
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(hn.count(), 2);
    assert_eq!(hits(), 1, "the page came from the cache");
    let j = json(&second.stdout);
    let read = &j["sources"][0]["read"];
    assert_eq!(read["status"], "read");
    assert!(read["cached"]["age_s"].is_u64(), "{read:#}");
    let quote = j["sources"][0]["passages"][0]["text"].as_str().unwrap();
    assert!(quote.contains("Blocking work"), "{quote}");
}
