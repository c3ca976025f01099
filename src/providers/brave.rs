//! Brave Search API: `GET /res/v1/web/search`, key in `X-Subscription-Token`.

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use serde::Deserialize;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request};

pub struct Brave {
    pub key: String,
    pub url: url::Url,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    web: Option<WebBlock>,
}

#[derive(Deserialize)]
struct WebBlock {
    #[serde(default)]
    results: Vec<WebResult>,
}

#[derive(Deserialize)]
struct WebResult {
    url: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    page_age: Option<String>,
    #[serde(default)]
    extra_snippets: Option<Vec<String>>,
}

impl Provider for Brave {
    fn name(&self) -> ProviderName {
        ProviderName::Brave
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
                .append_pair("count", &query.max_results.clamp(1, 20).to_string())
                .append_pair("text_decorations", "false");
            let req = Request::get(url)
                .header("accept", "application/json")
                .secret_header("x-subscription-token", &self.key);
            let resp: SearchResponse = http.send(&req, query.deadline).await?.json()?;
            Ok(resp
                .web
                .map(|w| w.results)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| {
                    Some(Hit {
                        url: r.url?,
                        title: r.title,
                        snippet: r.description,
                        published: r.page_age,
                        content: r.extra_snippets.map(|s| s.join(" … ")),
                    })
                })
                .collect::<Vec<_>>())
        }
        .map_ok(Found::from)
        .boxed()
    }
}
