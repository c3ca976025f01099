//! The research engine: runs the chosen providers concurrently under one deadline, records each one's
//! outcome, and merges what they found into ranked [`Source`]s. Protocol-free: the CLI and the language
//! server both drive it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{ProviderName, Settings};
use crate::net::Http;
use crate::providers::{Availability, Found, Provider, ProviderError, Query};

pub mod merge;
pub mod works;

pub use crate::report::{ProviderRun, Research, RunStatus, Source};

/// A failed provider's run.
fn failed_run(name: ProviderName, error: &ProviderError, elapsed: Duration) -> ProviderRun {
    ProviderRun {
        name,
        status: RunStatus::Failed,
        results: 0,
        elapsed_ms: elapsed.as_millis() as u64,
        cost_usd: None,
        credits: None,
        error: Some(error.to_string()),
        error_kind: Some(error.kind().to_string()),
        cached: None,
    }
}

/// Where provider answers are remembered between researches (the store implements it). Answers are
/// keyed by provider and [`cache_key`]; only answers are kept, never failures.
pub trait AnswerCache: Send + Sync {
    /// The stored answer of `provider` for `key` if it is younger than `max_age`, and its age.
    fn answer(
        &self,
        provider: ProviderName,
        key: &str,
        max_age: Duration,
    ) -> Option<(Found, Duration)>;
    fn keep_answer(&self, provider: ProviderName, key: &str, found: &Found);
    /// Until when `provider` is suspended after a rate limit, if it still is.
    fn suspended_until(&self, provider: ProviderName) -> Option<chrono::DateTime<chrono::Utc>>;
    fn suspend(&self, provider: ProviderName, until: chrono::DateTime<chrono::Utc>);
}

/// How one research uses a cache: of provider answers here ([`AnswerCache`]), of pages in the reading
/// stage (`evidence::PageCache`).
pub struct CacheUse<C: ?Sized> {
    pub cache: Arc<C>,
    /// Answer from the cache (false: `--refresh`, ask again).
    pub read: bool,
    /// Keep new answers.
    pub write: bool,
    pub max_age: Duration,
}

// By hand: the derive would ask `C: Clone` / `C: Debug` of the cache itself.
impl<C: ?Sized> Clone for CacheUse<C> {
    fn clone(&self) -> Self {
        CacheUse {
            cache: self.cache.clone(),
            read: self.read,
            write: self.write,
            max_age: self.max_age,
        }
    }
}

impl<C: ?Sized> std::fmt::Debug for CacheUse<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheUse")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// The cache key of a query: what changes a provider's answer (the query as sent, case and spacing
/// aside, and how many results were asked for).
pub fn cache_key(query: &Query) -> String {
    let text = query.text.to_lowercase();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{text}\u{1f}{}", query.max_results)
}

/// "14:05" today, else "Dec 3 14:05", local time: when a suspension ends.
fn until_text(until: chrono::DateTime<chrono::Utc>) -> String {
    let local = until.with_timezone(&chrono::Local);
    if local.date_naive() == chrono::Local::now().date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%b %-d %H:%M").to_string()
    }
}

/// Progress of a running research, for a progress bar or the editor's progress notification.
#[derive(Clone, Debug)]
pub enum Progress {
    Started { providers: Vec<ProviderName> },
    ProviderDone(ProviderRun),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResearchError {
    #[error("no provider is configured: {0}")]
    NothingConfigured(String),
    #[error("the topic is empty")]
    EmptyTopic,
    #[error("research was cancelled")]
    Cancelled,
}

/// The providers one research will ask: runnable ones, and requested ones that cannot run (reported as
/// failed, so the user learns why).
pub struct Selection {
    pub runnable: Vec<Arc<dyn Provider>>,
    pub unavailable: Vec<(ProviderName, String)>,
    /// Providers `max_cost` keeps from being asked, with why (reported as `over_budget` runs).
    pub over_budget: Vec<(ProviderName, String)>,
}

impl Selection {
    /// The explicit list if given; otherwise [`crate::providers::default_choice`]: every configured
    /// provider that needs a key or a URL, falling back to the free public ones on a machine with none.
    pub fn choose(requested: Option<&[ProviderName]>, available: &[Availability]) -> Selection {
        let find = |n: ProviderName| available.iter().find(|a| a.name == n);
        let names: Vec<ProviderName> = match requested {
            Some(list) => list.to_vec(),
            None => crate::providers::default_choice(available),
        };
        let mut sel = Selection {
            runnable: Vec::new(),
            unavailable: Vec::new(),
            over_budget: Vec::new(),
        };
        for n in names {
            match find(n) {
                Some(Availability {
                    provider: Some(p), ..
                }) => sel.runnable.push(p.clone()),
                Some(a) => sel.unavailable.push((n, a.detail.clone())),
                None => sel.unavailable.push((n, "unknown provider".into())),
            }
        }
        sel
    }
}

/// What one research needs besides the topic.
#[derive(Clone, Debug)]
pub struct ResearchOptions {
    pub max_sources: usize,
    pub deadline: Duration,
    /// The cache of answers and suspensions, when one is used.
    pub cache: Option<CacheUse<dyn AnswerCache>>,
}

impl From<&Settings> for ResearchOptions {
    fn from(s: &Settings) -> Self {
        ResearchOptions {
            max_sources: s.max_sources,
            deadline: s.deadline(),
            cache: None,
        }
    }
}

/// The topic as a search query: one line, at most 50 words and 400 characters.
pub fn query_text(topic: &str) -> String {
    let mut out = String::new();
    for word in topic.split_whitespace().take(50) {
        if out.chars().count() + word.chars().count() + 1 > 400 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = topic.chars().take(400).collect();
    }
    out
}

/// A server that echoes the key it was sent may do so in its results too: a hit whose URL carries a
/// configured secret is dropped (a link is cited exactly or not at all), and secrets in its text are
/// redacted.
fn scrub_hits(hits: &mut Vec<crate::providers::Hit>, secrets: &crate::net::Secrets) {
    if secrets.is_empty() {
        return;
    }
    hits.retain(|h| !secrets.found_in(&h.url));
    for h in hits {
        for field in [
            &mut h.title,
            &mut h.snippet,
            &mut h.published,
            &mut h.content,
        ] {
            if let Some(text) = field.as_mut()
                && secrets.found_in(text)
            {
                *text = secrets.scrub(text);
            }
        }
    }
}

/// Runs research. Cheap to clone; share one per process so connections are pooled.
#[derive(Clone, Debug)]
pub struct Engine {
    http: Http,
}

impl Engine {
    pub fn new(http: Http) -> Engine {
        Engine { http }
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Asks every provider of `selection` at once. A provider that fails, or has not answered by the
    /// deadline, is recorded as failed; the others still report. Cancelling drops every in-flight request.
    pub async fn research(
        &self,
        topic: &str,
        selection: &Selection,
        options: &ResearchOptions,
        progress: Option<&UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Result<Research, ResearchError> {
        // The topic is the user's text: one line, no invisible characters (it heads the report).
        let topic = crate::sanitize::one_line(topic, 500);
        let topic = topic.as_str();
        if topic.is_empty() {
            return Err(ResearchError::EmptyTopic);
        }
        if selection.runnable.is_empty() {
            let why = selection
                .unavailable
                .iter()
                .map(|(n, why)| format!("{n}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ResearchError::NothingConfigured(
                self.http.secrets().redact(&why),
            ));
        }
        let started = Instant::now();
        let deadline = started + options.deadline;
        let query = Query {
            // Search APIs cap queries (Brave: 400 characters, 50 words); a long selection is cut at a word.
            text: query_text(topic),
            // Ask for more than we cite: fusion needs overlap to rank well.
            max_results: options.max_sources.clamp(5, 20),
            deadline,
        };
        let names: Vec<ProviderName> = selection.runnable.iter().map(|p| p.name()).collect();
        if let Some(tx) = progress {
            let _ = tx.send(Progress::Started {
                providers: names.clone(),
            });
        }
        let mut pending: FuturesUnordered<_> = selection
            .runnable
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let query = &query;
                async move {
                    let t0 = Instant::now();
                    let name = p.name();
                    let cache = options.cache.as_ref();
                    let key = cache_key(query);
                    // Suspended after a rate limit that outlasted an earlier research: not asked.
                    if let Some(until) = cache.and_then(|c| c.cache.suspended_until(name)) {
                        let e = ProviderError::Suspended {
                            until: until_text(until),
                        };
                        return (i, name, Err(e), t0.elapsed(), None);
                    }
                    if let Some(c) = cache.filter(|c| c.read)
                        && let Some((found, age)) = c.cache.answer(name, &key, c.max_age)
                    {
                        return (i, name, Ok(found), t0.elapsed(), Some(age));
                    }
                    let out = match tokio::time::timeout_at(deadline, p.search(&self.http, query))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(ProviderError::TimedOut {
                            after: options.deadline,
                        }),
                    };
                    if let Some(c) = cache {
                        match &out {
                            Ok(found) if c.write => c.cache.keep_answer(name, &key, found),
                            // A wait past this research's deadline is remembered: later researches
                            // skip the provider until then instead of being refused again.
                            Err(ProviderError::RateLimited {
                                retry_after: Some(after),
                            }) if *after > options.deadline => {
                                if let Ok(d) = chrono::Duration::from_std(*after) {
                                    c.cache.suspend(name, chrono::Utc::now() + d);
                                }
                            }
                            _ => {}
                        }
                    }
                    (i, name, out, t0.elapsed(), None)
                }
            })
            .collect();
        let mut slots: Vec<Option<(ProviderRun, Vec<crate::providers::Hit>)>> =
            vec![None; selection.runnable.len()];
        loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(ResearchError::Cancelled),
                next = pending.next() => next,
            };
            let Some((i, name, out, elapsed, age)) = next else {
                break;
            };
            // Whatever a provider says about a failure, it is scrubbed of secrets before it is logged,
            // reported or stored; whatever it found is bounded before it is merged.
            let out = out
                .map(|mut found| {
                    found.hits.truncate(merge::MAX_HITS_PER_PROVIDER);
                    scrub_hits(&mut found.hits, self.http.secrets());
                    found
                })
                .map_err(|e| e.redact(self.http.secrets()));
            let run = match &out {
                Ok(found) => ProviderRun {
                    name,
                    status: RunStatus::Ok,
                    results: found.hits.len(),
                    elapsed_ms: elapsed.as_millis() as u64,
                    // A cached answer cost nothing this time.
                    cost_usd: found.cost_usd.filter(|_| age.is_none()),
                    credits: found.credits.filter(|_| age.is_none()),
                    error: None,
                    error_kind: None,
                    cached: age.map(|a| crate::report::Cached { age_s: a.as_secs() }),
                },
                Err(e) => {
                    tracing::info!(provider = %name, error = %e, "provider failed");
                    failed_run(name, e, elapsed)
                }
            };
            if let Some(tx) = progress {
                let _ = tx.send(Progress::ProviderDone(run.clone()));
            }
            slots[i] = Some((run, out.map(|f| f.hits).unwrap_or_default()));
        }
        let mut runs = Vec::new();
        let mut results = Vec::new();
        for (run, hits) in slots.into_iter().flatten() {
            results.push((run.name, hits));
            runs.push(run);
        }
        for (name, why) in &selection.unavailable {
            runs.push(failed_run(
                *name,
                &ProviderError::NotConfigured(why.clone()).redact(self.http.secrets()),
                Duration::ZERO,
            ));
        }
        for (name, why) in &selection.over_budget {
            runs.push(ProviderRun::over_budget(*name, why));
        }
        let mut sources = merge::merge(&results, options.max_sources);
        // Cleaning can reveal a secret hidden by entities or invisible characters: scrub again.
        let secrets = self.http.secrets();
        if !secrets.is_empty() {
            for s in &mut sources {
                s.title = secrets.scrub(&s.title);
                s.snippet = secrets.scrub(&s.snippet);
                s.content = s.content.as_deref().map(|c| secrets.scrub(c));
            }
        }
        Ok(Research {
            topic: topic.to_string(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            elapsed_ms: started.elapsed().as_millis() as u64,
            providers: runs,
            sources,
            dropped: Vec::new(),
            synthesis: None,
            cost: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_topics_become_short_queries() {
        let long = "word ".repeat(200);
        let q = super::query_text(&long);
        assert_eq!(q.split(' ').count(), 50);
        let q = super::query_text(&"x".repeat(1000));
        assert_eq!(q.chars().count(), 400);
        assert_eq!(super::query_text("  rust\n async  "), "rust async");
    }
}
