//! `conductor-lsp research` end to end: the real binary against loopback providers that answer in each
//! provider's documented format. Each test asserts what a user sees: the report, stderr, the exit status.
//! What the report and stderr say is a snapshot (`tests/snapshots/research_cli__*.snap`, with the date,
//! timings and footnote prefixes filtered out); promises that must hold whatever the snapshot says
//! (escaping, no secrets, what was sent) stay explicit assertions.

mod common;
mod snap_support;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use pulldown_cmark::{Event, Parser, Tag};
use serde_json::json;

const TAVILY_KEY: &str = "tvly-test-secret-0001";
const BRAVE_KEY: &str = "brave-test-secret-0002";
const EXA_KEY: &str = "exa-test-secret-0003";

/// Environment for a run: keys for the keyed providers, and each provider pointed at its stand-in.
fn env(providers: &str, servers: &[(&str, &Loopback)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("TAVILY_API_KEY", TAVILY_KEY.to_string()),
        ("BRAVE_API_KEY", BRAVE_KEY.to_string()),
        ("EXA_API_KEY", EXA_KEY.to_string()),
        ("CONDUCTOR_PROVIDERS", providers.to_string()),
    ];
    for (name, server) in servers {
        let var: &'static str = match *name {
            "tavily" => "CONDUCTOR_TAVILY_BASE_URL",
            "brave" => "CONDUCTOR_BRAVE_BASE_URL",
            "exa" => "CONDUCTOR_EXA_BASE_URL",
            "wikipedia" => "CONDUCTOR_WIKIPEDIA_BASE_URL",
            "hackernews" => "CONDUCTOR_HACKERNEWS_BASE_URL",
            "arxiv" => "CONDUCTOR_ARXIV_BASE_URL",
            "searxng" => "SEARXNG_URL",
            other => panic!("no stand-in for {other}"),
        };
        env.push((var, server.url()));
    }
    env
}

async fn research(args: &[&str], env: &[(&str, String)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut full = vec!["research"];
    full.extend_from_slice(args);
    run_cli(&full, env, dir.path()).await
}

fn assert_no_secrets(run: &Run) {
    for key in [TAVILY_KEY, BRAVE_KEY, EXA_KEY] {
        assert!(!run.stdout.contains(key), "key in stdout");
        assert!(!run.stderr.contains(key), "key in stderr");
    }
}

/// Every link in the rendered markdown: (destination, text).
fn links(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for ev in Parser::new(markdown) {
        match ev {
            Event::Start(Tag::Link { dest_url, .. }) => {
                current = Some((dest_url.to_string(), String::new()))
            }
            Event::Text(t) => {
                if let Some((_, text)) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::End(pulldown_cmark::TagEnd::Link) => out.extend(current.take()),
            _ => {}
        }
    }
    out
}

fn citations(markdown: &str) -> Vec<&str> {
    markdown
        .split("## Citations")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter(|l| l.starts_with("- ["))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_page_from_three_providers_is_one_source_crediting_all_three() {
    let tavily = Loopback::start(|_, _| {
        ok(tavily_response(&[
            (
                Some("The State of Async Rust"),
                "https://www.corrode.dev/blog/async/",
                "Runtimes compared.",
            ),
            (Some("Tokio"), "https://tokio.rs/", "Tokio is a runtime."),
        ]))
    })
    .await;
    let brave = Loopback::start(|_, _| {
        ok(brave_response(&[(
            "The State of Async Rust: Runtimes",
            "http://corrode.dev/blog/async?utm_source=brave&utm_medium=web",
            "A longer description of <strong>async</strong> runtimes in Rust.",
        )]))
    })
    .await;
    let exa = Loopback::start(|_, _| {
        ok(exa_response(&[
            (None, "https://corrode.dev/blog/async", "Highlight"),
            (
                Some("HN thread"),
                "https://news.ycombinator.com/item?id=37639896&utm_campaign=x",
                "hl",
            ),
        ]))
    })
    .await;
    let run = research(
        &["rust async runtimes"],
        &env(
            "tavily,brave,exa",
            &[("tavily", &tavily), ("brave", &brave), ("exa", &exa)],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let cites = citations(&run.stdout);
    assert_eq!(cites.len(), 3, "{}", run.stdout);
    // The page all three found ranks first and credits all three.
    assert_eq!(
        cites[0],
        "- [The State of Async Rust](https://www.corrode.dev/blog/async/) - tavily, brave, exa"
    );
    // The rest: a meaningful query parameter survives and tracking parameters do not; what the calls
    // cost, where the APIs say (Exa's costDollars); the longest snippet, its HTML removed.
    snap_support::assert_cli("three_providers_one_source", &run.stdout, &run.stderr);
    // Tavily reports its credits only when asked.
    assert_eq!(tavily.requests()[0].json()["include_usage"], true);
    assert_no_secrets(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_is_asked_as_its_api_documents() {
    let tavily = Loopback::start(|_, _| ok(tavily_response(&[]))).await;
    let brave = Loopback::start(|_, _| ok(brave_response(&[]))).await;
    let exa = Loopback::start(|_, _| ok(exa_response(&[]))).await;
    let wiki = Loopback::start(|_, _| ok(wikipedia_response(&[]))).await;
    let hn = Loopback::start(|_, _| ok(hn_response(&[]))).await;
    let arxiv = Loopback::start(|_, _| Reply::Raw {
        status: StatusCode::OK,
        headers: vec![("content-type", "application/atom+xml".into())],
        body: arxiv_feed(&[]).into_bytes(),
    })
    .await;
    let searx = Loopback::start(|_, _| ok(searxng_response(&[]))).await;
    let run = research(
        &["tokio runtime"],
        &env(
            "tavily,brave,exa,wikipedia,hackernews,arxiv,searxng",
            &[
                ("tavily", &tavily),
                ("brave", &brave),
                ("exa", &exa),
                ("wikipedia", &wiki),
                ("hackernews", &hn),
                ("arxiv", &arxiv),
                ("searxng", &searx),
            ],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains("No sources were found."));

    let t = &tavily.requests()[0];
    assert_eq!((t.method.as_str(), t.path.as_str()), ("POST", "/search"));
    assert_eq!(
        t.header("authorization"),
        Some(format!("Bearer {TAVILY_KEY}").as_str())
    );
    assert_eq!(t.json()["query"], "tokio runtime");
    assert!(
        t.json().get("api_key").is_none(),
        "the key goes in the header, not the body"
    );

    let b = &brave.requests()[0];
    assert_eq!(
        (b.method.as_str(), b.path.as_str()),
        ("GET", "/res/v1/web/search")
    );
    assert_eq!(b.header("x-subscription-token"), Some(BRAVE_KEY));
    assert_eq!(b.param("q"), Some("tokio runtime"));

    let e = &exa.requests()[0];
    assert_eq!((e.method.as_str(), e.path.as_str()), ("POST", "/search"));
    assert_eq!(e.header("x-api-key"), Some(EXA_KEY));
    assert!(
        e.json()["contents"].is_object(),
        "contents are asked for explicitly"
    );

    let w = &wiki.requests()[0];
    assert_eq!(w.path, "/w/api.php");
    assert_eq!(w.param("generator"), Some("search"));
    assert_eq!(w.param("gsrsearch"), Some("tokio runtime"));
    assert!(
        w.header("user-agent")
            .unwrap()
            .starts_with("conductor-lsp/")
    );

    let h = &hn.requests()[0];
    assert_eq!(h.path, "/api/v1/search");
    assert_eq!(h.param("query"), Some("tokio runtime"));

    let a = &arxiv.requests()[0];
    assert_eq!(a.path, "/api/query");
    assert_eq!(a.param("search_query"), Some("all:tokio AND all:runtime"));

    let s = &searx.requests()[0];
    assert_eq!(s.path, "/search");
    assert_eq!(s.param("format"), Some("json"));
    assert_no_secrets(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_text_cannot_inject_markdown_and_bad_links_are_dropped() {
    let tavily = Loopback::start(|_, _| {
        ok(tavily_response(&[
            (
                None,
                "https://example.com/posts/untitled-post.html",
                "no title",
            ),
            (
                Some("Links [x](https://evil.example) | pipes\n# Injected heading"),
                "https://example.com/a",
                "a",
            ),
            (
                Some("Rust (programming language)"),
                "https://en.wikipedia.org/wiki/Rust_(programming_language)",
                "b",
            ),
            (Some("Click me"), "javascript:alert(1)", "evil"),
            (
                Some("<img src=x onerror=alert(1)>Image"),
                "https://example.com/img",
                "<script>alert(1)</script>&lt;b&gt;bold&lt;/b&gt; &amp; more",
            ),
            (
                Some("```\nfence"),
                "https://example.com/fence",
                "\u{202E}reversed\u{200B} text",
            ),
        ]))
    })
    .await;
    let run = research(&["injection"], &env("tavily", &[("tavily", &tavily)])).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let md = &run.stdout;
    // Exactly one link per source; the javascript: result is gone.
    let links = links(md);
    assert_eq!(links.len(), 5, "{md}");
    assert!(
        links.iter().all(|(d, _)| d.starts_with("https://")),
        "{links:?}"
    );
    assert!(!md.contains("javascript:"));
    // The URL with parentheses stays one valid link.
    assert!(links.iter().any(|(d, t)| d
        == "https://en.wikipedia.org/wiki/Rust_(programming_language)"
        && t == "Rust (programming language)"));
    // A result without a title gets one from its URL.
    assert!(
        links
            .iter()
            .any(|(_, t)| t == "untitled post (example.com)"),
        "{links:?}"
    );
    // The hostile title is one line of text: no extra heading, no link, no HTML.
    let headings = Parser::new(md)
        .filter(|e| matches!(e, Event::Start(Tag::Heading { .. })))
        .count();
    assert_eq!(headings, 4, "title, Objective, Research, Citations:\n{md}");
    assert!(
        !Parser::new(md).any(|e| matches!(e, Event::Html(_) | Event::InlineHtml(_))),
        "{md}"
    );
    assert!(
        !Parser::new(md).any(|e| matches!(e, Event::Start(Tag::CodeBlock(_)))),
        "{md}"
    );
    assert!(
        links
            .iter()
            .any(|(_, t)| t == "Links [x](https://evil.example) | pipes # Injected heading"),
        "{links:?}"
    );
    assert!(
        !md.contains("<b>bold</b>") && md.contains("bold & more"),
        "{md}"
    );
    assert!(!md.contains('\u{202E}') && !md.contains('\u{200B}'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_carries_the_same_data() {
    let wiki = Loopback::start(|_, _| {
        ok(wikipedia_response(&[(
            "Tokio (software)",
            "an <span class=\"searchmatch\">async</span> runtime &amp; more",
        )]))
    })
    .await;
    let hn = Loopback::start(|_, _| Reply::Hang).await;
    let run = research(
        &["tokio", "--format", "json", "--timeout", "1"],
        &env(
            "wikipedia,hackernews",
            &[("wikipedia", &wiki), ("hackernews", &hn)],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // The date and timings are redacted in the snapshot: they are checked for their type here.
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert!(
        chrono_like(v["date"].as_str().unwrap()),
        "RFC 3339: {}",
        v["date"]
    );
    assert!(v["elapsed_ms"].is_u64() && v["providers"][0]["elapsed_ms"].is_u64());
    snap_support::assert_report_json("json_output", &run.stdout);
}

/// `2026-11-25T10:11:12...`: an RFC 3339 date and time.
fn chrono_like(date: &str) -> bool {
    let b = date.as_bytes();
    b.len() >= 20
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_provider_is_named_and_the_others_still_report() {
    let brave = Loopback::start(|_, _| Reply::Raw {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: vec![("retry-after", "120".into()), ("content-type", "application/json".into())],
        body: json!({"type":"ErrorResponse","error":{"status":429,"code":"RATE_LIMITED","detail":"Request rate limit exceeded for plan."}})
            .to_string()
            .into_bytes(),
    })
    .await;
    let wiki =
        Loopback::start(|_, _| ok(wikipedia_response(&[("Tokio (software)", "runtime")]))).await;
    let run = research(
        &["tokio"],
        &env(
            "brave,wikipedia",
            &[("brave", &brave), ("wikipedia", &wiki)],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Named with its wait in the report and on stderr; the others' sources are there.
    snap_support::assert_cli("rate_limited_provider", &run.stdout, &run.stderr);
    // A Retry-After beyond what we wait for is not retried.
    assert_eq!(brave.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_then_success_is_retried_and_a_429_with_short_retry_after_too() {
    let tavily = Loopback::start(|_, n| {
        if n == 0 {
            status(503, json!({"detail": {"error": "overloaded"}}))
        } else {
            ok(tavily_response(&[(
                Some("After retry"),
                "https://example.com/retry",
                "ok",
            )]))
        }
    })
    .await;
    let brave = Loopback::start(|_, n| {
        if n == 0 {
            Reply::Raw {
                status: StatusCode::TOO_MANY_REQUESTS,
                headers: vec![("retry-after", "1".into())],
                body: b"{}".to_vec(),
            }
        } else {
            ok(brave_response(&[(
                "Brave after wait",
                "https://example.com/brave",
                "ok",
            )]))
        }
    })
    .await;
    let run = research(
        &["retry"],
        &env("tavily,brave", &[("tavily", &tavily), ("brave", &brave)]),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Both sources, and no failure.
    snap_support::assert_cli("retried_503_and_429", &run.stdout, &run.stderr);
    assert_eq!(tavily.count(), 2);
    assert_eq!(brave.count(), 2);
    // Retry-After: 1 was honoured.
    assert!(run.elapsed >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_bad_keys_and_html_pages_are_reported_plainly() {
    let tavily =
        Loopback::start(|_, _| status(500, json!({"detail": {"error": "Internal error"}}))).await;
    let exa = Loopback::start(|_, _| {
        status(
            401,
            json!({"requestId": "r", "error": "Invalid API key", "tag": "INVALID_API_KEY"}),
        )
    })
    .await;
    let brave = Loopback::start(|_, _| Reply::Raw {
        status: StatusCode::OK,
        headers: vec![("content-type", "text/html".into())],
        body: b"<!DOCTYPE html><html><body>Are you a robot?</body></html>".to_vec(),
    })
    .await;
    let wiki = Loopback::start(|_, _| ok(wikipedia_response(&[("Survivor", "still here")]))).await;
    let run = research(
        &["faults"],
        &env(
            "tavily,exa,brave,wikipedia",
            &[
                ("tavily", &tavily),
                ("exa", &exa),
                ("brave", &brave),
                ("wikipedia", &wiki),
            ],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Each failure in words, in the report and on stderr; the survivor's source.
    snap_support::assert_cli("faults_reported_plainly", &run.stdout, &run.stderr);
    // 500 is retried (3 attempts in all), 401 and a 200 HTML page are not.
    assert_eq!(tavily.count(), 3);
    assert_eq!(exa.count(), 1);
    assert_eq!(brave.count(), 1);
    assert_no_secrets(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_answers_costs_no_more_than_the_deadline() {
    let hn = Loopback::start(|_, _| Reply::Hang).await;
    let wiki = Loopback::start(|_, _| ok(wikipedia_response(&[("Fast", "answer")]))).await;
    let run = research(
        &["deadline", "--timeout", "1.5"],
        &env(
            "hackernews,wikipedia",
            &[("hackernews", &hn), ("wikipedia", &wiki)],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    snap_support::assert_cli("hanging_provider", &run.stdout, &run.stderr);
    assert!(
        run.elapsed < Duration::from_millis(3500),
        "took {:?}",
        run.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_refused_without_being_read_whole() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p2 = pulled.clone();
    let tavily = Loopback::start(move |_, _| Reply::Stream {
        total: 64 * 1024 * 1024,
        pulled: p2.clone(),
    })
    .await;
    let brave = Loopback::start(|_, _| Reply::Raw {
        status: StatusCode::OK,
        headers: vec![("content-type", "application/json".into())],
        body: vec![b' '; 64 * 1024 * 1024],
    })
    .await;
    let wiki = Loopback::start(|_, _| ok(wikipedia_response(&[("Small", "answer")]))).await;
    let run = research(
        &["huge"],
        &env(
            "tavily,brave,wikipedia",
            &[("tavily", &tavily), ("brave", &brave), ("wikipedia", &wiki)],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    snap_support::assert_cli("huge_bodies", &run.stdout, &run.stderr);
    // The streamed body was abandoned soon after the cap (the rest of 64 MiB was never pulled).
    let pulled = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(pulled < 24 * 1024 * 1024, "pulled {pulled} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_provider_fails_the_exit_status_is_1_with_a_line_each() {
    let tavily =
        Loopback::start(|_, _| status(401, json!({"detail": {"error": "Unauthorized"}}))).await;
    let brave = Loopback::start(|_, _| {
        status(422, json!({"type":"ErrorResponse","error":{"status":422,"code":"SUBSCRIPTION_TOKEN_INVALID","detail":"The provided subscription token is invalid."}}))
    })
    .await;
    let exa =
        Loopback::start(|_, _| status(400, json!({"error": "bad", "tag": "INVALID_REQUEST_BODY"})))
            .await;
    let run = research(
        &["nothing works"],
        &env(
            "tavily,brave,exa",
            &[("tavily", &tavily), ("brave", &brave), ("exa", &exa)],
        ),
    )
    .await;
    assert_eq!(run.status, 1);
    assert_eq!(run.stdout, "");
    snap_support::assert_cli("every_provider_failed", &run.stdout, &run.stderr);
    assert_no_secrets(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_configured_provider_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(
        &["research", "x", "--providers", "tavily,brave"],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 1);
    snap_support::assert_cli("nothing_configured", &run.stdout, &run.stderr);

    let run = run_cli(&["research", "x", "--providers", "bing"], &[], dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("unknown provider 'bing'"));
    let run = run_cli(&["research", "x", "--max-sources", "0"], &[], dir.path()).await;
    assert_eq!(run.status, 2);
    let run = run_cli(&["research"], &[], dir.path()).await;
    assert_eq!(run.status, 2);
    let run = run_cli(
        &["research", "x"],
        &[("CONDUCTOR_TIMEOUT", "soon".into())],
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("CONDUCTOR_TIMEOUT must be a number"));

    // A config file that does not parse is an error naming the file, never silently ignored.
    std::fs::create_dir_all(dir.path().join("config/conductor")).unwrap();
    std::fs::write(
        dir.path().join("config/conductor/config.toml"),
        "max_sources = \"ten\"\n",
    )
    .unwrap();
    let run = run_cli(&["research", "x"], &[], dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("config.toml"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citation_styles_output_file_and_max_sources() {
    let wiki = Loopback::start(|_, _| {
        ok(wikipedia_response(&[
            ("One", "first"),
            ("Two", "second"),
            ("Three", "third"),
        ]))
    })
    .await;
    let e = env("wikipedia", &[("wikipedia", &wiki)]);
    let run = research(&["styles", "--style", "numbered", "--max-sources", "2"], &e).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Two sources of three, numbered.
    snap_support::assert_cli("numbered_two_sources", &run.stdout, &run.stderr);

    let run = research(&["styles", "--style", "footnotes"], &e).await;
    // Labels carry the report's prefix (`[^c1a2b3c-2]`, filtered to `[^c[prefix]-2]`), so two reports
    // in one note never share one.
    snap_support::assert_cli("footnotes", &run.stdout, &run.stderr);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.md");
    let run = run_cli(
        &["research", "styles", "-o", out.to_str().unwrap()],
        &e,
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0);
    assert_eq!(run.stdout, "");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("# Conductor Report: styles\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_searched_and_cited_as_file_links() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("runtimes.md"),
        "# Runtime notes\n\nSmol is a small async runtime.\n\nTokio uses a work-stealing scheduler.",
    )
    .unwrap();
    std::fs::write(dir.path().join("other.md"), "# Groceries\n\nMilk and eggs.").unwrap();
    let run = run_cli(
        &[
            "research",
            "work-stealing scheduler",
            "--providers",
            "notes",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // The note that matches, cited by a file: URL (its folder is a temporary one: shown as [notes]).
    let folder = url::Url::from_directory_path(dir.path().canonicalize().unwrap()).unwrap();
    let stdout = run.stdout.replace(folder.as_str(), "file:///[notes]/");
    snap_support::assert_cli("notes", &stdout, &run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_appear_even_in_trace_logs() {
    let tavily =
        Loopback::start(|_, _| status(401, json!({"detail": {"error": "Unauthorized"}}))).await;
    let brave =
        Loopback::start(|_, _| ok(brave_response(&[("B", "https://example.com/b", "b")]))).await;
    let mut e = env("tavily,brave", &[("tavily", &tavily), ("brave", &brave)]);
    e.push(("CONDUCTOR_LOG", "trace".into()));
    let run = research(&["secrets"], &e).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!run.stderr.is_empty(), "trace logging produced output");
    assert_no_secrets(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_command_lists_each_provider_and_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(
        &["providers"],
        &[("BRAVE_SEARCH_API_KEY", BRAVE_KEY.into())],
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0);
    // The notes folder and the config file are in the run's temporary folder: shown as [dir].
    let stdout = run.stdout.replace(dir.path().to_str().unwrap(), "[dir]");
    snap_support::assert_cli("providers", &stdout, &run.stderr);
    assert_no_secrets(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_loops_are_cut_short() {
    let hn = Loopback::start(|req, _| Reply::Raw {
        status: StatusCode::FOUND,
        headers: vec![("location", format!("{}?again=1", req.path))],
        body: Vec::new(),
    })
    .await;
    let wiki = Loopback::start(|_, _| ok(wikipedia_response(&[("Still here", "ok")]))).await;
    let run = research(
        &["loops"],
        &env(
            "hackernews,wikipedia",
            &[("hackernews", &hn), ("wikipedia", &wiki)],
        ),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    snap_support::assert_cli("redirect_loop", &run.stdout, &run.stderr);
    // The first request and at most 5 redirects.
    assert!(hn.count() <= 6, "{} requests", hn.count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_at_once_and_prints_no_report() {
    let hn = Loopback::start(|_, _| Reply::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"))
        .args(["research", "interrupted", "--timeout", "60"])
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("CONDUCTOR_PROVIDERS", "hackernews")
        .env("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until the request is in flight, then interrupt as a terminal's Ctrl-C would.
    tokio::time::timeout(Duration::from_secs(10), hn.wait_for_requests(1))
        .await
        .expect("the provider was asked");
    assert_eq!(hn.count(), 1);
    let pid = child.id().unwrap().to_string();
    let interrupted = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("exits soon after Ctrl-C")
        .unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(1),
        "took {:?}",
        interrupted.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("research cancelled"));
}
