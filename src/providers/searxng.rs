//! SearXNG JSON API: `GET {instance}/search?q=…&format=json` (the instance must enable the JSON format).

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use serde::Deserialize;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request};

pub struct Searxng {
    pub url: url::Url,
}

/// `{instance}/search` from the instance's base URL (with or without a path prefix).
pub fn search_url(base: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(base).map_err(|e| {
        format!(
            "SEARXNG_URL '{}' is not a URL: {e}",
            crate::sanitize::strip_userinfo(base)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("SEARXNG_URL must be an http or https URL".into());
    }
    let path = url
        .path()
        .trim_end_matches('/')
        .trim_end_matches("/search")
        .to_string();
    url.set_path(&format!("{path}/search"));
    url.set_query(None);
    Ok(url)
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    results: Vec<SearxResult>,
}

#[derive(Deserialize)]
struct SearxResult {
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default, rename = "publishedDate")]
    published_date: Option<String>,
}

impl Provider for Searxng {
    fn name(&self) -> ProviderName {
        ProviderName::Searxng
    }

    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>> {
        async move {
            let mut url = self.url.clone();
            url.query_pairs_mut()
                .append_pair("q", &query.text)
                .append_pair("format", "json")
                .append_pair("categories", "general");
            let resp = match http.send(&Request::get(url), query.deadline).await {
                // A 403 is what an instance without the JSON format enabled answers.
                Err(ProviderError::KeyRejected { status: 403, .. }) => {
                    return Err(ProviderError::Unexpected(
                        "HTTP 403: the instance does not enable the JSON format (search.formats in settings.yml)".into(),
                    ));
                }
                other => other?,
            };
            let resp: SearchResponse = resp.json()?;
            Ok(resp
                .results
                .into_iter()
                .take(query.max_results)
                .filter_map(|r| {
                    Some(Hit {
                        url: r.url?,
                        title: r.title,
                        snippet: r.content,
                        published: r.published_date,
                        content: None,
                    })
                })
                .collect::<Vec<_>>())
        }
        .map_ok(Found::from)
        .boxed()
    }
}
