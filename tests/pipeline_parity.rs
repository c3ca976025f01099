//! The CLI and the language server run one pipeline: for the same research they produce the same
//! report, apart from heading levels, the server's marker comments, footnote label prefixes (derived
//! from the report id in the server) and timings.

mod lsp_support;

use std::time::Duration;

use lsp_support::*;
use serde_json::json;

/// The report with what may differ between the two paths taken out.
fn normalised(report: &str) -> String {
    report
        .lines()
        .filter(|l| !l.starts_with("<!-- conductor:") && !l.starts_with("<!-- /conductor:"))
        .map(|l| {
            let l = l.trim_start_matches('#').trim_start();
            // "*Researched 2026-12-02 in 5 ms with …*": the date stays, the time goes.
            let l = match (l.find(" in "), l.find(" with ")) {
                (Some(a), Some(b)) if l.starts_with("*Researched ") && a < b => {
                    format!("{}{}", &l[..a], &l[b..])
                }
                _ => l.to_string(),
            };
            // Footnote labels: `[^c1a2b3c-4]` → `[^c-4]`.
            let mut out = String::new();
            let mut rest = l.as_str();
            while let Some(at) = rest.find("[^c") {
                out.push_str(&rest[..at + 3]);
                rest = &rest[at + 3..];
                if rest.len() > 7 && rest.as_bytes()[6] == b'-' {
                    rest = &rest[6..];
                }
            }
            out.push_str(rest);
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

async fn server_report(p: &Providers, style: &str, topic: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        init_options: json!({ "citation_style": style }),
        ..Config::default()
    };
    let mut h = start(test_env(p, dir.path()), cfg).await;
    let c = &mut h.client;
    let uri = "file:///tmp/conductor-parity/notes.md";
    c.open(uri, "").await;
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{"uri": uri, "topic": topic,
                   "placement": "end",
                   "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    c.text(uri).to_string()
}

fn cli_report(p: &Providers, style: &str, topic: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://{}", p.addr);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"))
        .args(["research", topic, "--style", style])
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        .env("CONDUCTOR_PROVIDERS", "wikipedia,hackernews")
        .env("CONDUCTOR_WIKIPEDIA_BASE_URL", &base)
        .env("CONDUCTOR_HACKERNEWS_BASE_URL", &base)
        .env("CONDUCTOR_CACHE_DIR", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_server_write_the_same_report() {
    let p = Providers::start().await;
    let topic = "Rust async runtimes";
    for style in ["links", "numbered", "footnotes"] {
        let cli = cli_report(&p, style, topic);
        let server = tokio::time::timeout(Duration::from_secs(30), server_report(&p, style, topic))
            .await
            .unwrap();
        assert!(cli.contains(topic) && server.contains(topic));
        assert_eq!(
            normalised(&cli),
            normalised(&server),
            "{style}: the CLI and the server disagree\n--- CLI\n{cli}\n--- server\n{server}"
        );
    }
}
