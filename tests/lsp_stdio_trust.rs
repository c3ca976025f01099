//! Issue 8 ("Trust"), seen from outside: the real binary over stdio, as an editor runs it.

mod lsp_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use lsp_support::Providers;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

fn frame(msg: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(msg).unwrap();
    let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    f.extend_from_slice(&body);
    f
}

async fn read<R: tokio::io::AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<Value> {
    let mut len = 0;
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
            len = v.parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// Reads until the response with `id`, answering the server's requests with null.
async fn response(
    r: &mut BufReader<ChildStdout>,
    w: &mut ChildStdin,
    id: &Value,
    timeout: Duration,
) -> Value {
    tokio::time::timeout(timeout, async {
        loop {
            let m = read(r).await.expect("the server is still talking");
            if m.get("method").is_some() {
                if let Some(sid) = m.get("id") {
                    let answer = json!({"jsonrpc": "2.0", "id": sid, "result": null});
                    w.write_all(&frame(&answer)).await.unwrap();
                }
                continue;
            }
            if &m["id"] == id {
                return m;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no answer to {id} within {timeout:?}"))
}

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

async fn spawn(providers: &Providers, extra: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://{}", providers.addr);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conductor-lsp"));
    cmd.arg("--stdio")
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        .env("CONDUCTOR_CACHE_DIR", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .env("CONDUCTOR_PROVIDERS", "wikipedia,hackernews")
        .env("CONDUCTOR_WIKIPEDIA_BASE_URL", &base)
        .env("CONDUCTOR_HACKERNEWS_BASE_URL", &base)
        .env("CONDUCTOR_LSP_DEBUG", "1");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut s = Server {
        child,
        stdin: Some(stdin),
        stdout,
        _dir: dir,
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": null, "rootUri": null, "capabilities": {
            "workspace": {"workspaceEdit": {"documentChanges": true}, "applyEdit": true}}}});
    s.write(&frame(&init)).await;
    let r = s.answer(&json!(1)).await;
    assert!(r.get("result").is_some(), "{r}");
    s.write(&frame(
        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    ))
    .await;
    s
}

impl Server {
    async fn write(&mut self, bytes: &[u8]) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(bytes).await.unwrap();
        w.flush().await.unwrap();
    }

    async fn answer(&mut self, id: &Value) -> Value {
        response(
            &mut self.stdout,
            self.stdin.as_mut().unwrap(),
            id,
            Duration::from_secs(20),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_exits_at_once_when_the_editor_dies_mid_research() {
    let providers = Providers::start().await;
    providers.slow(30_000);
    let mut s = spawn(&providers, &[("CONDUCTOR_TIMEOUT", "60")]).await;
    let uri = "file:///tmp/conductor-eof/notes.md";
    let open = json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument":
        {"uri": uri, "languageId": "markdown", "version": 1, "text": "Rust async\n"}}});
    let cmd = json!({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {
        "command": "conductor.research", "arguments": [{"uri": uri,
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 10}}}]}});
    let mut bytes = frame(&open);
    bytes.extend(frame(&cmd));
    s.write(&bytes).await;
    // Wait for the event: the providers were asked.
    tokio::time::timeout(
        Duration::from_secs(10),
        providers
            .state
            .until(|s| s.requests.load(std::sync::atomic::Ordering::SeqCst) >= 2),
    )
    .await
    .expect("the providers were asked");
    // The editor dies: its end of the pipe closes.
    drop(s.stdin.take());
    let t = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), s.child.wait())
        .await
        .expect("the server outlived the editor")
        .unwrap();
    let took = t.elapsed();
    eprintln!("exited {took:?} after stdin closed (research deadline 60 s)");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!status.success(), "exit without shutdown must not be 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_content_length_never_makes_the_server_deaf() {
    let providers = Providers::start().await;
    let mut s = spawn(&providers, &[]).await;
    let hover = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": "file:///nowhere.md"}, "position": {"line": 0, "character": 0}}})
    };
    for (n, header) in [
        "Content-Length: abc\r\n\r\n",
        "Content-Length: -5\r\n\r\n",
        "Content-Length: 99999999999999999999999\r\n\r\n",
        "Content-Type: application/json\r\n\r\n",
    ]
    .iter()
    .enumerate()
    {
        // A broken message and, in the same write, a good one.
        let broken = serde_json::to_vec(&hover(100 + n as i64)).unwrap();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend(&broken);
        let good = 200 + n as i64;
        bytes.extend(frame(&hover(good)));
        s.write(&bytes).await;
        let r = s.answer(&json!(good)).await;
        assert!(r.get("error").is_none(), "after {header:?}: {r}");
    }
    // Not JSON, with an id: a Parse error for that id.
    let body = br#"{"jsonrpc":"2.0","id":77,"method":"textDocument/hover","params":{"#;
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    s.write(&bytes).await;
    let r = s.answer(&json!(77)).await;
    assert_eq!(r["error"]["code"], -32700, "{r}");
    // And still answering.
    s.write(&frame(&hover(300))).await;
    let r = s.answer(&json!(300)).await;
    assert!(r.get("error").is_none(), "{r}");
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Runs one research and applies its edit as an editor would (echoing the edit as a didChange).
async fn research_once(s: &mut Server, uri: &str, id: i64, version: &mut i32, topic: &str) {
    let cmd = json!({"jsonrpc": "2.0", "id": id, "method": "workspace/executeCommand", "params": {
        "command": "conductor.research", "arguments": [{"uri": uri, "topic": topic, "placement": "end",
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}}]}});
    s.write(&frame(&cmd)).await;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), read(&mut s.stdout))
            .await
            .expect("the server answers")
            .expect("the server is alive");
        if m["method"] == "workspace/applyEdit" {
            let dc = &m["params"]["edit"]["documentChanges"][0];
            *version += 1;
            let change = json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": *version},
                "contentChanges": [{"range": dc["edits"][0]["range"], "text": dc["edits"][0]["newText"]}]}});
            let answer = json!({"jsonrpc": "2.0", "id": m["id"], "result": {"applied": true}});
            let mut bytes = frame(&answer);
            bytes.extend(frame(&change));
            s.write(&bytes).await;
        } else if m.get("method").is_some() {
            if let Some(sid) = m.get("id") {
                s.write(&frame(
                    &json!({"jsonrpc": "2.0", "id": sid, "result": null}),
                ))
                .await;
            }
        } else if m["id"] == id {
            assert_eq!(m["result"]["applied"], true, "{m}");
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_over_200_researches_in_one_server() {
    let providers = Providers::start().await;
    let mut s = spawn(&providers, &[]).await;
    let pid = s.child.id().unwrap();
    let uri = "file:///tmp/conductor-rss/notes.md";
    let mut version = 1;
    let open = json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument":
        {"uri": uri, "languageId": "markdown", "version": version, "text": "# Notes\n"}}});
    s.write(&frame(&open)).await;
    let mut after_50 = 0;
    for i in 0..200 {
        // The document is closed and reopened now and then, as a writer does: it must not keep
        // growing the server's memory with every report ever written.
        if i % 20 == 19 {
            let close = json!({"jsonrpc": "2.0", "method": "textDocument/didClose",
                               "params": {"textDocument": {"uri": uri}}});
            version = 1;
            let open = json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument":
                {"uri": uri, "languageId": "markdown", "version": version, "text": "# Notes\n"}}});
            let mut bytes = frame(&close);
            bytes.extend(frame(&open));
            s.write(&bytes).await;
        }
        research_once(
            &mut s,
            uri,
            1000 + i,
            &mut version,
            &format!("topic number {i}"),
        )
        .await;
        if i == 49 {
            after_50 = rss_kib(pid);
        }
    }
    let after_200 = rss_kib(pid);
    eprintln!(
        "VmRSS after 50 researches: {} KiB; after 200: {} KiB",
        after_50, after_200
    );
    assert!(
        after_200 < after_50 + 12 * 1024,
        "memory grew by {} KiB over 150 researches",
        after_200 - after_50
    );
}
