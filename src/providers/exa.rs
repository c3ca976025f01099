//! Exa API: `POST /search` with camelCase JSON, key in `x-api-key`.
//!
//! Exa has no free call: the preflight is the cheapest search, one result without contents (one search
//! at Exa's per-request price), and reports the cost Exa's answer gives.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::preflight::{self, Answer};
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

    fn check<'a>(
        &'a self,
        http: &'a Http,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'a, Result<Answer, ProviderError>> {
        async move {
            // No `contents`: the answer is metadata only, the cheapest search Exa documents.
            let body = json!({
                "query": preflight::PROBE_QUERY,
                "type": "auto",
                "numResults": 1,
            });
            let req =
                Request::post_json(self.url.clone(), body).secret_header("x-api-key", &self.key);
            let resp: SearchResponse = http.send(&req, deadline).await?.json()?;
            let found = Found {
                hits: resp
                    .results
                    .into_iter()
                    .filter_map(|r| {
                        Some(Hit {
                            url: r.url?,
                            ..Hit::default()
                        })
                    })
                    .collect(),
                cost_usd: resp.cost_dollars.and_then(|c| c.total),
                credits: None,
            };
            Ok(Answer::searched(&found))
        }
        .boxed()
    }
}
