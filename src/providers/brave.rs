//! Brave Search API: `GET /res/v1/web/search`, key in `X-Subscription-Token`.
//!
//! Asks for `extra_snippets` (up to 5 more excerpts of each page, at no extra cost): with the description
//! they make the result's text, which the reading stage reads instead of fetching the page when it is long
//! enough.

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use serde::Deserialize;

use super::preflight::{self, Answer, Quota};
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

impl Brave {
    /// The search request: `count` results, text without highlight markers, with extra snippets.
    fn request(&self, query: &Query) -> Request {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("q", &query.text)
            .append_pair("count", &query.max_results.clamp(1, 20).to_string())
            .append_pair("text_decorations", "false")
            .append_pair("extra_snippets", "true");
        Request::get(url)
            .header("accept", "application/json")
            .secret_header("x-subscription-token", &self.key)
    }
}

fn hits(resp: SearchResponse) -> Vec<Hit> {
    resp.web
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
        .collect()
}

/// The longest window of Brave's rate-limit headers: each is a comma list with one value per window
/// (`X-RateLimit-Remaining: 1, 1000`), the windows' lengths in `X-RateLimit-Policy` (`1;w=1,
/// 15000;w=2592000`). Without a policy the last window is taken (Brave lists the second first, then the
/// month). `None` when the answer has no `X-RateLimit-Remaining`.
pub fn rate_limit_quota(headers: &reqwest::header::HeaderMap) -> Option<Quota> {
    let list = |name: &str| -> Vec<Option<u64>> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(|x| x.trim().parse::<u64>().ok()).collect())
            .unwrap_or_default()
    };
    let remaining = list("x-ratelimit-remaining");
    if remaining.is_empty() {
        return None;
    }
    let windows: Vec<Option<u64>> = headers
        .get("x-ratelimit-policy")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|w| {
                    w.split(';')
                        .find_map(|p| p.trim().strip_prefix("w="))
                        .and_then(|s| s.trim().parse::<u64>().ok())
                })
                .collect()
        })
        .unwrap_or_default();
    let longest = (windows.len() == remaining.len())
        .then(|| {
            windows
                .iter()
                .enumerate()
                .filter_map(|(i, w)| w.map(|w| (i, w)))
                .max_by_key(|&(_, w)| w)
                .map(|(i, _)| i)
        })
        .flatten()
        .unwrap_or(remaining.len() - 1);
    let at = |v: Vec<Option<u64>>| v.get(longest).copied().flatten();
    let quota = Quota {
        remaining: at(remaining),
        limit: at(list("x-ratelimit-limit")),
        reset_s: at(list("x-ratelimit-reset")),
        window_s: windows.get(longest).copied().flatten(),
        ..Quota::default()
    };
    quota.remaining.is_some().then_some(quota)
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
            let resp: SearchResponse = http
                .send(&self.request(query), query.deadline)
                .await?
                .json()?;
            Ok(hits(resp))
        }
        .map_ok(Found::from)
        .boxed()
    }

    /// A one-result search (Brave has no free call), read for its rate-limit headers: the quota left.
    fn check<'a>(
        &'a self,
        http: &'a Http,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'a, Result<Answer, ProviderError>> {
        async move {
            let resp = http
                .send(&self.request(&preflight::probe(deadline)), deadline)
                .await?;
            let found = Found::from(hits(resp.json()?));
            Ok(Answer {
                quota: rate_limit_quota(&resp.headers),
                ..Answer::searched(&found)
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::{page_text, rate_limit_quota};

    #[test]
    fn the_quota_is_the_longest_rate_limit_window() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(rate_limit_quota(&h), None);
        // The documented example: per second, then per month.
        h.insert("x-ratelimit-limit", "1, 15000".parse().unwrap());
        h.insert("x-ratelimit-remaining", "1, 1000".parse().unwrap());
        h.insert("x-ratelimit-reset", "1, 1419704".parse().unwrap());
        let q = rate_limit_quota(&h).unwrap();
        assert_eq!(
            (q.remaining, q.limit, q.reset_s, q.window_s),
            (Some(1000), Some(15000), Some(1419704), None)
        );
        // With a policy, the longest window wins wherever it is listed.
        h.insert("x-ratelimit-limit", "15000, 1".parse().unwrap());
        h.insert("x-ratelimit-remaining", "999, 0".parse().unwrap());
        h.insert("x-ratelimit-reset", "1419704, 1".parse().unwrap());
        h.insert(
            "x-ratelimit-policy",
            "15000;w=2592000, 1;w=1".parse().unwrap(),
        );
        let q = rate_limit_quota(&h).unwrap();
        assert_eq!(
            (q.remaining, q.limit, q.reset_s, q.window_s),
            (Some(999), Some(15000), Some(1419704), Some(2592000))
        );
        // Nonsense is no quota, never a panic.
        h.insert("x-ratelimit-remaining", "lots".parse().unwrap());
        assert_eq!(rate_limit_quota(&h), None);
    }

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
