//! The reading stage: read the best sources within the deadline, quote what matters, find the dead.
//!
//! [`read_sources`] takes the merged sources in rank order and reads the first `read` of them
//! concurrently: from the text a provider gave when it is long enough ("provider text first"), else by
//! fetching the page through the SSRF guard ([`fetch`]), extracting its readable text ([`extract`]) and
//! ranking its passages against the topic ([`passages`]). A page that is not read by the deadline costs its
//! quote, never the research. [`read_page`] is what `conductor-lsp read` shows for one URL.
//!
//! Memory stays bounded: each page body is capped while streaming, extraction (the costly part, a DOM of
//! the page) runs one page at a time in the process, and a source keeps only its short list of
//! candidate passages and at most [`ReadLimits::keep_text`] of its text.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::text::bm25::Query;

pub mod extract;
pub mod fetch;
pub mod guard;
pub mod passages;

pub use fetch::{FetchConfig, Fetcher};

pub use crate::report::{Passage, ReadInfo, ReadStatus, Via};

/// What the reading stage made of one source. Serialises as `{"read": {...}, "passages": [...]}`, so a
/// source can `#[serde(flatten)]` it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadResult {
    pub read: ReadInfo,
    /// Best first; empty unless read.
    pub passages: Vec<Passage>,
    /// The page's title, when read from a page.
    #[serde(skip)]
    pub title: Option<String>,
    /// Where the page's redirects ended.
    #[serde(skip)]
    pub final_url: Option<String>,
    /// The readable text (at most [`ReadLimits::keep_text`] bytes, cut between lines), for checking
    /// claims against it.
    #[serde(skip)]
    pub text: Option<String>,
}

impl ReadResult {
    fn not_read(status: ReadStatus, detail: impl Into<String>, via: Via) -> ReadResult {
        ReadResult {
            read: ReadInfo {
                status,
                detail: Some(detail.into()),
                via,
                cached: None,
            },
            passages: Vec::new(),
            title: None,
            final_url: None,
            text: None,
        }
    }

    pub fn status(&self) -> ReadStatus {
        self.read.status
    }

    pub fn is_dead(&self) -> bool {
        self.read.status == ReadStatus::Dead
    }
}

/// Why a page was not read: a status other than `read`, and a detail for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct NotRead {
    pub status: ReadStatus,
    pub detail: String,
}

impl NotRead {
    pub fn new(status: ReadStatus, detail: impl Into<String>) -> NotRead {
        NotRead {
            status,
            detail: detail.into(),
        }
    }
}

/// One source to read, in rank order: its URL and the text its providers gave (Tavily raw content, Exa
/// text, a Wikipedia extract, an arXiv abstract, a note's passage...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceText {
    pub url: String,
    pub provider_text: Option<String>,
}

/// A page as the reading stage read it, kept in the cache: where it ended, its title and its readable
/// text (as kept, at most [`ReadLimits::keep_text`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedPage {
    pub final_url: String,
    pub title: Option<String>,
    pub text: String,
    /// "only the first 3 MiB", when the page was cut.
    pub note: Option<String>,
}

/// Where read pages are remembered between researches (the store implements it). Only pages that were
/// read are kept; a failure is never cached.
pub trait PageCache: Send + Sync {
    /// The page stored for `url` if it is younger than `max_age`, and its age.
    fn page(&self, url: &str, max_age: Duration) -> Option<(CachedPage, Duration)>;
    fn keep_page(&self, url: &str, page: &CachedPage);
}

/// How one [`read_sources`] call uses a [`PageCache`].
pub type PageCacheUse = crate::research::CacheUse<dyn PageCache>;

/// Limits of one [`read_sources`] call.
#[derive(Clone, Debug)]
pub struct ReadLimits {
    /// How many of the top sources to read; 0 turns reading off.
    pub read: usize,
    /// The research deadline: nothing is waited for past it.
    pub deadline: Instant,
    /// Provider text at least this long (characters) is read instead of the page.
    pub min_provider_text: usize,
    /// Bytes of readable text kept per source in [`ReadResult::text`].
    pub keep_text: usize,
    /// The page cache, when one is used.
    pub cache: Option<PageCacheUse>,
}

impl ReadLimits {
    pub fn new(read: usize, deadline: Instant) -> ReadLimits {
        ReadLimits {
            read,
            deadline,
            min_provider_text: 300,
            keep_text: 256 * 1024,
            cache: None,
        }
    }
}

/// Progress of the stage: "reading 3/5 pages".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadProgress {
    pub done: usize,
    pub total: usize,
}

impl std::fmt::Display for ReadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading {}/{} pages", self.done, self.total)
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Extraction builds a DOM of the page (some 5 times its size): it runs on one thread of its own, one page
/// at a time in the whole process, which bounds the peak however many researches run, and lets the
/// allocator reuse the same memory for every page (pages extracted on a pool's many threads would each
/// leave their peak in another malloc arena).
fn extract_job(job: Job) {
    static EXTRACTOR: LazyLock<Mutex<std::sync::mpsc::Sender<Job>>> = LazyLock::new(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("conductor-extract".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("the extraction thread starts");
        Mutex::new(tx)
    });
    let sender = EXTRACTOR.lock().unwrap_or_else(|p| p.into_inner());
    // The thread never ends while the process runs, so sending cannot fail.
    let _ = sender.send(job);
}

/// Reads the first `limits.read` of `sources` (in rank order), concurrently, until `limits.deadline`.
///
/// Returns one result per source, in the same order: sources past the `read` count are `skipped`. A
/// source whose provider text is at least `limits.min_provider_text` characters is read from it
/// (`via: provider`), without fetching. `progress` is called as each source is done (and once at the
/// start). When `cancel` fires, the call returns at once: unfinished sources are `skipped`
/// ("cancelled").
pub async fn read_sources(
    fetcher: &Fetcher,
    sources: &[SourceText],
    topic: &str,
    limits: &ReadLimits,
    mut progress: impl FnMut(ReadProgress) + Send,
    cancel: &CancellationToken,
) -> Vec<ReadResult> {
    let mut results: Vec<ReadResult> = sources
        .iter()
        .map(|_| {
            let why = if limits.read == 0 {
                "reading is off".to_string()
            } else {
                format!("not among the top {} sources", limits.read)
            };
            ReadResult::not_read(ReadStatus::Skipped, why, Via::Page)
        })
        .collect();
    let total = limits.read.min(sources.len());
    if total == 0 {
        return results;
    }
    let query = Arc::new(Query::new(topic));
    let mut shortlists: Vec<Vec<String>> = vec![Vec::new(); sources.len()];
    let mut done = 0;
    progress(ReadProgress { done, total });
    let mut pending = FuturesUnordered::new();
    for (i, source) in sources.iter().enumerate().take(total) {
        // A page that is not on the web (a note, `file://`) is only ever read from its provider's text.
        let on_web = source.url.starts_with("http://") || source.url.starts_with("https://");
        let provider_text = source
            .provider_text
            .as_deref()
            .filter(|t| !on_web || t.chars().count() >= limits.min_provider_text);
        if let Some(text) = provider_text {
            let (result, shortlist) = from_provider(text, &query, limits.keep_text);
            results[i] = result;
            shortlists[i] = shortlist;
            done += 1;
            progress(ReadProgress { done, total });
        } else {
            results[i] = ReadResult::not_read(ReadStatus::Skipped, "not read in time", Via::Page);
            let query = query.clone();
            pending.push(async move {
                let cache = limits.cache.as_ref();
                if let Some(c) = cache.filter(|c| c.read)
                    && let Some((page, age)) = c.cache.page(&source.url, c.max_age)
                {
                    return (i, from_cache(page, age, &query));
                }
                let (result, shortlist) = from_page(
                    fetcher,
                    &source.url,
                    query,
                    limits.deadline,
                    limits.keep_text,
                )
                .await;
                if let Some(c) = cache.filter(|c| c.write)
                    && result.read.status == ReadStatus::Read
                    && let (Some(final_url), Some(text)) = (&result.final_url, &result.text)
                {
                    c.cache.keep_page(
                        &source.url,
                        &CachedPage {
                            final_url: final_url.clone(),
                            title: result.title.clone(),
                            text: text.clone(),
                            note: result.read.detail.clone(),
                        },
                    );
                }
                (i, (result, shortlist))
            });
        }
    }
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                for r in results.iter_mut().take(total) {
                    if r.read.detail.as_deref() == Some("not read in time") {
                        r.read.detail = Some("cancelled".into());
                    }
                }
                break;
            }
            next = pending.next() => {
                let Some((i, (result, shortlist))) = next else { break };
                results[i] = result;
                shortlists[i] = shortlist;
                done += 1;
                progress(ReadProgress { done, total });
            }
        }
    }
    for (result, passages) in results
        .iter_mut()
        .zip(passages::select(&query, &shortlists))
    {
        result.passages = passages;
    }
    unresolved_is_not_dead(&mut results);
    results
}

/// A host that does not exist makes a link dead, but when every page tried (two or more) failed that
/// way, the likelier story is a resolver that answers nothing (offline, a broken DNS): no page is dead
/// then, only unread, so nothing is dropped.
fn unresolved_is_not_dead(results: &mut [ReadResult]) {
    let unresolved = |r: &ReadResult| {
        r.read.status == ReadStatus::Dead && r.read.detail.as_deref() == Some(fetch::HOST_NOT_FOUND)
    };
    let tried: Vec<&ReadResult> = results
        .iter()
        .filter(|r| r.read.via == Via::Page && r.read.status != ReadStatus::Skipped)
        .collect();
    if tried.len() >= 2 && tried.iter().all(|r| unresolved(r)) {
        for r in results.iter_mut().filter(|r| unresolved(r)) {
            r.read.status = ReadStatus::Failed;
            r.read.detail = Some(format!(
                "{} (no page could be resolved: is DNS working?)",
                fetch::HOST_NOT_FOUND
            ));
        }
    }
}

/// A source read from a cached page: ranked again against this topic.
fn from_cache(page: CachedPage, age: Duration, query: &Query) -> (ReadResult, Vec<String>) {
    let shortlist = passages::shortlist(&page.text, query);
    let result = ReadResult {
        read: ReadInfo {
            status: ReadStatus::Read,
            detail: page.note,
            via: Via::Page,
            cached: Some(crate::report::Cached {
                age_s: age.as_secs(),
            }),
        },
        passages: Vec::new(),
        title: page.title,
        final_url: Some(page.final_url),
        text: Some(page.text),
    };
    (result, shortlist)
}

/// A source read from its provider's text.
fn from_provider(text: &str, query: &Query, keep_text: usize) -> (ReadResult, Vec<String>) {
    let text = extract::normalise(text);
    let shortlist = passages::shortlist(&text, query);
    let result = ReadResult {
        read: ReadInfo {
            status: ReadStatus::Read,
            detail: None,
            via: Via::Provider,
            cached: None,
        },
        passages: Vec::new(),
        title: None,
        final_url: None,
        text: Some(keep(text, keep_text)),
    };
    (result, shortlist)
}

/// A source read from its page, within `deadline`.
async fn from_page(
    fetcher: &Fetcher,
    url: &str,
    query: Arc<Query>,
    deadline: Instant,
    keep_text: usize,
) -> (ReadResult, Vec<String>) {
    let page = tokio::time::timeout_at(deadline, async {
        let fetched = fetcher.fetch(url, deadline).await?;
        let final_url = fetched.final_url.to_string();
        let truncated = fetched.truncated;
        let (title, (text, shortlist)) = extract_off_thread(fetched, move |r| {
            let shortlist = passages::shortlist(&r.text, &query);
            (keep(std::mem::take(&mut r.text), keep_text), shortlist)
        })
        .await?;
        Ok::<_, NotRead>((final_url, truncated, title, text, shortlist))
    })
    .await;
    match page {
        Err(_) => (
            ReadResult::not_read(ReadStatus::Failed, "timed out", Via::Page),
            Vec::new(),
        ),
        Ok(Err(why)) => (
            ReadResult::not_read(why.status, why.detail, Via::Page),
            Vec::new(),
        ),
        Ok(Ok((final_url, truncated, title, text, shortlist))) => (
            ReadResult {
                read: ReadInfo {
                    status: ReadStatus::Read,
                    detail: truncated.then(|| truncated_note(fetcher)),
                    via: Via::Page,
                    cached: None,
                },
                passages: Vec::new(),
                title,
                final_url: Some(final_url),
                text: Some(text),
            },
            shortlist,
        ),
    }
}

fn truncated_note(fetcher: &Fetcher) -> String {
    format!(
        "only the first {} MiB",
        fetcher.config().max_body / (1024 * 1024)
    )
}

/// Extracts the readable text on the extraction thread, then runs `then` on it there too (ranking a long
/// page's passages is CPU work as well). The page's markup is dropped before this returns. A caller that
/// stops waiting (the deadline) takes its page out of the queue: it is not extracted.
async fn extract_off_thread<T: Send + 'static>(
    fetched: fetch::Fetched,
    then: impl FnOnce(&mut extract::Readable) -> T + Send + 'static,
) -> Result<(Option<String>, T), NotRead> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    extract_job(Box::new(move || {
        if tx.is_closed() {
            return;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let fetch::Fetched { kind, body, .. } = fetched;
            let mut readable = match kind {
                fetch::Kind::Html => extract::html(body),
                fetch::Kind::Plain => extract::plain(&body),
                fetch::Kind::Markdown => extract::markdown(&body),
            }?;
            let out = then(&mut readable);
            Ok((readable.title, out))
        }));
        let _ = tx.send(result.unwrap_or_else(|_| {
            tracing::warn!("page extraction panicked");
            Err(NotRead::new(ReadStatus::Failed, "no readable text"))
        }));
    }));
    rx.await
        .unwrap_or_else(|_| Err(NotRead::new(ReadStatus::Failed, "no readable text")))
}

/// At most `max` bytes of `text`, cut at the end of a line (or a character) so no quote is split.
fn keep(mut text: String, max: usize) -> String {
    if text.len() > max {
        let cut = extract::floor_char_boundary(&text, max);
        let cut = text[..cut].rfind('\n').unwrap_or(cut);
        text.truncate(cut);
    }
    // The text of a long page is kept past its extraction: give back what the cut freed.
    text.shrink_to_fit();
    text
}

/// What the reading stage sees of one page: `conductor-lsp read URL`. JSON `{"url", "final_url", "status",
/// "title", "text"}` (and `detail` when it was not read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageRead {
    pub url: String,
    pub final_url: Option<String>,
    pub status: ReadStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub title: Option<String>,
    pub text: String,
}

/// Reads one page as the reading stage would, whole (no `keep_text` cut), within `timeout`.
pub async fn read_page(fetcher: &Fetcher, url: &str, timeout: Duration) -> PageRead {
    let deadline = Instant::now() + timeout;
    let result = tokio::time::timeout_at(deadline, async {
        let fetched = fetcher.fetch(url, deadline).await?;
        let final_url = fetched.final_url.to_string();
        let truncated = fetched.truncated;
        let (title, text) = extract_off_thread(fetched, |r| std::mem::take(&mut r.text)).await?;
        Ok::<_, NotRead>((final_url, truncated, title, text))
    })
    .await
    .unwrap_or_else(|_| Err(NotRead::new(ReadStatus::Failed, "timed out")));
    match result {
        Ok((final_url, truncated, title, text)) => PageRead {
            url: url.to_string(),
            final_url: Some(final_url),
            status: ReadStatus::Read,
            detail: truncated.then(|| truncated_note(fetcher)),
            title,
            text,
        },
        Err(why) => PageRead {
            url: url.to_string(),
            final_url: None,
            status: why.status,
            detail: Some(why.detail),
            title: None,
            text: String::new(),
        },
    }
}
