//! Research benchmarks.
//!
//! - criterion: merging and rendering 1,000 results (goal: under 5 ms);
//! - a table: fan-out overhead with loopback providers answering after 300, 600 and 900 ms (goal: the
//!   slowest plus under 20 ms), and the peak memory of a whole CLI research run.
//!
//! `cargo bench --bench research` runs all; `cargo bench --bench research -- --table` only the table.

#![allow(clippy::print_stdout)] // the bench prints its table

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use conductor::config::{CitationStyle, Env, ProviderName};
use conductor::net::{Http, HttpLimits};
use conductor::providers::{self, Hit};
use conductor::render::{self, RenderOptions};
use conductor::research::{Engine, ResearchOptions, Selection, merge::merge};
use criterion::Criterion;
use tokio_util::sync::CancellationToken;

fn thousand_results() -> Vec<(ProviderName, Vec<Hit>)> {
    let providers = [
        ProviderName::Tavily,
        ProviderName::Brave,
        ProviderName::Exa,
        ProviderName::Wikipedia,
    ];
    providers
        .iter()
        .enumerate()
        .map(|(p, name)| {
            let hits = (0..250)
                .map(|i| {
                    // Overlapping URLs across providers, as real fan-out gives.
                    let page = (i + p * 60) % 700;
                    Hit {
                        url: format!("https://www.example{}.com/path/{page}/?utm_source=x&id={page}", page % 13),
                        title: Some(format!("Result <b>{page}</b> &amp; [title] | {name}")),
                        snippet: Some(format!(
                            "A snippet about <em>async</em> runtimes, page {page}, with some length to it \u{200B} and entities &quot;quoted&quot;."
                        )),
                        published: Some("2024-01-01".into()),
                        content: None,
                    }
                })
                .collect();
            (*name, hits)
        })
        .collect()
}

fn bench_merge_render(c: &mut Criterion) {
    let results = thousand_results();
    let opts = RenderOptions {
        style: CitationStyle::Numbered,
        ..RenderOptions::default()
    };
    c.bench_function("merge 1000 results", |b| b.iter(|| merge(&results, 100)));
    c.bench_function("merge + render 1000 results", |b| {
        b.iter(|| {
            let sources = merge(&results, 100);
            let research = conductor::research::Research {
                topic: "bench".into(),
                date: "2026-01-01T00:00:00Z".into(),
                elapsed_ms: 1,
                providers: vec![],
                sources,
                dropped: Vec::new(),
                cost: None,
                synthesis: None,
            };
            render::markdown(&research, &opts)
        })
    });
}

async fn fan_out_table() {
    let slow = |ms: u64| {
        move |_: &Seen, _: usize| {
            Reply::Delayed(
                Duration::from_millis(ms),
                Box::new(ok(tavily_response(&[(
                    Some("T"),
                    "https://example.com/t",
                    "s",
                )]))),
            )
        }
    };
    let tavily = Loopback::start(slow(300)).await;
    let brave_reply = |ms: u64| {
        move |_: &Seen, _: usize| {
            Reply::Delayed(
                Duration::from_millis(ms),
                Box::new(ok(brave_response(&[("B", "https://example.com/b", "s")]))),
            )
        }
    };
    let brave = Loopback::start(brave_reply(600)).await;
    let exa = Loopback::start(move |_: &Seen, _| {
        Reply::Delayed(
            Duration::from_millis(900),
            Box::new(ok(exa_response(&[(
                Some("E"),
                "https://example.com/e",
                "s",
            )]))),
        )
    })
    .await;
    let env = Env::from_pairs([
        ("TAVILY_API_KEY", "k".to_string()),
        ("BRAVE_API_KEY", "k".to_string()),
        ("EXA_API_KEY", "k".to_string()),
        ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
        ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
        ("CONDUCTOR_EXA_BASE_URL", exa.url()),
    ]);
    let available = providers::availability(&env, &[]);
    let selection = Selection::choose(
        Some(&[ProviderName::Tavily, ProviderName::Brave, ProviderName::Exa]),
        &available,
    );
    let engine = Engine::new(Http::new(HttpLimits::default()));
    let opts = ResearchOptions {
        max_sources: 10,
        deadline: Duration::from_secs(10),
        cache: None,
    };
    let mut overheads = Vec::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        let r = engine
            .research("bench", &selection, &opts, None, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.sources.len(), 3);
        overheads.push(t0.elapsed().as_secs_f64() * 1000.0 - 900.0);
    }
    overheads.sort_by(f64::total_cmp);
    println!("\n| measurement | value | goal |");
    println!("|---|---|---|");
    println!(
        "| fan-out, providers at 300/600/900 ms: overhead over the slowest (median of 7) | {:.1} ms | < 20 ms |",
        overheads[3]
    );
    println!(
        "| fan-out overhead, worst of 7 | {:.1} ms | < 20 ms |",
        overheads[6]
    );

    // Peak memory of a CLI run: poll the child's VmHWM (peak resident set) until it exits.
    let wiki = Loopback::start(|_, _| {
        Reply::Delayed(
            Duration::from_millis(300),
            Box::new(ok(wikipedia_response(&[
                ("Tokio", "runtime"),
                ("Smol", "runtime"),
            ]))),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"))
        .args(["research", "tokio", "--providers", "wikipedia"])
        .env("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url())
        .env("XDG_CONFIG_HOME", dir.path())
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "| peak memory (VmHWM) of `conductor-lsp research` | {:.1} MiB | |",
        peak_kb as f64 / 1024.0
    );
}

fn main() {
    let table_only = std::env::args().any(|a| a == "--table");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(fan_out_table());
    if !table_only {
        let mut c = Criterion::default().configure_from_args();
        bench_merge_render(&mut c);
        c.final_summary();
    }
}
