//! Search providers: one module per provider, all behind [`Provider`].
//!
//! A provider turns a query into [`Hit`]s in its own rank order, speaking its official API. It does not
//! clean text or merge: that is [`crate::research`]'s job, so every provider is held to the same rules.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::config::{Env, ProviderName, endpoint};
use crate::net::{Http, Secrets};
use registry::{DefaultUse, Needs, ProviderInfo};

pub mod arxiv;
pub mod brave;
pub mod exa;
pub mod hackernews;
pub mod notes;
pub mod registry;
pub mod searxng;
pub mod tavily;
pub mod wikipedia;

/// One result as a provider returned it, before cleaning and merging.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hit {
    pub url: String,
    pub title: Option<String>,
    pub snippet: Option<String>,
    /// As the provider gave it (ISO 8601 mostly).
    pub published: Option<String>,
    /// Longer page text, where the provider gave it (for synthesis).
    pub content: Option<String>,
}

/// What one provider returned: its hits in rank order, and what the call cost where the API says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// Dollars, where the API reports them (Exa's `costDollars.total`).
    pub cost_usd: Option<f64>,
    /// Provider credits, where the API reports them (Tavily's `usage.credits`).
    pub credits: Option<f64>,
}

impl From<Vec<Hit>> for Found {
    fn from(hits: Vec<Hit>) -> Found {
        Found {
            hits,
            ..Found::default()
        }
    }
}

/// What a research asks of each provider.
#[derive(Clone, Debug)]
pub struct Query {
    pub text: String,
    pub max_results: usize,
    pub deadline: Instant,
}

/// Why a provider gave no results, in words a person can act on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("not configured: {0}")]
    NotConfigured(String),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("rate limited (HTTP 429){}", retry_hint(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
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

fn secs(d: &Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 || s.fract() < 0.05 {
        format!("{} s", s.round())
    } else {
        format!("{s:.1} s")
    }
}

fn retry_hint(d: &Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}", secs(&d)))
        .unwrap_or_default()
}

fn detail(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

impl ProviderError {
    /// Classifies a non-2xx status the way every provider documents it.
    pub fn from_status(
        status: u16,
        message: Option<String>,
        retry_after: Option<Duration>,
    ) -> ProviderError {
        match status {
            401 | 403 => ProviderError::KeyRejected { status, message },
            // Brave answers an invalid token with 422 SUBSCRIPTION_TOKEN_INVALID.
            422 if message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("token")) =>
            {
                ProviderError::KeyRejected { status, message }
            }
            429 => ProviderError::RateLimited { retry_after },
            402 | 432 | 433 => ProviderError::QuotaExceeded { status, message },
            _ => ProviderError::Http { status, message },
        }
    }

    /// The error with every message passed through [`Secrets::message`]: configured secrets and URL user
    /// info removed, one clean line, capped. Every failure a provider reports passes here (in
    /// `Http::send` and again in the research engine) before anything prints, logs or stores it.
    pub fn redact(self, secrets: &Secrets) -> ProviderError {
        let m = |s: String| secrets.message(&s);
        let mo = |s: Option<String>| s.map(m).filter(|s| !s.is_empty());
        match self {
            ProviderError::NotConfigured(s) => ProviderError::NotConfigured(m(s)),
            ProviderError::Config(s) => ProviderError::Config(m(s)),
            ProviderError::KeyRejected { status, message } => ProviderError::KeyRejected {
                status,
                message: mo(message),
            },
            ProviderError::QuotaExceeded { status, message } => ProviderError::QuotaExceeded {
                status,
                message: mo(message),
            },
            ProviderError::Unexpected(s) => ProviderError::Unexpected(m(s)),
            ProviderError::Http { status, message } => ProviderError::Http {
                status,
                message: mo(message),
            },
            ProviderError::Network(s) => ProviderError::Network(m(s)),
            other @ (ProviderError::RateLimited { .. }
            | ProviderError::TimedOut { .. }
            | ProviderError::TooLarge { .. }
            | ProviderError::Cancelled) => other,
        }
    }

    /// A short machine-readable kind, for JSON output and editor clients.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::NotConfigured(_) => "not_configured",
            ProviderError::Config(_) => "config",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::TimedOut { .. } => "timed_out",
            ProviderError::KeyRejected { .. } => "key_rejected",
            ProviderError::QuotaExceeded { .. } => "quota_exceeded",
            ProviderError::Unexpected(_) => "unexpected_response",
            ProviderError::TooLarge { .. } => "too_large",
            ProviderError::Http { .. } => "http_error",
            ProviderError::Network(_) => "network",
            ProviderError::Cancelled => "cancelled",
        }
    }
}

/// A search provider. Implementations are cheap to share (`Arc`) and hold their key and endpoint.
pub trait Provider: Send + Sync {
    fn name(&self) -> ProviderName;
    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>>;
}

/// Whether a provider can run here, and why not.
#[derive(Clone, Debug)]
pub struct Availability {
    pub name: ProviderName,
    /// Set when usable.
    pub provider: Option<Arc<dyn Provider>>,
    /// What enables it, or why it is not enabled.
    pub detail: String,
}

/// Builds every provider of the table from the environment: configured ones get an instance, others a
/// reason. `notes_roots` are the folders the `notes` provider searches.
pub fn availability(env: &Env, notes_roots: &[PathBuf]) -> Vec<Availability> {
    ProviderName::all()
        .map(|name| match build(name, env, notes_roots) {
            Ok((p, detail)) => Availability {
                name,
                provider: Some(p),
                detail,
            },
            Err(why) => Availability {
                name,
                provider: None,
                detail: why,
            },
        })
        .collect()
}

/// The providers a research asks when the user names none ([`DefaultUse`]): every configured provider
/// that is used when configured (those needing a key or a URL), else the free public ones, in table order.
pub fn default_choice(available: &[Availability]) -> Vec<ProviderName> {
    let configured: Vec<ProviderName> = available
        .iter()
        .filter(|a| a.provider.is_some() && a.name.info().default == DefaultUse::IfConfigured)
        .map(|a| a.name)
        .collect();
    if !configured.is_empty() {
        return configured;
    }
    ProviderName::all()
        .filter(|n| n.info().default == DefaultUse::IfNoneConfigured)
        .collect()
}

/// What the user must set to enable a provider that needs a key or a URL.
fn missing(info: &ProviderInfo) -> String {
    let vars = info.env.join(" or ");
    match info.needs {
        Needs::Url => format!("set {vars} to {}", info.url_hint),
        _ => format!("set {vars}"),
    }
}

fn build(
    name: ProviderName,
    env: &Env,
    notes_roots: &[PathBuf],
) -> Result<(Arc<dyn Provider>, String), String> {
    let info = name.info();
    // The first of its variables that is set: the documented name, then the aliases.
    let set = info
        .env
        .iter()
        .find_map(|var| env.get(var).map(|value| (*var, value)));
    let key = || {
        set.map(|(var, value)| (value.to_string(), format!("key from {var}")))
            .ok_or_else(|| missing(info))
    };
    let base_url_name = info.base_url_name.unwrap_or_default();
    let official = || match info.endpoint {
        Some(official) => endpoint(env, base_url_name, official),
        None => Err(format!("{name} has no official endpoint")),
    };
    let free = "no key needed".to_string();
    Ok(match name {
        ProviderName::Tavily => {
            let (key, detail) = key()?;
            let url = official()?;
            (Arc::new(tavily::Tavily { key, url }), detail)
        }
        ProviderName::Brave => {
            let (key, detail) = key()?;
            let url = official()?;
            (Arc::new(brave::Brave { key, url }), detail)
        }
        ProviderName::Exa => {
            let (key, detail) = key()?;
            let url = official()?;
            (Arc::new(exa::Exa { key, url }), detail)
        }
        ProviderName::Searxng => {
            let base = set
                .map(|(_, value)| value)
                .or_else(|| env.get(&format!("CONDUCTOR_{base_url_name}_BASE_URL")))
                .ok_or_else(|| missing(info))?;
            // The instance's own URL plays the official endpoint: CONDUCTOR_SEARXNG_BASE_URL still
            // replaces its scheme, host and port.
            let url = endpoint(env, base_url_name, searxng::search_url(base)?.as_str())?;
            (
                Arc::new(searxng::Searxng { url }),
                format!("instance {}", redact_url(base)),
            )
        }
        ProviderName::Wikipedia => (Arc::new(wikipedia::Wikipedia { url: official()? }), free),
        ProviderName::Hackernews => (Arc::new(hackernews::HackerNews { url: official()? }), free),
        ProviderName::Arxiv => (Arc::new(arxiv::Arxiv { url: official()? }), free),
        ProviderName::Notes => {
            let roots: Vec<PathBuf> = notes_roots.iter().filter(|r| r.is_dir()).cloned().collect();
            if roots.is_empty() {
                return Err("no folder to search (open a workspace folder)".into());
            }
            let detail = format!(
                "searches {}",
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            (Arc::new(notes::Notes::new(roots)), detail)
        }
    })
}

/// One provider as `conductor-lsp providers --format json` shows it: its row of the table, and here
/// and now whether it is configured, whether a research with these settings asks it, and what enables
/// it or why it is not enabled.
#[derive(Debug, serde::Serialize)]
pub struct ProviderStatus {
    #[serde(flatten)]
    pub info: &'static ProviderInfo,
    /// `CONDUCTOR_<NAME>_BASE_URL`, where the endpoint can be pointed elsewhere.
    pub base_url_env: Option<String>,
    pub configured: bool,
    pub used: bool,
    pub detail: String,
}

impl ProviderStatus {
    /// Every provider's status; `used` are the providers a research asks (the selection's runnable ones).
    pub fn list(available: &[Availability], used: &[ProviderName]) -> Vec<ProviderStatus> {
        available
            .iter()
            .map(|a| ProviderStatus {
                info: a.name.info(),
                base_url_env: a
                    .name
                    .info()
                    .base_url_name
                    .map(|n| format!("CONDUCTOR_{n}_BASE_URL")),
                configured: a.provider.is_some(),
                used: used.contains(&a.name),
                detail: a.detail.clone(),
            })
            .collect()
    }
}

/// A URL without user info, query or fragment, for display in logs and listings.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(invalid URL)".into(),
    }
}

impl fmt::Debug for dyn Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Provider({})", self.name())
    }
}
