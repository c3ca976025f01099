//! The one HTTP layer every outbound request goes through.
//!
//! It owns the shared `reqwest::Client` (connect timeout, redirect policy, User-Agent), and for each call:
//! a total timeout bounded by the research deadline, retries of 429/5xx with exponential backoff and full
//! jitter honouring `Retry-After`, a body size cap enforced while streaming, and error texts that never carry
//! the request URL (where a key could hide), a header, or a configured secret the server echoed
//! ([`Secrets`]).

use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;

pub mod error;
pub mod number;

pub use error::HttpError;
mod redact;
pub use redact::{MAX_MESSAGE_CHARS, REDACTED, Secrets, strip_userinfo};

/// How much of a remote error text is kept before it is redacted and cut to [`MAX_MESSAGE_CHARS`].
pub const MAX_REMOTE_CHARS: usize = 4096;

/// The longest `Retry-After` taken at its word (a day). A longer one (`99999999999999999999`, a date in
/// the year 9999) is read as this: the provider is rate limited for now, and nothing overflows.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

pub const USER_AGENT: &str = concat!(
    "conductor-lsp/",
    env!("CARGO_PKG_VERSION"),
    " (research language server; https://crates.io/crates/conductor-lsp)"
);

/// Limits of the HTTP layer. The defaults suit search APIs.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub connect_timeout: Duration,
    /// Upper bound for one attempt, even when the deadline is further away.
    pub attempt_timeout: Duration,
    pub max_body: u64,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A `Retry-After` longer than this is not waited for: the provider is reported as rate limited.
    pub max_retry_after: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            max_body: 8 * 1024 * 1024,
            max_attempts: 3,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// A response that was read whole (within the cap) with a 2xx status.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// Parses the body as JSON, naming HTML (a bot-detection or login page) for what it is.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        if looks_like_html(&self.headers, &self.body) {
            return Err(HttpError::Unexpected(
                "HTML instead of JSON (a bot-detection or error page?)".into(),
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::Unexpected(format!(
                "response is not the documented JSON: {}",
                json_error(&e)
            ))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A serde_json error without the remote text it quotes: `invalid type: string "…", expected a sequence
/// at line 1 column 9`. serde quotes a wrong string whole and Debug-escaped (`t\u{200b}oken`), which no
/// redaction could reliably recognise, and which may be a megabyte long.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match (text.find('"'), text.rfind('"')) {
        (Some(first), Some(last)) if last > first => {
            format!("{}\"…\"{}", &text[..first], &text[last + 1..])
        }
        _ => text,
    }
}

fn looks_like_html(headers: &HeaderMap, body: &[u8]) -> bool {
    let ct_html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &body[i..])
        .unwrap_or_default();
    ct_html || start.first() == Some(&b'<')
}

/// One request to make, rebuilt for every attempt.
pub struct Request {
    pub method: Method,
    pub url: url::Url,
    /// Headers; credentials go here (never in the URL), and are marked sensitive.
    pub headers: Vec<(&'static str, String, bool)>,
    pub body: Option<Body>,
}

pub enum Body {
    Json(serde_json::Value),
}

impl Request {
    pub fn get(url: url::Url) -> Request {
        Request {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn post_json(url: url::Url, body: serde_json::Value) -> Request {
        Request {
            method: Method::POST,
            url,
            headers: Vec::new(),
            body: Some(Body::Json(body)),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into(), false));
        self
    }

    /// A header holding a credential: marked sensitive so it never prints in debug output.
    pub fn secret_header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into(), true));
        self
    }
}

/// The shared HTTP client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    limits: HttpLimits,
    /// Scrubbed from every error this layer returns.
    secrets: std::sync::Arc<Secrets>,
}

impl Http {
    pub fn new(limits: HttpLimits) -> Http {
        // rustls needs a process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if !matches!(attempt.url().scheme(), "http" | "https") {
                attempt.error("redirect to a non-http(s) URL")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(limits.connect_timeout)
            .redirect(redirects)
            .no_proxy()
            .build()
            .expect("the HTTP client's fixed configuration is valid");
        Http {
            client,
            limits,
            secrets: Default::default(),
        }
    }

    /// The secrets to scrub from every error (`Secrets::from_env`): the CLI and the server set them.
    pub fn with_secrets(mut self, secrets: Secrets) -> Http {
        self.secrets = std::sync::Arc::new(secrets);
        self
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Sends `req`, retrying as the limits allow until `deadline`. Returns the 2xx response, or the error a
    /// person can act on.
    pub async fn send(&self, req: &Request, deadline: Instant) -> Result<Response, HttpError> {
        let cap = Some(self.limits.attempt_timeout);
        self.retrying(req, deadline, cap, || self.attempt(req))
            .await
            .map_err(|e| e.redact(&self.secrets))
    }

    /// Runs `attempt` until it succeeds, fails for good, or retrying would pass `deadline`. Each attempt is
    /// bounded by the deadline and, when given, by `attempt_cap`.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        req: &Request,
        deadline: Instant,
        attempt_cap: Option<Duration>,
        attempt: F,
    ) -> Result<T, HttpError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let started = Instant::now();
        let mut n = 0u32;
        loop {
            n += 1;
            let now = Instant::now();
            if now >= deadline {
                return Err(HttpError::TimedOut {
                    after: deadline.saturating_duration_since(started),
                });
            }
            let budget = attempt_cap.map_or(deadline - now, |cap| (deadline - now).min(cap));
            let retry_in = match tokio::time::timeout(budget, attempt()).await {
                Err(_) => {
                    // The attempt ran out of time: the deadline or the per-attempt cap.
                    if Instant::now() + self.backoff(n) >= deadline || n >= self.limits.max_attempts
                    {
                        return Err(HttpError::TimedOut {
                            after: started.elapsed(),
                        });
                    }
                    self.backoff(n)
                }
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(Failure::Final(e))) => return Err(e),
                Ok(Err(Failure::Retryable { error, retry_after })) => {
                    if n >= self.limits.max_attempts {
                        return Err(error);
                    }
                    let wait = match retry_after {
                        Some(ra) if ra > self.limits.max_retry_after => return Err(error),
                        Some(ra) => ra,
                        None => self.backoff(n),
                    };
                    if Instant::now() + wait >= deadline {
                        return Err(error);
                    }
                    wait
                }
            };
            tracing::debug!(
                attempt = n,
                ?retry_in,
                host = req.url.host_str(),
                "retrying"
            );
            tokio::time::sleep(retry_in).await;
        }
    }

    /// Exponential backoff with full jitter: a random wait in [0, min(max, base * 2^(attempt-1))].
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .limits
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(16));
        let cap = exp.min(self.limits.backoff_max);
        cap.mul_f64(fastrand::f64())
    }

    /// One attempt, reading the whole body within the cap.
    async fn attempt(&self, req: &Request) -> Result<Response, Failure> {
        let mut resp = self.start(req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_capped(&mut resp, self.limits.max_body).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Sends once and returns a 2xx response with its body unread. Any other status is read (within the
    /// cap) for its message and classified: 408, 429 and 5xx may be retried, the rest are final.
    pub(crate) async fn start(&self, req: &Request) -> Result<reqwest::Response, Failure> {
        let mut builder = self.client.request(req.method.clone(), req.url.clone());
        for (name, value, sensitive) in &req.headers {
            let mut v = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                Failure::Final(HttpError::Config(format!(
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
        let error = HttpError::from_status(status.as_u16(), error_message(&body), retry_after);
        Err(
            if matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504 | 529) {
                Failure::Retryable { error, retry_after }
            } else {
                Failure::Final(error)
            },
        )
    }
}

pub(crate) enum Failure {
    Final(HttpError),
    Retryable {
        error: HttpError,
        retry_after: Option<Duration>,
    },
}

fn network_failure(e: reqwest::Error) -> Failure {
    // reqwest's Display appends the URL; strip it so a key in a query string can never leak.
    let e = e.without_url();
    let msg = if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_redirect() {
        "too many or unsafe redirects".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    };
    let error = HttpError::Network(msg);
    if e.is_connect() || e.is_request() {
        Failure::Retryable {
            error,
            retry_after: None,
        }
    } else {
        Failure::Final(error)
    }
}

/// Reads the body chunk by chunk and stops as soon as it passes `cap`: a huge body is never held.
async fn read_capped(resp: &mut reqwest::Response, cap: u64) -> Result<Vec<u8>, Failure> {
    let too_large = || Failure::Final(HttpError::TooLarge { limit: cap });
    let declared = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(16 * 1024).min(cap) as usize);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Failure::Final(HttpError::Network(e.without_url().to_string())))?
    {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` as seconds (integer or decimal) or an HTTP date, at most [`MAX_RETRY_AFTER`]. A value
/// that is no delay (negative, `NaN`, `inf`, `1e400`, text) is `None`: no hint.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        // `Duration::from_secs_f64` panics past u64::MAX seconds; the checked form cannot.
        let wait = Duration::try_from_secs_f64(secs).unwrap_or(MAX_RETRY_AFTER);
        return Some(wait.min(MAX_RETRY_AFTER));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The human message inside a provider's JSON error body, whatever its documented shape
/// (Tavily `detail.error`, Brave `error.detail`, OpenAI/Anthropic `error.message`, Exa/SearXNG `error`).
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let pick = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let candidates = [
        v.pointer("/detail/error"),
        v.pointer("/error/detail"),
        v.pointer("/error/message"),
        v.pointer("/errors/0/detail"),
        v.pointer("/error/info"),
        v.get("error"),
        v.get("message"),
        v.get("detail"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(pick)
        // Cleaned here, and cut only loosely: secrets are scrubbed from the whole error (by `Http::send`)
        // before it is cut to `MAX_MESSAGE_CHARS`, so a secret is never cut in half and half shown.
        .map(|m| crate::sanitize::clean_text(&m, MAX_REMOTE_CHARS))
        .filter(|m| !m.is_empty())
}

// Streaming responses (LLM answers): `Http::send_stream`.
mod stream;
pub use stream::StreamResponse;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "1.5".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(1500)));
        let future = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(future).parse().unwrap(),
        );
        let d = parse_retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn absurd_retry_after_values_never_panic() {
        let mut h = HeaderMap::new();
        for (value, want) in [
            ("99999999999999999999", Some(MAX_RETRY_AFTER)),
            ("1e300", Some(MAX_RETRY_AFTER)),
            ("86401", Some(MAX_RETRY_AFTER)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_RETRY_AFTER)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
            ("-5", None),
            ("NaN", None),
            ("inf", None),
            ("1e400", None),
            ("", None),
        ] {
            h.insert(RETRY_AFTER, value.parse().unwrap());
            assert_eq!(parse_retry_after(&h), want, "{value}");
        }
    }

    #[test]
    fn error_messages_of_each_provider_shape() {
        let cases = [
            (
                r#"{"detail":{"error":"Unauthorized: missing or invalid API key."}}"#,
                "Unauthorized: missing or invalid API key.",
            ),
            (
                r#"{"type":"ErrorResponse","error":{"status":422,"code":"SUBSCRIPTION_TOKEN_INVALID","detail":"The provided subscription token is invalid."}}"#,
                "The provided subscription token is invalid.",
            ),
            (
                r#"{"requestId":"x","error":"Invalid API key","tag":"INVALID_API_KEY"}"#,
                "Invalid API key",
            ),
            (
                r#"{"error":{"message":"Rate limit","type":"rate_limit_error"}}"#,
                "Rate limit",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                error_message(body.as_bytes()).as_deref(),
                Some(want),
                "{body}"
            );
        }
        assert_eq!(error_message(b"<html>"), None);
    }
}
