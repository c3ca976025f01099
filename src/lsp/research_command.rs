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
use std::sync::atomic::{AtomicU64, Ordering};
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
use super::edit::{self, InsertError, RenderSpec};
use super::progress::{Reporter, status_line};
use super::scan::{heading, is_fence, report_begin, strip_markdown, unescape};
use super::{Backend, State};
use crate::config::{Placement, ProviderName};
use crate::research::{Progress, ProviderRun, ResearchError, ResearchOptions, Selection};
use crate::sanitize::truncate_chars;

struct JobEntry {
    uri: String,
    token: CancellationToken,
}

/// Running jobs, by id and by progress token.
#[derive(Default)]
pub struct Jobs {
    map: DashMap<u64, JobEntry>,
    by_progress: DashMap<String, u64>,
    next: AtomicU64,
}

impl Jobs {
    fn add(&self, uri: &str, token: CancellationToken) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.map.insert(
            id,
            JobEntry {
                uri: uri.to_string(),
                token,
            },
        );
        id
    }

    fn remove(&self, id: u64) {
        self.map.remove(&id);
        self.by_progress.retain(|_, j| *j != id);
    }

    fn cancel_where(&self, pred: impl Fn(&JobEntry) -> bool) -> usize {
        let tokens: Vec<CancellationToken> = self
            .map
            .iter()
            .filter(|e| pred(e.value()))
            .map(|e| e.value().token.clone())
            .collect();
        for t in &tokens {
            t.cancel();
        }
        tokens.len()
    }

    pub fn cancel_all(&self) -> usize {
        self.cancel_where(|_| true)
    }

    pub fn cancel_uri(&self, uri: &str) -> usize {
        self.cancel_where(|j| j.uri == uri)
    }

    pub fn cancel_progress(&self, token: &str) -> bool {
        let Some(id) = self.by_progress.get(token).map(|j| *j) else {
            return false;
        };
        let t = self.map.get(&id).map(|j| j.token.clone());
        t.map(|t| t.cancel()).is_some()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
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
            .report_at(line)
            .map(|b| idx.reports[b].clone())
            .ok_or_else(|| invalid("the range is not inside a Conductor report"))?;
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
    let snap = state.docs.snapshot(&uri_s).ok_or_else(not_open)?;
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
    let prepared = prepare(&state, args, refresh)?;
    let token = CancellationToken::new();
    let job_id = state.jobs.add(prepared.uri.as_str(), token.clone());
    let (tx, rx) = oneshot::channel();
    // `$/cancelRequest` drops this future, and with it the guard: the job is cancelled.
    let guard = token.clone().drop_guard();
    tokio::spawn(run(
        state.clone(),
        backend.client.clone(),
        job_id,
        prepared,
        token,
        tx,
    ));
    let outcome = rx.await;
    guard.disarm();
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
    let settings = state.settings.get();
    let mut roots = state.roots();
    roots.extend(settings.notes_paths.iter().cloned());
    let available = crate::providers::availability(&state.env, &roots);
    let selection = Selection::choose(settings.providers.as_deref(), &available);
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

    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
    let options = ResearchOptions::from(&settings);
    let research = state
        .engine
        .research(&p.topic, &selection, &options, Some(&ptx), token);
    tokio::pin!(research);
    let mut done: Vec<ProviderRun> = Vec::new();
    let result = loop {
        tokio::select! {
            r = &mut research => break r,
            Some(ev) = prx.recv() => {
                if let Progress::ProviderDone(run) = ev {
                    done.push(run);
                    reporter.report(status_line(&names, &done)).await;
                }
            }
        }
    };
    // Providers that finished in the same poll as the research itself.
    let mut late = false;
    while let Ok(ev) = prx.try_recv() {
        if let Progress::ProviderDone(run) = ev {
            done.push(run);
            late = true;
        }
    }
    if late && !token.is_cancelled() {
        reporter.report(status_line(&names, &done)).await;
    }
    let mut research = match result {
        Ok(r) => r,
        Err(ResearchError::Cancelled) => {
            reporter.end("Cancelled".into()).await;
            return Outcome::cancelled();
        }
        Err(e) => {
            reporter.end(format!("Failed: {e}")).await;
            client
                .show_message(MessageType::ERROR, format!("Conductor: {e}"))
                .await;
            return Outcome::error(e);
        }
    };
    // The summary, when an LLM back end is configured (a failed LLM leaves a report without one).
    if let Some(config) = crate::synth::configured(&state.env, &settings.llm) {
        reporter
            .report(format!(
                "{} · writing the summary",
                status_line(&names, &done)
            ))
            .await;
        // The summary streams into the progress notification as the model writes it.
        let (dtx, mut drx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let on_delta = move |d: &str| {
            let _ = dtx.send(d.to_string());
        };
        let outcome = {
            let step = crate::synth::step(
                state.engine.http(),
                &config,
                &research,
                Some(&on_delta),
                token,
            );
            tokio::pin!(step);
            let mut written = String::new();
            let mut shown: Option<std::time::Instant> = None;
            loop {
                tokio::select! {
                    r = &mut step => break r,
                    Some(delta) = drx.recv() => {
                        written.push_str(&delta);
                        if shown.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(250)) {
                            shown = Some(std::time::Instant::now());
                            reporter.report(format!("summary: {}", summary_tail(&written))).await;
                        }
                    }
                }
            }
        };
        match outcome {
            Some(s) => research.synthesis = Some(s),
            None => {
                reporter.end("Cancelled".into()).await;
                return Outcome::cancelled();
            }
        }
    }
    // Numbers as the renderers will show them, before anything is stored.
    crate::render::number_in_reading_order(&mut research, p.spec.style);
    let failed: Vec<Failed> = research
        .failures()
        .map(|f| Failed {
            provider: f.name.to_string(),
            error: f.error.clone().unwrap_or_else(|| "failed".into()),
        })
        .collect();
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
    if token.is_cancelled() {
        reporter.end("Cancelled".into()).await;
        return Outcome::cancelled();
    }
    reporter
        .report(format!(
            "{} · inserting the report",
            status_line(&names, &done)
        ))
        .await;
    let inserted = edit::insert(
        state,
        client,
        &p.uri,
        &p.anchors,
        p.placement,
        &research,
        &p.spec,
    )
    .await;
    match inserted {
        Ok(()) => {
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
    let slug: String = p
        .topic
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
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
    let path = dir.join(format!("{slug}-{}.md", p.spec.id));
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
