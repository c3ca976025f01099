//! The history of reports: `conductor-lsp history` and `history show` against what `research` printed
//! (the real binary, a loopback Wikipedia), a store written by an older version, and in the editor the
//! "Insert the report from <date>" code action (the in-process server), which asks no provider.

mod common;
mod lsp_support;

use std::sync::atomic::Ordering;

use common::{Loopback, Run, ok, run_cli, wikipedia_response};
use serde_json::{Value, json};

/// A Wikipedia stand-in whose titles name the query, so each topic gets its own sources.
async fn wikipedia() -> Loopback {
    Loopback::start(|seen, _| {
        let q = seen.param("srsearch").unwrap_or("").to_string();
        ok(wikipedia_response(&[
            (&format!("{q} history"), "How it began"),
            (&format!("{q} overview"), "An overview"),
        ]))
    })
    .await
}

fn env(wiki: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        ("CONDUCTOR_PROVIDERS", "wikipedia".to_string()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
    ]
}

async fn cli(args: &[&str], env: &[(&str, String)], dir: &std::path::Path) -> Run {
    run_cli(args, env, dir).await
}

fn listing(run: &Run) -> Vec<Value> {
    assert_eq!(run.status, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("history --format json is JSON");
    v["reports"].as_array().expect("a reports array").clone()
}

#[tokio::test]
async fn history_lists_researches_newest_first_and_shows_each_as_it_was_printed() {
    let wiki = wikipedia().await;
    let env = env(&wiki);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    // Nothing stored yet: said plainly, exit 0; JSON an empty list.
    let empty = cli(&["history"], &env, dir).await;
    assert_eq!(empty.status, 0, "{}", empty.stderr);
    assert!(
        empty.stdout.starts_with("No stored reports"),
        "{}",
        empty.stdout
    );
    assert!(listing(&cli(&["history", "--format", "json"], &env, dir).await).is_empty());

    let first = cli(
        &["research", "Rust ownership", "--style", "footnotes"],
        &env,
        dir,
    )
    .await;
    assert_eq!(first.status, 0, "{}", first.stderr);
    let second = cli(
        &["research", "Borrow checker", "--format", "json"],
        &env,
        dir,
    )
    .await;
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(wiki.count(), 2);

    // JSON: both, newest first, with their columns.
    let reports = listing(&cli(&["history", "--format", "json"], &env, dir).await);
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0]["topic"], "Borrow checker");
    assert_eq!(reports[1]["topic"], "Rust ownership");
    for r in &reports {
        let id = r["id"].as_str().unwrap();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        assert!(
            chrono::DateTime::parse_from_rfc3339(r["date"].as_str().unwrap()).is_ok(),
            "{r}"
        );
        assert_eq!(r["sources"], 2, "{r}");
        assert_eq!(r["providers"], json!(["wikipedia"]), "{r}");
        assert_eq!(r["cost_usd"], Value::Null, "{r}");
    }
    let (newest, older) = (
        reports[0]["id"].as_str().unwrap().to_string(),
        reports[1]["id"].as_str().unwrap().to_string(),
    );

    // Text: a table, the same order, unknown cost as a dash.
    let text = cli(&["history"], &env, dir).await;
    assert_eq!(text.status, 0, "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", text.stdout);
    assert!(lines[0].starts_with("id"), "{}", text.stdout);
    for (line, id, topic) in [
        (lines[1], &newest, "Borrow checker"),
        (lines[2], &older, "Rust ownership"),
    ] {
        assert!(line.starts_with(id.as_str()), "{line}");
        assert!(line.ends_with(topic), "{line}");
        assert!(line.contains(" wikipedia "), "{line}");
        assert!(line.contains('—'), "{line}");
    }

    // `show`: exactly what research printed, in the style it was printed in (footnotes here), and the
    // research JSON for the one printed as JSON.
    let shown = cli(&["history", "show", &older], &env, dir).await;
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    assert!(first.stdout.contains("[^c"), "footnotes: {}", first.stdout);
    assert_eq!(shown.stdout, first.stdout);
    let shown = cli(&["history", "show", &newest, "--format", "json"], &env, dir).await;
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    assert_eq!(shown.stdout, second.stdout);
    // A unique beginning of an id is enough, as in git.
    let by_prefix = cli(&["history", "show", &older[..8]], &env, dir).await;
    assert_eq!(by_prefix.stdout, first.stdout, "{}", by_prefix.stderr);

    // An unknown id: a clear error, exit 1, nothing on stdout.
    let unknown = cli(&["history", "show", "0000ffff0000ffff"], &env, dir).await;
    assert_eq!(unknown.status, 1);
    assert!(unknown.stdout.is_empty(), "{}", unknown.stdout);
    assert!(
        unknown
            .stderr
            .contains("no stored report has the id 0000ffff0000ffff"),
        "{}",
        unknown.stderr
    );

    // --limit 1: the newest only.
    let one = listing(&cli(&["history", "--limit", "1", "--format", "json"], &env, dir).await);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["id"], newest.as_str());
    let zero = cli(&["history", "--limit", "0"], &env, dir).await;
    assert_eq!(
        zero.status, 2,
        "--limit 0 is a usage error: {}",
        zero.stderr
    );
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_costs_a_warning_not_the_research() {
    let wiki = wikipedia().await;
    let dir = tempfile::tempdir().unwrap();
    // The cache dir is a regular file: no database can be made there.
    let not_a_dir = dir.path().join("cache-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let mut env = env(&wiki);
    env.push(("CONDUCTOR_CACHE_DIR", not_a_dir.display().to_string()));
    let run = cli(&["research", "Rust ownership"], &env, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains("# Conductor Report: Rust ownership"));
    assert!(
        run.stderr
            .contains("warning: the report was not stored for `history`"),
        "{}",
        run.stderr
    );
}

/// The schema of the first release, as it created its tables.
const OLD_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    style TEXT NOT NULL,
    created TEXT NOT NULL,
    research TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    report_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    url TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (report_id, n)
);
CREATE INDEX IF NOT EXISTS sources_by_url ON sources(url);
";

#[tokio::test]
async fn a_store_written_by_an_older_version_still_opens_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    // A report as the first release stored it: no history columns; its JSON has no reading fields.
    let research = json!({
        "topic": "Old topic",
        "date": "2025-06-01T10:00:00Z",
        "elapsed_ms": 12,
        "providers": [
            {"name": "tavily", "status": "ok", "results": 1, "elapsed_ms": 5, "credits": 1.0},
            {"name": "exa", "status": "ok", "results": 1, "elapsed_ms": 5, "cost_usd": 0.005},
            {"name": "brave", "status": "failed", "results": 0, "elapsed_ms": 5,
             "error": "rate limited", "error_kind": "rate_limited"}
        ],
        "sources": [
            {"rank": 1, "url": "https://e.org/a", "title": "A", "snippet": "s",
             "providers": ["tavily", "exa"], "published": null, "score": 0.5}
        ]
    });
    {
        let db = rusqlite::Connection::open(cache.join("conductor.sqlite3")).unwrap();
        db.execute_batch(OLD_SCHEMA).unwrap();
        db.execute(
            "INSERT INTO reports (id, topic, style, created, research) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                "00000000000000aa",
                "Old topic",
                "numbered",
                "2025-06-01T10:00:00Z",
                research.to_string()
            ],
        )
        .unwrap();
    }
    let wiki = wikipedia().await;
    let env = env(&wiki);
    let reports = listing(&cli(&["history", "--format", "json"], &env, dir.path()).await);
    assert_eq!(
        reports,
        vec![json!({
            "id": "00000000000000aa", "date": "2025-06-01T10:00:00Z", "topic": "Old topic",
            "sources": 1, "providers": ["tavily", "exa"], "cost_usd": 0.005, "credits": 1.0
        })]
    );
    let shown = cli(&["history", "show", "00000000000000aa"], &env, dir.path()).await;
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("# Conductor Report: Old topic"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("1. [A](https://e.org/a)"),
        "numbered: {}",
        shown.stdout
    );

    // New reports go into the migrated store beside it, newest first; the old row keeps its data.
    let run = cli(&["research", "New topic"], &env, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let reports = listing(&cli(&["history", "--format", "json"], &env, dir.path()).await);
    let topics: Vec<&str> = reports
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["New topic", "Old topic"]);
    let db = rusqlite::Connection::open(cache.join("conductor.sqlite3")).unwrap();
    let stored: String = db
        .query_row(
            "SELECT research FROM reports WHERE id = '00000000000000aa'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap(),
        research,
        "the old row's data is untouched"
    );
}

// ---- In the editor ---------------------------------------------------------------------------------

const URI: &str = "file:///notes/history.md";
const BEGIN: &str = "<!-- conductor:report ";

/// Each inserted report: (its id, its text without the begin line).
fn reports_in(doc: &str) -> Vec<(String, String)> {
    doc.split(BEGIN)
        .skip(1)
        .map(|part| {
            let (id, rest) = part.split_once(" -->").unwrap();
            let body = rest.split("<!-- /conductor:report -->").next().unwrap();
            (id.to_string(), body.to_string())
        })
        .collect()
}

fn titles(actions: &Value) -> Vec<String> {
    actions["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_researched_before_offers_its_stored_report_and_inserts_it_without_asking_a_provider()
 {
    use lsp_support::*;
    let p = Providers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(test_env(&p, dir.path()), Config::default()).await;
    let c = &mut h.client;
    let text = "# Notes\n\nRust ownership matters.\n\n# Later\n\nMore on RUST   Ownership here.\n\n# Other\n\nBorrow checker.\n";
    c.open(URI, text).await;

    // Never researched: only "Research".
    let actions = c
        .code_actions(URI, range_of(text, "Rust ownership", &c.enc))
        .await;
    assert_eq!(titles(&actions), ["Research “Rust ownership”"]);
    let day_before = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let cmd = actions["result"][0]["command"].clone();
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": cmd["command"], "arguments": cmd["arguments"]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let day_after = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let asked = p.state.requests.load(Ordering::SeqCst);
    assert_eq!(asked, 2, "wikipedia and hackernews");

    // The same topic elsewhere, in other case and spacing: "Insert the report from <date>" beside
    // "Research"; a topic never researched still gets only "Research".
    let doc = c.text(URI).to_string();
    let actions = c
        .code_actions(URI, range_of(&doc, "RUST   Ownership", &c.enc))
        .await;
    let t = titles(&actions);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].starts_with("Research “RUST"), "{t:?}");
    assert!(
        t[1] == format!("Insert the report from {day_before}")
            || t[1] == format!("Insert the report from {day_after}"),
        "{t:?}"
    );
    let insert = actions["result"][1]["command"].clone();
    assert_eq!(insert["command"], "conductor.insertStored");
    let other = c
        .code_actions(URI, range_of(&doc, "Borrow checker", &c.enc))
        .await;
    assert_eq!(titles(&other).len(), 1, "{other}");

    // Inserting it: the stored report, under the selection, with no provider asked.
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": insert["command"], "arguments": insert["arguments"]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    assert_eq!(res["result"]["sources"], 3, "{res}");
    assert_eq!(
        p.state.requests.load(Ordering::SeqCst),
        asked,
        "no provider was asked"
    );
    let doc = c.text(URI).to_string();
    assert_eq!(c.server_text(URI).await["text"], doc.as_str());
    let reports = reports_in(&doc);
    assert_eq!(reports.len(), 2, "{doc}");
    let (first_id, first) = &reports[0];
    let (copy_id, copy) = &reports[1];
    assert_ne!(first_id, copy_id, "the copy has an id of its own");
    assert_eq!(copy, first, "the same report, same sources:\n{doc}");
    let later = doc.find("More on RUST").unwrap();
    assert!(
        doc.find(&format!("{BEGIN}{copy_id}")).unwrap() > later
            && doc.find(&format!("{BEGIN}{copy_id}")).unwrap() < doc.find("# Other").unwrap(),
        "under its selection:\n{doc}"
    );

    // Hover on the copy's first marker: its source, remembered under the copy's id.
    let marker = |from: usize| doc[from..].find("began long ago [").unwrap() + from + 16;
    let hover_at = |b: usize| {
        let (l, ch) = position(&doc, b, "utf-16");
        json!({"line": l, "character": ch})
    };
    let original = c.hover(URI, hover_at(marker(0))).await;
    let copied = c.hover(URI, hover_at(marker(later))).await;
    assert!(
        original["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("Rust ownership history"),
        "{original}"
    );
    assert_eq!(
        copied["result"]["contents"], original["result"]["contents"],
        "{copied}"
    );
    // Refresh is offered inside the copy, as in any inserted report.
    let at = hover_at(marker(later));
    let inside = c.code_actions(URI, json!({"start": at, "end": at})).await;
    assert_eq!(titles(&inside), ["Refresh this report"]);

    // The copy is stored (hover after a restart, refresh) but is no new entry in the history.
    c.shutdown_and_exit().await;
    assert!(h.server.await.unwrap());
    let store = conductor::store::Store::open(dir.path()).unwrap();
    assert!(store.report(copy_id).unwrap().is_some());
    let listed = store.list(10).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(&listed[0].id, first_id);
}
