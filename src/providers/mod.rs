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

/// A provider's failure is the HTTP layer's error type: one set of reasons, one wording.
pub use crate::net::HttpError as ProviderError;

pub mod arxiv;
pub mod brave;
pub mod exa;
pub mod hackernews;
pub mod notes;
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

/// Builds every provider from the environment: configured ones get an instance, others a reason.
/// `notes_roots` are the folders the `notes` provider searches.
pub fn availability(env: &Env, notes_roots: &[PathBuf]) -> Vec<Availability> {
    ProviderName::ALL
        .into_iter()
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

fn build(
    name: ProviderName,
    env: &Env,
    notes_roots: &[PathBuf],
) -> Result<(Arc<dyn Provider>, String), String> {
    let ep = |official: &str| endpoint(env, name.env_name(), official);
    let key = |vars: &[&str]| {
        env.first(vars)
            .map(str::to_string)
            .ok_or_else(|| format!("set {}", vars.join(" or ")))
    };
    Ok(match name {
        ProviderName::Tavily => (
            Arc::new(tavily::Tavily {
                key: key(&["TAVILY_API_KEY"])?,
                url: ep(tavily::ENDPOINT)?,
            }),
            "key from TAVILY_API_KEY".into(),
        ),
        ProviderName::Brave => (
            Arc::new(brave::Brave {
                key: key(&["BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY"])?,
                url: ep(brave::ENDPOINT)?,
            }),
            "key from BRAVE_API_KEY".into(),
        ),
        ProviderName::Exa => (
            Arc::new(exa::Exa {
                key: key(&["EXA_API_KEY"])?,
                url: ep(exa::ENDPOINT)?,
            }),
            "key from EXA_API_KEY".into(),
        ),
        ProviderName::Searxng => {
            let base = env
                .first(&["SEARXNG_URL", "SEARX_URL"])
                .or_else(|| env.get("CONDUCTOR_SEARXNG_BASE_URL"))
                .ok_or("set SEARXNG_URL to a SearXNG instance with the JSON format enabled")?;
            // The instance's own URL plays the official endpoint: CONDUCTOR_SEARXNG_BASE_URL still
            // replaces its scheme, host and port.
            let url = ep(searxng::search_url(base)?.as_str())?;
            (
                Arc::new(searxng::Searxng { url }),
                format!("instance {}", redact_url(base)),
            )
        }
        ProviderName::Wikipedia => (
            Arc::new(wikipedia::Wikipedia {
                url: ep(wikipedia::ENDPOINT)?,
            }),
            "no key needed".into(),
        ),
        ProviderName::Arxiv => (
            Arc::new(arxiv::Arxiv {
                url: ep(arxiv::ENDPOINT)?,
            }),
            "no key needed".into(),
        ),
        ProviderName::Hackernews => (
            Arc::new(hackernews::HackerNews {
                url: ep(hackernews::ENDPOINT)?,
            }),
            "no key needed".into(),
        ),
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
