//! The language server (issue 3): converts between LSP and the core. Nothing in the core imports this.
//!
//! Concurrency design (style-and-reliability.md B.1–B.4):
//! - tower-lsp-server runs handler futures concurrently. Document edits therefore never wait for a
//!   handler: [`Ordered`] wraps the service and applies `didOpen`/`didChange`/`didClose` synchronously in
//!   its `call`, which the transport invokes for each message in the order read from the client, before
//!   the next message is even parsed. Every later request observes every earlier edit.
//! - No lock or map guard leaves a synchronous function (clippy's await-holding lints enforce it).
//! - Research runs in its own tokio task; the pending `executeCommand` only awaits a oneshot, so it holds
//!   a handler slot but no resource, and `concurrency_level` is raised well above the number of jobs.
//! - Every request to the client has a timeout ([`ServerOptions::client_timeout`]).
//! - A panic in any request answers that request with an internal error ([`Ordered`] catches it).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use dashmap::DashMap;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tower::Service;
use tower_lsp_server::jsonrpc::{self, Request, Response, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, ExitedError, LanguageServer, LspService, Server};

use crate::config::Env;
use crate::evidence::Fetcher;
use crate::net::{Http, HttpLimits, Secrets};
use crate::pipeline::Stages;
use crate::report::{Claim, Synthesis};
use crate::research::{Engine, Source};
use crate::store::Store;

pub mod claims;
pub mod code_action;
pub mod definition;
pub mod diagnostics;
pub mod documents;
pub mod edit;
pub mod fallback;
pub mod hover;
pub mod jobs;
pub mod logging;
pub mod prepare;
pub mod progress;
pub mod research_command;
pub mod scan;
pub mod settings;
pub mod transport;

use documents::{Documents, Encoding, Snapshot};
use scan::Index;

pub const CMD_RESEARCH: &str = "conductor.research";
pub const CMD_REFRESH: &str = "conductor.refresh";
pub const CMD_CANCEL: &str = "conductor.cancel";
/// Inserts a stored report (arguments of `conductor.research` plus `"report": ID`).
pub const CMD_INSERT_STORED: &str = "conductor.insertStored";

/// Sources kept in memory for hover; beyond this the least used are read again from the store.
const SOURCES_IN_MEMORY: usize = 4_096;
/// Reports whose claims are kept in memory (each a few KB).
const CLAIMS_IN_MEMORY: usize = 512;

/// Tunables of one server instance. Tests shorten the timeouts.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Upper bound on every request the server sends the client.
    pub client_timeout: Duration,
    /// How long to wait for the didChange that shows an applied report.
    pub verify_timeout: Duration,
    /// Delay before diagnostics are recomputed after edits.
    pub diagnostics_debounce: Duration,
    /// How many times a refused edit is rebuilt and sent again.
    pub max_edit_attempts: usize,
    /// Handler futures polled concurrently by the transport.
    pub concurrency: usize,
    /// Enables `conductor/debugText` and `conductor/debugPanic` (`CONDUCTOR_LSP_DEBUG=1`).
    pub debug: bool,
}

impl ServerOptions {
    pub fn from_env(env: &Env) -> ServerOptions {
        ServerOptions {
            client_timeout: Duration::from_secs(10),
            // Long enough for editors that debounce didChange (Neovim: 150 ms), short enough that an
            // editor sending it only after the command returns (eglot) waits little.
            verify_timeout: Duration::from_millis(1000),
            diagnostics_debounce: Duration::from_millis(150),
            max_edit_attempts: 3,
            concurrency: 32,
            debug: env.get("CONDUCTOR_LSP_DEBUG") == Some("1"),
        }
    }
}

/// What the client said it can do.
#[derive(Clone, Debug, Default)]
pub struct ClientCaps {
    pub encoding: Encoding,
    pub work_done_progress: bool,
    pub document_changes: bool,
    pub show_document: bool,
}

/// Server state shared by the handlers, the transport wrapper and research jobs.
pub struct State {
    pub env: Env,
    pub opts: ServerOptions,
    pub docs: Documents,
    pub settings: settings::SettingsCell,
    caps: RwLock<ClientCaps>,
    roots: RwLock<Vec<PathBuf>>,
    /// The providers' client and the page reader.
    pub stages: Stages,
    pub store: Arc<Store>,
    /// Hover's memory of sources, bounded (the store holds the rest).
    sources: quick_cache::sync::Cache<String, Arc<Source>>,
    /// The claim check of each report's summary, by report id (empty: no checked summary), bounded.
    claims: quick_cache::sync::Cache<String, Arc<Vec<Claim>>>,
    indexes: DashMap<String, Arc<Index>>,
    pub jobs: research_command::Jobs,
    diag_pending: DashMap<String, ()>,
    shutdown: AtomicBool,
    /// Cancelled when the editor's input ends: pending commands answer at once.
    pub closing: tokio_util::sync::CancellationToken,
}

impl State {
    fn new(env: Env, opts: ServerOptions) -> State {
        let store = Arc::new(
            match crate::config::cache_dir(&env).map(|d| Store::open(&d)) {
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    tracing::warn!("hover data will not survive a restart: {e}");
                    Store::in_memory()
                }
                None => Store::in_memory(),
            },
        );
        // Every configured secret, scrubbed from whatever a provider or LLM says when it fails.
        let secrets = Secrets::from_env(&env);
        let engine = Engine::new(Http::new(HttpLimits::default()).with_secrets(secrets));
        let fetcher = Fetcher::from_env(&env).unwrap_or_else(|e| {
            // Only tests set CONDUCTOR_FETCH_ALLOW; a bad value allows nothing private.
            tracing::warn!("{e}; page reading reaches public addresses only");
            Fetcher::new(crate::evidence::FetchConfig::default())
        });
        State {
            settings: settings::SettingsCell::new(&env),
            env,
            opts,
            docs: Documents::default(),
            caps: RwLock::default(),
            roots: RwLock::default(),
            stages: Stages::new(engine, fetcher).with_store(store.clone()),
            store,
            sources: quick_cache::sync::Cache::new(SOURCES_IN_MEMORY),
            claims: quick_cache::sync::Cache::new(CLAIMS_IN_MEMORY),
            indexes: DashMap::new(),
            jobs: research_command::Jobs::default(),
            diag_pending: DashMap::new(),
            shutdown: AtomicBool::new(false),
            closing: tokio_util::sync::CancellationToken::new(),
        }
    }

    pub fn caps(&self) -> ClientCaps {
        self.caps.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn encoding(&self) -> Encoding {
        self.caps().encoding
    }

    pub fn roots(&self) -> Vec<PathBuf> {
        self.roots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The document and its index, rebuilt only when the version changed.
    pub fn indexed(&self, uri: &str) -> Option<(Snapshot, Arc<Index>)> {
        let snap = self.docs.snapshot(uri)?;
        if let Some(idx) = self
            .indexes
            .get(uri)
            .map(|i| i.clone())
            .filter(|i| i.version == snap.version)
        {
            return Some((snap, idx));
        }
        let idx = Arc::new(Index::build(&snap.rope, snap.version));
        self.indexes.insert(uri.to_string(), idx.clone());
        Some((snap, idx))
    }

    /// Source `n` of report `id`: memory, then the persistent store.
    pub fn source_by_ref(&self, id: &str, n: usize) -> Option<Arc<Source>> {
        let key = format!("{id}#{n}");
        if let Some(s) = self.sources.get(&key) {
            return Some(s);
        }
        let s = Arc::new(self.store.source(id, n).ok()??);
        self.sources.insert(key, s.clone());
        Some(s)
    }

    pub fn source_by_url(&self, url: &str) -> Option<Arc<Source>> {
        let key = format!("url:{url}");
        if let Some(s) = self.sources.get(&key) {
            return Some(s);
        }
        let s = Arc::new(self.store.source_by_url(url).ok()??);
        self.sources.insert(key, s.clone());
        Some(s)
    }

    /// Forgets a report's numbered sources (a refreshed report's old ones).
    pub fn forget_sources(&self, id: &str) {
        for n in 1.. {
            if self.sources.remove(&format!("{id}#{n}")).is_none() && n > 1 {
                break;
            }
        }
    }

    /// Makes a fresh report's sources available to hover at once.
    /// The claims of report `id`'s checked summary: memory, then the persistent store (so diagnostics and
    /// hover survive a restart). Empty when the report has no checked summary or is unknown.
    pub fn claims(&self, id: &str) -> Arc<Vec<Claim>> {
        if let Some(c) = self.claims.get(id) {
            return c;
        }
        let claims = match self.store.report(id) {
            Ok(Some(stored)) => match stored.research.synthesis {
                Some(Synthesis::Written(s)) => s.claims,
                _ => Vec::new(),
            },
            // Unknown here (another machine's report, or a store that failed): nothing to check.
            _ => Vec::new(),
        };
        let claims = Arc::new(claims);
        self.claims.insert(id.to_string(), claims.clone());
        claims
    }

    pub fn remember_claims(&self, id: &str, research: &crate::report::Research) {
        let claims = match &research.synthesis {
            Some(Synthesis::Written(s)) => s.claims.clone(),
            _ => Vec::new(),
        };
        self.claims.insert(id.to_string(), Arc::new(claims));
    }

    pub fn remember_sources(&self, id: &str, sources: &[Source]) {
        for s in sources {
            let s = Arc::new(s.clone());
            self.sources.insert(format!("{id}#{}", s.n), s.clone());
            self.sources.insert(format!("url:{}", s.url), s);
        }
    }

    /// Applies a text-sync notification. Called by [`Ordered::call`], synchronously, in arrival order.
    fn sync_document(&self, method: &str, params: Option<&Value>) -> Synced {
        let Some(params) = params else {
            return Synced::Ok;
        };
        let uri_of = || {
            params
                .pointer("/textDocument/uri")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match method {
            "textDocument/didOpen" => {
                match serde_json::from_value::<DidOpenTextDocumentParams>(params.clone()) {
                    Ok(p) => {
                        let d = p.text_document;
                        self.docs.open(d.uri.as_str(), &d.text, d.version);
                    }
                    Err(e) => {
                        tracing::warn!("unreadable didOpen: {e}");
                        if let Some(uri) = uri_of() {
                            return Synced::Unreadable(uri);
                        }
                    }
                }
            }
            "textDocument/didChange" => {
                match serde_json::from_value::<DidChangeTextDocumentParams>(params.clone()) {
                    Ok(p) => {
                        let uri = p.text_document.uri.as_str();
                        let out = self.docs.apply_change(
                            uri,
                            p.text_document.version,
                            &p.content_changes,
                            self.encoding(),
                        );
                        if out != documents::ChangeOutcome::Applied {
                            tracing::warn!(uri, outcome = ?out, "didChange not applied");
                        }
                    }
                    Err(e) => {
                        tracing::warn!("unreadable didChange: {e}");
                        if let Some(uri) = uri_of() {
                            return Synced::Unreadable(uri);
                        }
                    }
                }
            }
            "textDocument/didClose" => {
                if let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(params.clone())
                {
                    let uri = p.text_document.uri.as_str();
                    // In arrival order: a research sent after the document was reopened is not one
                    // of the jobs this close ends.
                    self.jobs.cancel_uri(uri);
                    self.docs.close(uri);
                    self.indexes.remove(uri);
                }
            }
            _ => {}
        }
        Synced::Ok
    }
}

/// What applying a text-sync notification found.
enum Synced {
    Ok,
    /// The message could not be read: the server's copy of this document can no longer be trusted.
    Unreadable(String),
}

/// The `LanguageServer` implementation: routes each method to its feature module.
pub struct Backend {
    pub client: Client,
    pub state: Arc<State>,
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let c = &params.capabilities;
        let offered = c
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_deref());
        let caps = ClientCaps {
            encoding: Encoding::negotiate(offered),
            work_done_progress: c
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            document_changes: c
                .workspace
                .as_ref()
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.document_changes)
                .unwrap_or(false),
            show_document: c
                .window
                .as_ref()
                .and_then(|w| w.show_document.as_ref())
                .is_some_and(|s| s.support),
        };
        let encoding = caps.encoding;
        *self.state.caps.write().unwrap_or_else(|p| p.into_inner()) = caps;
        #[allow(deprecated)]
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        #[allow(deprecated)]
        if roots.is_empty()
            && let Some(p) = params.root_uri.as_ref().and_then(|u| u.to_file_path())
        {
            roots.push(p.into_owned());
        }
        *self.state.roots.write().unwrap_or_else(|p| p.into_inner()) = roots;
        if let Some(opts) = &params.initialization_options
            && let Err(e) = self.state.settings.set_init(opts)
        {
            tracing::warn!("{e}");
        }
        Ok(InitializeResult {
            capabilities: capabilities(encoding),
            server_info: Some(ServerInfo {
                name: "conductor-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        tracing::info!("conductor-lsp {} ready", env!("CARGO_PKG_VERSION"));
        // A bad config file or initializationOptions: tell the user now (research stays off).
        self.state.settings.report(&self.client).await;
    }

    async fn shutdown(&self) -> Result<()> {
        self.state.shutdown.store(true, Ordering::SeqCst);
        research_command::shutdown(&self.state).await;
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        // The text was stored by `Ordered::call`; only follow-up work happens here.
        diagnostics::schedule(&self.state, &self.client, params.text_document.uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        diagnostics::schedule(&self.state, &self.client, params.text_document.uri);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        // Its jobs were cancelled in `Ordered::call`, in arrival order.
        diagnostics::clear(&self.state, &self.client, params.text_document.uri).await;
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        if let Err(e) = self.state.settings.set_change(&params.settings) {
            tracing::warn!("settings: {e}");
        }
        self.state.settings.report(&self.client).await;
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let mut roots = self.state.roots();
        for f in &params.event.removed {
            if let Some(p) = f.uri.to_file_path() {
                roots.retain(|r| r.as_path() != p.as_ref());
            }
        }
        for f in &params.event.added {
            if let Some(p) = f.uri.to_file_path() {
                roots.push(p.into_owned());
            }
        }
        *self.state.roots.write().unwrap_or_else(|p| p.into_inner()) = roots;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        // May read the store (SQLite): on the blocking pool, never on an async worker.
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || hover::hover(&state, &params))
            .await
            .map_err(|_| jsonrpc::Error::internal_error())
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        // May read the store (a topic researched before): on the blocking pool, like hover.
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || code_action::code_actions(&state, &params))
            .await
            .map_err(|_| jsonrpc::Error::internal_error())
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || definition::definition(&state, &params))
            .await
            .map_err(|_| jsonrpc::Error::internal_error())
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        match params.command.as_str() {
            CMD_RESEARCH => {
                research_command::execute(self, &params.arguments, research_command::Kind::Research)
                    .await
            }
            CMD_REFRESH => {
                research_command::execute(self, &params.arguments, research_command::Kind::Refresh)
                    .await
            }
            CMD_INSERT_STORED => {
                research_command::execute(
                    self,
                    &params.arguments,
                    research_command::Kind::InsertStored,
                )
                .await
            }
            CMD_CANCEL => Ok(Some(research_command::cancel(
                &self.state,
                &params.arguments,
            ))),
            other => Err(jsonrpc::Error::invalid_params(format!(
                "unknown command {other}"
            ))),
        }
    }
}

impl Backend {
    /// `window/workDoneProgress/cancel`: the user pressed cancel on a job's progress.
    async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        let token = match &params.token {
            NumberOrString::String(s) => s.clone(),
            NumberOrString::Number(n) => n.to_string(),
        };
        if !self.state.jobs.cancel_progress(&token) {
            tracing::debug!(token, "cancel for an unknown progress token");
        }
    }

    /// `conductor/debugText` (debug builds of the protocol only): the server's copy of a document.
    async fn debug_text(&self, params: Value) -> Result<Value> {
        if !self.state.opts.debug {
            return Err(jsonrpc::Error::method_not_found());
        }
        let uri = params
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| jsonrpc::Error::invalid_params("uri is required"))?;
        let uri: Uri = uri
            .parse()
            .map_err(|_| jsonrpc::Error::invalid_params("uri is not a URI"))?;
        match self.state.docs.snapshot(uri.as_str()) {
            Some(s) => Ok(serde_json::json!({"text": s.rope.to_string(), "version": s.version})),
            None => Ok(Value::Null),
        }
    }

    /// Stands in for a request that was not valid JSON(-RPC) (see `transport`): its code and message.
    async fn invalid_message(&self, params: Value) -> Result<Value> {
        let code = params
            .get("code")
            .and_then(Value::as_i64)
            .unwrap_or(transport::INVALID_REQUEST);
        let mut e = jsonrpc::Error::new(jsonrpc::ErrorCode::from(code));
        e.message = params
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("invalid JSON-RPC message")
            .to_string()
            .into();
        Err(e)
    }

    /// `conductor/debugPanic`: proves a panicking request answers with an error.
    async fn debug_panic(&self) -> Result<Value> {
        if !self.state.opts.debug {
            return Err(jsonrpc::Error::method_not_found());
        }
        panic!("conductor/debugPanic was called");
    }
}

fn capabilities(encoding: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                ..Default::default()
            },
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::REFACTOR]),
            ..Default::default()
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![
                CMD_RESEARCH.into(),
                CMD_REFRESH.into(),
                CMD_CANCEL.into(),
                CMD_INSERT_STORED.into(),
            ],
            ..Default::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        ..Default::default()
    }
}

/// The transport-facing service: applies text sync in arrival order, and turns a panicking request into
/// an error answer.
pub struct Ordered {
    inner: LspService<Backend>,
    state: Arc<State>,
}

impl Service<Request> for Ordered {
    type Response = Option<Response>;
    type Error = ExitedError;
    type Future = BoxFuture<'static, std::result::Result<Option<Response>, ExitedError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), ExitedError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let method = req.method();
        let mut out_of_sync: Option<String> = None;
        if method.starts_with("textDocument/did") {
            let state = &self.state;
            let params = req.params();
            match std::panic::catch_unwind(AssertUnwindSafe(|| state.sync_document(method, params)))
            {
                Ok(Synced::Ok) => {}
                Ok(Synced::Unreadable(uri)) => out_of_sync = Some(uri),
                Err(_) => {
                    // The document may be half-edited: stop trusting it rather than serve wrong text.
                    tracing::error!(method, "panic while applying a document change");
                    if let Some(uri) = params
                        .and_then(|p| p.pointer("/textDocument/uri"))
                        .and_then(Value::as_str)
                    {
                        out_of_sync = Some(uri.to_string());
                    }
                }
            }
        } else if method == transport::OUT_OF_SYNC {
            out_of_sync = req
                .params()
                .and_then(|p| p.get("uri"))
                .and_then(Value::as_str)
                .map(str::to_string);
        } else if method == "$/cancelRequest" {
            let target = req.params().and_then(|p| p.get("id")).map(Value::to_string);
            if let Some(target) = target
                && self.state.jobs.cancel_request(&target)
                    == research_command::CancelRequest::Ignore
            {
                tracing::info!(
                    request = target,
                    "cancel arrived after the report was sent to the editor; answering what happened"
                );
                return Box::pin(async { Ok(None) });
            }
        }
        if let Some(uri) = out_of_sync {
            self.report_out_of_sync(&uri);
        }
        if method == transport::OUT_OF_SYNC {
            return Box::pin(async { Ok(None) });
        }
        let mut req = req;
        let mut prepared: Option<u64> = None;
        if req.method() == "workspace/executeCommand"
            && let Some(params) = req.params()
        {
            let request = req.id().map(|id| {
                serde_json::to_value(id)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            });
            if let Some(key) = research_command::prepare_in_order(&self.state, params, request) {
                prepared = Some(key);
                let mut params = params.clone();
                if let Some(args) = params.get_mut("arguments").and_then(Value::as_array_mut) {
                    args.push(serde_json::json!({ research_command::PREPARED_KEY: key }));
                } else {
                    params["arguments"] =
                        serde_json::json!([{ research_command::PREPARED_KEY: key }]);
                }
                let (method, id, _) = req.into_parts();
                let mut b = Request::build(method).params(params);
                if let Some(id) = id {
                    b = b.id(id);
                }
                req = b.finish();
            }
        }
        let method = req.method();
        let id = req.id().cloned();
        let method = method.to_string();
        let fut = self.inner.call(req);
        let forget = prepared.map(|key| ForgetPrepared {
            state: self.state.clone(),
            key,
        });
        Box::pin(async move {
            let _forget = forget;
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(r) => r,
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    tracing::error!(method, "request handler panicked: {msg}");
                    Ok(id.map(|id| {
                        let mut e = jsonrpc::Error::internal_error();
                        e.message = format!("request handler panicked: {msg}").into();
                        Response::from_error(id, e)
                    }))
                }
            }
        })
    }
}

/// Drops a prepared command that its handler never took (it was cancelled before it ran).
struct ForgetPrepared {
    state: Arc<State>,
    key: u64,
}

impl Drop for ForgetPrepared {
    fn drop(&mut self) {
        research_command::forget_prepared(&self.state, self.key);
    }
}

impl Ordered {
    /// A document the server can no longer follow: marked so nothing is inserted into it, and the user
    /// is told once, until the editor opens it again.
    fn report_out_of_sync(&self, uri: &str) {
        tracing::warn!(uri, "document out of sync: a change could not be read");
        if !self.state.docs.mark_out_of_sync(uri) {
            return;
        }
        let client = self.inner.inner().client.clone();
        let name = uri.rsplit('/').next().unwrap_or(uri).to_string();
        tokio::spawn(async move {
            client
                .show_message(
                    MessageType::WARNING,
                    format!(
                        "Conductor lost track of {name}: a change from the editor could not be read. \
                         Close and reopen the document; until then reports are saved as files instead \
                         of being inserted."
                    ),
                )
                .await;
        });
    }
}

/// Builds the service for `env`. Exposed for benchmarks.
pub fn build(env: Env, opts: ServerOptions) -> (Ordered, tower_lsp_server::ClientSocket) {
    let state = Arc::new(State::new(env, opts));
    let s = state.clone();
    let (inner, socket) = LspService::build(move |client| Backend { client, state: s })
        .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
        .custom_method("conductor/debugText", Backend::debug_text)
        .custom_method("conductor/debugPanic", Backend::debug_panic)
        .custom_method(transport::INVALID_MESSAGE, Backend::invalid_message)
        .finish();
    (Ordered { inner, state }, socket)
}

/// Serves LSP over `input`/`output` until `exit`. Returns whether `shutdown` came first.
pub async fn serve<I, O>(input: I, output: O, env: Env) -> bool
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite,
{
    let opts = ServerOptions::from_env(&env);
    serve_with(input, output, env, opts).await
}

pub async fn serve_with<I, O>(input: I, output: O, env: Env, opts: ServerOptions) -> bool
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite,
{
    let concurrency = opts.concurrency;
    let (service, socket) = build(env, opts);
    let state = service.state.clone();
    logging::attach(service.inner.inner().client.clone());
    // The editor is gone when its input ends: cancel every job at once (none can be inserted), so the
    // server exits now rather than at the end of the research deadline.
    let on_eof = {
        let state = state.clone();
        move || {
            state.closing.cancel();
            state.jobs.abort_all();
        }
    };
    Server::new(transport::guard_input(input, on_eof), output, socket)
        .concurrency_level(concurrency)
        .serve(service)
        .await;
    state.jobs.cancel_all();
    state.shutdown.load(Ordering::SeqCst)
}

/// `conductor-lsp` / `conductor-lsp --stdio`: exit code 0 after shutdown + exit, 1 otherwise.
pub async fn serve_stdio(env: Env) -> ExitCode {
    logging::enable_forwarding();
    let shut_down = serve(tokio::io::stdin(), tokio::io::stdout(), env).await;
    logging::detach();
    if shut_down {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
