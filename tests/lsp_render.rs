//! Reports as readers see them, checked against what the server says: footnote labels unique per report
//! and numbered as renderers number them, heading levels that fit the real parent, and hover on a report
//! saved by the CLI. The notes are rendered with pulldown-cmark (GitHub-style footnotes); the server is
//! driven in-process with loopback providers.

mod lsp_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::Query;
use conductor::config::Env;
use lsp_support::*;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde_json::{Value, json};

const URI: &str = "file:///notes/render.md";

// ---------------------------------------------------------------- loopback stand-ins

/// Wikipedia's search API (`generator=search` with intro extracts) answering `count` pages about the
/// query: `<query> p01`, `<query> p02`, ... (numbers padded, so no title or URL is a prefix of another),
/// listed last first as page ids go, each with its rank in `index`.
async fn wikipedia(count: usize) -> SocketAddr {
    let app = axum::Router::new().route(
        "/w/api.php",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| async move {
            let topic = q.get("gsrsearch").cloned().unwrap_or_default();
            let pages: Vec<Value> = (1..=count)
                .rev()
                .map(|i| {
                    json!({"pageid": 1000 - i, "ns": 0, "title": format!("{topic} p{i:02}"),
                           "index": i, "extract": format!("Page {i} about {topic}"),
                           "touched": "2024-01-01T00:00:00Z"})
                })
                .collect();
            Json(json!({"batchcomplete": true, "query": {"pages": pages}}))
        }),
    );
    serve(app).await
}

/// An OpenAI-compatible chat endpoint whose answer is `answer` (streamed when asked to stream).
async fn llm(answer: &'static str) -> SocketAddr {
    let app = axum::Router::new().fallback(move |Json(req): Json<Value>| async move {
        if req["stream"] == true {
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": answer}, "finish_reason": null}]});
            let body = format!(
                "data: {chunk}\n\ndata: {}\n\ndata: [DONE]\n\n",
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            );
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(axum::body::Body::from(body))
                .unwrap()
        } else {
            let body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                              "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 100, "completion_tokens": 20}});
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap()
        }
    });
    serve(app).await
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn pairs(wiki: SocketAddr, llm: Option<SocketAddr>, dir: &std::path::Path) -> Vec<(&str, String)> {
    let mut v = vec![
        ("CONDUCTOR_PROVIDERS", "wikipedia".to_string()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", format!("http://{wiki}")),
        // The fake results carry public URLs: never read them.
        ("CONDUCTOR_READ", "0".to_string()),
        (
            "CONDUCTOR_CACHE_DIR",
            dir.join("cache").display().to_string(),
        ),
        ("XDG_CONFIG_HOME", dir.join("config").display().to_string()),
        ("HOME", dir.join("home").display().to_string()),
    ];
    if let Some(llm) = llm {
        v.push(("OPENAI_API_KEY", "sk-render-test-key".to_string()));
        v.push(("CONDUCTOR_OPENAI_BASE_URL", format!("http://{llm}")));
    }
    v
}

async fn server(
    wiki: SocketAddr,
    llm: Option<SocketAddr>,
    dir: &std::path::Path,
    init: Value,
) -> Harness {
    let env = Env::from_pairs(pairs(wiki, llm, dir));
    start(
        env,
        Config {
            init_options: init,
            ..Config::default()
        },
    )
    .await
}

/// Researches `needle` (the first occurrence in the client's copy) and inserts the report below it.
async fn research(c: &mut Client, needle: &str) {
    let text = c.text(URI).to_string();
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.research", "arguments": [{
                "uri": URI, "range": range_of(&text, needle, "utf-16"), "placement": "below"}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
}

// ---------------------------------------------------------------- reading a note

/// A citation marker as written in the note: `[n]` or `[^label]`, at a byte offset.
#[derive(Clone, Debug)]
struct Cite {
    line: usize,
    byte: usize,
    footnote: Option<String>,
    n: usize,
}

/// Every citation marker of the note (a hand scan, independent of the server's): footnote references
/// and `[n]` that is neither a link text nor a definition nor escaped.
fn cites(doc: &str) -> Vec<Cite> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (line, text) in doc.split_inclusive('\n').enumerate() {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                i += 2;
                continue;
            }
            if b[i] == b'[' && (i == 0 || b[i - 1] != b']') {
                let close = text[i..].find(']').map(|c| i + c);
                if let Some(close) = close {
                    let inner = &text[i + 1..close];
                    let after = b.get(close + 1).copied();
                    let (footnote, num) = match inner.strip_prefix('^') {
                        Some(label) => (Some(label.to_string()), label.rsplit('-').next().unwrap()),
                        None => (None, inner),
                    };
                    if !num.is_empty()
                        && num.bytes().all(|c| c.is_ascii_digit())
                        && !matches!(after, Some(b':') | Some(b'(') | Some(b'['))
                    {
                        out.push(Cite {
                            line,
                            byte: offset + i,
                            footnote,
                            n: num.parse().unwrap(),
                        });
                    }
                }
            }
            i += 1;
        }
        offset += text.len();
    }
    out
}

/// The inserted reports: (begin line, end line).
fn reports(doc: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut begin = None;
    for (i, l) in doc.lines().enumerate() {
        if l.starts_with("<!-- conductor:report ") {
            begin = Some(i);
        } else if l == "<!-- /conductor:report -->" {
            out.push((begin.take().unwrap(), i));
        }
    }
    out
}

/// The URL of the first link on a line (`[T](url)`).
fn link_url(line: &str) -> String {
    let start = line.find("](").unwrap() + 2;
    let rest = &line[start..];
    let rest = rest.strip_prefix('<').unwrap_or(rest);
    rest[..rest.find([')', '>']).unwrap()].to_string()
}

/// What a marker cites, read from its own report's citation list: (entry line, URL).
fn own_entry(doc: &str, c: &Cite) -> (usize, String) {
    let lines: Vec<&str> = doc.lines().collect();
    let (b, e) = reports(doc)
        .into_iter()
        .find(|(b, e)| (*b..=*e).contains(&c.line))
        .unwrap_or((0, lines.len() - 1));
    let numbered = format!("{}. [", c.n);
    let found = (b..=e).find(|&l| {
        let t = lines[l];
        match &c.footnote {
            Some(label) => t.starts_with(&format!("[^{label}]: ")),
            // A repeated citation in a footnote-style report names the footnote numbered n.
            None => {
                t.starts_with(&numbered)
                    || (t.starts_with("[^") && t.contains(&format!("-{}]: ", c.n)))
            }
        }
    });
    let l = found.unwrap_or_else(|| panic!("no entry for {c:?} in lines {b}..{e}:\n{doc}"));
    (l, link_url(lines[l]))
}

/// A footnote definition as rendered: its label and the URL of its first link.
type Definition = (String, String);

/// The note as pulldown-cmark renders it: footnote references in order (label, line), and each
/// footnote definition's label with the URL of its first link.
fn rendered_footnotes(doc: &str) -> (Vec<(String, usize)>, Vec<Definition>) {
    let line_of = |b: usize| doc[..b].matches('\n').count();
    let mut refs = Vec::new();
    let mut defs: Vec<Definition> = Vec::new();
    let mut in_def: Option<String> = None;
    for (ev, range) in Parser::new_ext(doc, Options::ENABLE_FOOTNOTES).into_offset_iter() {
        match ev {
            Event::FootnoteReference(label) => refs.push((label.to_string(), line_of(range.start))),
            Event::Start(Tag::FootnoteDefinition(label)) => in_def = Some(label.to_string()),
            Event::End(TagEnd::FootnoteDefinition) => in_def = None,
            Event::Start(Tag::Link { dest_url, .. }) => {
                if let Some(label) = in_def.take() {
                    defs.push((label, dest_url.to_string()));
                }
            }
            _ => {}
        }
    }
    (refs, defs)
}

/// Hover and definition at a marker: (hover text, definition line).
async fn ask(c: &mut Client, doc: &str, cite: &Cite) -> (String, Option<u64>) {
    let (l, ch) = position(doc, cite.byte + 1, "utf-16");
    let pos = json!({"line": l, "character": ch});
    let hover = c.hover(URI, pos.clone()).await;
    let value = hover["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let def = c
        .request(
            "textDocument/definition",
            json!({"textDocument": {"uri": URI}, "position": pos}),
        )
        .await;
    (value, def["result"]["range"]["start"]["line"].as_u64())
}

/// Every marker resolves to its own report's source: in hover, in definition, and (footnotes) in the
/// rendered note, where each label is defined once and referenced once.
async fn check_every_marker(c: &mut Client, doc: &str) -> usize {
    let all = cites(doc);
    for cite in &all {
        let (line, url) = own_entry(doc, cite);
        let (hover, def) = ask(c, doc, cite).await;
        assert!(
            hover.contains(&url),
            "hover on {cite:?} shows {hover:?}, not {url}"
        );
        assert_eq!(def, Some(line as u64), "definition of {cite:?}");
    }
    let (refs, defs) = rendered_footnotes(doc);
    let labels: Vec<&String> = defs.iter().map(|d| &d.0).collect();
    let mut unique = labels.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        labels.len(),
        "a footnote defined twice: {labels:?}"
    );
    assert_eq!(refs.len(), defs.len(), "one reference per note: {refs:?}");
    for (label, line) in &refs {
        let cite = all
            .iter()
            .find(|c| c.line == *line && c.footnote.as_ref() == Some(label))
            .unwrap();
        let (_, url) = own_entry(doc, cite);
        let rendered = &defs.iter().find(|d| &d.0 == label).unwrap().1;
        assert_eq!(rendered, &url, "[^{label}] renders as another source");
    }
    all.len()
}

// ---------------------------------------------------------------- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_footnote_reports_in_one_note_cite_their_own_sources() {
    let wiki = wikipedia(4).await;
    let model = llm("Both matter [2]. The first one too [1] [2].").await;
    for style in ["footnotes", "numbered", "links"] {
        for summary in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut h = server(
                wiki,
                summary.then_some(model),
                dir.path(),
                json!({"citation_style": style}),
            )
            .await;
            let c = &mut h.client;
            let text = "# Notes\n\nRust ownership\n\nBorrow checker\n";
            c.open(URI, text).await;
            research(c, "Borrow checker").await;
            research(c, "Rust ownership").await;
            let doc = c.text(URI).to_string();
            assert_eq!(reports(&doc).len(), 2, "{doc}");
            let n = check_every_marker(c, &doc).await;
            // Every style cites by marker once there is a summary; footnotes always do.
            let expected = match (style, summary) {
                ("links", false) => 0,
                (_, true) => 2 * (3 + 4),
                _ => 2 * 4,
            };
            assert_eq!(n, expected, "{style} {summary}:\n{doc}");
            if style == "footnotes" {
                let prefixes: Vec<String> = doc
                    .lines()
                    .filter(|l| l.starts_with("[^") && l.contains("-1]: "))
                    .map(|l| l[2..l.find('-').unwrap()].to_string())
                    .collect();
                assert_eq!(prefixes.len(), 2, "{doc}");
                assert_ne!(prefixes[0], prefixes[1], "{doc}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footnote_numbers_seen_match_hover() {
    let wiki = wikipedia(12).await;
    // The summary cites the 9th source first, the 3rd, the 9th again, then the 1st.
    let model = llm("Ownership is checked at compile time [9]. Moves transfer it [3] [9]. Borrowing lends it [1].").await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = server(
        wiki,
        Some(model),
        dir.path(),
        json!({"citation_style": "footnotes", "max_sources": 12}),
    )
    .await;
    let c = &mut h.client;
    let text = "# Notes\n\nRust ownership\n";
    c.open(URI, text).await;
    research(c, "Rust ownership").await;
    let doc = c.text(URI).to_string();

    // Renderers number footnotes by first reference: the k-th reference must be the report's source k,
    // each label referenced once (pandoc makes a note per reference), 12 notes for 12 sources.
    let (refs, defs) = rendered_footnotes(&doc);
    assert_eq!(defs.len(), 12, "{doc}");
    assert_eq!(refs.len(), 12, "{doc}");
    for (k, (label, _)) in refs.iter().enumerate() {
        assert!(
            label.ends_with(&format!("-{}", k + 1)),
            "reference {k}: {label}\n{doc}"
        );
    }
    // What the reader meets first is the page the model cited first: the old 9th, now number 1.
    assert!(
        doc.contains("Ownership is checked at compile time [^"),
        "{doc}"
    );
    assert_eq!(
        defs[0].1, "https://en.wikipedia.org/wiki/Rust_ownership_p09",
        "{doc}"
    );
    assert_eq!(
        defs[1].1,
        "https://en.wikipedia.org/wiki/Rust_ownership_p03"
    );
    assert_eq!(
        defs[2].1,
        "https://en.wikipedia.org/wiki/Rust_ownership_p01"
    );
    assert_eq!(
        defs[3].1,
        "https://en.wikipedia.org/wiki/Rust_ownership_p02"
    );
    // The second citation of the 9th is written as the number the reader saw for it.
    assert!(doc.contains("Moves transfer it [^"), "{doc}");
    assert!(doc.contains("-2] [1]."), "{doc}");
    // Hover (from the store) and definition agree with the rendered numbers, repeated `[n]` included.
    let rendered_number: HashMap<String, usize> = refs
        .iter()
        .enumerate()
        .map(|(k, (label, _))| (label.clone(), k + 1))
        .collect();
    for cite in cites(&doc) {
        let shown = match &cite.footnote {
            Some(label) => rendered_number[label],
            None => cite.n,
        };
        let url = &defs[shown - 1].1;
        let (hover, def) = ask(c, &doc, &cite).await;
        assert!(
            hover.contains(url),
            "{cite:?} shows {shown}: {url}, hover {hover}"
        );
        let def_line = doc.lines().nth(def.unwrap() as usize).unwrap();
        assert_eq!(&link_url(def_line), url);
    }
    // The same holds after a restart, from the persistent store.
    h.client.shutdown_and_exit().await;
    let mut h = server(
        wiki,
        None,
        dir.path(),
        json!({"citation_style": "footnotes"}),
    )
    .await;
    let c = &mut h.client;
    c.open(URI, &doc).await;
    let first = &cites(&doc)[0];
    let (hover, _) = ask(c, &doc, first).await;
    assert!(hover.contains("Page 9 about Rust ownership"), "{hover}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footnote_labels_survive_refresh() {
    let wiki = wikipedia(3).await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = server(
        wiki,
        None,
        dir.path(),
        json!({"citation_style": "footnotes"}),
    )
    .await;
    let c = &mut h.client;
    let text = "# Notes\n\nRust ownership\n";
    c.open(URI, text).await;
    research(c, "Rust ownership").await;
    let before = c.text(URI).to_string();
    let labels = |doc: &str| -> Vec<String> {
        doc.lines()
            .filter(|l| l.starts_with("[^"))
            .map(|l| l[..l.find(':').unwrap()].to_string())
            .collect()
    };
    assert!(
        labels(&before).iter().all(|l| l.starts_with("[^c")),
        "labels carry the report's prefix: {before}"
    );
    let inside = find(&before, "Citations", "utf-16");
    let res = c
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.refresh", "arguments": [{"uri": URI,
                   "range": {"start": inside, "end": inside}}]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let after = c.text(URI).to_string();
    assert_ne!(
        before
            .lines()
            .find(|l| l.starts_with("<!-- conductor:report")),
        after
            .lines()
            .find(|l| l.starts_with("<!-- conductor:report")),
        "a refreshed report is a new report"
    );
    assert_eq!(labels(&before), labels(&after), "{before}\n{after}");
    check_every_marker(c, &after).await;
}

/// The report's title and section lines, as pulldown-cmark sees the note: (heading level or 0 for a
/// bold paragraph title, text).
fn outline(doc: &str) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    let mut current: Option<(u8, String)> = None;
    let mut strong_para = false;
    let opts = Options::ENABLE_FOOTNOTES | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    for ev in Parser::new_ext(doc, opts) {
        match ev {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some((level as u8, String::new()))
            }
            Event::Start(Tag::Paragraph) => strong_para = true,
            Event::Start(Tag::Strong) if strong_para => current = Some((0, String::new())),
            Event::Text(t) => {
                strong_para = false;
                if let Some(c) = current.as_mut() {
                    c.1.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) | Event::End(TagEnd::Strong) => {
                out.extend(current.take());
                strong_para = false;
            }
            _ => strong_para = false,
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setext_and_fenced_headings_set_the_report_level() {
    let wiki = wikipedia(2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = server(
        wiki,
        None,
        dir.path(),
        json!({"citation_style": "numbered"}),
    )
    .await;
    let c = &mut h.client;
    let text = "---\ntitle: front matter\n---\n\nNotes\n=====\n\nBatteries\n-------\n\n```sh\n# a comment, not a heading\n```\n\nLithium cells\n";
    c.open(URI, text).await;
    research(c, "Lithium cells").await;
    let doc = c.text(URI).to_string();
    let o = outline(&doc);
    assert_eq!(o[0], (1, "Notes".into()), "{o:?}");
    assert_eq!(o[1], (2, "Batteries".into()), "{o:?}");
    // One level below the setext `Batteries`, not below the `#` line in the fence.
    assert_eq!(o[2], (3, "Conductor Report: Lithium cells".into()), "{doc}");
    assert_eq!(o[3], (4, "Objective".into()), "{doc}");
    assert!(doc.starts_with(text.trim_end()), "{doc}");

    // A selection on a setext heading's text puts the report below the underline.
    research(c, "Notes").await;
    let doc = c.text(URI).to_string();
    assert!(
        doc.contains("Notes\n=====\n\n<!-- conductor:report "),
        "{doc}"
    );
    let o = outline(&doc);
    assert_eq!(o[1], (2, "Conductor Report: Notes".into()), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_under_h6_stays_subordinate() {
    let wiki = wikipedia(2).await;
    for (parent, title, section) in [
        (
            5u8,
            (6u8, "Conductor Report: Lithium cells"),
            (0u8, "Objective."),
        ),
        (6, (0, "Conductor Report:"), (0, "Objective.")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut h = server(
            wiki,
            None,
            dir.path(),
            json!({"citation_style": "numbered"}),
        )
        .await;
        let c = &mut h.client;
        let text = format!(
            "# Top\n\n{} Deep\n\nLithium cells\n",
            "#".repeat(parent as usize)
        );
        c.open(URI, &text).await;
        research(c, "Lithium cells").await;
        let doc = c.text(URI).to_string();
        let o = outline(&doc);
        // No heading in the report is a sibling of the parent, or above it.
        assert_eq!(o[1], (parent, "Deep".into()), "{doc}");
        assert_eq!(o[2], (title.0, title.1.into()), "{doc}");
        assert_eq!(o[3], (section.0, section.1.into()), "{doc}");
        assert!(
            o[2..].iter().all(|(l, _)| *l == 0 || *l > parent),
            "{o:?}\n{doc}"
        );
        // Hover and definition still work inside it.
        check_every_marker(c, &doc).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hover_works_on_a_cli_report_without_markers() {
    let wiki = wikipedia(3).await;
    let dir = tempfile::tempdir().unwrap();
    // Two reports saved by the CLI into one note, as a user appends them: no marker comments.
    let mut note = String::from("# Reading notes\n\n");
    for (topic, style) in [
        ("Rust ownership", "numbered"),
        ("Borrow checker", "numbered"),
        ("Lifetimes", "footnotes"),
    ] {
        let out = dir.path().join("report.md");
        let run = conductor_cli(
            &[
                "research",
                topic,
                "--style",
                style,
                "-o",
                out.to_str().unwrap(),
            ],
            &pairs(wiki, None, dir.path()),
            dir.path(),
        )
        .await;
        assert_eq!(run.0, 0, "{}", run.1);
        note.push_str(&std::fs::read_to_string(&out).unwrap());
        note.push('\n');
    }
    assert!(!note.contains("<!-- conductor:report"), "{note}");
    let mut h = server(wiki, None, dir.path(), json!({})).await;
    let c = &mut h.client;
    c.open(URI, &note).await;
    let all = cites(&note);
    assert_eq!(all.len(), 9, "{note}");
    for cite in &all {
        // Its own report: the entries after it, up to the next report's title.
        let lines: Vec<&str> = note.lines().collect();
        let end = (cite.line + 1..lines.len())
            .find(|&l| lines[l].starts_with("# Conductor Report"))
            .unwrap_or(lines.len());
        let label = match &cite.footnote {
            Some(label) => format!("[^{label}]: "),
            None => format!("{}. [", cite.n),
        };
        let entry = (cite.line..end)
            .find(|&l| lines[l].starts_with(&label))
            .unwrap_or_else(|| panic!("{cite:?}\n{note}"));
        let url = link_url(lines[entry]);
        let (hover, def) = ask(c, &note, cite).await;
        assert!(hover.contains(&url), "{cite:?}: {hover}");
        assert_eq!(def, Some(entry as u64), "{cite:?}");
    }
}

/// Runs the real CLI with only `env` (plus PATH): (exit status, stderr).
async fn conductor_cli(
    args: &[&str],
    env: &[(&str, String)],
    cwd: &std::path::Path,
) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"));
    cmd.args(args)
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(cwd)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the CLI finished within 60 s")
        .expect("the CLI ran");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
