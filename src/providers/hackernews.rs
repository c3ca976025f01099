//! Hacker News through Algolia's search API (key-less). Text posts (Ask HN, Show HN without a link) have
//! no URL: they cite the discussion, and their `story_text` is that page's text, read by the reading stage
//! instead of fetching the discussion. Like every provider text it is HTML, cleaned when merged.

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use serde::Deserialize;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request, number};

pub struct HackerNews {
    pub url: url::Url,
}

#[derive(Deserialize)]
struct SearchResponse {
    hits: Vec<HnHit>,
}

#[derive(Deserialize)]
struct HnHit {
    #[serde(rename = "objectID")]
    object_id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// Counts read leniently: a huge or negative one must not fail the whole answer.
    #[serde(default, deserialize_with = "number::count")]
    points: Option<u64>,
    #[serde(default, deserialize_with = "number::count")]
    num_comments: Option<u64>,
    #[serde(default)]
    story_text: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

impl Provider for HackerNews {
    fn name(&self) -> ProviderName {
        ProviderName::Hackernews
    }

    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>> {
        async move {
            let mut url = self.url.clone();
            url.query_pairs_mut()
                .append_pair("query", &query.text)
                .append_pair("tags", "story")
                .append_pair("hitsPerPage", &query.max_results.clamp(1, 50).to_string());
            let resp: SearchResponse = http
                .send(&Request::get(url), query.deadline)
                .await?
                .json()?;
            Ok(resp
                .hits
                .into_iter()
                .filter_map(|h| {
                    let discussion = format!(
                        "https://news.ycombinator.com/item?id={}",
                        h.object_id.as_deref()?
                    );
                    let count = |n: u64, one: &str, many: &str| {
                        format!("{n} {}", if n == 1 { one } else { many })
                    };
                    let stats = format!(
                        "{}, {} on Hacker News",
                        count(h.points.unwrap_or(0), "point", "points"),
                        count(h.num_comments.unwrap_or(0), "comment", "comments")
                    );
                    let text = h.story_text.filter(|t| !t.trim().is_empty());
                    let snippet = match &text {
                        Some(text) => format!("{stats}. {text}"),
                        None => stats,
                    };
                    let (url, content) = match h.url.filter(|u| !u.trim().is_empty()) {
                        // The text of a link post is the submitter's, not the linked page's.
                        Some(url) => (url, None),
                        None => (discussion, text),
                    };
                    Some(Hit {
                        url,
                        title: h.title,
                        snippet: Some(snippet),
                        published: h.created_at,
                        content,
                    })
                })
                .collect::<Vec<_>>())
        }
        .map_ok(Found::from)
        .boxed()
    }
}
