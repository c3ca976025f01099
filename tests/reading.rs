//! The reading stage seen from outside: a research through the CLI and through the language server, with
//! a loopback search provider whose results point at loopback pages (an article with navigation, a bot
//! check, a 404, a page slower than the deadline, a redirect to a port reading may not reach). Only the
//! pages these tests serve are ever fetched: `CONDUCTOR_FETCH_ALLOW` names the page server alone.

mod common;
mod evidence_support;
mod lsp_support;

use std::net::SocketAddr;
use std::time::Duration;

use conductor::config::Env;
use evidence_support::{ARTICLE, Canary, FURNITURE, KEY_PASSAGE, Site};
use serde_json::{Value, json};

const TOPIC: &str = "tokio work stealing scheduler";

const BOT_CHECK: &str = r#"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>
<div id="challenge-body"><h1>Checking your browser</h1><p>tokio work stealing scheduler</p>
<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script></div></body></html>"#;

/// The pages: `/article`, `/cloudflare` (a bot check), `/gone` (404), `/slow` (answers after 60 s) and
/// `/moved` (a redirect to the canary, which reading may not reach).
async fn pages(canary: SocketAddr) -> Site {
    evidence_support::serve(move |path, _| async move {
        match path.as_str() {
            "/article" => evidence_support::html(ARTICLE),
            "/cloudflare" => evidence_support::status(403, "text/html", BOT_CHECK),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                evidence_support::html(ARTICLE)
            }
            "/moved" => evidence_support::redirect(&format!("http://{canary}/article")),
            _ => evidence_support::status(404, "text/html", "<h1>Not found</h1>"),
        }
    })
    .await
}

/// A Hacker News stand-in (Algolia's documented format) whose stories link to `site`'s pages.
async fn hacker_news(site: &Site) -> common::Loopback {
    let hits = [
        ("How Tokio schedules tasks", site.url("/article"), "1"),
        (
            "Tokio scheduler, behind a bot check",
            site.url("/cloudflare"),
            "2",
        ),
        ("A scheduler post that was deleted", site.url("/gone"), "3"),
        ("A very slow scheduler server", site.url("/slow"), "4"),
        ("A scheduler post that moved", site.url("/moved"), "5"),
    ];
    let body = common::hn_response(
        &hits
            .iter()
            .map(|(t, u, id)| (*t, Some(u.as_str()), *id))
            .collect::<Vec<_>>(),
    );
    common::Loopback::start(move |_, _| common::ok(body.clone())).await
}

fn env(hn: &common::Loopback, site: &Site, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("CONDUCTOR_PROVIDERS", "hackernews".into()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
        ("CONDUCTOR_LLM", "none".into()),
        ("CONDUCTOR_READ", "5".into()),
        ("CONDUCTOR_FETCH_ALLOW", site.addr.to_string()),
        (
            "CONDUCTOR_CACHE_DIR",
            dir.join("cache").display().to_string(),
        ),
    ]
}

fn source<'a>(json: &'a Value, path: &str) -> &'a Value {
    json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"].as_str().unwrap().ends_with(path))
        .unwrap_or_else(|| panic!("no source ends with {path}: {json:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_research_quotes_what_it_read_drops_the_dead_and_is_on_time() {
    let canary = Canary::start().await;
    let site = pages(canary.addr).await;
    let hn = hacker_news(&site).await;
    let dir = tempfile::tempdir().unwrap();
    let timeout = 4.0;
    let args = [
        "research",
        TOPIC,
        "--format",
        "json",
        "--timeout",
        "4",
        "--max-sources",
        "10",
    ];
    let run = common::run_cli(&args, &env(&hn, &site, dir.path()), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    // The slow page costs its quote, never the report: the research ends at its deadline.
    assert!(
        run.elapsed < Duration::from_secs_f64(timeout + 1.5),
        "took {:?} with a {timeout} s deadline",
        run.elapsed
    );
    let json: Value = serde_json::from_str(&run.stdout).unwrap();

    // The article: read from its page, its key passage quoted verbatim, nothing from its furniture.
    let article = source(&json, "/article");
    assert_eq!(article["read"], json!({"status": "read", "via": "page"}));
    let quotes: Vec<&str> = article["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert!(
        quotes.iter().any(|q| q.contains(KEY_PASSAGE)),
        "{quotes:#?}"
    );
    for q in &quotes {
        for f in FURNITURE {
            assert!(
                !q.contains(f),
                "{f:?} quoted from the page's furniture: {q}"
            );
        }
    }

    // The bot check: blocked, nothing quoted.
    let bot = source(&json, "/cloudflare");
    assert_eq!(bot["read"]["status"], "blocked");
    assert_eq!(bot["read"]["detail"], "bot check");
    assert_eq!(bot["passages"], json!([]));

    // The slow page: not read in time, never dead.
    let slow = source(&json, "/slow");
    assert_eq!(slow["read"]["status"], "failed", "{slow:#}");
    assert_eq!(slow["passages"], json!([]));

    // The redirect to a port reading may not reach: refused, and the canary saw no connection.
    let moved = source(&json, "/moved");
    assert_eq!(moved["read"]["status"], "blocked", "{moved:#}");
    assert_eq!(canary.connections().await, 0);

    // The 404: dropped (the default) and named; the others are numbered 1..n again.
    let urls: Vec<&str> = json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert!(!urls.iter().any(|u| u.ends_with("/gone")), "{urls:?}");
    assert_eq!(json["dropped"][0]["url"], site.url("/gone"));
    assert_eq!(json["dropped"][0]["detail"], "HTTP 404");
    let ranks: Vec<u64> = json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, (1..=ranks.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_a_summary_opens_with_key_passages_and_names_the_dropped() {
    let canary = Canary::start().await;
    let site = pages(canary.addr).await;
    let hn = hacker_news(&site).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["research", TOPIC, "--timeout", "3", "--style", "links"];
    let run = common::run_cli(&args, &env(&hn, &site, dir.path()), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let md = run.stdout;
    // Key passages come first, each cited; the links style numbers its citations for them.
    let key = md.find("## Key passages").expect(&md);
    let steps = md.find("## Step 1: Research").expect(&md);
    assert!(key < steps, "{md}");
    let key_section = &md[key..steps];
    let first = key_section
        .lines()
        .find(|l| l.starts_with("- "))
        .expect(&md);
    assert!(first.ends_with(" [1]"), "{first}");
    // Escaped for markdown, the passage reads as it did on the page once rendered.
    let html = comrak::markdown_to_html(&md, &comrak::Options::default());
    assert!(html.contains(KEY_PASSAGE), "{html}");
    // Under the article's entry, its quote as a block quote inside the list item.
    let entry = md
        .lines()
        .position(|l| l.starts_with("- **How Tokio schedules tasks**"))
        .expect(&md);
    let next = md.lines().nth(entry + 1).unwrap();
    assert!(next.starts_with("  > "), "{md}");
    assert!(
        html.contains("<li><strong>How Tokio schedules tasks</strong>"),
        "{html}"
    );
    assert!(html.contains("<blockquote>"), "{html}");
    // What was not read says why.
    assert!(
        md.contains("- **Tokio scheduler, behind a bot check** (not read: bot check):"),
        "{md}"
    );
    // The dead link is named.
    assert!(md.contains("Dead links dropped:"), "{md}");
    assert!(md.contains("A scheduler post that was deleted"), "{md}");
    assert!(md.contains("(HTTP 404)"), "{md}");
    // Progress on stderr only when it is a terminal; stdout is the report alone.
    assert!(md.starts_with("# Conductor Report"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_links_can_be_marked_or_kept_instead() {
    let canary = Canary::start().await;
    let site = pages(canary.addr).await;
    let hn = hacker_news(&site).await;
    let dir = tempfile::tempdir().unwrap();
    for (mode, marked) in [("mark", true), ("keep", false)] {
        std::fs::create_dir_all(dir.path().join("config/conductor")).unwrap();
        std::fs::write(
            dir.path().join("config/conductor/config.toml"),
            format!("dead_links = \"{mode}\"\n"),
        )
        .unwrap();
        let args = ["research", TOPIC, "--timeout", "3"];
        let run = common::run_cli(&args, &env(&hn, &site, dir.path()), dir.path()).await;
        assert_eq!(run.status, 0, "{}", run.stderr);
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains("A scheduler post that was deleted"))
            .unwrap_or_else(|| panic!("{mode}: the dead source is listed\n{}", run.stdout));
        assert_eq!(
            line.contains("(dead link: HTTP 404)"),
            marked,
            "{mode}: {line}"
        );
        assert!(!run.stdout.contains("Dead links dropped"), "{}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_0_reads_nothing_and_read_n_reads_the_top_n() {
    let canary = Canary::start().await;
    let site = pages(canary.addr).await;
    let hn = hacker_news(&site).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["research", TOPIC, "--format", "json", "--read", "0"];
    let run = common::run_cli(&args, &env(&hn, &site, dir.path()), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(site.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    for s in json["sources"].as_array().unwrap() {
        assert_eq!(s["read"]["status"], "skipped");
        assert_eq!(s["read"]["detail"], "reading is off");
    }

    let args = ["research", TOPIC, "--format", "json", "--read", "1"];
    let run = common::run_cli(&args, &env(&hn, &site, dir.path()), dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(site.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["sources"][0]["read"]["status"], "read");
    assert_eq!(
        json["sources"][1]["read"]["detail"],
        "not among the top 1 sources"
    );

    let bad = ["research", TOPIC, "--read", "many"];
    let run = common::run_cli(&bad, &env(&hn, &site, dir.path()), dir.path()).await;
    assert_eq!(run.status, 2, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_gets_the_quotes_in_the_report_in_progress_and_in_hover() {
    let canary = Canary::start().await;
    let site = pages(canary.addr).await;
    let hn = hacker_news(&site).await;
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = env(&hn, &site, dir.path());
    pairs.push((
        "XDG_CONFIG_HOME",
        dir.path().join("config").display().to_string(),
    ));
    pairs.push(("HOME", dir.path().join("home").display().to_string()));
    pairs.push(("CONDUCTOR_TIMEOUT", "3".into()));
    let mut h = lsp_support::start(Env::from_pairs(pairs), lsp_support::Config::default()).await;
    let c = &mut h.client;
    let uri = "file:///notes/scheduler.md";
    let text = format!("# Notes\n\n{TOPIC}\n");
    c.open(uri, &text).await;
    let range = lsp_support::range_of(&text, TOPIC, &c.enc);
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": uri, "range": range}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let doc = c.text(uri).to_string();
    assert!(doc.contains("## Key passages"), "{doc}");
    assert!(
        doc.contains(KEY_PASSAGE.split(':').next().unwrap()),
        "{doc}"
    );

    // Progress said it was reading.
    let progress: Vec<String> = c
        .notifications_named("$/progress")
        .into_iter()
        .filter_map(|n| n["params"]["value"]["message"].as_str().map(String::from))
        .collect();
    assert!(
        progress.iter().any(|m| m.contains("reading 0/5 pages")),
        "{progress:?}"
    );
    assert!(
        progress.iter().any(|m| m.contains("reading 5/5 pages")),
        "{progress:?}"
    );

    // Hover on the article's citation: the quote under the title.
    let hover = c
        .hover(uri, lsp_support::find(&doc, &site.url("/article"), &c.enc))
        .await;
    let value = hover["result"]["contents"]["value"]
        .as_str()
        .expect("a hover");
    assert!(
        value.starts_with("**How Tokio schedules tasks**\n\n> "),
        "{value}"
    );
    assert!(value.contains("work stealing"), "{value}");
    c.shutdown_and_exit().await;
}

/// Runs the pipeline in-process with `fetcher` (its resolver a table) and a Hacker News stand-in whose
/// stories link to `urls`.
async fn research_with(fetcher: conductor::evidence::Fetcher, urls: &[String]) -> Value {
    use conductor::net::{Http, HttpLimits};
    use conductor::pipeline::{self, Request, Stages};
    use conductor::research::Engine;
    let hits: Vec<(String, String, String)> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                format!("Story {i} about the scheduler"),
                u.clone(),
                i.to_string(),
            )
        })
        .collect();
    let body = common::hn_response(
        &hits
            .iter()
            .map(|(t, u, id)| (t.as_str(), Some(u.as_str()), id.as_str()))
            .collect::<Vec<_>>(),
    );
    let hn = common::Loopback::start(move |_, _| common::ok(body.clone())).await;
    let env = Env::from_pairs([
        ("CONDUCTOR_PROVIDERS", "hackernews".to_string()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
        ("CONDUCTOR_LLM", "none".to_string()),
        ("CONDUCTOR_READ", "5".to_string()),
    ]);
    let settings = conductor::config::Settings::load(&env).unwrap();
    let stages = Stages::new(Engine::new(Http::new(HttpLimits::default())), fetcher);
    let req = Request {
        topic: TOPIC.into(),
        settings: std::sync::Arc::new(settings),
        roots: Vec::new(),
        summary: false,
        cache: pipeline::CacheMode::Off,
    };
    let research = pipeline::run(
        &stages,
        &env,
        &req,
        &|_| {},
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    serde_json::to_value(&research).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_that_finds_no_host_at_all_drops_nothing() {
    use conductor::evidence::fetch::LookupError;
    // Every name is unknown: offline, or a broken resolver. No source is dead, none is dropped.
    let urls: Vec<String> = [
        "http://one.example/a",
        "http://two.example/b",
        "http://three.example/c",
    ]
    .iter()
    .map(|u| u.to_string())
    .collect();
    let json = research_with(evidence_support::fetcher_with(&[], &[]), &urls).await;
    assert_eq!(json.get("dropped"), None, "{json:#}");
    assert_eq!(json["sources"].as_array().unwrap().len(), 3);
    for s in json["sources"].as_array().unwrap() {
        assert_eq!(s["read"]["status"], "failed", "{s:#}");
    }

    // One page is read and one host does not exist: that one is dead and dropped.
    let canary = Canary::start().await;
    let site = pages(canary.addr).await;
    let fetcher = evidence_support::fetcher_with(
        &[site.addr],
        &[("gone.example", Err(LookupError::NotFound))],
    );
    let urls = vec![
        site.url("/article"),
        "http://gone.example/article".to_string(),
    ];
    let json = research_with(fetcher, &urls).await;
    assert_eq!(json["sources"].as_array().unwrap().len(), 1, "{json:#}");
    assert_eq!(json["sources"][0]["read"]["status"], "read");
    assert_eq!(json["dropped"][0]["url"], urls[1]);
    assert_eq!(json["dropped"][0]["detail"], "host not found");
}
