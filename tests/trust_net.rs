//! What a remote server says cannot hurt: a key it echoes never reaches any output, an absurd number never
//! crashes or prints nonsense, and an unbounded title, snippet or host never makes an unbounded report.
//! The real binary (CLI and language server over stdio) against loopback stand-ins only.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const TAVILY_KEY: &str = "tvly-trust-secret-0001";
const BRAVE_KEY: &str = "brave-trust-secret-0002";
const EXA_KEY: &str = "exa-trust-secret-0003";
const OPENAI_KEY: &str = "sk-trust-secret-llm-0004";
const ANTHROPIC_KEY: &str = "sk-ant-trust-secret-0005";
const SEARX_USER: &str = "searxuser";
const SEARX_PASS: &str = "searx-pass-0006";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every secret of the test configuration, and the encoded forms a server might echo.
fn secret_forms() -> Vec<String> {
    let basic = format!("{SEARX_USER}:{SEARX_PASS}");
    let mut out = Vec::new();
    for s in [
        TAVILY_KEY,
        BRAVE_KEY,
        EXA_KEY,
        OPENAI_KEY,
        ANTHROPIC_KEY,
        SEARX_USER,
        SEARX_PASS,
        &basic,
    ] {
        out.push(s.to_string());
        out.push(b64(s).trim_end_matches('=').to_string());
        out.push(s.replace('-', "%2D"));
        out.push(s.replace(':', "%3A"));
    }
    out
}

/// Asserts no secret, in any form, is in `text` (zero-width characters ignored, ASCII case too).
fn assert_clean(what: &str, text: &str) {
    let visible: String = text
        .chars()
        .filter(|c| !matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}'))
        .collect::<String>()
        .to_ascii_lowercase();
    for form in secret_forms() {
        assert!(
            !visible.contains(&form.to_ascii_lowercase()),
            "{what} holds the secret {form:?}:\n{text}"
        );
    }
}

/// The credentials a request carried, echoed the ways careless servers do: each credential header as
/// sent, and each credential in it (a bearer token, the `user:pass` of Basic auth, a key header) as is,
/// percent-encoded, base64, HTML-entity encoded and with a zero-width space inside.
fn carried(seen: &Seen) -> String {
    let mut out = Vec::new();
    for h in [
        "authorization",
        "x-api-key",
        "x-subscription-token",
        "proxy-authorization",
    ] {
        if let Some(v) = seen.header(h) {
            out.push(v.to_string());
            let credential = if let Some(basic) = v.strip_prefix("Basic ") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(basic)
                    .unwrap();
                String::from_utf8(decoded).unwrap()
            } else {
                v.strip_prefix("Bearer ").unwrap_or(v).to_string()
            };
            out.push(disguised(&credential));
        }
    }
    assert!(!out.is_empty(), "the request carried a credential");
    out.join(" ")
}

/// `secret` as is, percent-encoded, base64, HTML-entity encoded and with a zero-width space inside.
fn disguised(secret: &str) -> String {
    let mut chars = secret.chars();
    let first = chars.next().unwrap_or(' ');
    let rest: String = chars.collect();
    format!(
        "{secret} | {} | {} | &#{};{rest} | {first}\u{200B}{rest}",
        secret.replace('-', "%2D").replace(':', "%3A"),
        b64(secret),
        first as u32,
    )
}

/// Every secret of the configuration, disguised, for stand-ins that were sent none (an error page that
/// dumps its environment).
fn all_keys() -> String {
    let basic = format!("{SEARX_USER}:{SEARX_PASS}");
    [
        TAVILY_KEY,
        BRAVE_KEY,
        EXA_KEY,
        OPENAI_KEY,
        ANTHROPIC_KEY,
        SEARX_PASS,
        basic.as_str(),
    ]
    .map(disguised)
    .join(", ")
}

struct Echoing {
    tavily: Loopback,
    brave: Loopback,
    exa: Loopback,
    searxng: Loopback,
    wikipedia: Loopback,
    hackernews: Loopback,
    arxiv: Loopback,
    openai: Loopback,
    anthropic: Loopback,
}

/// Stand-ins that echo the credentials they were sent in 401/403/500 bodies and headers; the key-less
/// ones list every key in their error text; one provider (arXiv) answers, so the LLM is asked too.
async fn echoing() -> Echoing {
    let tavily = Loopback::start(|seen, _| {
        let creds = carried(seen);
        Reply::Raw {
            status: StatusCode::UNAUTHORIZED,
            headers: vec![
                ("content-type", "application/json".into()),
                ("x-echo-key", TAVILY_KEY.into()),
                (
                    "www-authenticate",
                    format!("Bearer error=\"invalid_token\", key=\"{TAVILY_KEY}\""),
                ),
            ],
            body: json!({"detail": {"error": format!("Unauthorized: invalid API key {creds}")}})
                .to_string()
                .into_bytes(),
        }
    })
    .await;
    let brave = Loopback::start(|seen, _| {
        status(
            403,
            json!({"type": "ErrorResponse", "error": {"status": 403, "code": "FORBIDDEN",
                   "detail": format!("Token {} may not use this plan", carried(seen))}}),
        )
    })
    .await;
    let exa = Loopback::start(|seen, _| Reply::Raw {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-api-key-echo", EXA_KEY.into()),
        ],
        body: json!({"requestId": "r", "error": format!("internal error for {}", carried(seen))})
            .to_string()
            .into_bytes(),
    })
    .await;
    let searxng = Loopback::start(|seen, _| {
        let creds = carried(seen);
        status(
            401,
            json!({"error": format!(
                "bad credentials {creds} for http://{SEARX_USER}:{SEARX_PASS}@127.0.0.1/search"
            )}),
        )
    })
    .await;
    // Key-less providers whose errors are shaped by the provider, not the HTTP layer.
    let wikipedia = Loopback::start(|_, _| {
        ok(json!({"error": {"code": "internal_api_error",
                  "info": format!("debug dump: {}", all_keys())}}))
    })
    .await;
    let hackernews = Loopback::start(|_, _| ok(json!({"hits": all_keys()}))).await;
    let arxiv = Loopback::start(|_, _| Reply::Raw {
        status: StatusCode::OK,
        headers: vec![("content-type", "application/atom+xml".into())],
        body: arxiv_feed(&[(
            "2401.00001v1",
            "Async runtimes compared",
            "We compare async runtimes.",
        )])
        .into_bytes(),
    })
    .await;
    let openai = Loopback::start(|seen, _| {
        status(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {}", carried(seen)),
                   "type": "invalid_request_error", "code": "invalid_api_key"}}),
        )
    })
    .await;
    // Anthropic fails mid-stream, in an `error` event that echoes the key.
    let anthropic = Loopback::start(|seen, _| {
        let creds = carried(seen);
        let error = json!({"type": "error", "error": {"type": "authentication_error",
                           "message": format!("key {creds} revoked")}});
        Reply::Raw {
            status: StatusCode::OK,
            headers: vec![("content-type", "text/event-stream".into())],
            body: format!(
                "event: message_start\ndata: {}\n\nevent: error\ndata: {error}\n\n",
                json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 5, "output_tokens": 1}}})
            )
            .into_bytes(),
        }
    })
    .await;
    Echoing {
        tavily,
        brave,
        exa,
        searxng,
        wikipedia,
        hackernews,
        arxiv,
        openai,
        anthropic,
    }
}

/// The environment pointing every provider and both LLMs at the echoing stand-ins.
fn echoing_env(e: &Echoing, llm: &str) -> Vec<(&'static str, String)> {
    let searx = format!("http://{SEARX_USER}:{SEARX_PASS}@{}/", e.searxng.addr);
    vec![
        ("TAVILY_API_KEY", TAVILY_KEY.into()),
        ("BRAVE_API_KEY", BRAVE_KEY.into()),
        ("EXA_API_KEY", EXA_KEY.into()),
        ("OPENAI_API_KEY", OPENAI_KEY.into()),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY.into()),
        ("SEARXNG_URL", searx),
        (
            "CONDUCTOR_PROVIDERS",
            "tavily,brave,exa,searxng,wikipedia,hackernews,arxiv".into(),
        ),
        ("CONDUCTOR_TAVILY_BASE_URL", e.tavily.url()),
        ("CONDUCTOR_BRAVE_BASE_URL", e.brave.url()),
        ("CONDUCTOR_EXA_BASE_URL", e.exa.url()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", e.wikipedia.url()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", e.hackernews.url()),
        ("CONDUCTOR_ARXIV_BASE_URL", e.arxiv.url()),
        ("CONDUCTOR_OPENAI_BASE_URL", e.openai.url()),
        ("CONDUCTOR_ANTHROPIC_BASE_URL", e.anthropic.url()),
        ("CONDUCTOR_LLM", llm.into()),
        ("CONDUCTOR_LOG", "debug".into()),
    ]
}

/// Every file under `dir`, as (path, lossy text).
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_error_bodies_never_leak_a_key() {
    let e = echoing().await;
    let markdown_dir = tempfile::tempdir().unwrap();
    let json_dir = tempfile::tempdir().unwrap();
    let file_dir = tempfile::tempdir().unwrap();
    let out_file = file_dir.path().join("report.md");
    let out_arg = out_file.display().to_string();
    let openai_env = echoing_env(&e, "openai");
    let anthropic_env = echoing_env(&e, "anthropic");
    let file_args = ["research", "async runtimes", "-o", &out_arg];
    let (md, js, file) = tokio::join!(
        run_cli(
            &["research", "async runtimes"],
            &openai_env,
            markdown_dir.path()
        ),
        run_cli(
            &["research", "async runtimes", "--format", "json"],
            &anthropic_env,
            json_dir.path()
        ),
        run_cli(&file_args, &openai_env, file_dir.path()),
    );

    // The research went on: arXiv's source is cited, and each failure is named, its echo redacted.
    assert_eq!(md.status, 0, "{}", md.stderr);
    // Compared without markdown escapes (`\[redacted\]`, `internal\_api`).
    let report = &md.stdout.replace('\\', "");
    assert!(report.contains("Async runtimes compared"), "{report}");
    for line in [
        "- tavily: key rejected (HTTP 401): Unauthorized: invalid API key Bearer [redacted]",
        "- brave: key rejected (HTTP 403): Token [redacted]",
        "- exa: HTTP 500: internal error for [redacted]",
        "- searxng: key rejected (HTTP 401): bad credentials Basic [redacted]",
        "- wikipedia: unexpected response: API error internal_api_error: debug dump: [redacted]",
        "- hackernews: unexpected response: response is not the documented JSON: invalid type: string \"…\", expected a sequence at line 1 column",
    ] {
        assert!(report.contains(line), "missing {line:?} in\n{report}");
    }
    assert!(
        report.contains("No summary: the LLM rejected the API key (HTTP 401): Incorrect API key provided: Bearer [redacted]"),
        "{report}"
    );
    // The stand-ins did receive the credentials they echoed.
    assert_eq!(
        e.tavily.requests()[0].header("authorization"),
        Some(&*format!("Bearer {TAVILY_KEY}"))
    );
    assert_eq!(
        e.searxng.requests()[0].header("authorization"),
        Some(&*format!(
            "Basic {}",
            b64(&format!("{SEARX_USER}:{SEARX_PASS}"))
        ))
    );
    assert!(e.openai.count() >= 1 && e.anthropic.count() >= 1);
    assert!(md.stderr.contains("DEBUG"), "debug logging is on");

    assert_eq!(js.status, 0, "{}", js.stderr);
    let v: Value = serde_json::from_str(&js.stdout).unwrap();
    assert_eq!(v["synthesis"]["status"], "failed", "{v}");
    assert!(
        v["synthesis"]["error"]
            .as_str()
            .unwrap()
            .contains("the LLM stopped with an error while answering: key [redacted]"),
        "{v}"
    );
    assert_eq!(file.status, 0, "{}", file.stderr);
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert!(written.contains("- tavily: key rejected (HTTP 401)"));

    for (what, run) in [("markdown run", &md), ("json run", &js), ("-o run", &file)] {
        assert_clean(&format!("{what} stdout"), &run.stdout);
        assert_clean(&format!("{what} stderr"), &run.stderr);
    }
    assert_clean("the -o file", &written);
    for dir in [markdown_dir.path(), json_dir.path(), file_dir.path()] {
        for (path, text) in files_under(dir) {
            assert_clean(&path, &text);
        }
    }

    // The language server, over stdio, with the same stand-ins.
    let lsp = lsp_research(&echoing_env(&e, "openai")).await;
    assert_eq!(lsp.answer["result"]["applied"], true, "{}", lsp.answer);
    let failed = lsp.answer["result"]["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 6, "{}", lsp.answer);
    assert!(
        failed.iter().any(|f| f["provider"] == "tavily"
            && f["error"]
                .as_str()
                .unwrap()
                .contains("invalid API key Bearer [redacted]")),
        "{}",
        lsp.answer
    );
    assert!(
        lsp.inserted.contains("Async runtimes compared"),
        "{}",
        lsp.inserted
    );
    assert!(lsp.inserted.contains("redacted\\]"), "{}", lsp.inserted);
    assert!(
        lsp.messages.iter().any(|m| m.contains("window/logMessage")),
        "the server logged to the client"
    );
    for m in &lsp.messages {
        assert_clean("a message from the server", m);
    }
    assert_clean("the inserted report", &lsp.inserted);
    assert_clean("the server's stderr", &lsp.stderr);
    let stored = files_under(lsp.cache.path());
    assert!(
        stored.iter().any(|(p, _)| p.contains("conductor.sqlite3")),
        "{stored:?}"
    );
    for (path, text) in &stored {
        assert_clean(path, text);
    }
    // Read as the server reads it: the stored research holds the failures, redacted.
    let db = rusqlite::Connection::open(lsp.cache.path().join("conductor.sqlite3")).unwrap();
    let research: String = db
        .query_row("SELECT research FROM reports", [], |row| row.get(0))
        .unwrap();
    assert!(
        research.contains("invalid API key Bearer [redacted]"),
        "{research}"
    );
    assert_clean("the stored research", &research);
}

struct LspRun {
    /// Every message the server sent, as raw JSON text.
    messages: Vec<String>,
    answer: Value,
    inserted: String,
    stderr: String,
    cache: tempfile::TempDir,
}

async fn write_msg(stdin: &mut tokio::process::ChildStdin, msg: &Value) {
    let body = serde_json::to_vec(msg).unwrap();
    stdin
        .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    stdin.write_all(&body).await.unwrap();
    stdin.flush().await.unwrap();
}

async fn read_msg<R: tokio::io::AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<String> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).await.ok()?;
    Some(String::from_utf8(body).unwrap())
}

/// Runs `conductor.research` on a one-line document in the real server over stdio, as an editor would:
/// answers progress and applyEdit requests (sending the matching didChange), shuts down, exits.
async fn lsp_research(env: &[(&str, String)]) -> LspRun {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"));
    cmd.arg("--stdio")
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cache.path())
        .env("XDG_CONFIG_HOME", cache.path().join("config"))
        .env("CONDUCTOR_CACHE_DIR", cache.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s).await;
        s
    });
    let uri = "file:///notes/trust.md";
    let text = "# Notes\n\nasync runtimes\n";
    let mut messages = Vec::new();
    let mut inserted = String::new();
    let run = async {
        write_msg(
            &mut stdin,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "processId": null, "rootUri": null, "capabilities": {
                    "window": {"workDoneProgress": true},
                    "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}}}}}),
        )
        .await;
        let mut version = 1;
        let mut answer = Value::Null;
        let mut sent_command = false;
        while let Some(raw) = read_msg(&mut stdout).await {
            messages.push(raw.clone());
            let m: Value = serde_json::from_str(&raw).unwrap();
            match (m.get("method").and_then(Value::as_str), m.get("id")) {
                (None, Some(id)) if id == 1 && !sent_command => {
                    sent_command = true;
                    write_msg(
                        &mut stdin,
                        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
                    )
                    .await;
                    write_msg(
                        &mut stdin,
                        &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
                            "uri": uri, "languageId": "markdown", "version": 1, "text": text}}}),
                    )
                    .await;
                    write_msg(
                        &mut stdin,
                        &json!({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {
                            "command": "conductor.research", "arguments": [{"uri": uri, "range": {
                                "start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 14}}}]}}),
                    )
                    .await;
                }
                (None, Some(id)) if id == 2 => {
                    answer = m.clone();
                    break;
                }
                (Some("workspace/applyEdit"), Some(id)) => {
                    let change = &m["params"]["edit"]["documentChanges"][0];
                    let edits = change["edits"].as_array().unwrap().clone();
                    for e in &edits {
                        inserted.push_str(e["newText"].as_str().unwrap());
                    }
                    write_msg(
                        &mut stdin,
                        &json!({"jsonrpc": "2.0", "id": id, "result": {"applied": true}}),
                    )
                    .await;
                    version += 1;
                    let changes: Vec<Value> = edits
                        .iter()
                        .map(|e| json!({"range": e["range"], "text": e["newText"]}))
                        .collect();
                    write_msg(
                        &mut stdin,
                        &json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                            "textDocument": {"uri": uri, "version": version}, "contentChanges": changes}}),
                    )
                    .await;
                }
                (Some(_), Some(id)) => {
                    write_msg(
                        &mut stdin,
                        &json!({"jsonrpc": "2.0", "id": id, "result": null}),
                    )
                    .await;
                }
                _ => {}
            }
        }
        write_msg(
            &mut stdin,
            &json!({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}),
        )
        .await;
        while let Some(raw) = read_msg(&mut stdout).await {
            messages.push(raw.clone());
            let m: Value = serde_json::from_str(&raw).unwrap();
            if m.get("method").is_none() && m["id"] == 3 {
                break;
            }
        }
        write_msg(&mut stdin, &json!({"jsonrpc": "2.0", "method": "exit"})).await;
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(0), "the server exits cleanly");
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the research finished and the server exited within 60 s");
    let stderr = stderr_task.await.unwrap();
    LspRun {
        messages,
        answer,
        inserted,
        stderr,
        cache,
    }
}

// ---- Numbers from remote answers -------------------------------------------------------------------

fn retry_after_429(value: &str) -> Reply {
    Reply::Raw {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: vec![
            ("content-type", "application/json".into()),
            ("retry-after", value.into()),
        ],
        body: br#"{"error":{"detail":"slow down"}}"#.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_never_crashes_the_research() {
    let far_date = "Fri, 31 Dec 9999 23:59:59 GMT";
    let cases = [
        (
            "99999999999999999999",
            "rate limited (HTTP 429), retry after 86400 s",
        ),
        ("-5", "rate limited (HTTP 429)"),
        ("NaN", "rate limited (HTTP 429)"),
        ("1e400", "rate limited (HTTP 429)"),
        (far_date, "rate limited (HTTP 429), retry after 86400 s"),
    ];
    let mut runs = Vec::new();
    for (value, want) in cases {
        let v = value.to_string();
        let brave = Loopback::start(move |_, _| retry_after_429(&v)).await;
        // A 503 with the same header goes through the retry path too.
        let v = value.to_string();
        let tavily = Loopback::start(move |_, _| Reply::Raw {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: vec![("retry-after", v.clone())],
            body: Vec::new(),
        })
        .await;
        let wiki =
            Loopback::start(|_, _| ok(wikipedia_response(&[("Survivor", "still here")]))).await;
        // The LLM is rate limited the same way: the report loses only its summary.
        let v = value.to_string();
        let llm = Loopback::start(move |_, _| retry_after_429(&v)).await;
        let env = vec![
            ("TAVILY_API_KEY", TAVILY_KEY.to_string()),
            ("BRAVE_API_KEY", BRAVE_KEY.to_string()),
            ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
            ("CONDUCTOR_PROVIDERS", "tavily,brave,wikipedia".to_string()),
            ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
            ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
            ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
            ("CONDUCTOR_OPENAI_BASE_URL", llm.url()),
        ];
        runs.push((value, want, env, (brave, tavily, wiki, llm)));
    }
    let results = futures::future::join_all(runs.iter().map(|(_, _, env, _)| async move {
        let dir = tempfile::tempdir().unwrap();
        run_cli(&["research", "survivors"], env, dir.path()).await
    }))
    .await;
    for ((value, want, _, _), run) in runs.iter().zip(results) {
        assert_ne!(
            run.status, 101,
            "Retry-After {value} panicked:\n{}",
            run.stderr
        );
        assert_eq!(run.status, 0, "Retry-After {value}:\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(run.stdout.contains("[Survivor]"), "{value}: {}", run.stdout);
        let brave_line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("- brave: "))
            .unwrap_or_else(|| panic!("{value}: {}", run.stdout));
        assert_eq!(brave_line, format!("- brave: {want}"), "{value}");
        assert!(
            run.stdout.contains("- tavily: HTTP 503"),
            "{value}: {}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("No summary: the LLM is rate limiting requests (HTTP 429)"),
            "{value}: {}",
            run.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_costs_and_counts_never_crash_or_print_nonsense() {
    // Raw bodies: `1e400` cannot be written with serde_json.
    let exa_body = |total: &str| {
        format!(
            r#"{{"requestId":"r","results":[{{"id":"x","url":"https://example.com/exa","title":"Exa page",
               "highlights":["from exa"]}}],"costDollars":{{"total":{total}}}}}"#
        )
    };
    let tavily_body = |credits: &str| {
        format!(
            r#"{{"query":"q","results":[{{"title":"Tavily page","url":"https://example.com/tavily","content":"from tavily","score":0.9}}],
               "usage":{{"credits":{credits}}}}}"#
        )
    };
    let hn_body = |n: &str| {
        format!(
            r#"{{"hits":[{{"objectID":"1","title":"HN page","url":"https://example.com/hn","points":{n},"num_comments":{n},
               "created_at":"2024-01-01T00:00:00Z"}}]}}"#
        )
    };
    // The LLM reports absurd usage: the report estimates instead.
    let llm_body = |n: &str| {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": "All three agree [1]."}, "finish_reason": "stop"}]});
        format!(
            "data: {chunk}\n\ndata: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{n},\"completion_tokens\":18446744073709551615,\"cost\":{n}}}}}\n\ndata: [DONE]\n\n"
        )
    };
    let raw = |body: String, ct: &str| Reply::Raw {
        status: StatusCode::OK,
        headers: vec![("content-type", ct.to_string())],
        body: body.into_bytes(),
    };
    for bad in ["1e400", "-5", "\"NaN\"", "1e300", "99999999999999999999"] {
        let b = bad.to_string();
        let exa = Loopback::start(move |_, _| raw(exa_body(&b), "application/json")).await;
        let b = bad.to_string();
        let tavily = Loopback::start(move |_, _| raw(tavily_body(&b), "application/json")).await;
        let b = bad.to_string();
        let hn = Loopback::start(move |_, _| raw(hn_body(&b), "application/json")).await;
        let b = bad.to_string();
        let llm = Loopback::start(move |_, _| raw(llm_body(&b), "text/event-stream")).await;
        let env = vec![
            ("TAVILY_API_KEY", TAVILY_KEY.to_string()),
            ("EXA_API_KEY", EXA_KEY.to_string()),
            ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
            ("CONDUCTOR_PROVIDERS", "tavily,exa,hackernews".to_string()),
            ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
            // Both runs ask the stand-ins (they run at once: neither may answer from the other's cache).
            ("CONDUCTOR_CACHE_HOURS", "0".to_string()),
            ("CONDUCTOR_EXA_BASE_URL", exa.url()),
            ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
            ("CONDUCTOR_OPENAI_BASE_URL", llm.url()),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (md, js) = tokio::join!(
            run_cli(&["research", "numbers"], &env, dir.path()),
            run_cli(
                &["research", "numbers", "--format", "json"],
                &env,
                dir.path()
            ),
        );
        for run in [&md, &js] {
            assert_eq!(run.status, 0, "{bad}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            assert!(
                !run.stdout.contains("failed"),
                "{bad}: every provider answers\n{}",
                run.stdout
            );
        }
        // Every provider's results survive, and no absurd figure is printed.
        for title in ["Exa page", "Tavily page", "HN page"] {
            assert!(md.stdout.contains(title), "{bad}: {}", md.stdout);
        }
        assert!(
            md.stdout.contains("0 points, 0 comments on Hacker News"),
            "{bad}: {}",
            md.stdout
        );
        // No absurd figure is taken as reported: the cost is the table's estimate (Tavily $0.008, Exa
        // $0.007, Hacker News free; the model has no price).
        assert!(
            md.stdout
                .contains("; cost: \\$0.0150 (estimated; no price for llm).*"),
            "{bad}: {}",
            md.stdout
        );
        for nonsense in [
            "NaN",
            "inf",
            "-5",
            "e+",
            "e300",
            "99999",
            "18446744073709551615",
            "4294967295",
        ] {
            assert!(
                !md.stdout.contains(nonsense),
                "{bad}: {nonsense} in\n{}",
                md.stdout
            );
        }
        assert!(
            md.stdout.contains("All three agree"),
            "{bad}: {}",
            md.stdout
        );
        assert!(md.stdout.contains("tokens"), "{}", md.stdout);
        let v: Value = serde_json::from_str(&js.stdout).unwrap();
        for p in v["providers"].as_array().unwrap() {
            assert_eq!(p["status"], "ok", "{bad}: {p}");
            assert!(
                p.get("cost_usd").is_none() && p.get("credits").is_none(),
                "{bad}: {p}"
            );
        }
        let usage = &v["synthesis"]["usage"];
        assert_eq!(usage["estimated"], true, "{bad}: {usage}");
        assert_eq!(
            v["cost"],
            json!({"usd": 0.015, "estimated": true, "by": {"exa": 0.007, "hackernews": 0.0, "tavily": 0.008},
                   "unpriced": ["llm"]}),
            "{bad}"
        );
        assert_eq!(usage["cost_usd"], Value::Null, "{bad}: {usage}");
        assert!(
            usage["prompt_tokens"].as_u64().unwrap() < 100_000,
            "{usage}"
        );
        assert!(
            usage["completion_tokens"].as_u64().unwrap() < 100_000,
            "{usage}"
        );
    }
}

// ---- Lengths -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_cannot_bring_in_unbounded_text() {
    let mb_title = format!("Huge {}", "title ".repeat(1024 * 1024 / 6));
    let big_host = format!("https://{}.example.com/page", "a".repeat(100 * 1024));
    let long_url = format!("https://example.com/{}", "p".repeat(4096));
    let t = mb_title.clone();
    let wiki = Loopback::start(move |_, _| {
        ok(wikipedia_response(&[
            (&t, "a megabyte of title"),
            (
                "Normal page",
                &format!("{} end", "snippet ".repeat(128 * 1024)),
            ),
        ]))
    })
    .await;
    let h = big_host.clone();
    let u = long_url.clone();
    let brave = Loopback::start(move |_, _| {
        ok(brave_response(&[
            ("Host of 100 KB", &h, "a huge host"),
            ("URL of 4 KB", &u, "a long path"),
            ("Fine", "https://example.com/fine", "a fine page"),
        ]))
    })
    .await;
    // An error that quotes a megabyte of the answer is one short line.
    let hn = Loopback::start(|_, _| ok(json!({"hits": "x".repeat(1024 * 1024)}))).await;
    let env = vec![
        ("BRAVE_API_KEY", BRAVE_KEY.to_string()),
        (
            "CONDUCTOR_PROVIDERS",
            "wikipedia,brave,hackernews".to_string(),
        ),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
        ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (md, js) = tokio::join!(
        run_cli(&["research", "lengths"], &env, dir.path()),
        run_cli(
            &["research", "lengths", "--format", "json"],
            &env,
            dir.path()
        ),
    );
    assert_eq!(md.status, 0, "{}", md.stderr);
    assert_eq!(js.status, 0, "{}", js.stderr);
    let report = &md.stdout;
    assert!(
        report.contains("[Normal page](https://en.wikipedia.org/wiki/Normal_page)"),
        "{report}"
    );
    assert!(
        report.contains("[Fine](https://example.com/fine)"),
        "{report}"
    );
    let longest = report.lines().map(str::len).max().unwrap();
    assert!(longest <= 1024, "a report line of {longest} bytes");
    assert!(
        report.len() < 16 * 1024,
        "a report of {} bytes",
        report.len()
    );
    assert!(
        !report.contains("Huge title"),
        "a 1 MB title names no wiki page"
    );
    assert!(
        !report.contains(&"a".repeat(254)),
        "the 100 KB host is not cited"
    );
    assert!(
        !report.contains(&"p".repeat(2048)),
        "the 4 KB URL is not cited"
    );
    let hn_line = report
        .lines()
        .find(|l| l.starts_with("- hackernews: unexpected response"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(hn_line.chars().count() < 400, "{hn_line}");
    assert!(
        md.stderr.len() < 4096,
        "stderr of {} bytes",
        md.stderr.len()
    );
    let v: Value = serde_json::from_str(&js.stdout).unwrap();
    for s in v["sources"].as_array().unwrap() {
        assert!(s["url"].as_str().unwrap().len() <= 2048, "{}", s["url"]);
        assert!(s["title"].as_str().unwrap().chars().count() <= 200);
        assert!(s["snippet"].as_str().unwrap().chars().count() <= 500);
    }
    assert!(
        js.stdout.len() < 32 * 1024,
        "JSON of {} bytes",
        js.stdout.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_echoes_a_key_never_shows_it() {
    // A search API that echoes the key in its results, and a model that writes it in its answer, split
    // across streamed chunks and disguised.
    let brave = Loopback::start(|seen, _| {
        let key = seen.header("x-subscription-token").unwrap().to_string();
        ok(brave_response(&[
            (
                &format!("Results for {key}"),
                "https://example.com/echo",
                &format!("your token &#{};{} is valid", 'b' as u32, &key[1..]),
            ),
            (
                "A link that carries the key",
                &format!("https://example.com/track?k={key}"),
                "tracked",
            ),
        ]))
    })
    .await;
    let wiki = Loopback::start(|_, _| ok(wikipedia_response(&[("Plain page", "plain")]))).await;
    let llm = Loopback::start(|seen, _| {
        let key = seen
            .header("authorization")
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_string();
        let (a, b) = key.split_at(6);
        let mut body = String::new();
        for c in [
            "The key is ".to_string(),
            a.to_string(),
            b.to_string(),
            format!(" [1], and base64 {} [2].", b64(&key)),
        ] {
            let chunk =
                json!({"choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]});
            body.push_str(&format!("data: {chunk}\n\n"));
        }
        let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
        Reply::Raw {
            status: StatusCode::OK,
            headers: vec![("content-type", "text/event-stream".into())],
            body: body.into_bytes(),
        }
    })
    .await;
    let env = vec![
        ("BRAVE_API_KEY", BRAVE_KEY.to_string()),
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("CONDUCTOR_PROVIDERS", "brave,wikipedia".to_string()),
        ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ("CONDUCTOR_OPENAI_BASE_URL", llm.url()),
        ("CONDUCTOR_LOG", "debug".into()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (md, js) = tokio::join!(
        run_cli(&["research", "echoes"], &env, dir.path()),
        run_cli(
            &["research", "echoes", "--format", "json"],
            &env,
            dir.path()
        ),
    );
    for run in [&md, &js] {
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert_clean("stdout", &run.stdout);
        assert_clean("stderr", &run.stderr);
    }
    let report = md.stdout.replace('\\', "");
    assert!(
        report.contains("[Results for [redacted]](https://example.com/echo)"),
        "{report}"
    );
    assert!(
        report.contains("your token [redacted] is valid"),
        "{report}"
    );
    assert!(
        report.contains("The key is [redacted] [1], and base64 [redacted] [2]."),
        "{report}"
    );
    assert!(
        !report.contains("example.com/track"),
        "a link carrying a key is not cited\n{report}"
    );
    assert!(report.contains("[Plain page]"), "{report}");
}
