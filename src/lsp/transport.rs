//! A guard in front of tower-lsp-server's reader. Its framed reader ends the whole input stream after the
//! first message it cannot decode (tokio-util's `FramedRead` yields `None` after an error), so one
//! malformed message would silence the server. This task re-frames the input first: well-formed messages
//! pass through unchanged; a malformed request that still carries an id becomes a call to
//! `conductor/invalidMessage` (answered with an Invalid Request error for that id); anything else is
//! dropped and logged.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tower_lsp_server::jsonrpc::{Request, Response};

/// Messages larger than this are skipped.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

pub const INVALID_MESSAGE: &str = "conductor/invalidMessage";

/// Returns a reader that yields only well-formed framed messages from `input`.
pub fn guard_input<R>(input: R) -> DuplexStream
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (reader, mut writer) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let mut input = BufReader::with_capacity(1 << 16, input);
        while let Some(body) = next_frame(&mut input).await {
            let Some(body) = check(body) else { continue };
            let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
            frame.extend_from_slice(&body);
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    reader
}

/// The next message body; `None` at the end of the input.
async fn next_frame<R: AsyncRead + Unpin>(input: &mut BufReader<R>) -> Option<Vec<u8>> {
    loop {
        let mut len: Option<usize> = None;
        let mut saw_header = false;
        loop {
            let mut line = Vec::new();
            if input.read_until(b'\n', &mut line).await.ok()? == 0 {
                return None;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                if saw_header {
                    break;
                }
                continue;
            }
            saw_header = true;
            if let Some((name, value)) = text.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                len = value.trim().parse().ok();
            }
        }
        let Some(len) = len else {
            tracing::warn!("skipped a message without a valid Content-Length");
            continue;
        };
        if len > MAX_MESSAGE {
            tracing::warn!(len, "skipped an oversized message");
            let mut rest = input.take(len as u64);
            tokio::io::copy(&mut rest, &mut tokio::io::sink())
                .await
                .ok()?;
            continue;
        }
        let mut body = vec![0; len];
        input.read_exact(&mut body).await.ok()?;
        return Some(body);
    }
}

/// The body to pass on, if any.
fn check(body: Vec<u8>) -> Option<Vec<u8>> {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("dropped a message that is not JSON: {e}");
            return None;
        }
    };
    if serde_json::from_value::<Request>(value.clone()).is_ok()
        || serde_json::from_value::<Response>(value.clone()).is_ok()
    {
        return Some(body);
    }
    match value.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => {
            tracing::warn!("answered an invalid request with an error");
            let call = json!({"jsonrpc": "2.0", "id": id, "method": INVALID_MESSAGE});
            serde_json::to_vec(&call).ok()
        }
        _ => {
            tracing::warn!("dropped a message that is not JSON-RPC");
            None
        }
    }
}
