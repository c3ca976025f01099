//! The HTTP layer's error: why a request got no usable answer.

use std::time::Duration;

use super::Secrets;

/// Why a request to a provider (or an LLM) gave no answer, in words a person can act on. Providers use it
/// as `providers::HttpError`; the LLM's `LlmError::Http` words it for the LLM.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HttpError {
    #[error("not configured: {0}")]
    NotConfigured(String),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("rate limited (HTTP 429){}", retry_hint(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Not asked: an earlier rate limit's Retry-After (remembered in the store) is not over.
    #[error("rate limited until {until} (not asked)")]
    Suspended { until: String },
    #[error("timed out after {}", secs(.after))]
    TimedOut { after: Duration },
    #[error("key rejected (HTTP {status}){}", detail(.message))]
    KeyRejected {
        status: u16,
        message: Option<String>,
    },
    #[error("quota or plan limit reached (HTTP {status}){}", detail(.message))]
    QuotaExceeded {
        status: u16,
        message: Option<String>,
    },
    #[error("unexpected response: {0}")]
    Unexpected(String),
    #[error("response too large (over {} MiB)", .limit / (1024 * 1024))]
    TooLarge { limit: u64 },
    #[error("HTTP {status}{}", detail(.message))]
    Http {
        status: u16,
        message: Option<String>,
    },
    #[error("network error: {0}")]
    Network(String),
    #[error("cancelled")]
    Cancelled,
}

pub fn secs(d: &Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 || s.fract() < 0.05 {
        format!("{} s", s.round())
    } else {
        format!("{s:.1} s")
    }
}

pub fn retry_hint(d: &Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}", secs(&d)))
        .unwrap_or_default()
}

pub fn detail(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

impl HttpError {
    /// Classifies a non-2xx status the way every provider documents it.
    pub fn from_status(
        status: u16,
        message: Option<String>,
        retry_after: Option<Duration>,
    ) -> HttpError {
        match status {
            401 | 403 => HttpError::KeyRejected { status, message },
            // Brave answers an invalid token with 422 SUBSCRIPTION_TOKEN_INVALID.
            422 if message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("token")) =>
            {
                HttpError::KeyRejected { status, message }
            }
            429 => HttpError::RateLimited { retry_after },
            402 | 432 | 433 => HttpError::QuotaExceeded { status, message },
            _ => HttpError::Http { status, message },
        }
    }

    /// The error with every message passed through [`Secrets::message`]: configured secrets and URL user
    /// info removed, one clean line, capped. Every failure a provider reports passes here (in
    /// `Http::send` and again in the research engine) before anything prints, logs or stores it.
    pub fn redact(self, secrets: &Secrets) -> HttpError {
        let m = |s: String| secrets.message(&s);
        let mo = |s: Option<String>| s.map(m).filter(|s| !s.is_empty());
        match self {
            HttpError::NotConfigured(s) => HttpError::NotConfigured(m(s)),
            HttpError::Config(s) => HttpError::Config(m(s)),
            HttpError::KeyRejected { status, message } => HttpError::KeyRejected {
                status,
                message: mo(message),
            },
            HttpError::QuotaExceeded { status, message } => HttpError::QuotaExceeded {
                status,
                message: mo(message),
            },
            HttpError::Unexpected(s) => HttpError::Unexpected(m(s)),
            HttpError::Http { status, message } => HttpError::Http {
                status,
                message: mo(message),
            },
            HttpError::Network(s) => HttpError::Network(m(s)),
            other @ (HttpError::RateLimited { .. }
            | HttpError::Suspended { .. }
            | HttpError::TimedOut { .. }
            | HttpError::TooLarge { .. }
            | HttpError::Cancelled) => other,
        }
    }

    /// A short machine-readable kind, for JSON output and editor clients.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::NotConfigured(_) => "not_configured",
            HttpError::Config(_) => "config",
            HttpError::RateLimited { .. } | HttpError::Suspended { .. } => "rate_limited",
            HttpError::TimedOut { .. } => "timed_out",
            HttpError::KeyRejected { .. } => "key_rejected",
            HttpError::QuotaExceeded { .. } => "quota_exceeded",
            HttpError::Unexpected(_) => "unexpected_response",
            HttpError::TooLarge { .. } => "too_large",
            HttpError::Http { .. } => "http_error",
            HttpError::Network(_) => "network",
            HttpError::Cancelled => "cancelled",
        }
    }
}
