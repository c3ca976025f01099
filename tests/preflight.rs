//! `conductor-lsp providers --check`: each provider a research would use is asked once, with its cheapest
//! documented call, against loopback stand-ins in each API's documented format, and reported as ok, key
//! rejected, rate limited (until when), quota exceeded or unreachable, with the quota the API reports;
//! exit 0 only when every one is ok. Every other endpoint points at a closed loopback port, so nothing
//! here can reach the internet, whatever is checked.

mod common;

use std::time::Duration;

use common::{Loopback, Reply, Run, ok, run_cli, status};
use serde_json::{Value, json};

const TAVILY_KEY: &str = "tvly-preflightSecret0123456789";
const BRAVE_KEY: &str = "BSApreflightSecret0123456789";
const EXA_KEY: &str = "exa-preflightSecret0123456789";

/// The documented example answer of Tavily's `GET /usage`.
fn tavily_usage() -> Value {
    json!({
        "key": {"usage": 150, "limit": 1000},
        "account": {"current_plan": "Bootstrap", "plan_usage": 500, "plan_limit": 15000,
                    "paygo_usage": 25, "paygo_limit": 100}
    })
}

/// A Tavily stand-in: `GET /usage` answers the documented example, anything else is a 404.
async fn tavily_ok() -> Loopback {
    Loopback::start(|req, _| {
        if req.method == "GET" && req.path == "/usage" {
            ok(tavily_usage())
        } else {
            status(404, json!({"detail": {"error": "Not Found"}}))
        }
    })
    .await
}

/// A loopback address nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Every provider's endpoint on a closed loopback port, then `pairs` (which win). SearXNG has no
/// official endpoint: it runs only where a test sets its URL (`CONDUCTOR_SEARXNG_BASE_URL` alone would
/// enable it).
async fn env(pairs: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let closed = closed_port().await;
    let mut all: Vec<(&'static str, String)> = [
        "CONDUCTOR_TAVILY_BASE_URL",
        "CONDUCTOR_BRAVE_BASE_URL",
        "CONDUCTOR_EXA_BASE_URL",
        "CONDUCTOR_WIKIPEDIA_BASE_URL",
        "CONDUCTOR_HACKERNEWS_BASE_URL",
        "CONDUCTOR_ARXIV_BASE_URL",
    ]
    .into_iter()
    .map(|var| (var, closed.clone()))
    .collect();
    all.extend(pairs.iter().cloned());
    all
}

async fn check(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut argv = vec!["providers", "--check"];
    argv.extend_from_slice(args);
    run_cli(&argv, env, dir.path()).await
}

async fn check_json(args: &[&str], env: &[(&'static str, String)]) -> (Run, Value) {
    let mut argv = vec!["--format", "json"];
    argv.extend_from_slice(args);
    let run = check(&argv, env).await;
    let v = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}:\n{}\n{}", run.stdout, run.stderr));
    (run, v)
}

fn row<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {v:#}"))
}

fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} line in\n{}", run.stdout))
}

fn assert_no_key(run: &Run) {
    for key in [TAVILY_KEY, BRAVE_KEY, EXA_KEY] {
        assert!(
            !run.stdout.contains(key),
            "a key in stdout:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(key),
            "a key in stderr:\n{}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tavily_is_checked_through_its_usage_endpoint_with_the_credits_left() {
    let tavily = tavily_ok().await;
    // Configured but not used with a key set: never asked.
    let wikipedia = Loopback::start(|_, _| ok(common::wikipedia_response(&[]))).await;
    let env = env(&[
        ("TAVILY_API_KEY", TAVILY_KEY.into()),
        ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wikipedia.url()),
    ])
    .await;
    let run = check(&[], &env).await;
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let tavily_line = line(&run, "tavily");
    assert!(tavily_line.contains(" ok "), "{tavily_line}");
    assert!(
        tavily_line.contains("850 of 1000 credits left"),
        "{tavily_line}"
    );
    assert!(
        line(&run, "exa").contains("not configured"),
        "{}",
        run.stdout
    );
    assert!(
        line(&run, "wikipedia").contains("not checked"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("every provider used is ok"),
        "{}",
        run.stdout
    );
    assert_no_key(&run);

    // The cheap call: one GET /usage with the key as a bearer token, no search.
    let asked = tavily.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].method, "GET");
    assert_eq!(asked[0].path, "/usage");
    assert_eq!(
        asked[0].header("authorization"),
        Some(format!("Bearer {TAVILY_KEY}").as_str())
    );
    assert_eq!(wikipedia.count(), 0, "a provider not used was asked");

    let (run, v) = check_json(&[], &env).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(v["ok"], true);
    let t = row(&v, "tavily");
    assert_eq!(t["status"], "ok");
    assert_eq!(
        t["quota"],
        json!({"credits_left": 850, "credits_used": 150, "credits_limit": 1000, "plan": "Bootstrap"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_check_names_a_rejected_key_and_exits_1() {
    let tavily = tavily_ok().await;
    // Brave's documented error, echoing the key it was sent.
    let brave = Loopback::start(|req, _| {
        let sent = req.header("x-subscription-token").unwrap_or_default();
        status(
            401,
            json!({"type": "ErrorResponse", "error": {"id": "e1", "status": 401,
                   "code": "SUBSCRIPTION_TOKEN_INVALID",
                   "detail": format!("The provided subscription token {sent} is invalid.")}}),
        )
    })
    .await;
    let env = env(&[
        ("TAVILY_API_KEY", TAVILY_KEY.into()),
        ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
        ("BRAVE_API_KEY", BRAVE_KEY.into()),
        ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
    ])
    .await;
    let run = check(&[], &env).await;
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let brave_line = line(&run, "brave");
    assert!(brave_line.contains("key rejected"), "{brave_line}");
    assert!(brave_line.contains("HTTP 401"), "{brave_line}");
    assert!(line(&run, "tavily").contains(" ok "), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("1 of 2 used providers failed the check: brave (key rejected)"),
        "{}",
        run.stdout
    );
    assert_no_key(&run);

    // A one-result search, with the key in its header.
    let asked = brave.requests();
    assert_eq!(asked.len(), 1, "a rejected key is not asked again");
    assert_eq!(asked[0].path, "/res/v1/web/search");
    assert_eq!(asked[0].param("count"), Some("1"));
    assert_eq!(asked[0].header("x-subscription-token"), Some(BRAVE_KEY));

    let (run, v) = check_json(&[], &env).await;
    assert_eq!(run.status, 1);
    assert_eq!(v["ok"], false);
    assert_eq!(row(&v, "brave")["status"], "key_rejected");
    assert_no_key(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_provider_is_reported_with_its_retry_time() {
    let exa = Loopback::start(|_, _| Reply::Raw {
        status: axum::http::StatusCode::TOO_MANY_REQUESTS,
        headers: vec![
            ("retry-after", "3600".into()),
            ("content-type", "application/json".into()),
        ],
        body: json!({"requestId": "r", "error": "Rate limit exceeded", "tag": "RATE_LIMITED"})
            .to_string()
            .into_bytes(),
    })
    .await;
    let env = env(&[
        ("EXA_API_KEY", EXA_KEY.into()),
        ("CONDUCTOR_EXA_BASE_URL", exa.url()),
    ])
    .await;
    let (run, v) = check_json(&[], &env).await;
    assert_eq!(run.status, 1, "{}", run.stdout);
    let e = row(&v, "exa");
    assert_eq!(e["status"], "rate_limited");
    let at = chrono::DateTime::parse_from_rfc3339(e["retry_at"].as_str().unwrap()).unwrap();
    let ahead = at.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!(
        (3500..=3600).contains(&ahead),
        "retry_at {at} is {ahead} s ahead"
    );
    // Reported, not waited out or retried.
    assert_eq!(exa.count(), 1);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);

    // Exa's cheapest search: one result, no contents.
    let body = exa.requests()[0].json();
    assert_eq!(body["numResults"], 1, "{body}");
    assert!(body.get("contents").is_none(), "{body}");

    let run = check(&[], &env).await;
    let exa_line = line(&run, "exa");
    assert!(exa_line.contains("rate limited"), "{exa_line}");
    assert!(exa_line.contains("until 20"), "{exa_line}");
    assert_no_key(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_on_a_closed_port_is_unreachable() {
    // Every endpoint is a closed port: the key-less default set is checked and none answers.
    let env = env(&[]).await;
    let run = check(&[], &env).await;
    assert_eq!(run.status, 1, "{}", run.stdout);
    for name in ["wikipedia", "hackernews", "arxiv"] {
        let l = line(&run, name);
        assert!(l.contains("unreachable"), "{l}");
        assert!(l.contains("could not connect"), "{l}");
    }
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_json_lists_every_provider_with_its_status() {
    let tavily = tavily_ok().await;
    let brave =
        Loopback::start(|_, _| status(403, json!({"error": {"detail": "Forbidden"}}))).await;
    // Exa's documented answer to exhausted credits.
    let exa = Loopback::start(|_, _| {
        status(
            402,
            json!({"requestId": "r", "error": "No more credits", "tag": "NO_MORE_CREDITS"}),
        )
    })
    .await;
    let env = env(&[
        ("TAVILY_API_KEY", TAVILY_KEY.into()),
        ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
        ("BRAVE_API_KEY", BRAVE_KEY.into()),
        ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
        ("EXA_API_KEY", EXA_KEY.into()),
        ("CONDUCTOR_EXA_BASE_URL", exa.url()),
    ])
    .await;
    let (run, v) = check_json(&[], &env).await;
    assert_eq!(run.status, 1);
    assert_no_key(&run);
    assert_eq!(v["ok"], false);
    let rows = v["providers"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "tavily",
            "brave",
            "exa",
            "searxng",
            "wikipedia",
            "hackernews",
            "arxiv",
            "notes"
        ]
    );
    let allowed = [
        "ok",
        "key_rejected",
        "rate_limited",
        "quota_exceeded",
        "unreachable",
        "failed",
        "not_configured",
        "not_checked",
    ];
    for r in rows {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        for k in &keys {
            assert!(
                [
                    "name",
                    "used",
                    "status",
                    "detail",
                    "retry_at",
                    "quota",
                    "cost_usd",
                    "elapsed_ms"
                ]
                .contains(k),
                "unexpected field {k} in {r}"
            );
        }
        assert!(allowed.contains(&r["status"].as_str().unwrap()), "{r}");
        assert!(r["used"].is_boolean() && r["detail"].is_string(), "{r}");
        // Only the providers asked have a time.
        assert_eq!(r["elapsed_ms"].is_u64(), r["used"] == true, "{r}");
    }
    assert_eq!(row(&v, "tavily")["status"], "ok");
    assert_eq!(row(&v, "brave")["status"], "key_rejected");
    let e = row(&v, "exa");
    assert_eq!(e["status"], "quota_exceeded");
    assert!(
        e["detail"].as_str().unwrap().contains("No more credits"),
        "{e}"
    );
    assert_eq!(row(&v, "searxng")["status"], "not_configured");
    assert_eq!(row(&v, "searxng")["used"], false);
    assert_eq!(row(&v, "wikipedia")["status"], "not_checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brave_reports_the_quota_of_its_rate_limit_headers() {
    let brave = Loopback::start(|_, _| Reply::Raw {
        status: axum::http::StatusCode::OK,
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-ratelimit-limit", "1, 15000".into()),
            ("x-ratelimit-policy", "1;w=1, 15000;w=2592000".into()),
            ("x-ratelimit-remaining", "0, 1000".into()),
            ("x-ratelimit-reset", "1, 1419704".into()),
        ],
        body: common::brave_response(&[("T", "https://example.com/", "d")])
            .to_string()
            .into_bytes(),
    })
    .await;
    let env = env(&[
        ("BRAVE_SEARCH_API_KEY", BRAVE_KEY.into()),
        ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
    ])
    .await;
    let (run, v) = check_json(&[], &env).await;
    assert_eq!(run.status, 0, "{}", run.stdout);
    assert_eq!(
        row(&v, "brave")["quota"],
        json!({"remaining": 1000, "limit": 15000, "reset_s": 1419704, "window_s": 2592000})
    );
    let run = check(&[], &env).await;
    assert!(
        line(&run, "brave").contains("1000 of 15000 requests left per 30 d, resets in 16 d"),
        "{}",
        run.stdout
    );
    assert_no_key(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_less_providers_are_checked_with_a_one_result_query() {
    let wikipedia =
        Loopback::start(|_, _| ok(common::wikipedia_response(&[("Test", "A test.")]))).await;
    let hn = Loopback::start(|_, _| {
        ok(common::hn_response(&[(
            "T",
            Some("https://example.com/"),
            "1",
        )]))
    })
    .await;
    let arxiv = Loopback::start(|_, _| Reply::Raw {
        status: axum::http::StatusCode::OK,
        headers: vec![("content-type", "application/atom+xml".into())],
        body: common::arxiv_feed(&[("2401.00001v1", "T", "S")]).into_bytes(),
    })
    .await;
    let searx = Loopback::start(|_, _| {
        ok(common::searxng_response(&[(
            "T",
            "https://example.com/",
            "c",
        )]))
    })
    .await;
    let env = env(&[
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wikipedia.url()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
        ("CONDUCTOR_ARXIV_BASE_URL", arxiv.url()),
        ("SEARXNG_URL", searx.url()),
        ("CONDUCTOR_SEARXNG_BASE_URL", searx.url()),
    ])
    .await;
    let run = check(&["--providers", "wikipedia,hackernews,arxiv,searxng"], &env).await;
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    for name in ["wikipedia", "hackernews", "arxiv", "searxng"] {
        let l = line(&run, name);
        assert!(l.contains(" ok ") && l.contains("one-result search"), "{l}");
    }
    let one = |lb: &Loopback, param: &str| {
        let asked = lb.requests();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].param(param), Some("1"), "{param}");
    };
    one(&wikipedia, "gsrlimit");
    one(&hn, "hitsPerPage");
    one(&arxiv, "max_results");
    // SearXNG has no result count: one query.
    assert_eq!(searx.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_run_at_once_under_one_deadline() {
    let wikipedia = Loopback::start(|_, _| Reply::Hang).await;
    let hn = Loopback::start(|_, _| Reply::Hang).await;
    let arxiv = Loopback::start(|_, _| Reply::Hang).await;
    let env = env(&[
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wikipedia.url()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
        ("CONDUCTOR_ARXIV_BASE_URL", arxiv.url()),
    ])
    .await;
    let (run, v) = check_json(&["--timeout", "2"], &env).await;
    assert_eq!(run.status, 1);
    for name in ["wikipedia", "hackernews", "arxiv"] {
        let r = row(&v, name);
        assert_eq!(r["status"], "unreachable", "{r}");
        assert!(r["detail"].as_str().unwrap().contains("timed out"), "{r}");
    }
    // One after the other would take 6 s.
    assert!(
        run.elapsed < Duration::from_millis(4500),
        "{:?}",
        run.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_named_without_its_key_fails_the_check() {
    let env = env(&[]).await;
    let (run, v) = check_json(&["--providers", "exa"], &env).await;
    assert_eq!(run.status, 1, "{}", run.stdout);
    let e = row(&v, "exa");
    assert_eq!(e["used"], true);
    assert_eq!(e["status"], "not_configured");
    assert_eq!(e["detail"], "set EXA_API_KEY");
    // The others are not asked: the closed ports would make them unreachable.
    assert_eq!(row(&v, "wikipedia")["status"], "not_checked");
    assert_eq!(row(&v, "wikipedia")["used"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_checked_by_reading_their_folder() {
    let env = env(&[]).await;
    let (run, v) = check_json(&["--providers", "notes"], &env).await;
    assert_eq!(run.status, 0, "{}", run.stdout);
    let n = row(&v, "notes");
    assert_eq!(n["status"], "ok");
    assert_eq!(n["detail"], "1 folder readable");
}
