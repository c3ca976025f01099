//! One research, start to finish: what the CLI and the language server both run, so that a stage is
//! written once and both get it.
//!
//! availability → selection → fan-out and merge (`research`) → reading (`evidence`: the top sources'
//! text, their passages, dead links dropped or marked) → summary (`synth`, when an LLM is configured and
//! asked for) → numbering for the citation style (`render::number_in_reading_order`).
//! The callers only convert: the CLI turns [`Event`]s into a spinner and the result into text and an
//! exit code; the server turns them into progress notifications and the result into an edit.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::{DeadLinks, Env, Prices, ProviderName, Settings};
use crate::evidence::{self, Fetcher, ReadLimits, ReadStatus, SourceText};
use crate::providers::{self, Availability};
use crate::report::{DroppedSource, ProviderRun, Research, Synthesis};
use crate::research::{Engine, Progress, ResearchError, ResearchOptions, Selection};
use crate::store::Store;

/// The long-lived parts a research runs on: the providers' HTTP client and the page reader's own,
/// guarded client. Built once per process (the CLI) or per server.
pub struct Stages {
    pub engine: Engine,
    pub fetcher: Fetcher,
    /// The persistent store: the cache of provider answers and read pages (none: no cache).
    pub store: Option<Arc<Store>>,
}

impl Stages {
    pub fn new(engine: Engine, fetcher: Fetcher) -> Stages {
        Stages {
            engine,
            fetcher,
            store: None,
        }
    }

    pub fn with_store(mut self, store: Arc<Store>) -> Stages {
        self.store = Some(store);
        self
    }

    /// How this research uses the cache, for the providers and for the pages.
    fn cache_use(
        &self,
        req: &Request,
    ) -> Option<(
        crate::research::CacheUse<dyn crate::research::AnswerCache>,
        evidence::PageCacheUse,
    )> {
        let store = self.store.clone()?;
        let hours = req.settings.cache_hours;
        if req.cache == CacheMode::Off || hours <= 0.0 {
            return None;
        }
        let answers = crate::research::CacheUse {
            cache: store.clone() as Arc<dyn crate::research::AnswerCache>,
            read: req.cache == CacheMode::Use,
            write: true,
            max_age: std::time::Duration::from_secs_f64(hours * 3600.0),
        };
        let pages = evidence::PageCacheUse {
            cache: store,
            read: answers.read,
            write: answers.write,
            max_age: answers.max_age,
        };
        Some((answers, pages))
    }
}

/// What a research is asked to do.
#[derive(Clone, Debug)]
pub struct Request {
    pub topic: String,
    pub settings: Arc<Settings>,
    /// Folders the `notes` provider searches besides `settings.notes_paths` (the CLI's current folder,
    /// the editor's workspace folders).
    pub roots: Vec<PathBuf>,
    /// Write a summary when an LLM back end is configured (`--no-llm` turns it off).
    pub summary: bool,
    /// How the cache of provider answers and read pages is used (`--no-cache`, `--refresh`).
    pub cache: CacheMode,
}

/// How a research uses the cache of provider answers and read pages (kept `cache_hours`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Answer from the cache where it holds a fresh answer; store new answers.
    #[default]
    Use,
    /// Ask again, then store the new answers (`--refresh`).
    Refresh,
    /// Neither read nor write the cache (`--no-cache`).
    Off,
}

/// What a caller may show while a research runs.
#[derive(Clone, Debug)]
pub enum Event {
    /// The providers that were asked.
    Started { providers: Vec<ProviderName> },
    /// One provider finished (answered or failed).
    ProviderDone(ProviderRun),
    /// The reading stage: `done` of `total` sources read (or given up on). Sent once with `done: 0`
    /// when it starts, then as each source is done.
    Reading { done: usize, total: usize },
    /// Retrieval is over; the model is writing the summary.
    Writing,
    /// More of the summary, as the model writes it (reasoning and secrets already held back).
    SummaryDelta(String),
}

/// Where events go. Called from the research's own task; keep it quick (send into a channel).
pub type Sink<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// Why a research gave no report.
#[derive(Debug)]
pub enum PipelineError {
    /// No provider can run; each requested or known provider with why.
    NothingConfigured(Vec<(ProviderName, String)>),
    /// Every provider that was asked failed; the research (with each failure) is here.
    EveryProviderFailed(Box<Research>),
    /// `max_cost` left no provider to ask; the research (each provider `over_budget`) is here.
    OverBudget(Box<Research>),
    EmptyTopic,
    Cancelled,
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineError::NothingConfigured(_) => write!(f, "no provider is configured"),
            PipelineError::EveryProviderFailed(_) => write!(f, "every provider failed"),
            PipelineError::OverBudget(r) => match r.cost.as_ref().and_then(|c| c.max_cost) {
                Some(max) => write!(
                    f,
                    "no provider asked: each search would cross max_cost {}",
                    crate::cost::cap(max)
                ),
                None => write!(f, "no provider asked: each search would cross max_cost"),
            },
            PipelineError::EmptyTopic => write!(f, "the topic is empty"),
            PipelineError::Cancelled => write!(f, "research cancelled"),
        }
    }
}

impl std::error::Error for PipelineError {}

/// The providers this research would ask, and those that cannot run (with why).
pub fn selection(env: &Env, req: &Request) -> (Vec<Availability>, Selection) {
    let mut roots = req.roots.clone();
    roots.extend(req.settings.notes_paths.iter().cloned());
    let available = providers::availability(env, &roots);
    let mut selection = Selection::choose(req.settings.providers.as_deref(), &available);
    if let Some(max) = req.settings.max_cost {
        within_budget(&mut selection, &req.settings.prices, max);
    }
    (available, selection)
}

/// `max_cost`: the providers whose search would take the research past it leave the selection, into
/// `over_budget` (reported as runs with `error_kind: "over_budget"`); see `cost::over_budget`.
fn within_budget(selection: &mut Selection, prices: &Prices, max_cost: f64) {
    let names: Vec<ProviderName> = selection.runnable.iter().map(|p| p.name()).collect();
    let skipped = crate::cost::over_budget(&names, prices, max_cost);
    selection
        .runnable
        .retain(|p| !skipped.iter().any(|(n, _)| *n == p.name()));
    selection.over_budget = skipped;
}

/// What a research cost so far (reported, else estimated), under the request's prices and cap.
fn cost_of(req: &Request, research: &Research) -> crate::report::Cost {
    crate::cost::of(research, &req.settings.prices, req.settings.max_cost)
}

/// The research `max_cost` stopped before any provider was asked: each provider not asked, with why.
fn nothing_asked(stages: &Stages, req: &Request, selection: &Selection) -> Research {
    let mut providers: Vec<ProviderRun> = selection
        .over_budget
        .iter()
        .map(|(n, why)| ProviderRun::over_budget(*n, why))
        .collect();
    providers.extend(selection.unavailable.iter().map(|(n, why)| {
        let error = providers::ProviderError::NotConfigured(why.clone())
            .redact(stages.engine.http().secrets());
        ProviderRun {
            name: *n,
            status: crate::report::RunStatus::Failed,
            results: 0,
            elapsed_ms: 0,
            cost_usd: None,
            credits: None,
            error: Some(error.to_string()),
            error_kind: Some(error.kind().to_string()),
            cached: None,
        }
    }));
    let mut research = Research {
        topic: crate::sanitize::one_line(&req.topic, 500),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        elapsed_ms: 0,
        providers,
        sources: Vec::new(),
        dropped: Vec::new(),
        synthesis: None,
        cost: None,
    };
    research.cost = Some(cost_of(req, &research));
    research
}

/// Why the summary must not be asked for under `max_cost`, if it must not (`cost::summary_over_budget`:
/// what the research has cost so far, plus the prompt's estimated tokens and the answer's `max_tokens` at
/// the model's price). No cap, no sources, or a prompt that cannot be built: nothing to say here.
fn summary_over_budget(
    req: &Request,
    config: &Result<crate::synth::LlmConfig, String>,
    research: &Research,
) -> Option<String> {
    let max = req.settings.max_cost?;
    let cfg = config.as_ref().ok()?;
    if research.sources.is_empty() {
        return None;
    }
    let prompt = crate::synth::prompt::build(cfg, &research.topic, &research.sources).ok()?;
    crate::cost::summary_over_budget(
        cost_of(req, research).usd,
        crate::cost::token_price(cfg.backend_name(), &cfg.model, &req.settings.prices),
        prompt.estimated_tokens,
        prompt.max_tokens,
        cfg.backend_name(),
        &cfg.model,
        max,
    )
}

/// Runs one research. Events go to `sink` as they happen; `cancel` stops it at once (in-flight requests
/// are dropped) with [`PipelineError::Cancelled`].
pub async fn run(
    stages: &Stages,
    env: &Env,
    req: &Request,
    sink: Sink<'_>,
    cancel: &CancellationToken,
) -> Result<Research, PipelineError> {
    let (_, selection) = selection(env, req);
    run_selected(stages, env, req, &selection, sink, cancel).await
}

/// [`run`] with the providers already chosen (the server shows their names before it starts).
pub async fn run_selected(
    stages: &Stages,
    env: &Env,
    req: &Request,
    selection: &Selection,
    sink: Sink<'_>,
    cancel: &CancellationToken,
) -> Result<Research, PipelineError> {
    if req.topic.trim().is_empty() {
        return Err(PipelineError::EmptyTopic);
    }
    if selection.runnable.is_empty() && !selection.over_budget.is_empty() {
        return Err(PipelineError::OverBudget(Box::new(nothing_asked(
            stages, req, selection,
        ))));
    }
    let engine = &stages.engine;
    let started = tokio::time::Instant::now();
    let mut options = ResearchOptions::from(req.settings.as_ref());
    let deadline = started + options.deadline;
    let cache = stages.cache_use(req);
    options.cache = cache.as_ref().map(|(answers, _)| answers.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let research = engine.research(&req.topic, selection, &options, Some(&tx), cancel);
    tokio::pin!(research);
    let forward = |p: Progress| match p {
        Progress::Started { providers } => sink(Event::Started { providers }),
        Progress::ProviderDone(run) => sink(Event::ProviderDone(run)),
    };
    let result = loop {
        tokio::select! {
            r = &mut research => break r,
            Some(p) = rx.recv() => forward(p),
        }
    };
    // Providers that finished in the same poll as the research itself.
    while let Ok(p) = rx.try_recv() {
        forward(p);
    }
    let mut research = match result {
        Ok(r) => r,
        Err(ResearchError::Cancelled) => return Err(PipelineError::Cancelled),
        Err(ResearchError::EmptyTopic) => return Err(PipelineError::EmptyTopic),
        Err(ResearchError::NothingConfigured(_)) => {
            return Err(PipelineError::NothingConfigured(
                selection
                    .unavailable
                    .iter()
                    .map(|(n, why)| (*n, why.clone()))
                    .collect(),
            ));
        }
    };
    if !research.any_answered() {
        research.cost = Some(cost_of(req, &research));
        return Err(PipelineError::EveryProviderFailed(Box::new(research)));
    }
    let pages = cache.map(|(_, pages)| pages);
    read(
        &stages.fetcher,
        req,
        &mut research,
        deadline,
        pages,
        sink,
        cancel,
    )
    .await;
    if cancel.is_cancelled() {
        return Err(PipelineError::Cancelled);
    }
    research.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if req.summary
        && let Some(config) = crate::synth::configured(env, &req.settings.llm)
    {
        if let Some(reason) = summary_over_budget(req, &config, &research) {
            research.synthesis = Some(Synthesis::Skipped { reason });
        } else {
            sink(Event::Writing);
            let on_delta = |d: &str| sink(Event::SummaryDelta(d.to_string()));
            match crate::synth::step(engine.http(), &config, &research, Some(&on_delta), cancel)
                .await
            {
                Some(s) => research.synthesis = Some(s),
                None => return Err(PipelineError::Cancelled),
            }
        }
    }
    check_summary(engine, env, req, &mut research, cancel).await;
    if cancel.is_cancelled() {
        return Err(PipelineError::Cancelled);
    }
    // Numbered as the reader will meet them, before anything stores or renders the sources, so the
    // numbers renderers show, hover and the JSON agree.
    crate::render::number_in_reading_order(&mut research, req.settings.citation_style);
    research.cost = Some(cost_of(req, &research));
    Ok(research)
}

/// The reading stage: reads the top `settings.read` sources until `deadline` and gives each source its
/// read status, passages and (for the summary and the claim check) its readable text. Dead sources are
/// dropped (and named in `research.dropped`), marked or kept, as `settings.dead_links` says; the sources
/// left are numbered 1, 2, ... again in rank order.
async fn read(
    fetcher: &Fetcher,
    req: &Request,
    research: &mut Research,
    deadline: tokio::time::Instant,
    cache: Option<evidence::PageCacheUse>,
    sink: Sink<'_>,
    cancel: &CancellationToken,
) {
    let texts: Vec<SourceText> = research
        .sources
        .iter()
        .map(|s| SourceText {
            url: s.url.clone(),
            provider_text: s.content.clone(),
        })
        .collect();
    let mut limits = ReadLimits::new(req.settings.read, deadline);
    limits.cache = cache;
    let progress = |p: evidence::ReadProgress| {
        sink(Event::Reading {
            done: p.done,
            total: p.total,
        })
    };
    let results =
        evidence::read_sources(fetcher, &texts, &req.topic, &limits, progress, cancel).await;
    drop(texts);
    for (source, result) in research.sources.iter_mut().zip(results) {
        if result.read.via == evidence::Via::Page
            && let Some(text) = result.text
        {
            // The page's readable text replaces the provider's shorter text: the summary is written
            // from it and the claim check grades against it.
            source.content = Some(text);
        }
        if source.title.trim().is_empty()
            && let Some(title) = result.title
        {
            source.title = crate::sanitize::one_line(&title, 300);
        }
        source.read = Some(result.read);
        source.passages = result.passages;
    }
    if req.settings.dead_links == DeadLinks::Drop {
        let (dead, alive): (Vec<_>, Vec<_>) = std::mem::take(&mut research.sources)
            .into_iter()
            .partition(|s| {
                s.read
                    .as_ref()
                    .is_some_and(|r| r.status == ReadStatus::Dead)
            });
        research.dropped = dead
            .into_iter()
            .map(|s| DroppedSource {
                url: s.url,
                title: s.title,
                providers: s.providers,
                detail: s.read.and_then(|r| r.detail),
            })
            .collect();
        research.sources = alive;
        for (i, s) in research.sources.iter_mut().enumerate() {
            s.n = i + 1;
        }
    }
}

/// The claim check: every sentence of a written summary graded against the text of the sources it
/// cites (the page's readable text where it was read, else the provider's text, else the snippet), then,
/// with a judge configured under `[verify]`, the judge's verdicts on the sentences the check could not
/// back. The grading is CPU work over whole pages: it runs on the blocking pool.
async fn check_summary(
    engine: &Engine,
    env: &Env,
    req: &Request,
    research: &mut Research,
    cancel: &CancellationToken,
) {
    let Some(Synthesis::Written(summary)) = &mut research.synthesis else {
        return;
    };
    let texts: Vec<(usize, String)> = research
        .sources
        .iter()
        .map(|s| {
            let text = match &s.content {
                Some(c) if !c.trim().is_empty() => c.clone(),
                _ => s.snippet.clone(),
            };
            (s.n, text)
        })
        .collect();
    let texts = Arc::new(texts);
    let text = summary.text.clone();
    let graded = {
        let texts = texts.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<(usize, &str)> = texts.iter().map(|(n, t)| (*n, t.as_str())).collect();
            crate::check::check(&text, &refs)
        })
    };
    let mut check = match graded.await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("the claim check failed: {e}");
            return;
        }
    };
    match crate::check::judge::configured(env, &req.settings.verify) {
        None => {}
        Some(Err(why)) => {
            summary.judge = Some(crate::report::JudgeLine {
                model: "judge".into(),
                asked: 0,
                yes: 0,
                no: 0,
                failed: Some(why),
            });
        }
        Some(Ok(cfg)) => {
            let refs: Vec<(usize, &str)> = texts.iter().map(|(n, t)| (*n, t.as_str())).collect();
            let report = crate::check::judge(
                engine.http(),
                &cfg,
                &mut check,
                &refs,
                tokio::time::Instant::now() + cfg.timeout,
                cancel,
            )
            .await;
            summary.judge = Some(report.line());
        }
    }
    summary.claims = check.claims;
    summary.check = Some(check.counts);
}

/// The summary's failure, if the LLM step failed (the report goes on without a summary).
pub fn summary_failure(research: &Research) -> Option<&str> {
    match &research.synthesis {
        Some(Synthesis::Failed { error, .. }) => Some(error),
        _ => None,
    }
}
