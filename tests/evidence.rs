//! The reading stage against loopback pages: what is quoted, what is dead, what is refused, and what is
//! never connected to. Every page is served by the test on 127.0.0.1; names resolve from a table.

mod evidence_support;

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Response;
use conductor::evidence::fetch::LookupError;
use conductor::evidence::{
    ReadLimits, ReadProgress, ReadResult, ReadStatus, SourceText, Via, read_page, read_sources,
};
use evidence_support::*;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "tokio work stealing scheduler";

fn page(url: String) -> SourceText {
    SourceText {
        url,
        provider_text: None,
    }
}

async fn read(
    fetcher: &conductor::evidence::Fetcher,
    urls: &[String],
    within: Duration,
) -> Vec<ReadResult> {
    let sources: Vec<SourceText> = urls.iter().cloned().map(page).collect();
    let limits = ReadLimits::new(urls.len(), Instant::now() + within);
    read_sources(
        fetcher,
        &sources,
        TOPIC,
        &limits,
        |_| {},
        &CancellationToken::new(),
    )
    .await
}

fn status_of(r: &ReadResult) -> (ReadStatus, &str) {
    (r.read.status, r.read.detail.as_deref().unwrap_or(""))
}

#[tokio::test]
async fn an_article_is_quoted_verbatim_and_nothing_from_its_navigation() {
    let agents: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = agents.clone();
    let site = serve(move |_, headers| {
        let seen = seen.clone();
        async move {
            let ua = headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            seen.lock().unwrap().push(ua.to_string());
            html(ARTICLE)
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let results = read(&fetcher, &[site.url("/post")], Duration::from_secs(10)).await;
    let r = &results[0];
    assert_eq!(status_of(r), (ReadStatus::Read, ""));
    assert_eq!(r.read.via, Via::Page);
    assert!(!r.passages.is_empty() && r.passages.len() <= 2, "{r:#?}");
    assert!(
        r.passages[0].text.contains(KEY_PASSAGE),
        "the key passage, verbatim: {:#?}",
        r.passages
    );
    let text = r.text.as_deref().unwrap();
    for p in &r.passages {
        assert!(p.text.chars().count() <= 300, "{}", p.text);
        assert!(
            text.contains(&p.text),
            "a passage is a slice of the page's text"
        );
        assert!(
            p.text.ends_with('.'),
            "cut at a sentence boundary: {}",
            p.text
        );
        assert!(p.score > 0.0);
    }
    for furniture in FURNITURE {
        assert!(!text.contains(furniture), "{furniture} read: {text}");
        assert!(r.passages.iter().all(|p| !p.text.contains(furniture)));
    }
    assert_eq!(
        r.title.as_deref(),
        Some("How Tokio schedules tasks | Example Engineering Blog")
    );
    assert_eq!(r.final_url.as_deref(), Some(site.url("/post").as_str()));
    // The JSON names of the contract.
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["read"], json!({"status": "read", "via": "page"}));
    assert_eq!(
        json["passages"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["score", "text"]
    );
    assert_eq!(json.as_object().unwrap().len(), 2, "{json}");
    let agents = agents.lock().unwrap();
    assert!(
        agents[0].starts_with(&format!("conductor-lsp/{}", env!("CARGO_PKG_VERSION"))),
        "{agents:?}"
    );
}

#[tokio::test]
async fn a_bot_check_page_is_blocked_and_never_quoted() {
    let site = serve(|path, _| async move {
        match path.as_str() {
            "/cloudflare" => status(
                403,
                "text/html",
                r#"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>
                <div id="challenge-body"><h1>Checking your browser</h1><p>tokio work stealing scheduler</p>
                <script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script>
                <input type="hidden" name="cf-chl-bypass"></div></body></html>"#,
            ),
            "/served-200" => html(
                r#"<html><head><title>Attention Required! | Cloudflare</title></head><body><div class="cf-wrapper">
                <p>Sorry, you have been blocked. The tokio work stealing scheduler page is protected.</p></div></body></html>"#,
            ),
            "/needs-js" => html(
                r#"<html><head><title>Tokio scheduler</title></head><body><noscript>You need to enable JavaScript
                to run this app.</noscript><div id="root"><p>Please enable JavaScript to read about the tokio work
                stealing scheduler.</p></div></body></html>"#,
            ),
            _ => status(404, "text/plain", "no"),
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let urls = [
        site.url("/cloudflare"),
        site.url("/served-200"),
        site.url("/needs-js"),
    ];
    for r in read(&fetcher, &urls, Duration::from_secs(10)).await {
        assert_eq!(status_of(&r), (ReadStatus::Blocked, "bot check"), "{r:#?}");
        assert!(r.passages.is_empty());
        assert!(r.text.is_none());
    }
}

#[tokio::test]
async fn a_404_410_or_missing_host_is_dead_but_refusals_and_outages_are_not() {
    let site = serve(|path, _| async move {
        let code: u16 = path.trim_start_matches('/').parse().unwrap_or(500);
        status(
            code,
            "text/html",
            format!("<html><body>HTTP {code}</body></html>"),
        )
    })
    .await;
    let fetcher = fetcher_with(
        &[site.addr],
        &[(
            "flaky-dns.example",
            Err(LookupError::Failed(
                "Temporary failure in name resolution".into(),
            )),
        )],
    );
    let mut urls: Vec<String> = [404, 410, 401, 403, 429, 500, 503]
        .iter()
        .map(|c| site.url(&format!("/{c}")))
        .collect();
    urls.push("http://no-such-host.example/page".into());
    urls.push("http://flaky-dns.example/page".into());
    let results = read(&fetcher, &urls, Duration::from_secs(10)).await;
    let got: Vec<(ReadStatus, &str)> = results.iter().map(status_of).collect();
    assert_eq!(
        got[..8],
        [
            (ReadStatus::Dead, "HTTP 404"),
            (ReadStatus::Dead, "HTTP 410"),
            (ReadStatus::Failed, "HTTP 401"),
            (ReadStatus::Failed, "HTTP 403"),
            (ReadStatus::Failed, "HTTP 429"),
            (ReadStatus::Failed, "HTTP 500"),
            (ReadStatus::Failed, "HTTP 503"),
            (ReadStatus::Dead, "host not found"),
        ]
    );
    assert_eq!(
        got[8].0,
        ReadStatus::Failed,
        "a DNS outage is not a dead link"
    );
    assert!(results.iter().all(|r| r.passages.is_empty()));
}

#[tokio::test]
async fn a_page_slower_than_the_deadline_costs_its_quote_not_the_result() {
    let site = serve(|path, _| async move {
        if path == "/slow" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        html(ARTICLE)
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let sources = vec![page(site.url("/fast")), page(site.url("/slow"))];
    let progress: Arc<Mutex<Vec<ReadProgress>>> = Arc::default();
    let seen = progress.clone();
    // Long enough for the fast page even while another test extracts a big page on the one extraction
    // thread (debug builds), short enough to keep the test quick.
    let deadline = Duration::from_secs(3);
    let started = Instant::now();
    let results = read_sources(
        &fetcher,
        &sources,
        TOPIC,
        &ReadLimits::new(5, started + deadline),
        move |p| seen.lock().unwrap().push(p),
        &CancellationToken::new(),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < deadline + Duration::from_millis(300),
        "returned {took:?} after the start, deadline {deadline:?}"
    );
    assert_eq!(status_of(&results[0]), (ReadStatus::Read, ""));
    assert!(results[0].passages[0].text.contains(KEY_PASSAGE));
    assert_eq!(status_of(&results[1]), (ReadStatus::Failed, "timed out"));
    assert!(results[1].passages.is_empty());
    let progress = progress.lock().unwrap();
    assert_eq!(progress.first().unwrap().to_string(), "reading 0/2 pages");
    assert_eq!(progress.last().unwrap().to_string(), "reading 2/2 pages");
}

#[tokio::test]
async fn a_20_mib_page_is_cut_at_the_cap() {
    let site = serve(|_, _| async { huge_page(20 * 1024 * 1024) }).await;
    let fetcher = fetcher(&[site.addr]);
    let results = read(&fetcher, &[site.url("/huge")], Duration::from_secs(60)).await;
    let r = &results[0];
    assert_eq!(status_of(r), (ReadStatus::Read, "only the first 3 MiB"));
    assert!(
        r.passages[0].text.contains(KEY_PASSAGE),
        "{:#?}",
        r.passages
    );
    let text = r.text.as_deref().unwrap();
    assert!(
        text.len() <= 256 * 1024,
        "the kept text is bounded: {}",
        text.len()
    );
    // Peak memory with such pages: tests/evidence_memory.rs.
}

#[tokio::test]
async fn a_windows_1252_page_is_decoded() {
    // "Café society – naïve" and curly quotes in windows-1252 bytes.
    let article = |meta: &str| {
        let mut body = format!(
            "<html><head>{meta}<title>Cafe</title></head><body><article><h1>Scheduler notes</h1>"
        )
        .into_bytes();
        for _ in 0..4 {
            body.extend_from_slice(
                b"<p>The caf\xe9 scheduler \x96 a na\xefve design \x93with work stealing\x94 \x96 keeps every worker of the tokio runtime busy all day long.</p>",
            );
        }
        body.extend_from_slice(b"</article></body></html>");
        body
    };
    let site = serve(move |path, _| {
        let body = if path == "/header" {
            article("")
        } else {
            article(r#"<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">"#)
        };
        async move {
            let ct = if path == "/header" {
                "text/html; charset=windows-1252"
            } else {
                "text/html"
            };
            status(200, ct, body)
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let results = read(
        &fetcher,
        &[site.url("/header"), site.url("/meta")],
        Duration::from_secs(10),
    )
    .await;
    for r in results {
        assert_eq!(status_of(&r), (ReadStatus::Read, ""));
        assert!(
            r.passages[0].text.contains(
                "The café scheduler – a naïve design “with work stealing” – keeps every worker"
            ),
            "{:#?}",
            r.passages
        );
    }
}

#[tokio::test]
async fn a_redirect_to_a_loopback_port_not_allowed_never_connects() {
    let canary = Canary::start().await;
    let port = canary.addr.port();
    let site = serve(move |path, _| async move {
        {
            match path.as_str() {
                "/to-canary" => redirect(&format!("http://127.0.0.1:{port}/admin")),
                "/to-localhost" => redirect(&format!("http://localhost:{port}/")),
                "/to-file" => redirect("file:///etc/passwd"),
                "/to-credentials" => redirect("http://user:secret@example.com/"),
                _ => status(404, "text/plain", ""),
            }
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let results = read(
        &fetcher,
        &[
            site.url("/to-canary"),
            site.url("/to-localhost"),
            site.url("/to-file"),
            site.url("/to-credentials"),
        ],
        Duration::from_secs(10),
    )
    .await;
    let got: Vec<(ReadStatus, &str)> = results.iter().map(status_of).collect();
    assert_eq!(
        got,
        [
            (ReadStatus::Blocked, "refused: a private or local address"),
            (ReadStatus::Blocked, "refused: a private or local address"),
            (ReadStatus::Failed, "HTTP 302: redirect not followed"),
            (ReadStatus::Blocked, "the URL carries credentials"),
        ]
    );
    assert_eq!(canary.connections().await, 0, "the canary was connected to");
    assert_eq!(site.hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn every_spelling_of_loopback_is_refused_without_a_connection() {
    let canary = Canary::start().await;
    let port = canary.addr.port();
    // The allowed address is another port: being allowed opens exactly one socket address.
    let other = Canary::start().await;
    let fetcher = fetcher_with(
        &[other.addr],
        &[
            ("loopback.example", Ok(vec!["127.0.0.1".parse().unwrap()])),
            (
                "mixed.example",
                Ok(vec![
                    "127.0.0.1".parse().unwrap(),
                    "::ffff:127.0.0.1".parse::<IpAddr>().unwrap(),
                    "10.0.0.1".parse().unwrap(),
                ]),
            ),
        ],
    );
    let urls: Vec<String> = [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "localhost",
        "LocalHost.",
        "loopback.example",
        "mixed.example",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/"))
    .collect();
    let results = read(&fetcher, &urls, Duration::from_secs(10)).await;
    for (url, r) in urls.iter().zip(&results) {
        assert_eq!(r.read.status, ReadStatus::Blocked, "{url}: {r:#?}");
        assert!(
            r.read.detail.as_deref().unwrap().starts_with("refused"),
            "{url}: {r:#?}"
        );
    }
    assert_eq!(canary.connections().await, 0, "the canary was connected to");
    assert_eq!(other.connections().await, 0);
}

#[tokio::test]
async fn redirects_are_followed_at_most_five_times() {
    let site = serve(|path, _| async move {
        let n: usize = path.trim_start_matches("/hop/").parse().unwrap_or(0);
        if n > 0 {
            redirect(&format!("/hop/{}", n - 1))
        } else {
            html(ARTICLE)
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let results = read(
        &fetcher,
        &[site.url("/hop/5"), site.url("/hop/6")],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status_of(&results[0]), (ReadStatus::Read, ""));
    assert_eq!(
        results[0].final_url.as_deref(),
        Some(site.url("/hop/0").as_str())
    );
    assert_eq!(
        status_of(&results[1]),
        (ReadStatus::Failed, "more than 5 redirects")
    );
}

#[tokio::test]
async fn provider_text_is_read_instead_of_the_page() {
    let site = serve(|_, _| async { html(ARTICLE) }).await;
    let fetcher = fetcher(&[site.addr]);
    let abstract_text = "We study schedulers for asynchronous runtimes in systems languages. \
        Tokio's scheduler relies on work stealing between worker threads, which balances load without a global lock. \
        We measure its latency under contention and compare it with a single shared queue across many workloads, \
        from web servers to databases.";
    let sources = vec![
        SourceText {
            url: site.url("/with-text"),
            provider_text: Some(abstract_text.into()),
        },
        SourceText {
            url: site.url("/short-text"),
            provider_text: Some("Tokio scheduler.".into()),
        },
    ];
    let results = read_sources(
        &fetcher,
        &sources,
        TOPIC,
        &ReadLimits::new(5, Instant::now() + Duration::from_secs(10)),
        |_| {},
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(results[0].read.via, Via::Provider);
    assert_eq!(results[0].read.status, ReadStatus::Read);
    assert!(
        results[0].passages[0].text
            == "Tokio's scheduler relies on work stealing between worker threads, which balances load without a global lock.",
        "{:#?}",
        results[0].passages
    );
    // Too little provider text: the page is read.
    assert_eq!(results[1].read.via, Via::Page);
    assert!(results[1].passages[0].text.contains(KEY_PASSAGE));
    assert_eq!(
        site.hits.load(Ordering::SeqCst),
        1,
        "only the second page is fetched"
    );
    // Scores compare across sources: the page's key passage and the abstract are both ranked.
    assert!(results[0].passages[0].score > 0.0 && results[1].passages[0].score > 0.0);
}

#[tokio::test]
async fn reading_off_or_past_the_read_count_fetches_nothing() {
    let site = serve(|_, _| async { html(ARTICLE) }).await;
    let fetcher = fetcher(&[site.addr]);
    let sources: Vec<SourceText> = (0..3).map(|i| page(site.url(&format!("/{i}")))).collect();
    let run = |read: usize| {
        let (fetcher, sources) = (&fetcher, &sources);
        async move {
            read_sources(
                fetcher,
                sources,
                TOPIC,
                &ReadLimits::new(read, Instant::now() + Duration::from_secs(10)),
                |_| {},
                &CancellationToken::new(),
            )
            .await
        }
    };
    let off = run(0).await;
    assert!(
        off.iter()
            .all(|r| status_of(r) == (ReadStatus::Skipped, "reading is off"))
    );
    assert_eq!(site.hits.load(Ordering::SeqCst), 0);
    let one = run(1).await;
    assert_eq!(one[0].read.status, ReadStatus::Read);
    assert_eq!(
        status_of(&one[2]),
        (ReadStatus::Skipped, "not among the top 1 sources")
    );
    assert_eq!(site.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn at_most_two_requests_per_host_at_once() {
    let in_flight: Arc<AtomicUsize> = Arc::default();
    let most: Arc<AtomicUsize> = Arc::default();
    // Pages are answered in pairs, once both requests are in (the event itself); each is then held a
    // moment more, so a third request to the host would be seen in flight.
    let pair = Arc::new(tokio::sync::Barrier::new(2));
    let (f, m) = (in_flight.clone(), most.clone());
    let site = serve(move |_, _| {
        let (f, m, pair) = (f.clone(), m.clone(), pair.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            pair.wait().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            html(ARTICLE)
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let urls: Vec<String> = (0..6).map(|i| site.url(&format!("/{i}"))).collect();
    let results = read(&fetcher, &urls, Duration::from_secs(20)).await;
    assert!(results.iter().all(|r| r.read.status == ReadStatus::Read));
    assert_eq!(most.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_pdf_or_an_image_is_skipped_not_read() {
    let site = serve(|path, _| async move {
        match path.as_str() {
            "/paper.pdf" => status(200, "application/pdf", "%PDF-1.7 tokio work stealing"),
            _ => status(200, "image/png", "\u{89}PNG"),
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let results = read(
        &fetcher,
        &[site.url("/paper.pdf"), site.url("/chart.png")],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(status_of(&results[0]), (ReadStatus::Skipped, "PDF"));
    assert_eq!(
        status_of(&results[1]),
        (ReadStatus::Skipped, "not a text page (image/png)")
    );
}

#[tokio::test]
async fn gzip_and_brotli_pages_are_decoded() {
    let gzip = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(ARTICLE.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let brotli = {
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(ARTICLE.as_bytes()).unwrap();
        drop(w);
        out
    };
    let accepts: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = accepts.clone();
    let site = serve(move |path, headers| {
        let (gzip, brotli, seen) = (gzip.clone(), brotli.clone(), seen.clone());
        async move {
            seen.lock().unwrap().push(
                headers
                    .get("accept-encoding")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
            );
            let (encoding, body) = if path == "/gz" {
                ("gzip", gzip)
            } else {
                ("br", brotli)
            };
            Response::builder()
                .header("content-type", "text/html")
                .header("content-encoding", encoding)
                .body(Body::from(body))
                .unwrap()
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let results = read(
        &fetcher,
        &[site.url("/gz"), site.url("/br")],
        Duration::from_secs(10),
    )
    .await;
    for r in &results {
        assert_eq!(status_of(r), (ReadStatus::Read, ""));
        assert!(r.passages[0].text.contains(KEY_PASSAGE));
    }
    for a in accepts.lock().unwrap().iter() {
        assert!(a.contains("gzip") && a.contains("br"), "{a}");
    }
}

#[tokio::test]
async fn cancelling_returns_at_once_and_reads_nothing_more() {
    let requested = Arc::new(tokio::sync::Notify::new());
    let notify = requested.clone();
    let site = serve(move |_, _| {
        let notify = notify.clone();
        async move {
            notify.notify_one();
            tokio::time::sleep(Duration::from_secs(30)).await;
            html(ARTICLE)
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let sources = vec![page(site.url("/hangs"))];
    let cancel = CancellationToken::new();
    let limits = ReadLimits::new(5, Instant::now() + Duration::from_secs(30));
    let reading = read_sources(&fetcher, &sources, TOPIC, &limits, |_| {}, &cancel);
    tokio::pin!(reading);
    tokio::select! {
        _ = &mut reading => panic!("finished before the page answered"),
        _ = requested.notified() => {}
    }
    let cancelled_at = Instant::now();
    cancel.cancel();
    let results = reading.await;
    assert!(cancelled_at.elapsed() < Duration::from_millis(200));
    assert_eq!(status_of(&results[0]), (ReadStatus::Skipped, "cancelled"));
}

#[tokio::test]
async fn the_stage_runs_on_a_spawned_task() {
    // The pipeline spawns it: its future must be Send and 'static once its inputs are owned.
    let site = serve(|_, _| async { html(ARTICLE) }).await;
    let fetcher = Arc::new(fetcher(&[site.addr]));
    let sources = vec![page(site.url("/post"))];
    let task = tokio::spawn(async move {
        let limits = ReadLimits::new(1, Instant::now() + Duration::from_secs(10));
        read_sources(
            &fetcher,
            &sources,
            TOPIC,
            &limits,
            |_| {},
            &CancellationToken::new(),
        )
        .await
    });
    let results = task.await.unwrap();
    assert!(results[0].passages[0].text.contains(KEY_PASSAGE));
}

#[tokio::test]
async fn read_page_shows_what_the_stage_sees() {
    let site = serve(|path, _| async move {
        match path.as_str() {
            "/post" => html(ARTICLE),
            "/moved" => redirect("/post"),
            _ => status(404, "text/html", "gone"),
        }
    })
    .await;
    let fetcher = fetcher(&[site.addr]);
    let page = read_page(&fetcher, &site.url("/moved"), Duration::from_secs(10)).await;
    assert_eq!(page.status, ReadStatus::Read);
    assert_eq!(page.final_url.as_deref(), Some(site.url("/post").as_str()));
    assert!(page.text.contains(KEY_PASSAGE));
    let json: Value = serde_json::to_value(&page).unwrap();
    let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["final_url", "status", "text", "title", "url"]);
    let dead = read_page(&fetcher, &site.url("/gone"), Duration::from_secs(10)).await;
    assert_eq!(
        (dead.status, dead.detail.as_deref()),
        (ReadStatus::Dead, Some("HTTP 404"))
    );
}

// ---- the `read` command, run as a process ----------------------------------------------------------

async fn run_read(args: &[&str], allow: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"))
        .arg("read")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("conductor-evidence-no-config"),
        )
        .env("CONDUCTOR_FETCH_ALLOW", allow)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn read_command_prints_the_readable_text_and_json() {
    let site = serve(|_, _| async { html(ARTICLE) }).await;
    let url = site.url("/post");
    let allow = site.addr.to_string();
    let (code, out, err) = run_read(&[&url], &allow).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "url: {url}\nfinal url: {url}\nstatus: read\ntitle: How Tokio schedules tasks | Example Engineering Blog\n\n"
        )),
        "{out}"
    );
    assert!(out.contains(KEY_PASSAGE), "{out}");
    assert!(!out.contains("newsletter"), "{out}");
    let (code, out, err) = run_read(&[&url, "--format", "json"], &allow).await;
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["url"], url.as_str());
    assert_eq!(json["final_url"], url.as_str());
    assert_eq!(json["status"], "read");
    assert_eq!(
        json["title"],
        "How Tokio schedules tasks | Example Engineering Blog"
    );
    assert!(json["text"].as_str().unwrap().contains(KEY_PASSAGE));
}

#[tokio::test]
async fn read_command_exits_1_when_not_read_and_2_for_a_bad_url() {
    let site = serve(|_, _| async { status(404, "text/html", "gone") }).await;
    let url = site.url("/gone");
    let (code, out, _) = run_read(&[&url, "--format", "json"], &site.addr.to_string()).await;
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (json["status"].as_str(), json["detail"].as_str()),
        (Some("dead"), Some("HTTP 404"))
    );
    // Without CONDUCTOR_FETCH_ALLOW, loopback is refused, and nothing is connected to.
    let (code, out, _) = run_read(&[&url], "").await;
    assert_eq!(code, 1);
    assert!(
        out.contains("status: blocked (refused: a private or local address)"),
        "{out}"
    );
    assert_eq!(site.hits.load(Ordering::SeqCst), 1);
    let (code, _, err) = run_read(&["ftp://example.com/x"], "").await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_read(&[&url], "not-an-address").await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CONDUCTOR_FETCH_ALLOW"), "{err}");
}
