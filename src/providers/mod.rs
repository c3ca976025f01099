//! Search providers: one module per provider, all behind [`Provider`].
//!
//! A provider turns a query into [`Hit`]s in its own rank order, speaking its official API. It does not
//! clean text or merge: that is [`crate::research`]'s job, so every provider is held to the same rules.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::config::{Env, ProviderName, endpoint};
use crate::net::Http;
use registry::{DefaultUse, Needs, ProviderInfo};

/// A provider's failure is the HTTP layer's error type: one set of reasons, one wording.
pub use crate::net::HttpError as ProviderError;

pub mod arxiv;
pub mod brave;
pub mod exa;
pub mod hackernews;
pub mod notes;
pub mod preflight;
/// The table every provider fact comes from (a leaf module: `config` reads it too).
pub use crate::registry;
pub mod searxng;
pub mod tavily;
pub mod wikipedia;

/// One result as a provider returned it, before cleaning and merging. Serde: the cache keeps answers.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// A search provider. Implementations are cheap to share (`Arc`) and hold their key and endpoint.
pub trait Provider: Send + Sync {
    fn name(&self) -> ProviderName;
    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>>;

    /// The preflight of `conductor-lsp providers --check`: the provider's cheapest documented call, which
    /// proves the key and the endpoint, and says what quota is left where the API reports it. By default
    /// a one-result search for [`preflight::PROBE_QUERY`]; providers with a cheaper call (Tavily's
    /// `/usage`) or with quota in their answer (Brave's rate-limit headers) override it.
    fn check<'a>(
        &'a self,
        http: &'a Http,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<preflight::Answer, ProviderError>> {
        Box::pin(async move {
            let query = preflight::probe(deadline);
            let found = self.search(http, &query).await?;
            Ok(preflight::Answer::searched(&found))
        })
    }
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
    /// RFC 3339: a rate limit outlasted a research and the provider is not asked until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_until: Option<String>,
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
                suspended_until: None,
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
