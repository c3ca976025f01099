//! Black box: the real binary over stdio. initialize → initialized → shutdown → exit gives exit code 0.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

async fn send(stdin: &mut tokio::process::ChildStdin, msg: Value) {
    let body = serde_json::to_vec(&msg).unwrap();
    stdin
        .write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    stdin.write_all(&body).await.unwrap();
    stdin.flush().await.unwrap();
}

async fn read<R: tokio::io::AsyncRead + Unpin>(r: &mut BufReader<R>) -> Value {
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Reads until the response with `id` (skipping notifications such as window/logMessage).
async fn response<R: tokio::io::AsyncRead + Unpin>(r: &mut BufReader<R>, id: i64) -> Value {
    loop {
        let m = read(r).await;
        if m.get("method").is_none() && m["id"] == id {
            return m;
        }
    }
}

#[tokio::test]
async fn the_binary_initializes_shuts_down_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conductor-lsp"))
        .arg("--stdio")
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        .env("CONDUCTOR_CACHE_DIR", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let run = async {
        send(
            &mut stdin,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"processId": null, "rootUri": null, "capabilities": {}}}),
        )
        .await;
        let init = response(&mut stdout, 1).await;
        let caps = &init["result"]["capabilities"];
        assert_eq!(caps["positionEncoding"], "utf-16");
        assert_eq!(caps["hoverProvider"], true);
        assert_eq!(
            caps["executeCommandProvider"]["commands"],
            json!([
                "conductor.research",
                "conductor.refresh",
                "conductor.cancel",
                "conductor.insertStored"
            ])
        );
        send(
            &mut stdin,
            json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
        )
        .await;
        send(
            &mut stdin,
            json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}),
        )
        .await;
        let shut = response(&mut stdout, 2).await;
        assert_eq!(shut["result"], Value::Null, "{shut}");
        send(&mut stdin, json!({"jsonrpc": "2.0", "method": "exit"})).await;
        // stdin stays open, as some editors keep it: the server must exit anyway.
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the server exits after `exit`");
    assert_eq!(status.code(), Some(0));
}
