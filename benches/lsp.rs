//! Language-server benchmark: a 1 MB markdown document with 2,000 citations (200 reports × 10).
//! Prints a table: hover and code action latency (p50/p99/max, round trip through the in-process
//! transport), 10,000 incremental edits, initialize time, idle RSS of the real binary.
//!
//! Run: `cargo bench --bench lsp`.
#![allow(clippy::print_stdout)]

#[path = "../tests/lsp_support/mod.rs"]
mod lsp_support;

use std::time::{Duration, Instant};

use conductor::config::{CitationStyle, Env, ProviderName};
use conductor::lsp::documents::{Documents, Encoding};
use conductor::render::{self, RenderOptions};
use conductor::research::{Research, Source};
use conductor::store::Store;
use lsp_support::{Config, position, start};
use serde_json::json;
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

const URI: &str = "file:///bench/big.md";

fn research(i: usize) -> Research {
    Research {
        topic: format!("Topic number {i}"),
        date: "2026-01-01T00:00:00Z".into(),
        elapsed_ms: 1200,
        providers: vec![],
        sources: (1..=10)
            .map(|n| Source {
                n,
                url: format!("https://example.org/topic-{i}/source-{n}"),
                title: format!("Source {n} about topic number {i}"),
                snippet: "A snippet of about one line of text that describes what the page says."
                    .into(),
                providers: vec![ProviderName::Wikipedia, ProviderName::Hackernews],
                published: Some("2024-01-01".into()),
                score: 0.1,
                content: None,
                read: None,
                passages: Vec::new(),
            })
            .collect(),
        dropped: Vec::new(),
        cost: None,
        synthesis: None,
    }
}

fn document() -> String {
    let prose = "Plain prose that a person wrote, with some *emphasis*, a [link](https://example.com) and more words to fill the line. ";
    let mut doc = String::from("# Bench document\n\n");
    for i in 0..200 {
        doc.push_str(&format!("## Section {i}\n\n"));
        while doc.len() < (i + 1) * 5200 - 2000 {
            for _ in 0..4 {
                doc.push_str(prose);
            }
            doc.push_str("\n\n");
        }
        let md = render::markdown(
            &research(i),
            &RenderOptions {
                style: CitationStyle::Numbered,
                heading_level: 3,
                marker_id: Some(format!("r{i}")),
                cited_only: false,
                mark_dead: true,
            },
        );
        doc.push_str(&md);
        doc.push_str("\n\n");
    }
    doc
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

fn row(name: &str, mut v: Vec<Duration>, budget: &str) {
    let p50 = pct(&mut v, 0.5);
    let p99 = pct(&mut v, 0.99);
    let max = *v.last().unwrap();
    println!(
        "| {name} | {:.3} ms | {:.3} ms | {:.3} ms | {budget} |",
        ms(p50),
        ms(p99),
        ms(max)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Idle RSS of the real binary, and the time from spawning it to its initialize answer.
async fn idle_rss() -> Option<(u64, Duration)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().ok()?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"))
        .env_clear()
        .env("CONDUCTOR_CACHE_DIR", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let spawned = Instant::now();
    let mut stdin = child.stdin.take()?;
    let mut stdout = child.stdout.take()?;
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": null, "rootUri": null, "capabilities": {}}}),
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    ] {
        let body = serde_json::to_vec(&msg).ok()?;
        stdin
            .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
            .await
            .ok()?;
        stdin.write_all(&body).await.ok()?;
    }
    stdin.flush().await.ok()?;
    let mut buf = vec![0u8; 4096];
    let _ = stdout.read(&mut buf).await.ok()?;
    let init = spawned.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib(child.id()?);
    let _ = child.kill().await;
    Some((rss?, init))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let doc = document();
    let citations = doc.matches("](https://example.org/").count();
    println!(
        "document: {:.2} MB, {} lines, {citations} citations\n",
        doc.len() as f64 / 1e6,
        doc.lines().count()
    );
    let cache = tempfile::tempdir().unwrap();
    {
        let store = Store::open(cache.path()).unwrap();
        for i in 0..200 {
            store
                .put_report(&format!("r{i}"), &research(i), CitationStyle::Numbered)
                .unwrap();
        }
    }
    let env = || {
        Env::from_pairs([
            ("CONDUCTOR_CACHE_DIR", cache.path().display().to_string()),
            ("XDG_CONFIG_HOME", cache.path().display().to_string()),
            ("HOME", cache.path().display().to_string()),
        ])
    };

    // initialize: a fresh server each time, time to the answer.
    let mut init = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let h = start(env(), Config::default()).await;
        init.push(t.elapsed());
        drop(h);
    }

    let mut h = start(env(), Config::default()).await;
    let c = &mut h.client;
    c.open(URI, &doc).await;

    // Marker positions ("… [n]" at the end of report list items) and prose selections.
    let mut markers = Vec::new();
    let mut prose = Vec::new();
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        if line.starts_with("- **")
            && let Some(i) = line.rfind(" [")
        {
            markers.push(position(&doc, offset + i + 2, "utf-16"));
        } else if line.starts_with("Plain prose") {
            prose.push(position(&doc, offset, "utf-16"));
        }
        offset += line.len();
    }
    assert_eq!(markers.len(), 2000);
    let mut rng = fastrand::Rng::with_seed(7);

    // Warm-up: the first request builds the document's index.
    let t = Instant::now();
    let first = c
        .hover(
            URI,
            json!({"line": markers[0].0, "character": markers[0].1}),
        )
        .await;
    let first_hover = t.elapsed();
    assert!(
        first["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("Source")
    );

    let mut hovers = Vec::new();
    for _ in 0..2000 {
        let (l, ch) = markers[rng.usize(0..markers.len())];
        let t = Instant::now();
        let r = c.hover(URI, json!({"line": l, "character": ch})).await;
        hovers.push(t.elapsed());
        assert!(
            r["result"]["contents"]["value"]
                .as_str()
                .unwrap()
                .contains("about topic number")
        );
    }
    let mut actions = Vec::new();
    for _ in 0..2000 {
        let (l, _) = prose[rng.usize(0..prose.len())];
        let range =
            json!({"start": {"line": l, "character": 6}, "end": {"line": l, "character": 26}});
        let t = Instant::now();
        let r = c.code_actions(URI, range).await;
        actions.push(t.elapsed());
        assert_eq!(r["result"][0]["title"], "Research “prose that a person”");
    }

    // 10,000 incremental edits through the server, then one request that observes all of them. The
    // frames are built beforehand so the time is the server's (transport, JSON, rope), not the model's.
    c.open("file:///bench/tiny.md", "tiny").await;
    let mut expected = c.text(URI).to_string();
    let mut frames = Vec::with_capacity(10_000);
    for i in 0..10_000u32 {
        let (l, _) = prose[(i as usize * 7919) % prose.len()];
        let at = lsp_support::offset(&expected, l, 3, "utf-16");
        expected.insert(at, 'x');
        frames.push(
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": URI, "version": i as i32 + 2},
                "contentChanges": [{"range": {"start": {"line": l, "character": 3}, "end": {"line": l, "character": 3}}, "text": "x"}]
            }}))
            .unwrap(),
        );
    }
    let t = Instant::now();
    for f in &frames {
        c.send_raw(f).await;
    }
    let r = c
        .hover("file:///bench/tiny.md", json!({"line": 0, "character": 0}))
        .await;
    let edits_server = t.elapsed();
    assert!(r.get("error").is_none());
    let server_text = c.server_text(URI).await;
    assert_eq!(server_text["text"].as_str().unwrap(), expected);
    assert_eq!(server_text["version"], 10_001);

    // The same edits applied to the document store directly (no transport, no JSON).
    let docs = Documents::default();
    docs.open(URI, &doc, 1);
    let t = Instant::now();
    for i in 0..10_000u32 {
        let (l, _) = prose[(i as usize * 7919) % prose.len()];
        let p = Position::new(l, 3);
        docs.apply_change(
            URI,
            i as i32 + 2,
            &[TextDocumentContentChangeEvent {
                range: Some(Range::new(p, p)),
                range_length: None,
                text: "x".into(),
            }],
            Encoding::Utf16,
        );
    }
    let edits_store = t.elapsed();

    let rss = idle_rss().await;
    let own_rss = rss_kib(std::process::id());

    println!("| measure | p50 | p99 | max | budget |");
    println!("|---|---|---|---|---|");
    row(
        "hover on a citation marker (2,000 requests)",
        hovers,
        "p99 < 5 ms",
    );
    row(
        "code action on a selection (2,000 requests)",
        actions,
        "p99 < 5 ms",
    );
    row("initialize (20 fresh servers)", init, "< 20 ms");
    println!(
        "| first hover (builds the index of the 1 MB document) | {:.3} ms | | | |",
        ms(first_hover)
    );
    println!(
        "| 10,000 didChange through the server (total) | {:.1} ms | | | < 1 s |",
        ms(edits_server)
    );
    println!(
        "| 10,000 edits applied to the document store (total) | {:.1} ms | | | |",
        ms(edits_store)
    );
    if let Some((kib, init)) = rss {
        println!(
            "| idle RSS of the conductor-lsp binary | {:.1} MB | | | < 20 MB |",
            kib as f64 / 1024.0
        );
        println!(
            "| binary: spawn to initialize answer | {:.3} ms | | | |",
            ms(init)
        );
    }
    if let Some(kib) = own_rss {
        println!(
            "| RSS of this bench process (server + client + 1 MB doc ×2) | {:.1} MB | | | |",
            kib as f64 / 1024.0
        );
    }
}
