//! Exa API: `POST /search` with camelCase JSON, key in `x-api-key`.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request, number};

pub struct Exa {
    pub key: String,
    pub url: url::Url,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchResponse {
    results: Vec<ExaResult>,
    #[serde(default, deserialize_with = "number::lenient")]
    cost_dollars: Option<CostDollars>,
}

#[derive(Deserialize)]
struct CostDollars {
    /// Absurd values (negative, huge, not a number) count as unreported.
    #[serde(default, deserialize_with = "number::cost")]
    total: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExaResult {
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    published_date: Option<String>,
    #[serde(default)]
    highlights: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

impl Provider for Exa {
    fn name(&self) -> ProviderName {
        ProviderName::Exa
    }

    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>> {
        async move {
            // The raw API returns metadata only unless `contents` is asked for explicitly.
            let body = json!({
                "query": query.text,
                "type": "auto",
                "numResults": query.max_results.clamp(1, 10),
                "contents": { "highlights": { "maxCharacters": 1000 }, "text": { "maxCharacters": 4000 } },
            });
            let req = Request::post_json(self.url.clone(), body).secret_header("x-api-key", &self.key);
            let resp: SearchResponse = http.send(&req, query.deadline).await?.json()?;
            let cost_usd = resp.cost_dollars.and_then(|c| c.total);
            let hits = resp
                .results
                .into_iter()
                .filter_map(|r| {
                    let snippet = r
                        .highlights
                        .filter(|h| !h.is_empty())
                        .map(|h| h.join(" … "))
                        .or(r.summary)
                        .or_else(|| r.text.clone());
                    Some(Hit {
                        url: r.url?,
                        title: r.title,
                        snippet,
                        published: r.published_date,
                        content: r.text,
                    })
                })
                .collect();
            Ok(Found {
                hits,
                cost_usd,
                credits: None,
            })
        }
        .boxed()
    }
}
