//! Tavily Search API: `POST /search`, key as `Authorization: Bearer`.
//!
//! A basic search costs 1 credit, raw content included: each result brings its page as plain text
//! (`include_raw_content: "text"`), which the reading stage reads instead of fetching the page.
//!
//! The preflight asks `GET /usage` instead: no search, and it reports the credits used and the limit.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::preflight::{Answer, Quota};
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

/// `GET /usage`: the key's and the account's credits this billing cycle.
#[derive(Deserialize)]
struct UsageResponse {
    #[serde(default, deserialize_with = "number::lenient")]
    key: Option<KeyUsage>,
    #[serde(default, deserialize_with = "number::lenient")]
    account: Option<AccountUsage>,
}

#[derive(Deserialize)]
struct KeyUsage {
    #[serde(default, deserialize_with = "number::count")]
    usage: Option<u64>,
    /// `null` when the key has no limit of its own.
    #[serde(default, deserialize_with = "number::count")]
    limit: Option<u64>,
}

#[derive(Deserialize)]
struct AccountUsage {
    #[serde(default)]
    current_plan: Option<String>,
    #[serde(default, deserialize_with = "number::count")]
    plan_usage: Option<u64>,
    #[serde(default, deserialize_with = "number::count")]
    plan_limit: Option<u64>,
}

impl UsageResponse {
    /// Credits left: under the key's own limit where it has one, else under the plan's.
    fn quota(self) -> Quota {
        let key = self.key.filter(|k| k.limit.is_some());
        let account = self.account;
        let plan = account.as_ref().and_then(|a| a.current_plan.clone());
        let (used, limit) = match (key, &account) {
            (Some(k), _) => (k.usage, k.limit),
            (None, Some(a)) => (a.plan_usage, a.plan_limit),
            (None, None) => (None, None),
        };
        Quota {
            credits_left: limit
                .zip(used)
                .map(|(limit, used)| limit.saturating_sub(used)),
            credits_used: used,
            credits_limit: limit,
            plan: plan.filter(|p| !p.trim().is_empty()),
            ..Quota::default()
        }
    }
}

impl Tavily {
    /// `/usage` next to the search endpoint (`…/search` → `…/usage`, on the official host or
    /// `CONDUCTOR_TAVILY_BASE_URL`).
    fn usage_url(&self) -> url::Url {
        let mut url = self.url.join("usage").unwrap_or_else(|_| self.url.clone());
        url.set_query(None);
        url
    }
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

    fn check<'a>(
        &'a self,
        http: &'a Http,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'a, Result<Answer, ProviderError>> {
        async move {
            let req = Request::get(self.usage_url())
                .header("accept", "application/json")
                .secret_header("authorization", format!("Bearer {}", self.key));
            let usage: UsageResponse = http.send(&req, deadline).await?.json()?;
            let quota = usage.quota();
            Ok(Answer {
                detail: "key accepted by the usage endpoint (no search made)".into(),
                quota: (quota != Quota::default()).then_some(quota),
                cost_usd: None,
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(json: &str) -> Quota {
        serde_json::from_str::<UsageResponse>(json).unwrap().quota()
    }

    #[test]
    fn credits_left_come_from_the_key_limit_else_the_plan() {
        // The documented example: the key's own limit wins.
        let q = quota(
            r#"{"key":{"usage":150,"limit":1000},"account":{"current_plan":"Bootstrap","plan_usage":500,"plan_limit":15000,"paygo_usage":25,"paygo_limit":100}}"#,
        );
        assert_eq!(
            (q.credits_left, q.credits_used, q.credits_limit),
            (Some(850), Some(150), Some(1000))
        );
        assert_eq!(q.plan.as_deref(), Some("Bootstrap"));
        // A key without a limit of its own (null): the plan's credits.
        let q = quota(
            r#"{"key":{"usage":150,"limit":null},"account":{"current_plan":"Researcher","plan_usage":500,"plan_limit":1000}}"#,
        );
        assert_eq!(q.credits_left, Some(500));
        // Over the limit is none left, never a wrap-around; absurd figures are unreported.
        assert_eq!(
            quota(r#"{"key":{"usage":1200,"limit":1000}}"#).credits_left,
            Some(0)
        );
        assert_eq!(
            quota(r#"{"key":{"usage":-1,"limit":"1e400"},"account":"x"}"#),
            Quota::default()
        );
        assert_eq!(quota("{}"), Quota::default());
    }

    #[test]
    fn usage_sits_next_to_the_search_endpoint() {
        let t = |url: &str| Tavily {
            key: "k".into(),
            url: url::Url::parse(url).unwrap(),
        };
        assert_eq!(
            t("https://api.tavily.com/search").usage_url().as_str(),
            "https://api.tavily.com/usage"
        );
        assert_eq!(
            t("http://127.0.0.1:9000/proxy/search").usage_url().as_str(),
            "http://127.0.0.1:9000/proxy/usage"
        );
    }
}
