//! `conductor.research`, `conductor.refresh`, `conductor.insertStored` and `conductor.cancel`.
//!
//! The command's handler validates its arguments and sets anchors synchronously (before any await, so
//! the anchor is placed in exactly the text the client saw), then spawns the job on its own task and
//! only awaits a oneshot with the outcome. Dropping the handler (`$/cancelRequest`) drops a guard that
//! cancels the job. The job ends its progress on every path, inserts nothing once cancelled, and
//! answers `{ applied, sources, failed }`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{self, Result};
use tower_lsp_server::ls_types::{MessageType, Uri};

use super::edit::{self, InsertError, Inserted};
use super::fallback::fallback;
use super::jobs::CancelOnDrop;
use super::prepare::Prepared;
use super::progress::{Reporter, status_line};
use super::{Backend, State};
use crate::config::ProviderName;
use crate::pipeline::{self, PipelineError};
use crate::report::ProviderRun;
use crate::sanitize::truncate_chars;

// The job registry and the argument reading moved to sibling modules; their public items keep their
// old paths here.
pub use super::jobs::{CancelRequest, Jobs, PREPARED_KEY, forget_prepared, prepare_in_order};
pub use super::prepare::{Kind, topic_of};

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

/// `conductor.research` / `conductor.refresh` / `conductor.insertStored`.
pub async fn execute(backend: &Backend, args: &[Value], kind: Kind) -> Result<Option<Value>> {
    let state = backend.state.clone();
    // Invalid settings: an error naming the setting, never research with defaults. (A prepared entry
    // left untaken is dropped by the transport wrapper.) Inserting a stored report researches nothing.
    if kind != Kind::InsertStored {
        state.settings.refuse_research(&backend.client).await?;
    }
    let key = args
        .iter()
        .find_map(|a| a.get(PREPARED_KEY).and_then(Value::as_u64));
    // Prepared when the command arrived (see `prepare_in_order`); prepared now only when this handler
    // is called without the transport wrapper.
    let (job_id, prepared) = match key.and_then(|k| state.jobs.pending.remove(&k)) {
        Some((_, p)) => (p.job, p.prepared),
        None => super::jobs::register(&state, args, kind, None),
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
    if let Some(stored) = p.stored.clone() {
        return insert_stored(state, client, job_id, p, &stored, token).await;
    }
    let mut settings = state.settings.get();
    // A refreshed report keeps its citation style.
    settings.citation_style = p.spec.style;
    let request = pipeline::Request {
        topic: p.topic.clone(),
        settings: Arc::new(settings),
        roots: state.roots(),
        summary: true,
        // Refresh asks the providers again (and keeps the new answers); a research may answer from
        // the cache.
        cache: if p.replaces.is_some() {
            pipeline::CacheMode::Refresh
        } else {
            pipeline::CacheMode::Use
        },
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
    let run = pipeline::run_selected(
        &state.stages,
        &state.env,
        &request,
        &selection,
        &sink,
        token,
    );
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
        pipeline::Event::Reading { done: read, total } => {
            reporter
                .report(format!(
                    "{} · reading {read}/{total} pages",
                    status_line(&names, done)
                ))
                .await;
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
    deliver(
        state,
        client,
        job_id,
        p,
        research,
        Delivery {
            reporter,
            names: &names,
            done: &done,
            copy_of: None,
        },
        token,
    )
    .await
}

/// `conductor.insertStored`: the stored report is the research; no provider is asked. It is inserted
/// the way a fresh report is, under a new id (so refresh and hover work on the copy).
async fn insert_stored(
    state: &Arc<State>,
    client: &Client,
    job_id: u64,
    mut p: Prepared,
    id: &str,
    token: &CancellationToken,
) -> Outcome {
    let (store, wanted) = (state.store.clone(), id.to_string());
    let stored = match tokio::task::spawn_blocking(move || store.report_by_prefix(&wanted)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            client
                .show_message(MessageType::ERROR, format!("Conductor: {e}"))
                .await;
            return Outcome::error(e);
        }
        Err(e) => return Outcome::error(format!("internal error: {e}")),
    };
    // Rendered as it was stored.
    p.spec.style = stored.style;
    p.spec.cited_only = stored.cited_only.unwrap_or(p.spec.cited_only);
    p.spec.mark_dead = stored.mark_dead.unwrap_or(p.spec.mark_dead);
    p.topic = stored.topic.clone();
    let research = stored.research;
    let names: Vec<ProviderName> = research.providers.iter().map(|r| r.name).collect();
    let done = research.providers.clone();
    let reporter = Reporter::begin(
        client,
        state.caps().work_done_progress,
        &format!("conductor/research/{job_id}/{}", p.spec.id),
        format!(
            "Insert the report from {}",
            crate::store::day(&research.date)
        ),
        status_line(&names, &done),
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
    deliver(
        state,
        client,
        job_id,
        p,
        research,
        Delivery {
            reporter,
            names: &names,
            done: &done,
            copy_of: Some(stored.id),
        },
        token,
    )
    .await
}

/// What [`deliver`] reports progress with, and where the report came from.
struct Delivery<'a> {
    reporter: Reporter,
    names: &'a [ProviderName],
    done: &'a [ProviderRun],
    /// A stored report inserted again: the id of the original.
    copy_of: Option<String>,
}

/// A research ready to go into the document: stored, then inserted (one at a time per document).
async fn deliver(
    state: &Arc<State>,
    client: &Client,
    job_id: u64,
    p: Prepared,
    research: crate::report::Research,
    d: Delivery<'_>,
    token: &CancellationToken,
) -> Outcome {
    let Delivery {
        reporter,
        names,
        done,
        copy_of,
    } = d;
    let failed = failures(&research);
    let sources = research.sources.len();

    // Persist first, so hover works the moment the report appears (and after a restart).
    state.remember_sources(&p.spec.id, &research.sources);
    state.remember_claims(&p.spec.id, &research);
    let meta = crate::store::ReportMeta {
        style: p.spec.style,
        cited_only: p.spec.cited_only,
        mark_dead: p.spec.mark_dead,
        copy_of,
    };
    let (store, id, r) = (state.store.clone(), p.spec.id.clone(), research.clone());
    match tokio::task::spawn_blocking(move || store.put(&id, &r, &meta)).await {
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
            status_line(names, done)
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
                .end(format!("{sources} sources · {}", status_line(names, done)))
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
    // Each job ends its progress before it is removed; wait for the last one, at most 500 ms.
    let _ = tokio::time::timeout(Duration::from_millis(500), state.jobs.until_empty()).await;
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
