//! A guard in front of tower-lsp-server's reader. Its framed reader ends the whole input stream after the
//! first message it cannot decode (tokio-util's `FramedRead` yields `None` after an error), so one
//! malformed message would silence the server. This task re-frames the input first:
//! - well-formed messages pass through unchanged;
//! - a header block without a valid `Content-Length` is skipped, and reading resynchronises on the next
//!   `Content-Length` header, even when it is glued to the end of the skipped body;
//! - a body that is not JSON but carries an id becomes a call to `conductor/invalidMessage`, answered
//!   with a Parse error (-32700) for that id; valid JSON that is not JSON-RPC gets Invalid Request;
//! - a `didOpen`/`didChange` that cannot be read (not JSON, a lone surrogate escape, larger than the
//!   message cap) becomes `conductor/outOfSync` for its document, so the server stops trusting its copy
//!   instead of silently diverging from the editor;
//! - at the end of the input, `on_eof` runs at once (the server cancels its jobs and exits).
//!
//! Hand-written rather than a codec from a crate: the point is to survive input that every codec
//! rejects, and to keep reading after it.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tower_lsp_server::jsonrpc::{Request, Response};

/// Messages larger than this are skipped (the 70 MB document case: it is marked out of sync).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// What is kept of the start and end of an oversized message, to find its method, id and uri.
const KEEP: usize = 64 * 1024;
/// Header lines longer than this are not headers (a skipped body with no line break in it).
const MAX_HEADER_LINE: usize = 1 << 20;

pub const INVALID_MESSAGE: &str = "conductor/invalidMessage";
pub const OUT_OF_SYNC: &str = "conductor/outOfSync";

/// JSON-RPC's Parse error.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC's Invalid Request.
pub const INVALID_REQUEST: i64 = -32600;

/// Returns a reader that yields only well-formed framed messages from `input`; `on_eof` runs when the
/// input ends.
pub fn guard_input<R, F>(input: R, on_eof: F) -> DuplexStream
where
    R: AsyncRead + Unpin + Send + 'static,
    F: FnOnce() + Send + 'static,
{
    let (reader, mut writer) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let mut input = BufReader::with_capacity(1 << 16, input);
        while let Some(frame) = next_frame(&mut input).await {
            let body = match frame {
                Frame::Body(body) => check(body),
                Frame::Oversized { head, tail } => oversized(&head, &tail),
            };
            let Some(body) = body else { continue };
            let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
            frame.extend_from_slice(&body);
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
        on_eof();
        let _ = writer.shutdown().await;
    });
    reader
}

enum Frame {
    Body(Vec<u8>),
    /// Skipped for its size; its first and last bytes.
    Oversized {
        head: Vec<u8>,
        tail: Vec<u8>,
    },
}

/// The value of a `Content-Length` header anywhere in `line` (after the remains of a skipped body).
fn content_length(line: &str) -> Option<Option<usize>> {
    let lower = line.to_ascii_lowercase();
    let at = lower.find("content-length")?;
    let rest = line[at + "content-length".len()..].trim_start();
    let value = rest.strip_prefix(':')?;
    Some(value.trim().parse().ok())
}

/// The next message; `None` at the end of the input.
async fn next_frame<R: AsyncRead + Unpin>(input: &mut BufReader<R>) -> Option<Frame> {
    loop {
        let mut len: Option<usize> = None;
        let mut saw_length = false;
        loop {
            let mut line = Vec::new();
            let n = (&mut *input)
                .take(MAX_HEADER_LINE as u64)
                .read_until(b'\n', &mut line)
                .await
                .ok()?;
            if n == 0 {
                return None;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                if saw_length {
                    break;
                }
                continue;
            }
            if let Some(value) = content_length(text) {
                // A new header block starts here, whatever came before it on the line.
                saw_length = true;
                len = value;
            }
        }
        let Some(len) = len else {
            tracing::warn!("skipped a message without a valid Content-Length");
            continue;
        };
        if len > MAX_MESSAGE {
            tracing::warn!(len, "skipped an oversized message");
            return skip_oversized(input, len).await;
        }
        let mut body = vec![0; len];
        input.read_exact(&mut body).await.ok()?;
        return Some(Frame::Body(body));
    }
}

/// Reads past an oversized body, keeping its first and last [`KEEP`] bytes.
async fn skip_oversized<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
    len: usize,
) -> Option<Frame> {
    let mut head = Vec::with_capacity(KEEP);
    let mut tail: Vec<u8> = Vec::with_capacity(2 * KEEP);
    let mut left = len;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let want = left.min(buf.len());
        let n = input.read(&mut buf[..want]).await.ok()?;
        if n == 0 {
            return None;
        }
        let chunk = &buf[..n];
        let to_head = (KEEP - head.len()).min(n);
        head.extend_from_slice(&chunk[..to_head]);
        tail.extend_from_slice(chunk);
        if tail.len() > 2 * KEEP {
            tail.drain(..tail.len() - KEEP);
        }
        left -= n;
    }
    if tail.len() > KEEP {
        tail.drain(..tail.len() - KEEP);
    }
    Some(Frame::Oversized { head, tail })
}

/// The body to pass on, if any.
fn check(body: Vec<u8>) -> Option<Vec<u8>> {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return unreadable(&body, &e.to_string()),
    };
    if serde_json::from_value::<Request>(value.clone()).is_ok()
        || serde_json::from_value::<Response>(value.clone()).is_ok()
    {
        return Some(body);
    }
    match value.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => {
            tracing::warn!("answered an invalid request with an error");
            invalid_call(id.clone(), INVALID_REQUEST, "invalid JSON-RPC message")
        }
        _ => {
            tracing::warn!("dropped a message that is not JSON-RPC");
            None
        }
    }
}

/// A body that is not JSON: tell the server which document it was about, or answer its id.
fn unreadable(body: &[u8], why: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(body);
    if let Some(method) = string_field(&text, "method")
        && (method == "textDocument/didChange" || method == "textDocument/didOpen")
    {
        tracing::warn!(method, "a document change could not be read: {why}");
        return string_field(&text, "uri").and_then(out_of_sync);
    }
    if let Some(id) = id_field(&text) {
        tracing::warn!("answered a message that is not JSON with a parse error: {why}");
        return invalid_call(id, PARSE_ERROR, "the message is not valid JSON");
    }
    tracing::warn!("dropped a message that is not JSON: {why}");
    None
}

/// A message skipped for its size: a text-sync message marks its document; a request is answered.
fn oversized(head: &[u8], tail: &[u8]) -> Option<Vec<u8>> {
    let head = String::from_utf8_lossy(head);
    let tail = String::from_utf8_lossy(tail);
    let method = string_field(&head, "method").or_else(|| string_field(&tail, "method"));
    if matches!(
        method.as_deref(),
        Some("textDocument/didChange" | "textDocument/didOpen")
    ) {
        return string_field(&head, "uri")
            .or_else(|| string_field(&tail, "uri"))
            .and_then(out_of_sync);
    }
    let id = id_field(&head).or_else(|| id_field(&tail))?;
    invalid_call(
        id,
        INVALID_REQUEST,
        &format!("the message is larger than {} MiB", MAX_MESSAGE >> 20),
    )
}

fn out_of_sync(uri: String) -> Option<Vec<u8>> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": OUT_OF_SYNC, "params": {"uri": uri}}))
        .ok()
}

fn invalid_call(id: Value, code: i64, message: &str) -> Option<Vec<u8>> {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": INVALID_MESSAGE,
                      "params": {"code": code, "message": message}});
    serde_json::to_vec(&call).ok()
}

/// The position just after `"name"` followed by `:` and white space, in text that may not parse.
fn after_key(text: &str, name: &str) -> Option<usize> {
    let key = format!("\"{name}\"");
    let mut from = 0;
    while let Some(at) = text[from..].find(&key) {
        let after = from + at + key.len();
        let rest = &text[after..];
        let trimmed = rest.trim_start();
        if let Some(value) = trimmed.strip_prefix(':') {
            let value_at = text.len() - value.trim_start().len();
            return Some(value_at);
        }
        from = after;
    }
    None
}

/// The first string value of key `name`, decoded, found by scanning text that is not valid JSON.
fn string_field(text: &str, name: &str) -> Option<String> {
    let at = after_key(text, name)?;
    let rest = text[at..].strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                let quoted = &text[at..at + 1 + i + 1];
                return serde_json::from_str::<String>(quoted).ok();
            }
            _ => {}
        }
    }
    None
}

/// The first `"id"` of a message that is not valid JSON: a number or a string.
fn id_field(text: &str) -> Option<Value> {
    let at = after_key(text, "id")?;
    let rest = &text[at..];
    if rest.starts_with('"') {
        return string_field(text, "id").map(Value::String);
    }
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse::<i64>().ok().map(Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_in_text_that_does_not_parse() {
        let text = r#"{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"file:///a%20b.md","version":3},"contentChanges":[{"text":"\ud800"}]}}"#;
        assert!(serde_json::from_str::<Value>(text).is_err());
        assert_eq!(
            string_field(text, "method").as_deref(),
            Some("textDocument/didChange")
        );
        assert_eq!(
            string_field(text, "uri").as_deref(),
            Some("file:///a%20b.md")
        );
        assert_eq!(id_field(r#"{"id" : 42, "method": {"#), Some(json!(42)));
        assert_eq!(id_field(r#"{"id":"x\"y","#), Some(json!("x\"y")));
        assert_eq!(id_field(r#"{"method":"x"}"#), None);
    }

    #[test]
    fn content_length_is_found_after_the_remains_of_a_body() {
        assert_eq!(content_length("Content-Length: 12"), Some(Some(12)));
        assert_eq!(
            content_length(r#"{"jsonrpc":"2.0"}Content-Length: 7"#),
            Some(Some(7))
        );
        assert_eq!(content_length("content-length: x"), Some(None));
        assert_eq!(content_length("Content-Type: x"), None);
    }
}
