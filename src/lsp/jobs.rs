//! The job registry: running research jobs by id and by progress token, their phase (running,
//! committed, cancelled), and the commands prepared in arrival order for the transport wrapper.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use dashmap::DashMap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::Result;

use super::State;
use super::prepare::{Kind, Prepared, prepare};

/// Where a job is in its life. A job can be cancelled only while `RUNNING`; once `COMMITTED` (its edit
/// is about to be or has been sent to the editor) a cancel is refused, so the answer always says what
/// really happened.
const RUNNING: u8 = 0;
const COMMITTED: u8 = 1;
const CANCELLED: u8 = 2;

pub(super) struct JobEntry {
    uri: String,
    pub(super) token: CancellationToken,
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
pub(super) struct Pending {
    pub(super) job: u64,
    pub(super) prepared: Result<Prepared>,
}

/// Running jobs, by id and by progress token, and commands prepared in arrival order.
#[derive(Default)]
pub struct Jobs {
    pub(super) map: DashMap<u64, JobEntry>,
    pub(super) by_progress: DashMap<String, u64>,
    pub(super) pending: DashMap<u64, Pending>,
    next: AtomicU64,
    /// Woken whenever a job is removed (shutdown waits for the last one).
    removed: tokio::sync::Notify,
}

impl Jobs {
    pub(super) fn add(&self, uri: &str, request: Option<String>) -> (u64, CancellationToken) {
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

    pub(super) fn remove(&self, id: u64) {
        self.map.remove(&id);
        self.by_progress.retain(|_, j| *j != id);
        self.removed.notify_waiters();
    }

    /// Returns once no job is left.
    pub async fn until_empty(&self) {
        loop {
            let removed = self.removed.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            if self.map.is_empty() {
                return;
            }
            removed.await;
        }
    }

    /// Marks the job as committed to inserting its report; false when it was cancelled first.
    pub(super) fn commit(&self, id: u64) -> bool {
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
}

/// The argument the transport wrapper appends to a prepared command, naming its [`Pending`] entry.
pub const PREPARED_KEY: &str = "$conductorPrepared";

/// Called by `Ordered::call` when `workspace/executeCommand` for research, refresh or insertStored
/// arrives, before the next message is read: reads the document and places the anchors in exactly the
/// text the client had when it sent the command (rust-analyzer and ruff take their snapshot in the main
/// loop the same way). Returns the key to append to the command's arguments, and drops the entry again if the handler
/// never runs.
pub fn prepare_in_order(
    state: &Arc<State>,
    params: &Value,
    request: Option<String>,
) -> Option<u64> {
    let kind = match params.get("command").and_then(Value::as_str) {
        Some(super::CMD_RESEARCH) => Kind::Research,
        Some(super::CMD_REFRESH) => Kind::Refresh,
        Some(super::CMD_INSERT_STORED) => Kind::InsertStored,
        _ => return None,
    };
    let args: Vec<Value> = params
        .get("arguments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (job, prepared) = register(state, &args, kind, request);
    state.jobs.pending.insert(job, Pending { job, prepared });
    Some(job)
}

/// Reads a command's arguments and places its anchors now, and registers its job (cancellable from
/// here on). The job id and what was prepared (or why the arguments are wrong).
pub(super) fn register(
    state: &State,
    args: &[Value],
    kind: Kind,
    request: Option<String>,
) -> (u64, Result<Prepared>) {
    let uri = args
        .first()
        .and_then(|a| a.get("uri"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let prepared = prepare(state, args, kind);
    let (job, _) = state.jobs.add(uri, request);
    (job, prepared)
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

/// Cancels a job (unless committed) when the pending command is dropped.
pub(super) struct CancelOnDrop {
    pub(super) state: Arc<State>,
    pub(super) job: u64,
    pub(super) armed: bool,
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
