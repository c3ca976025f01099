//! Streaming responses, for LLM answers read as they arrive: [`Http::send_stream`] and
//! [`StreamResponse`]. Same client, retries (before the first byte), size cap and error texts as
//! [`Http::send`].

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use tokio::time::Instant;

use super::HttpError;
use super::{Http, Request};

/// A 2xx response whose body is read as it arrives (server-sent events from an LLM). The size cap and
/// the deadline still hold: [`StreamResponse::chunk`] fails once the body passes the cap or the deadline.
pub struct StreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    inner: reqwest::Response,
    read: u64,
    cap: u64,
    started: Instant,
    deadline: Instant,
}

impl std::fmt::Debug for StreamResponse {
    // Not derived: reqwest's Debug would print the request URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResponse")
            .field("status", &self.status)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl StreamResponse {
    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        let next = tokio::time::timeout_at(self.deadline, self.inner.chunk()).await;
        let chunk = match next {
            Err(_) => {
                return Err(HttpError::TimedOut {
                    after: self.started.elapsed(),
                });
            }
            Ok(Err(e)) => return Err(HttpError::Network(e.without_url().to_string())),
            Ok(Ok(None)) => return Ok(None),
            Ok(Ok(Some(c))) => c,
        };
        self.read += chunk.len() as u64;
        if self.read > self.cap {
            return Err(HttpError::TooLarge { limit: self.cap });
        }
        Ok(Some(chunk.to_vec()))
    }

    /// The `Content-Type` header, lowercased, or "".
    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

impl Http {
    /// Like [`Http::send`], but hands back the response as soon as its headers arrive, for a body read
    /// piece by piece. Failures before the first byte of a 2xx body (connection errors, 429/5xx) are
    /// retried as in `send`; nothing is retried once the body has started. The wait for the headers is
    /// bounded by `deadline` alone, not by the per-attempt cap: an LLM may think for a while before it
    /// answers. Error bodies are read whole (within the cap) for their message.
    pub async fn send_stream(
        &self,
        req: &Request,
        deadline: Instant,
    ) -> Result<StreamResponse, HttpError> {
        let started = Instant::now();
        let inner = self
            .retrying(req, deadline, None, || self.start(req))
            .await
            .map_err(|e| e.redact(&self.secrets))?;
        Ok(StreamResponse {
            status: inner.status(),
            headers: inner.headers().clone(),
            inner,
            read: 0,
            cap: self.limits.max_body,
            started,
            deadline,
        })
    }
}
