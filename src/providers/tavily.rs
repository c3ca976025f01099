//! Tavily Search API: `POST /search`, key as `Authorization: Bearer`.
//!
//! A basic search costs 1 credit, raw content included: each result brings its page as plain text
//! (`include_raw_content: "text"`), which the reading stage reads instead of fetching the page.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request, number};

pub struct Tavily {
    pub key: String,
    pub url: url::Url,
}

#[derive(Deserialize)]
struct SearchResponse {
    results: Vec<TavilyResult>,
    #[serde(default, deserialize_with = "number::lenient")]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    /// Absurd values (negative, huge, not a number) count as unreported.
    #[serde(default, deserialize_with = "number::credits")]
    credits: Option<f64>,
}

#[derive(Deserialize)]
struct TavilyResult {
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    published_date: Option<String>,
    #[serde(default)]
    raw_content: Option<String>,
}

impl Provider for Tavily {
    fn name(&self) -> ProviderName {
        ProviderName::Tavily
    }

    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>> {
        async move {
            let body = json!({
                "query": query.text,
                "search_depth": "basic",
                "max_results": query.max_results.min(20),
                "include_usage": true,
                // The page as plain text: no extra credit on a basic search.
                "include_raw_content": "text",
            });
            let req = Request::post_json(self.url.clone(), body)
                .secret_header("authorization", format!("Bearer {}", self.key));
            let resp: SearchResponse = http.send(&req, query.deadline).await?.json()?;
            let credits = resp.usage.and_then(|u| u.credits);
            let hits = resp
                .results
                .into_iter()
                .filter_map(|r| {
                    Some(Hit {
                        url: r.url?,
                        title: r.title,
                        snippet: r.content,
                        published: r.published_date,
                        content: r.raw_content,
                    })
                })
                .collect();
            Ok(Found {
                hits,
                cost_usd: None,
                credits,
            })
        }
        .boxed()
    }
}
