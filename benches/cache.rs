//! A cached research against an uncached one, end to end (`cargo bench --bench cache`): the CLI process
//! from start to exit, with loopback Wikipedia and Hacker News stand-ins answering after 300 ms. Prints a
//! table of medians over 7 runs each.

#![allow(clippy::print_stdout)] // the bench prints its table

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;

async fn run(args: &[&str], env: &[(&str, String)], dir: &std::path::Path) -> Duration {
    let r = run_cli(args, env, dir).await;
    assert_eq!(r.status, 0, "{}", r.stderr);
    r.elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let delay = Duration::from_millis(300);
    let wiki = Loopback::start(move |_, _| {
        Reply::Delayed(
            delay,
            Box::new(ok(wikipedia_response(&[
                (
                    "Tokio (software)",
                    "Tokio is an asynchronous runtime for Rust.",
                ),
                ("Async/await", "Syntax for asynchronous functions."),
            ]))),
        )
    })
    .await;
    let hn = Loopback::start(move |_, _| {
        Reply::Delayed(
            delay,
            Box::new(ok(hn_response(&[(
                "Tokio in practice",
                Some("https://example.com/tokio"),
                "1",
            )]))),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("CONDUCTOR_CACHE_HOURS", "24".to_string()),
        ("CONDUCTOR_PROVIDERS", "wikipedia,hackernews".to_string()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
    ];
    let mut uncached = Vec::new();
    let mut cached = Vec::new();
    // Warm the cache once, then alternate so both see the same machine state.
    run(&["research", "tokio runtime"], &env, dir.path()).await;
    for _ in 0..7 {
        uncached.push(
            run(
                &["research", "tokio runtime", "--no-cache"],
                &env,
                dir.path(),
            )
            .await,
        );
        cached.push(run(&["research", "tokio runtime"], &env, dir.path()).await);
    }
    let requests_before = wiki.count() + hn.count();
    run(&["research", "tokio runtime"], &env, dir.path()).await;
    assert_eq!(
        wiki.count() + hn.count(),
        requests_before,
        "the cached run asked nothing"
    );
    let (u, c) = (median(uncached), median(cached));
    println!("\n## Cached research, end to end (process start to exit, median of 7)\n");
    println!("| research | time |");
    println!("|---|---|");
    println!(
        "| uncached (`--no-cache`), providers answering after 300 ms | {:.1} ms |",
        u.as_secs_f64() * 1000.0
    );
    println!(
        "| cached (same topic, within `cache_hours`) | {:.1} ms |",
        c.as_secs_f64() * 1000.0
    );
    println!("| speed-up | {:.1}x |", u.as_secs_f64() / c.as_secs_f64());
}
