//! Wikipedia: MediaWiki Action API full-text search (key-less). Errors arrive with HTTP 200.

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use serde::Deserialize;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request};

/// Page links always point at the real wiki, even when the API endpoint is overridden for tests.
const PAGE_BASE: &str = "https://en.wikipedia.org/wiki/";
/// MediaWiki titles are at most 255 bytes: a longer "title" names no page, and would make a huge URL.
pub const MAX_TITLE_BYTES: usize = 255;

pub struct Wikipedia {
    pub url: url::Url,
}

#[derive(Deserialize)]
struct ApiResponse {
    #[serde(default)]
    query: Option<QueryBlock>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct QueryBlock {
    #[serde(default)]
    search: Vec<SearchHit>,
}

#[derive(Deserialize)]
struct SearchHit {
    title: Option<String>,
    #[serde(default)]
    snippet: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

/// `https://en.wikipedia.org/wiki/Rust_(programming_language)`: spaces become underscores; `/`,
/// parentheses and the like stay as the wiki writes them, and `?`, `#`, `%` are percent-encoded.
pub fn page_url(title: &str) -> String {
    let slug = title.trim().replace(' ', "_").replace('%', "%25");
    let mut url = url::Url::parse(PAGE_BASE).expect("constant URL");
    url.set_path(&format!("/wiki/{slug}"));
    url.to_string()
}

impl Provider for Wikipedia {
    fn name(&self) -> ProviderName {
        ProviderName::Wikipedia
    }

    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>> {
        async move {
            let mut url = self.url.clone();
            url.query_pairs_mut()
                .append_pair("action", "query")
                .append_pair("list", "search")
                .append_pair("srsearch", &query.text)
                .append_pair("srlimit", &query.max_results.clamp(1, 50).to_string())
                .append_pair("srprop", "snippet|timestamp")
                .append_pair("format", "json")
                .append_pair("formatversion", "2")
                .append_pair("utf8", "1");
            let resp: ApiResponse = http
                .send(
                    &Request::get(url).header("accept", "application/json"),
                    query.deadline,
                )
                .await?
                .json()?;
            if let Some(err) = resp.error {
                let code = err.code.unwrap_or_default();
                if code == "ratelimited" {
                    return Err(ProviderError::RateLimited { retry_after: None });
                }
                return Err(ProviderError::Unexpected(format!(
                    "API error {code}: {}",
                    err.info.unwrap_or_default()
                )));
            }
            Ok(resp
                .query
                .map(|q| q.search)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|h| {
                    let title = h
                        .title
                        .filter(|t| !t.trim().is_empty() && t.trim().len() <= MAX_TITLE_BYTES)?;
                    Some(Hit {
                        url: page_url(&title),
                        title: Some(title),
                        snippet: h.snippet,
                        published: h.timestamp,
                        content: None,
                    })
                })
                .collect::<Vec<_>>())
        }
        .map_ok(Found::from)
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_urls_keep_parentheses() {
        assert_eq!(
            super::page_url("Rust (programming language)"),
            "https://en.wikipedia.org/wiki/Rust_(programming_language)"
        );
        assert_eq!(
            super::page_url("Async/await"),
            "https://en.wikipedia.org/wiki/Async/await"
        );
        assert_eq!(
            super::page_url("100% Pure? #1"),
            "https://en.wikipedia.org/wiki/100%25_Pure%3F_%231"
        );
    }
}
