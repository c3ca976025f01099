//! Streaming responses, for LLM answers read as they arrive: [`Http::send_stream`] and
//! [`StreamResponse`]. Same client, retries (before the first byte), size cap and error texts as
//! [`Http::send`].

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use tokio::time::Instant;

use super::{
    Body, Failure, Http, Request, error_message, network_failure, parse_retry_after, read_capped,
};
use crate::providers::ProviderError;

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
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, ProviderError> {
        let next = tokio::time::timeout_at(self.deadline, self.inner.chunk()).await;
        let chunk = match next {
            Err(_) => {
                return Err(ProviderError::TimedOut {
                    after: self.started.elapsed(),
                });
            }
            Ok(Err(e)) => return Err(ProviderError::Network(e.without_url().to_string())),
            Ok(Ok(None)) => return Ok(None),
            Ok(Ok(Some(c))) => c,
        };
        self.read += chunk.len() as u64;
        if self.read > self.cap {
            return Err(ProviderError::TooLarge { limit: self.cap });
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
    ) -> Result<StreamResponse, ProviderError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if Instant::now() >= deadline {
                return Err(ProviderError::TimedOut {
                    after: started.elapsed(),
                });
            }
            let outcome = tokio::time::timeout_at(deadline, self.attempt_stream(req)).await;
            let retry_in = match outcome {
                Err(_) => {
                    return Err(ProviderError::TimedOut {
                        after: started.elapsed(),
                    });
                }
                Ok(Ok(inner)) => {
                    return Ok(StreamResponse {
                        status: inner.status(),
                        headers: inner.headers().clone(),
                        inner,
                        read: 0,
                        cap: self.limits.max_body,
                        started,
                        deadline,
                    });
                }
                Ok(Err(Failure::Final(e))) => return Err(e),
                Ok(Err(Failure::Retryable { error, retry_after })) => {
                    if attempt >= self.limits.max_attempts {
                        return Err(error);
                    }
                    let wait = match retry_after {
                        Some(ra) if ra > self.limits.max_retry_after => return Err(error),
                        Some(ra) => ra,
                        None => self.backoff(attempt),
                    };
                    if Instant::now() + wait >= deadline {
                        return Err(error);
                    }
                    wait
                }
            };
            tracing::debug!(attempt, ?retry_in, host = req.url.host_str(), "retrying");
            tokio::time::sleep(retry_in).await;
        }
    }

    async fn attempt_stream(&self, req: &Request) -> Result<reqwest::Response, Failure> {
        let mut builder = self.client.request(req.method.clone(), req.url.clone());
        for (name, value, sensitive) in &req.headers {
            let mut v = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                Failure::Final(ProviderError::Config(format!(
                    "header {name} holds characters HTTP does not allow"
                )))
            })?;
            v.set_sensitive(*sensitive);
            builder = builder.header(*name, v);
        }
        if let Some(Body::Json(json)) = &req.body {
            builder = builder.json(json);
        }
        let mut resp = builder.send().await.map_err(network_failure)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = read_capped(&mut resp, self.limits.max_body).await?;
        let retry_after = parse_retry_after(&headers);
        let error = ProviderError::from_status(status.as_u16(), error_message(&body), retry_after);
        Err(
            if matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504 | 529) {
                Failure::Retryable { error, retry_after }
            } else {
                Failure::Final(error)
            },
        )
    }
}
