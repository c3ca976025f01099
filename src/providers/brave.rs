//! Brave Search API: `GET /res/v1/web/search`, key in `X-Subscription-Token`.
//!
//! Asks for `extra_snippets` (up to 5 more excerpts of each page, at no extra cost): with the description
//! they make the result's text, which the reading stage reads instead of fetching the page when it is long
//! enough.

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

/// The description and the extra snippets, as one text ("…" between excerpts): `None` without extra
/// snippets, where it would only repeat the description (the snippet).
fn page_text(description: Option<&str>, extra: Option<Vec<String>>) -> Option<String> {
    let extra: Vec<String> = extra
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .collect();
    if extra.is_empty() {
        return None;
    }
    let description = description.map(str::trim).filter(|d| !d.is_empty());
    Some(
        description
            .into_iter()
            .chain(extra.iter().map(|s| s.trim()))
            .collect::<Vec<_>>()
            .join(" … "),
    )
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
                .append_pair("text_decorations", "false")
                .append_pair("extra_snippets", "true");
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
                        content: page_text(r.description.as_deref(), r.extra_snippets),
                        snippet: r.description,
                        published: r.page_age,
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
    use super::page_text;

    #[test]
    fn page_text_is_the_description_then_the_extra_snippets() {
        let extra = Some(vec![
            "Second.".to_string(),
            " ".to_string(),
            "Third.".to_string(),
        ]);
        assert_eq!(
            page_text(Some("First."), extra.clone()).as_deref(),
            Some("First. … Second. … Third.")
        );
        assert_eq!(page_text(None, extra).as_deref(), Some("Second. … Third."));
        assert_eq!(page_text(Some("Only."), None), None);
        assert_eq!(page_text(Some("Only."), Some(vec![])), None);
    }
}
