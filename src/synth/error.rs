//! Why synthesis failed: [`LlmError`], worded for a person and scrubbed of secrets.

use std::fmt;

use crate::net::{HttpError, Secrets};

/// Why synthesis failed, in words a person can act on. Never holds an API key.
#[derive(Clone, Debug, PartialEq)]
pub enum LlmError {
    /// What the HTTP layer found (rate limit, timeout, rejected key, …), worded for the LLM.
    Http(HttpError),
    /// The model's stream ended with an error event.
    MidStream(String),
    /// An answer that is not the documented format.
    Unexpected(String),
    /// A back end that is chosen but unusable.
    Config(String),
    Cancelled,
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::net::error::{detail, retry_hint, secs};
        match self {
            LlmError::Http(e) => match e {
                HttpError::RateLimited { retry_after } => write!(
                    f,
                    "the LLM is rate limiting requests (HTTP 429){}",
                    retry_hint(retry_after)
                ),
                HttpError::Suspended { until } => {
                    write!(f, "the LLM is rate limiting requests until {until}")
                }
                HttpError::TimedOut { after } => {
                    write!(
                        f,
                        "the LLM did not answer in time (gave up after {})",
                        secs(after)
                    )
                }
                HttpError::KeyRejected { status, message } => write!(
                    f,
                    "the LLM rejected the API key (HTTP {status}){}",
                    detail(message)
                ),
                HttpError::QuotaExceeded { status, message } => write!(
                    f,
                    "the LLM account is out of credit or over its plan (HTTP {status}){}",
                    detail(message)
                ),
                HttpError::Unexpected(m) => write!(f, "unexpected response from the LLM: {m}"),
                HttpError::TooLarge { limit } => write!(
                    f,
                    "unexpected response from the LLM: answer larger than {} MiB",
                    limit / (1024 * 1024)
                ),
                HttpError::Http { status, message } => {
                    write!(f, "the LLM answered HTTP {status}{}", detail(message))
                }
                HttpError::Network(m) => write!(f, "could not reach the LLM: {m}"),
                HttpError::Config(m) | HttpError::NotConfigured(m) => {
                    write!(f, "LLM configuration error: {m}")
                }
                HttpError::Cancelled => write!(f, "synthesis cancelled"),
            },
            LlmError::MidStream(m) => {
                write!(f, "the LLM stopped with an error while answering: {m}")
            }
            LlmError::Unexpected(m) => write!(f, "unexpected response from the LLM: {m}"),
            LlmError::Config(m) => write!(f, "LLM configuration error: {m}"),
            LlmError::Cancelled => write!(f, "synthesis cancelled"),
        }
    }
}

impl std::error::Error for LlmError {}

impl From<HttpError> for LlmError {
    fn from(e: HttpError) -> LlmError {
        match e {
            HttpError::Cancelled => LlmError::Cancelled,
            e => LlmError::Http(e),
        }
    }
}

impl LlmError {
    /// A short machine-readable kind, for JSON output and editor clients.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Http(HttpError::TooLarge { .. }) | LlmError::Unexpected(_) => {
                "unexpected_response"
            }
            LlmError::Http(HttpError::Config(_) | HttpError::NotConfigured(_))
            | LlmError::Config(_) => "config",
            LlmError::Http(e) => e.kind(),
            LlmError::MidStream(_) => "stream_error",
            LlmError::Cancelled => "cancelled",
        }
    }

    /// Every message passed through [`Secrets::message`] (a server may echo the key it was sent, or any
    /// other configured secret): secrets and URL user info removed, one clean line, capped.
    pub fn redact(self, secrets: &Secrets) -> LlmError {
        let s = |m: String| secrets.message(&m);
        match self {
            LlmError::Http(e) => LlmError::Http(e.redact(secrets)),
            LlmError::MidStream(m) => LlmError::MidStream(s(m)),
            LlmError::Unexpected(m) => LlmError::Unexpected(s(m)),
            LlmError::Config(m) => LlmError::Config(s(m)),
            LlmError::Cancelled => LlmError::Cancelled,
        }
    }
}

/// The message of a JSON error object (`{"message": …}`, a string, or anything else), cleaned.
pub(crate) fn error_text(v: &serde_json::Value) -> String {
    let m = v
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| v.as_str().map(str::to_string))
        .unwrap_or_else(|| v.to_string());
    // Cut loosely: `LlmError::redact` scrubs secrets before it cuts to the final length.
    let m = crate::sanitize::clean_text(&m, crate::net::MAX_REMOTE_CHARS);
    if m.is_empty() { "no message".into() } else { m }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_scrubbed_of_the_key() {
        let e = LlmError::Http(HttpError::KeyRejected {
            status: 401,
            message: Some("Incorrect API key provided: sk-secret-123".into()),
        })
        .redact(&Secrets::new(["sk-secret-123"]));
        assert!(!e.to_string().contains("sk-secret-123"));
        assert!(!format!("{e:?}").contains("sk-secret-123"));
        assert_eq!(e.kind(), "key_rejected");
    }
}
