//! `conductor.research`, `conductor.refresh` and `conductor.cancel`.
//!
//! The command's handler validates its arguments and sets anchors synchronously (before any await, so
//! the anchor is placed in exactly the text the client saw), then spawns the job on its own task and
//! only awaits a oneshot with the outcome. Dropping the handler (`$/cancelRequest`) drops a guard that
//! cancels the job. The job ends its progress on every path, inserts nothing once cancelled, and
//! answers `{ applied, sources, failed }`.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{self, Result};
use tower_lsp_server::ls_types::{MessageType, Range, ShowDocumentParams, Uri};

use super::documents::{Gravity, line_content_end, line_text, range_to_chars};
use super::edit::{self, InsertError, Inserted, RenderSpec};
use super::progress::{Reporter, status_line};
use super::scan::{heading, is_fence, report_begin, strip_markdown, unescape};
use super::{Backend, State};
use crate::config::{Placement, ProviderName};
use crate::pipeline::{self, PipelineError};
use crate::report::ProviderRun;
use crate::sanitize::truncate_chars;

/// Where a job is in its life. A job can be cancelled only while `RUNNING`; once `COMMITTED` (its edit
/// is about to be or has been sent to the editor) a cancel is refused, so the answer always says what
/// really happened.
const RUNNING: u8 = 0;
const COMMITTED: u8 = 1;
const CANCELLED: u8 = 2;

struct JobEntry {
    uri: String,
    token: CancellationToken,
    phase: Arc<AtomicU8>,
    /// The `executeCommand` request's id (as JSON text), for `$/cancelRequest`.
    request: Option<String>,
}

impl JobEntry {
    /// Marks the job cancelled unless its edit was already committed, without stopping it yet. True
    /// when this call marked it.
    fn claim_cancel(&self) -> bool {
        self.phase
            .compare_exchange(RUNNING, CANCELLED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Cancels the job unless its edit was already committed. True when this call cancelled it.
    fn try_cancel(&self) -> bool {
        let cancelled = self.claim_cancel();
        if cancelled {
            self.token.cancel();
        }
        cancelled
    }
}

/// What `$/cancelRequest` should do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelRequest {
    /// Not a research job, or one that was just cancelled: let the transport answer "cancelled".
    Forward,
    /// The job's edit was already sent: the request is not cancelled, it answers what happened.
    Ignore,
}

/// A command whose arguments were read, and anchors placed, when it arrived.
struct Pending {
    job: u64,
    prepared: Result<Prepared>,
}

/// Running jobs, by id and by progress token, and commands prepared in arrival order.
#[derive(Default)]
pub struct Jobs {
    map: DashMap<u64, JobEntry>,
    by_progress: DashMap<String, u64>,
    pending: DashMap<u64, Pending>,
    next: AtomicU64,
}

impl Jobs {
    fn add(&self, uri: &str, request: Option<String>) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let token = CancellationToken::new();
        self.map.insert(
            id,
            JobEntry {
                uri: uri.to_string(),
                token: token.clone(),
                phase: Arc::new(AtomicU8::new(RUNNING)),
                request,
            },
        );
        (id, token)
    }

    fn remove(&self, id: u64) {
        self.map.remove(&id);
        self.by_progress.retain(|_, j| *j != id);
    }

    /// Marks the job as committed to inserting its report; false when it was cancelled first.
    fn commit(&self, id: u64) -> bool {
        self.map.get(&id).is_some_and(|j| {
            j.phase
                .compare_exchange(RUNNING, COMMITTED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        })
    }

    fn cancel_where(&self, pred: impl Fn(&JobEntry) -> bool) -> usize {
        // Collect first: no map guard is held while tokens fire their callbacks.
        let ids: Vec<u64> = self
            .map
            .iter()
            .filter(|e| pred(e.value()))
            .map(|e| *e.key())
            .collect();
        ids.into_iter()
            .filter(|id| self.map.get(id).is_some_and(|j| j.try_cancel()))
            .count()
    }

    pub fn cancel_all(&self) -> usize {
        self.cancel_where(|_| true)
    }

    /// The editor is gone: every job stops, committed or not (nothing can be inserted any more).
    pub fn abort_all(&self) {
        for j in self.map.iter() {
            j.phase.store(CANCELLED, Ordering::SeqCst);
            j.token.cancel();
        }
    }

    pub fn cancel_uri(&self, uri: &str) -> usize {
        self.cancel_where(|j| j.uri == uri)
    }

    pub fn cancel_progress(&self, token: &str) -> bool {
        let Some(id) = self.by_progress.get(token).map(|j| *j) else {
            return false;
        };
        self.map.get(&id).is_some_and(|j| j.try_cancel())
    }

    /// `$/cancelRequest` for request `id` (JSON text), seen in arrival order by the transport wrapper.
    pub fn cancel_request(&self, id: &str) -> CancelRequest {
        let job = self
            .map
            .iter()
            .find(|e| e.value().request.as_deref() == Some(id))
            .map(|e| *e.key());
        let Some(job) = job else {
            return CancelRequest::Forward;
        };
        let Some(entry) = self.map.get(&job) else {
            return CancelRequest::Forward;
        };
        // Only claimed here: the transport then drops the pending command, whose guard stops the job,
        // so the answer is always the transport's "cancelled" error, never a race with the job's own.
        if entry.claim_cancel() || entry.phase.load(Ordering::SeqCst) == CANCELLED {
            CancelRequest::Forward
        } else {
            CancelRequest::Ignore
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The argument the transport wrapper appends to a prepared command, naming its [`Pending`] entry.
pub const PREPARED_KEY: &str = "$conductorPrepared";

/// Called by `Ordered::call` when `workspace/executeCommand` for research or refresh arrives, before
/// the next message is read: reads the document and places the anchors in exactly the text the client
/// had when it sent the command (rust-analyzer and ruff take their snapshot in the main loop the same
/// way). Returns the key to append to the command's arguments, and drops the entry again if the handler
/// never runs.
pub fn prepare_in_order(
    state: &Arc<State>,
    params: &Value,
    request: Option<String>,
) -> Option<u64> {
    let refresh = match params.get("command").and_then(Value::as_str) {
        Some(super::CMD_RESEARCH) => false,
        Some(super::CMD_REFRESH) => true,
        _ => return None,
    };
    let args: Vec<Value> = params
        .get("arguments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let uri = args
        .first()
        .and_then(|a| a.get("uri"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let prepared = prepare(state, &args, refresh);
    let (job, _) = state.jobs.add(&uri, request);
    state.jobs.pending.insert(job, Pending { job, prepared });
    Some(job)
}

/// Drops a prepared command whose handler never took it (cancelled before it was polled).
pub fn forget_prepared(state: &State, key: u64) {
    if let Some((_, p)) = state.jobs.pending.remove(&key) {
        if let Ok(prepared) = &p.prepared {
            state
                .docs
                .remove_anchors(prepared.uri.as_str(), &prepared.anchors);
        }
        state.jobs.remove(p.job);
    }
}

#[derive(Deserialize)]
struct Args {
    uri: Uri,
    range: Range,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    placement: Option<Placement>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failed {
    pub provider: String,
    pub error: String,
}

/// The command's answer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    pub applied: bool,
    pub sources: usize,
    pub failed: Vec<Failed>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the report was saved when it could not be inserted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl Outcome {
    fn cancelled() -> Outcome {
        Outcome {
            cancelled: true,
            ..Outcome::default()
        }
    }

    fn error(e: impl ToString) -> Outcome {
        Outcome {
            error: Some(e.to_string()),
            ..Outcome::default()
        }
    }
}

/// Everything a job needs, decided synchronously when the command arrives.
struct Prepared {
    uri: Uri,
    /// On refresh: the id of the report being replaced.
    replaces: Option<String>,
    topic: String,
    placement: Placement,
    anchors: Vec<u64>,
    spec: RenderSpec,
}

fn new_report_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

fn invalid(msg: impl Into<String>) -> jsonrpc::Error {
    jsonrpc::Error::invalid_params(msg.into())
}

/// The topic of a selection: its text without markdown, or the heading under an empty selection.
pub fn topic_of(rope: &ropey::Rope, start: usize, end: usize) -> String {
    if start < end {
        strip_markdown(&rope.slice(start..end).to_string())
    } else {
        let line = rope.char_to_line(start);
        heading(&line_text(rope, line))
            .map(|(_, t)| strip_markdown(t))
            .unwrap_or_default()
    }
}

fn prepare(state: &State, args: &[Value], refresh: bool) -> Result<Prepared> {
    let first = args
        .first()
        .ok_or_else(|| invalid("expected [{ uri, range, topic?, placement? }]"))?;
    let a: Args = serde_json::from_value(first.clone()).map_err(|e| invalid(e.to_string()))?;
    let uri_s = a.uri.as_str().to_string();
    let enc = state.encoding();
    let settings = state.settings.get();
    let not_open = || invalid(format!("the document is not open: {uri_s}"));
    if refresh {
        let (snap, idx) = state.indexed(&uri_s).ok_or_else(not_open)?;
        let (s, _) = range_to_chars(&snap.rope, a.range, enc);
        let line = snap.rope.char_to_line(s);
        let block = idx
            .complete_report_at(line)
            .map(|b| idx.reports[b].clone())
            .ok_or_else(|| {
                invalid(
                    "the range is not inside a complete Conductor report (its begin and end \
                     markers must both be there)",
                )
            })?;
        let stored = state.store.report(&block.id).ok().flatten();
        let title_line = (block.begin..=block.end.min(snap.rope.len_lines() - 1))
            .map(|l| line_text(&snap.rope, l))
            .find_map(|t| heading(&t).map(|(h, text)| (h, text.to_string())));
        let topic = stored
            .as_ref()
            .map(|r| r.topic.clone())
            .or_else(|| {
                title_line
                    .as_ref()
                    .and_then(|(_, t)| t.strip_prefix("Conductor Report: ").map(unescape))
            })
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| invalid("cannot tell this report's topic"))?;
        let begin = snap.rope.line_to_char(block.begin);
        let end = line_content_end(&snap.rope, block.end.min(snap.rope.len_lines() - 1));
        let anchors = vec![
            state.docs.add_anchor(&uri_s, begin, Gravity::Right),
            state.docs.add_anchor(&uri_s, end, Gravity::Left),
        ]
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(not_open)?;
        return Ok(Prepared {
            uri: a.uri,
            replaces: Some(block.id.clone()),
            topic,
            placement: Placement::Replace,
            anchors,
            spec: RenderSpec {
                // Same footnote labels as the report it replaces.
                id: crate::render::refreshed_report_id(&block.id),
                style: stored.map_or(settings.citation_style, |r| r.style),
                fixed_level: title_line.map(|(h, _)| h),
                cited_only: settings.cited_only,
            },
        });
    }
    let snap = match state.docs.snapshot(&uri_s) {
        Some(snap) => snap,
        // Opened, but too large or unreadable for the server to follow: with the topic given, the
        // research runs and its report is saved as a file.
        None if state.docs.is_out_of_sync(&uri_s) => {
            let topic = a
                .topic
                .as_deref()
                .map(strip_markdown)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    invalid(format!(
                        "the server could not read {uri_s}: reopen it, or pass the topic"
                    ))
                })?;
            return Ok(Prepared {
                uri: a.uri,
                replaces: None,
                topic,
                placement: a.placement.unwrap_or(settings.placement),
                anchors: Vec::new(),
                spec: RenderSpec {
                    id: new_report_id(),
                    style: settings.citation_style,
                    fixed_level: None,
                    cited_only: settings.cited_only,
                },
            });
        }
        None => return Err(not_open()),
    };
    let rope = &snap.rope;
    let (s, e) = range_to_chars(rope, a.range, enc);
    let topic = match a.topic.as_deref().map(strip_markdown) {
        Some(t) if !t.is_empty() => t,
        _ => topic_of(rope, s, e),
    };
    if topic.is_empty() {
        return Err(invalid(
            "nothing to research: select some text, or put the cursor on a heading",
        ));
    }
    let placement = a.placement.unwrap_or(settings.placement);
    let anchors: Option<Vec<u64>> = match placement {
        Placement::Below => {
            let mut line = rope.char_to_line(e);
            if e > s && e == rope.line_to_char(line) && line > rope.char_to_line(s) {
                line -= 1;
            }
            if heading(&line_text(rope, line)).is_none() {
                while line + 1 < rope.len_lines() {
                    let next = line_text(rope, line + 1);
                    if next.trim().is_empty()
                        || heading(&next).is_some()
                        || is_fence(&next)
                        || report_begin(&next).is_some()
                    {
                        break;
                    }
                    line += 1;
                }
            }
            let p = line_content_end(rope, line);
            state
                .docs
                .add_anchor(&uri_s, p, Gravity::Right)
                .map(|a| vec![a])
        }
        Placement::Replace => [
            state.docs.add_anchor(&uri_s, s, Gravity::Right),
            state.docs.add_anchor(&uri_s, e, Gravity::Left),
        ]
        .into_iter()
        .collect(),
        Placement::End => state
            .docs
            .add_anchor(&uri_s, rope.len_chars(), Gravity::Right)
            .map(|a| vec![a]),
    };
    Ok(Prepared {
        uri: a.uri,
        replaces: None,
        topic,
        placement,
        anchors: anchors.ok_or_else(not_open)?,
        spec: RenderSpec {
            id: new_report_id(),
            style: settings.citation_style,
            fixed_level: None,
            cited_only: settings.cited_only,
        },
    })
}

/// `conductor.research` / `conductor.refresh`.
pub async fn execute(backend: &Backend, args: &[Value], refresh: bool) -> Result<Option<Value>> {
    let state = backend.state.clone();
    // Invalid settings: an error naming the setting, never research with defaults. (A prepared entry
    // left untaken is dropped by the transport wrapper.)
    state.settings.refuse_research(&backend.client).await?;
    let key = args
        .iter()
        .find_map(|a| a.get(PREPARED_KEY).and_then(Value::as_u64));
    // Prepared when the command arrived (see `prepare_in_order`); prepared now only when this handler
    // is called without the transport wrapper.
    let (job_id, prepared) = match key.and_then(|k| state.jobs.pending.remove(&k)) {
        Some((_, p)) => (p.job, p.prepared),
        None => {
            let uri = args
                .first()
                .and_then(|a| a.get("uri"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let (job, _) = state.jobs.add(&uri, None);
            (job, prepare(&state, args, refresh))
        }
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            state.jobs.remove(job_id);
            return Err(e);
        }
    };
    let Some(token) = state.jobs.map.get(&job_id).map(|j| j.token.clone()) else {
        // Cancelled and removed before it started.
        state
            .docs
            .remove_anchors(prepared.uri.as_str(), &prepared.anchors);
        return Ok(Some(
            serde_json::to_value(Outcome::cancelled()).unwrap_or(Value::Null),
        ));
    };
    let (tx, rx) = oneshot::channel();
    // `$/cancelRequest` drops this future, and with it the guard: the job is cancelled (the transport
    // wrapper lets that happen only before the job committed its edit).
    let mut guard = CancelOnDrop {
        state: state.clone(),
        job: job_id,
        armed: true,
    };
    tokio::spawn(run(
        state.clone(),
        backend.client.clone(),
        job_id,
        prepared,
        token,
        tx,
    ));
    let outcome = tokio::select! {
        o = rx => o,
        // The editor's input ended: answer now (nobody will read it) so the server can exit.
        _ = state.closing.cancelled() => Ok(Outcome::cancelled()),
    };
    guard.armed = false;
    match outcome {
        Ok(o) => Ok(Some(serde_json::to_value(o).unwrap_or(Value::Null))),
        Err(_) => Err(jsonrpc::Error::internal_error()),
    }
}

/// Cancels a job (unless committed) when the pending command is dropped.
struct CancelOnDrop {
    state: Arc<State>,
    job: u64,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(j) = self.state.jobs.map.get(&self.job) {
            j.claim_cancel();
            if j.phase.load(Ordering::SeqCst) == CANCELLED {
                j.token.cancel();
            }
        }
    }
}

async fn run(
    state: Arc<State>,
    client: Client,
    job_id: u64,
    p: Prepared,
    token: CancellationToken,
    tx: oneshot::Sender<Outcome>,
) {
    let (uri, anchors) = (p.uri.clone(), p.anchors.clone());
    let outcome = AssertUnwindSafe(job(&state, &client, job_id, p, &token))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("a research job panicked");
            Outcome::error("internal error: the research job panicked")
        });
    state.docs.remove_anchors(uri.as_str(), &anchors);
    state.jobs.remove(job_id);
    let _ = tx.send(outcome);
}

async fn job(
    state: &Arc<State>,
    client: &Client,
    job_id: u64,
    p: Prepared,
    token: &CancellationToken,
) -> Outcome {
    let mut settings = state.settings.get();
    // A refreshed report keeps its citation style.
    settings.citation_style = p.spec.style;
    let request = pipeline::Request {
        topic: p.topic.clone(),
        settings: Arc::new(settings),
        roots: state.roots(),
        summary: true,
    };
    let (_, selection) = pipeline::selection(&state.env, &request);
    let names: Vec<ProviderName> = selection.runnable.iter().map(|p| p.name()).collect();
    let reporter = Reporter::begin(
        client,
        state.caps().work_done_progress,
        &format!("conductor/research/{job_id}/{}", p.spec.id),
        format!("Research “{}”", truncate_chars(&p.topic, 60)),
        status_line(&names, &[]),
        state.opts.client_timeout,
        token,
    )
    .await;
    if let Some(t) = reporter.token() {
        state.jobs.by_progress.insert(t, job_id);
    }
    if token.is_cancelled() {
        reporter.end("Cancelled".into()).await;
        return Outcome::cancelled();
    }

    // The pipeline's events become progress reports: each provider as it finishes, then the summary
    // as the model writes it (at most every 250 ms).
    let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
    let sink = move |e: pipeline::Event| {
        let _ = etx.send(e);
    };
    let run = pipeline::run(&state.engine, &state.env, &request, &sink, token);
    tokio::pin!(run);
    let mut done: Vec<ProviderRun> = Vec::new();
    let mut written = String::new();
    let mut shown: Option<std::time::Instant> = None;
    let mut show = async |e: pipeline::Event, done: &mut Vec<ProviderRun>| match e {
        pipeline::Event::Started { .. } => {}
        pipeline::Event::ProviderDone(run) => {
            done.push(run);
            reporter.report(status_line(&names, done)).await;
        }
        pipeline::Event::Writing => {
            reporter
                .report(format!(
                    "{} · writing the summary",
                    status_line(&names, done)
                ))
                .await;
        }
        pipeline::Event::SummaryDelta(delta) => {
            written.push_str(&delta);
            if shown.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(250)) {
                shown = Some(std::time::Instant::now());
                reporter
                    .report(format!("summary: {}", summary_tail(&written)))
                    .await;
            }
        }
    };
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            Some(e) = erx.recv() => show(e, &mut done).await,
        }
    };
    // Events sent in the same poll as the end of the run.
    while let Ok(e) = erx.try_recv() {
        if !token.is_cancelled() {
            show(e, &mut done).await;
        }
    }
    let research = match result {
        Ok(r) => r,
        Err(PipelineError::Cancelled) => {
            reporter.end("Cancelled".into()).await;
            return Outcome::cancelled();
        }
        Err(PipelineError::EveryProviderFailed(research)) => {
            // Nothing to insert: a report of failures is noise in the user's text. Say why instead,
            // as the CLI does (exit status 1 with one line per provider).
            let failed = failures(&research);
            let why = failed
                .iter()
                .map(|f| format!("{}: {}", f.provider, f.error))
                .collect::<Vec<_>>()
                .join("; ");
            reporter.end("Failed: every provider failed".into()).await;
            client
                .show_message(
                    MessageType::ERROR,
                    format!("Conductor: every provider failed ({why})"),
                )
                .await;
            return Outcome {
                failed,
                error: Some("every provider failed".into()),
                ..Outcome::default()
            };
        }
        Err(e) => {
            let detail = match &e {
                PipelineError::NothingConfigured(why) => format!(
                    "{e}: {}",
                    why.iter()
                        .map(|(n, w)| format!("{n}: {w}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                _ => e.to_string(),
            };
            reporter.end(format!("Failed: {e}")).await;
            client
                .show_message(MessageType::ERROR, format!("Conductor: {detail}"))
                .await;
            return Outcome::error(e);
        }
    };
    let failed = failures(&research);
    let sources = research.sources.len();

    // Persist first, so hover works the moment the report appears (and after a restart).
    state.remember_sources(&p.spec.id, &research.sources);
    let (store, id, r, style) = (
        state.store.clone(),
        p.spec.id.clone(),
        research.clone(),
        p.spec.style,
    );
    match tokio::task::spawn_blocking(move || store.put_report(&id, &r, style)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("could not save the report's sources: {e}"),
        Err(e) => tracing::warn!("could not save the report's sources: {e}"),
    }
    // One insertion at a time per document: each edit is built against the text that already holds
    // the previous report, so several researches finishing together all land, each under its topic.
    // An async queue (not a lock on shared state): nothing else waits on it.
    let queue = state.docs.insertion_queue(p.uri.as_str());
    let turn = tokio::select! {
        t = queue.lock() => Some(t),
        _ = token.cancelled() => None,
    };
    // From here on the job cannot be cancelled: the edit goes to the editor, and the answer says what
    // happened to it.
    if turn.is_none() || !state.jobs.commit(job_id) {
        reporter.end("Cancelled".into()).await;
        return Outcome::cancelled();
    }
    reporter
        .report(format!(
            "{} · inserting the report",
            status_line(&names, &done)
        ))
        .await;
    let inserted = if state.docs.is_out_of_sync(p.uri.as_str()) {
        Err(InsertError::Failed(
            "the server's copy of the document is out of sync with the editor (reopen it)".into(),
        ))
    } else {
        edit::insert(
            state,
            client,
            &p.uri,
            &p.anchors,
            p.placement,
            &research,
            &p.spec,
        )
        .await
    };
    drop(turn);
    match inserted {
        Ok(inserted) => {
            let copy = match inserted {
                Inserted::Verified => None,
                Inserted::Unverified(reason) => {
                    tracing::warn!("could not verify the inserted report: {reason}");
                    fallback(state, client, &p, &research, &reason).await
                }
            };
            if let Some(old) = &p.replaces {
                forget_report(state, old).await;
            }
            reporter
                .end(format!(
                    "{sources} sources · {}",
                    status_line(&names, &done)
                ))
                .await;
            Outcome {
                applied: true,
                sources,
                failed,
                fallback: copy.map(|p| p.display().to_string()),
                ..Outcome::default()
            }
        }
        Err(InsertError::Failed(reason)) => {
            let fallback = fallback(state, client, &p, &research, &reason).await;
            reporter.end(format!("Not inserted: {reason}")).await;
            Outcome {
                applied: false,
                sources,
                failed,
                error: Some(reason),
                fallback: fallback.map(|p| p.display().to_string()),
                ..Outcome::default()
            }
        }
    }
}

/// Each provider that failed, and why.
fn failures(research: &crate::report::Research) -> Vec<Failed> {
    research
        .failures()
        .map(|f| Failed {
            provider: f.name.to_string(),
            error: f.error.clone().unwrap_or_else(|| "failed".into()),
        })
        .collect()
}

/// A refreshed report's old rows: dropped from memory and the store once the new one landed.
async fn forget_report(state: &Arc<State>, id: &str) {
    state.forget_sources(id);
    let (store, id) = (state.store.clone(), id.to_string());
    match tokio::task::spawn_blocking(move || store.delete_report(&id)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("could not delete the old report: {e}"),
        Err(e) => tracing::warn!("could not delete the old report: {e}"),
    }
}

/// The report could not go into the document: save it as a file, open it, and say so.
async fn fallback(
    state: &State,
    client: &Client,
    p: &Prepared,
    research: &crate::research::Research,
    reason: &str,
) -> Option<PathBuf> {
    let dir = crate::config::cache_dir(&state.env)
        .unwrap_or_else(std::env::temp_dir)
        .join("reports");
    let path = dir.join(fallback_name(&p.topic, &p.spec.id));
    let md = crate::render::markdown(
        research,
        &crate::render::RenderOptions {
            style: p.spec.style,
            heading_level: 1,
            marker_id: Some(p.spec.id.clone()),
            cited_only: p.spec.cited_only,
        },
    );
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&path, format!("{md}\n")).await
    }
    .await;
    if let Err(e) = written {
        client
            .show_message(
                MessageType::ERROR,
                format!("Conductor could not insert the report ({reason}) nor save it: {e}"),
            )
            .await;
        return None;
    }
    if state.caps().show_document
        && let Some(file_uri) = Uri::from_file_path(&path)
    {
        let shown = tokio::time::timeout(
            state.opts.client_timeout,
            client.show_document(ShowDocumentParams {
                uri: file_uri,
                external: None,
                take_focus: Some(true),
                selection: None,
            }),
        )
        .await;
        if !matches!(shown, Ok(Ok(true))) {
            tracing::info!("the editor did not open the saved report");
        }
    }
    client
        .show_message(
            MessageType::WARNING,
            format!(
                "Conductor could not insert the report ({reason}). It was saved to {}",
                path.display()
            ),
        )
        .await;
    Some(path)
}

/// Longest file name written, in bytes: file systems allow 255, some (eCryptfs, encrypted home folders)
/// about 143.
const MAX_NAME_BYTES: usize = 140;

/// The fallback file's name: a slug of the topic (up to 8 words), cut on a char boundary so that the
/// whole name, id and `.md` included, stays within [`MAX_NAME_BYTES`] bytes.
fn fallback_name(topic: &str, id: &str) -> String {
    let slug = topic
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    let room = MAX_NAME_BYTES.saturating_sub(id.len() + ".md".len() + 1);
    let mut cut = slug.len().min(room);
    while !slug.is_char_boundary(cut) {
        cut -= 1;
    }
    let slug = slug[..cut].trim_end_matches('-');
    if slug.is_empty() {
        format!("report-{id}.md")
    } else {
        format!("{slug}-{id}.md")
    }
}

/// `conductor.cancel`: `[]` cancels every job, `[{ "uri" }]` the jobs of one document.
pub fn cancel(state: &State, args: &[Value]) -> Value {
    let uri = args
        .first()
        .and_then(|a| a.get("uri"))
        .and_then(Value::as_str)
        .map(|u| {
            u.parse::<Uri>()
                .map_or(u.to_string(), |u| u.as_str().to_string())
        });
    let n = match uri {
        Some(u) => state.jobs.cancel_uri(&u),
        None => state.jobs.cancel_all(),
    };
    json!({ "cancelled": n })
}

/// On `shutdown`: cancel every job and give them a moment to end their progress.
pub async fn shutdown(state: &State) {
    if state.jobs.cancel_all() == 0 {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while !state.jobs.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The end of the summary written so far, as one short line for a progress message.
fn summary_tail(written: &str) -> String {
    let clean = crate::sanitize::clean_text(written, usize::MAX);
    let chars: Vec<char> = clean.chars().collect();
    let start = chars.len().saturating_sub(80);
    let tail: String = chars[start..].iter().collect();
    if start > 0 {
        format!("…{tail}")
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_names_fit_every_file_system() {
        let id = "0123456789abcdef";
        for topic in [
            "漢".repeat(104),
            "é".repeat(300),
            "a".repeat(1000),
            "🦀 ".repeat(80),
            "---".into(),
            String::new(),
        ] {
            let name = fallback_name(&topic, id);
            assert!(name.len() <= MAX_NAME_BYTES, "{} bytes: {name}", name.len());
            assert!(name.ends_with(&format!("{id}.md")), "{name}");
            assert!(!name.contains('/'), "{name}");
        }
        assert_eq!(
            fallback_name("Rust async", id),
            format!("rust-async-{id}.md")
        );
    }
}
