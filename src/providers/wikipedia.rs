//! Wikipedia: MediaWiki Action API full-text search with each page's introduction as plain text, in one
//! request (key-less): `generator=search` finds the pages, `prop=extracts` (TextExtracts, `exintro`,
//! `explaintext`) gives their intros, `prop=info` their last touch. The intro is the source's text for the
//! reading stage (no page fetch); its first sentences are the snippet. Errors arrive with HTTP 200.

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use serde::Deserialize;
use unicode_segmentation::UnicodeSegmentation;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request, number};

/// Page links always point at the real wiki, even when the API endpoint is overridden for tests.
const PAGE_BASE: &str = "https://en.wikipedia.org/wiki/";
/// MediaWiki titles are at most 255 bytes: a longer "title" names no page, and would make a huge URL.
pub const MAX_TITLE_BYTES: usize = 255;
/// TextExtracts gives at most 20 intro extracts per request (`exlimit` 1 to 20), so the search asks for
/// at most 20 pages: every page found comes with its text.
pub const MAX_PAGES: usize = 20;
/// The snippet: the intro's first sentences, in at most this many characters. An intro this short is
/// all snippet and is not repeated as the page's text: under the 300 characters the reading stage needs
/// to read provider text instead of the page, it would never be read anyway.
pub const SNIPPET_CHARS: usize = 280;

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
    /// `formatversion=2`: an array, in no particular order (the search rank is each page's `index`).
    #[serde(default)]
    pages: Vec<Page>,
}

#[derive(Deserialize)]
struct Page {
    title: Option<String>,
    /// The search rank (from 1), set by the generator.
    #[serde(default, deserialize_with = "number::count")]
    index: Option<u64>,
    /// The intro as plain text; absent when the page has none.
    #[serde(default)]
    extract: Option<String>,
    /// When the page last changed (or was re-rendered).
    #[serde(default)]
    touched: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

/// The first sentences of `text` that fit in `max_chars` characters (at least the first, cut at a word
/// if it alone is longer), white space at the ends trimmed.
fn lead(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    // A sentence ends where UAX #29 says (`unicode-segmentation`, already used for passages), so
    // "e.g." or "3.5" do not cut one short.
    let mut end = 0;
    let mut chars = 0;
    for (start, sentence) in text.split_sentence_bound_indices() {
        let with_it = chars + sentence.trim_end().chars().count();
        if with_it > max_chars && end > 0 {
            break;
        }
        end = start + sentence.len();
        chars += sentence.chars().count();
        if with_it >= max_chars {
            break;
        }
    }
    crate::sanitize::truncate_chars(text[..end].trim_end(), max_chars)
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
                .append_pair("generator", "search")
                .append_pair("gsrsearch", &query.text)
                .append_pair(
                    "gsrlimit",
                    &query.max_results.clamp(1, MAX_PAGES).to_string(),
                )
                .append_pair("prop", "extracts|info")
                .append_pair("exintro", "1")
                .append_pair("explaintext", "1")
                .append_pair("exlimit", "max")
                .append_pair("inprop", "url")
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
            let mut pages = resp.query.map(|q| q.pages).unwrap_or_default();
            // In search rank order; a page without a rank goes last (a stable sort keeps the rest).
            pages.sort_by_key(|p| p.index.unwrap_or(u64::MAX));
            Ok(pages
                .into_iter()
                .filter_map(|p| {
                    let title = p
                        .title
                        .filter(|t| !t.trim().is_empty() && t.trim().len() <= MAX_TITLE_BYTES)?;
                    let extract = p.extract.filter(|e| !e.trim().is_empty());
                    let snippet = extract.as_deref().map(|e| lead(e, SNIPPET_CHARS));
                    // The whole intro as the page's text, unless the snippet already is all of it.
                    let content = extract.filter(|e| Some(e.trim()) != snippet.as_deref());
                    Some(Hit {
                        url: page_url(&title),
                        title: Some(title),
                        snippet,
                        published: p.touched,
                        content,
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
    use super::lead;

    #[test]
    fn the_snippet_is_the_first_sentences_that_fit() {
        let intro = "Tokio is a runtime. It runs tasks, e.g. futures.\nIt has 3.5 parts. ";
        assert_eq!(lead(intro, 300), intro.trim());
        assert_eq!(
            lead(intro, 50),
            "Tokio is a runtime. It runs tasks, e.g. futures."
        );
        assert_eq!(lead(intro, 19), "Tokio is a runtime.");
        // One sentence longer than the limit is cut at a word, and the cut is marked.
        let long = format!("{} end.", "word ".repeat(100));
        let snippet = lead(&long, 300);
        assert!(
            snippet.ends_with('…') && snippet.chars().count() <= 300,
            "{snippet}"
        );
        assert_eq!(lead("  ", 300), "");
    }

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
