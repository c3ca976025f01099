//! An in-process LSP test client (duplex pipes) that behaves like an editor: it keeps its own copy of
//! each document, applies `workspace/applyEdit` to it (checking versions, as VS Code does) and sends the
//! matching `didChange`; plus loopback Wikipedia and Hacker News servers with a slow mode, and
//! `fixture`, the mini-language that marks positions in test documents.
#![allow(dead_code)]

pub mod fixture;
#[allow(unused_imports)] // Not every test file writes fixtures.
pub use fixture::Fixture;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use conductor::config::Env;
use conductor::lsp::{ServerOptions, serve_with};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream, WriteHalf};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;
use tokio::time::Instant;

// ---------------------------------------------------------------- loopback providers

#[derive(Default)]
pub struct ProviderState {
    pub delay_ms: AtomicU64,
    pub requests: AtomicUsize,
    pub completed: AtomicUsize,
    pub dropped: AtomicUsize,
    /// Woken at every change of the counters, for tests that wait for one ([`ProviderState::until`]).
    changed: Notify,
    /// While true, requests wait for [`Providers::release`] (after `delay_ms`).
    held: AtomicBool,
    released: Notify,
}

impl ProviderState {
    /// Waits for the event itself: until `pred` holds of the counters (checked at each change).
    pub async fn until(&self, pred: impl Fn(&ProviderState) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change between the check and the await is not missed.
            changed.as_mut().enable();
            if pred(self) {
                return;
            }
            changed.await;
        }
    }

    fn count(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

struct Track(Arc<ProviderState>, bool);
impl Drop for Track {
    fn drop(&mut self) {
        if self.1 {
            self.0.count(&self.0.completed);
        } else {
            self.0.count(&self.0.dropped);
        }
    }
}

async fn slow(state: &Arc<ProviderState>) -> Track {
    let t = Track(state.clone(), false);
    state.count(&state.requests);
    let ms = state.delay_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    loop {
        let released = state.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        if !state.held.load(Ordering::SeqCst) {
            break;
        }
        released.await;
    }
    t
}

async fn wikipedia(
    State(state): State<Arc<ProviderState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut t = slow(&state).await;
    let topic = q.get("gsrsearch").cloned().unwrap_or_default();
    t.1 = true;
    // `generator=search` with intro extracts: pages in page id order, each with its search rank.
    Json(json!({"batchcomplete": true, "query": {"pages": [
        {"pageid": 1, "ns": 0, "title": format!("{topic} overview"), "index": 2,
         "extract": format!("An overview of {topic}"),
         "touched": "2024-02-01T00:00:00Z"},
        {"pageid": 2, "ns": 0, "title": format!("{topic} history"), "index": 1,
         "extract": format!("The history of {topic} began long ago"),
         "touched": "2024-01-01T00:00:00Z"}
    ]}}))
}

async fn hackernews(
    State(state): State<Arc<ProviderState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut t = slow(&state).await;
    let topic = q.get("query").cloned().unwrap_or_default();
    t.1 = true;
    Json(json!({"hits": [
        {"objectID": "1", "title": format!("Show HN: {topic} in practice"),
         "url": "https://example.com/practice", "points": 10, "num_comments": 3,
         "created_at": "2024-03-01T00:00:00Z"}
    ], "nbHits": 1, "page": 0, "nbPages": 1, "hitsPerPage": 20}))
}

pub struct Providers {
    pub addr: SocketAddr,
    pub state: Arc<ProviderState>,
}

impl Providers {
    pub async fn start() -> Providers {
        let state = Arc::new(ProviderState::default());
        let app = Router::new()
            .route("/w/api.php", get(wikipedia))
            .route("/api/v1/search", get(hackernews))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Providers { addr, state }
    }

    pub fn slow(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// From now on the providers answer only after [`Providers::release`]: a test decides when, instead
    /// of guessing how long its steps take.
    pub fn hold(&self) {
        self.state.held.store(true, Ordering::SeqCst);
    }

    /// Lets every held request (and every later one) answer.
    pub fn release(&self) {
        self.state.held.store(false, Ordering::SeqCst);
        self.state.released.notify_waiters();
    }
}

// ---------------------------------------------------------------- positions (reference model)

/// Byte offsets where each line starts; line breaks are exactly \n, \r\n, \r.
pub fn line_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' {
            if i + 1 < b.len() && b[i + 1] == b'\n' {
                i += 1;
            }
            starts.push(i + 1);
        } else if b[i] == b'\n' {
            starts.push(i + 1);
        }
        i += 1;
    }
    starts
}

fn units(c: char, enc: &str) -> usize {
    match enc {
        "utf-8" => c.len_utf8(),
        "utf-32" => 1,
        _ => c.len_utf16(),
    }
}

/// A position (in `enc`) as a byte offset, clamped like the spec says.
pub fn offset(text: &str, line: u32, character: u32, enc: &str) -> usize {
    let starts = line_starts(text);
    let Some(&start) = starts.get(line as usize) else {
        return text.len();
    };
    let end = starts.get(line as usize + 1).copied().unwrap_or(text.len());
    let content = text[start..end].trim_end_matches(['\n', '\r']);
    let mut used = 0;
    for (i, c) in content.char_indices() {
        if used >= character as usize {
            return start + i;
        }
        used += units(c, enc);
    }
    start + content.len()
}

pub fn position(text: &str, byte: usize, enc: &str) -> (u32, u32) {
    let starts = line_starts(text);
    let line = starts.partition_point(|&s| s <= byte) - 1;
    let ch: usize = text[starts[line]..byte]
        .chars()
        .map(|c| units(c, enc))
        .sum();
    (line as u32, ch as u32)
}

/// The position of the first occurrence of `needle` (plus `extra` bytes).
pub fn find(text: &str, needle: &str, enc: &str) -> Value {
    let b = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
    let (l, c) = position(text, b, enc);
    json!({"line": l, "character": c})
}

pub fn range_of(text: &str, needle: &str, enc: &str) -> Value {
    let b = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text:?}"));
    let (l1, c1) = position(text, b, enc);
    let (l2, c2) = position(text, b + needle.len(), enc);
    json!({"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}})
}

// ---------------------------------------------------------------- the client

#[derive(Clone, Debug)]
pub struct Config {
    /// `general.positionEncodings`; `None` says nothing (utf-16).
    pub encodings: Option<Vec<&'static str>>,
    pub progress: bool,
    pub document_changes: bool,
    pub show_document: bool,
    pub init_options: Value,
    pub opts: ServerOptions,
}

impl Default for Config {
    fn default() -> Self {
        let mut opts = ServerOptions::from_env(&Env::default());
        opts.client_timeout = Duration::from_secs(2);
        opts.verify_timeout = Duration::from_secs(1);
        opts.diagnostics_debounce = Duration::from_millis(20);
        opts.debug = true;
        Config {
            encodings: None,
            progress: true,
            document_changes: true,
            show_document: true,
            init_options: json!({"citation_style": "numbered"}),
            opts,
        }
    }
}

/// How the client answers the server's requests.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Refuse this many applyEdit requests, first typing `type_on_refuse` (uri-less: the only document).
    pub refuse_edits: usize,
    pub type_on_refuse: Option<(u32, u32, String)>,
    /// Never answer applyEdit.
    pub ignore_apply_edit: bool,
    /// Type this (line, character, text) just before applying an edit (as a user typing meanwhile).
    pub type_before_apply: Option<(u32, u32, String)>,
    /// Answer `applied: true` but keep the edit's didChange in `held` until the test sends it.
    pub hold_report_change: bool,
    /// Send these messages before answering an applyEdit (once).
    pub before_apply_answer: Vec<Value>,
}

pub struct Doc {
    pub text: String,
    pub version: i32,
}

pub struct Client {
    writer: WriteHalf<DuplexStream>,
    rx: UnboundedReceiver<Value>,
    next_id: i64,
    pub enc: String,
    pub docs: HashMap<String, Doc>,
    pub notifications: Vec<Value>,
    pub server_requests: Vec<Value>,
    pub policy: Policy,
    pub initialize_result: Value,
    /// Responses that arrived while waiting for another one.
    responses: HashMap<i64, Value>,
    /// didChange notifications held back by `Policy::hold_report_change`.
    pub held: Vec<Value>,
}

pub struct Harness {
    pub client: Client,
    pub server: JoinHandle<bool>,
}

pub fn test_env(p: &Providers, cache: &std::path::Path) -> Env {
    Env::from_pairs([
        ("CONDUCTOR_PROVIDERS", "wikipedia,hackernews".to_string()),
        // The fake results carry public URLs: never read them (tests that read serve their pages).
        ("CONDUCTOR_READ", "0".to_string()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", format!("http://{}", p.addr)),
        (
            "CONDUCTOR_HACKERNEWS_BASE_URL",
            format!("http://{}", p.addr),
        ),
        ("CONDUCTOR_CACHE_DIR", cache.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            cache.join("config").display().to_string(),
        ),
        ("HOME", cache.join("home").display().to_string()),
    ])
}

pub async fn start(env: Env, cfg: Config) -> Harness {
    let (client_io, server_io) = tokio::io::duplex(1 << 22);
    let (sr, sw) = tokio::io::split(server_io);
    let opts = cfg.opts.clone();
    let server = tokio::spawn(serve_with(sr, sw, env, opts));
    let (cr, cw) = tokio::io::split(client_io);
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let mut r = BufReader::new(cr);
        loop {
            let mut len = None;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.strip_prefix("Content-Length: ") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
            let mut body = vec![0; len.expect("Content-Length")];
            if r.read_exact(&mut body).await.is_err() {
                return;
            }
            let v: Value = serde_json::from_slice(&body).expect("server sent JSON");
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    let mut client = Client {
        writer: cw,
        rx,
        next_id: 0,
        enc: "utf-16".into(),
        docs: HashMap::new(),
        notifications: Vec::new(),
        server_requests: Vec::new(),
        policy: Policy::default(),
        initialize_result: Value::Null,
        responses: HashMap::new(),
        held: Vec::new(),
    };
    let mut caps = json!({
        "window": {"workDoneProgress": cfg.progress, "showDocument": {"support": cfg.show_document}},
        "workspace": {"workspaceEdit": {"documentChanges": cfg.document_changes}, "applyEdit": true},
    });
    if let Some(e) = &cfg.encodings {
        caps["general"] = json!({"positionEncodings": e});
    }
    let res = client
        .request(
            "initialize",
            json!({"processId": null, "rootUri": null, "capabilities": caps,
                   "initializationOptions": cfg.init_options}),
        )
        .await;
    client.initialize_result = res["result"].clone();
    client.enc = res["result"]["capabilities"]["positionEncoding"]
        .as_str()
        .unwrap_or("utf-16")
        .to_string();
    client.notify("initialized", json!({})).await;
    Harness { client, server }
}

impl Client {
    pub async fn send(&mut self, msg: &Value) {
        let body = serde_json::to_vec(msg).unwrap();
        self.send_raw(&body).await;
    }

    pub async fn send_raw(&mut self, body: &[u8]) {
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(body);
        self.writer.write_all(&frame).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    /// Sends several messages in one write, as an editor does when they are queued together.
    pub async fn send_all(&mut self, msgs: &[Value]) {
        let mut frames = Vec::new();
        for m in msgs {
            let body = serde_json::to_vec(m).unwrap();
            frames.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            frames.extend_from_slice(&body);
        }
        self.writer.write_all(&frames).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    /// The next request id, for building a request message by hand.
    pub fn take_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Applies a change to the model and returns its didChange message, unsent.
    pub fn change_message(
        &mut self,
        uri: &str,
        (l1, c1): (u32, u32),
        (l2, c2): (u32, u32),
        text: &str,
    ) -> Value {
        let enc = self.enc.clone();
        let doc = self.docs.get_mut(uri).expect("open document");
        let s = offset(&doc.text, l1, c1, &enc);
        let e = offset(&doc.text, l2, c2, &enc);
        doc.text.replace_range(s.min(e)..s.max(e), text);
        doc.version += 1;
        json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": doc.version}, "contentChanges": [
            {"range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}, "text": text}
        ]}})
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    pub async fn send_request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params).await;
        self.response(id, Duration::from_secs(20)).await
    }

    /// Processes messages until the response to `id`.
    pub async fn response(&mut self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.responses.remove(&id) {
                return r;
            }
            self.next(deadline)
                .await
                .unwrap_or_else(|| panic!("no response to request {id} within {timeout:?}"));
        }
    }

    /// Processes messages until a notification or server request satisfies `pred`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        if let Some(v) = self
            .notifications
            .iter()
            .chain(self.server_requests.iter())
            .find(|v| pred(v))
        {
            return Some(v.clone());
        }
        loop {
            let msg = self.next(deadline).await?;
            if msg.get("method").is_some() && pred(&msg) {
                return Some(msg);
            }
        }
    }

    /// Processes messages for `d`.
    pub async fn pump(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while self.next(deadline).await.is_some() {}
    }

    /// Processes messages (answering the server's requests, as an editor keeps doing) until `event`
    /// happens; panics naming `what` if it has not within `timeout`.
    pub async fn pump_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        event: impl std::future::Future<Output = T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        tokio::pin!(event);
        loop {
            // Only the receive is raced with the event: a message taken is always processed whole.
            let msg = tokio::select! {
                biased;
                v = &mut event => return v,
                m = tokio::time::timeout_at(deadline, self.rx.recv()) => m,
            };
            match msg {
                Ok(Some(msg)) => {
                    self.process(msg).await;
                }
                Ok(None) => panic!("the server closed the connection before {what}"),
                Err(_) => panic!("{what} did not happen within {timeout:?}"),
            }
        }
    }

    /// The next message (server requests are answered per the policy, notifications are recorded).
    async fn next(&mut self, deadline: Instant) -> Option<Value> {
        let msg = tokio::time::timeout_at(deadline, self.rx.recv())
            .await
            .ok()??;
        Some(self.process(msg).await)
    }

    async fn process(&mut self, msg: Value) -> Value {
        if msg.get("method").is_some() {
            if msg.get("id").is_some() {
                self.server_requests.push(msg.clone());
                self.answer(&msg).await;
            } else {
                self.notifications.push(msg.clone());
            }
        } else if let Some(id) = msg["id"].as_i64() {
            self.responses.insert(id, msg.clone());
        }
        msg
    }

    async fn answer(&mut self, req: &Value) {
        let id = req["id"].clone();
        let result = match req["method"].as_str().unwrap_or_default() {
            "workspace/applyEdit" => {
                if self.policy.ignore_apply_edit {
                    return;
                }
                if self.policy.refuse_edits > 0 {
                    self.policy.refuse_edits -= 1;
                    if let Some((l, c, text)) = self.policy.type_on_refuse.clone() {
                        let uri = self.docs.keys().next().cloned().unwrap();
                        self.change(&uri, l, c, l, c, &text).await;
                    }
                    json!({"applied": false})
                } else {
                    if let Some((l, c, text)) = self.policy.type_before_apply.take() {
                        let uri = self.docs.keys().next().cloned().unwrap();
                        self.change(&uri, l, c, l, c, &text).await;
                    }
                    for m in std::mem::take(&mut self.policy.before_apply_answer) {
                        self.send(&m).await;
                    }
                    let applied = self.apply_workspace_edit(&req["params"]["edit"]);
                    let r = json!({"applied": applied.is_some()});
                    self.send(&json!({"jsonrpc": "2.0", "id": id, "result": r}))
                        .await;
                    if let Some((uri, version, changes)) = applied {
                        let change = json!({"jsonrpc": "2.0", "method": "textDocument/didChange",
                            "params": {"textDocument": {"uri": uri, "version": version},
                                       "contentChanges": changes}});
                        if self.policy.hold_report_change {
                            self.held.push(change);
                        } else {
                            self.send(&change).await;
                        }
                    }
                    return;
                }
            }
            "window/showDocument" => json!({"success": true}),
            _ => Value::Null,
        };
        self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
            .await;
    }

    /// Applies a WorkspaceEdit to the model; `None` when its version does not match.
    fn apply_workspace_edit(&mut self, edit: &Value) -> Option<(String, i32, Vec<Value>)> {
        let (uri, version, edits) = if let Some(dc) = edit["documentChanges"].as_array() {
            let e = &dc[0];
            (
                e["textDocument"]["uri"].as_str()?.to_string(),
                e["textDocument"]["version"].as_i64().map(|v| v as i32),
                e["edits"].as_array()?.clone(),
            )
        } else {
            let (uri, edits) = edit["changes"].as_object()?.iter().next()?;
            (uri.clone(), None, edits.as_array()?.clone())
        };
        let enc = self.enc.clone();
        let doc = self.docs.get_mut(&uri)?;
        if version.is_some_and(|v| v != doc.version) {
            return None;
        }
        let mut changes = Vec::new();
        // One edit per request here; apply in order.
        for e in &edits {
            let r = &e["range"];
            let s = offset(
                &doc.text,
                r["start"]["line"].as_u64()? as u32,
                r["start"]["character"].as_u64()? as u32,
                &enc,
            );
            let en = offset(
                &doc.text,
                r["end"]["line"].as_u64()? as u32,
                r["end"]["character"].as_u64()? as u32,
                &enc,
            );
            let new = e["newText"].as_str()?;
            doc.text.replace_range(s..en, new);
            changes.push(json!({"range": r, "text": new}));
        }
        doc.version += 1;
        Some((uri, doc.version, changes))
    }

    pub async fn open(&mut self, uri: &str, text: &str) {
        self.docs.insert(
            uri.to_string(),
            Doc {
                text: text.to_string(),
                version: 1,
            },
        );
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": text}}),
        )
        .await;
    }

    /// Types: replaces the range with `text` in the model and sends the didChange.
    pub async fn change(&mut self, uri: &str, l1: u32, c1: u32, l2: u32, c2: u32, text: &str) {
        let enc = self.enc.clone();
        let doc = self.docs.get_mut(uri).expect("open document");
        let s = offset(&doc.text, l1, c1, &enc);
        let e = offset(&doc.text, l2, c2, &enc);
        doc.text.replace_range(s.min(e)..s.max(e), text);
        doc.version += 1;
        let v = doc.version;
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": v}, "contentChanges": [
                {"range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}, "text": text}
            ]}),
        )
        .await;
    }

    pub fn text(&self, uri: &str) -> &str {
        &self.docs[uri].text
    }

    /// The server's copy of the document.
    pub async fn server_text(&mut self, uri: &str) -> Value {
        self.request("conductor/debugText", json!({"uri": uri}))
            .await["result"]
            .clone()
    }

    pub async fn hover(&mut self, uri: &str, pos: Value) -> Value {
        self.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": pos}),
        )
        .await
    }

    pub async fn code_actions(&mut self, uri: &str, range: Value) -> Value {
        self.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": range, "context": {"diagnostics": []}}),
        )
        .await
    }

    pub fn requests_named(&self, method: &str) -> Vec<&Value> {
        self.server_requests
            .iter()
            .filter(|r| r["method"] == method)
            .collect()
    }

    pub fn notifications_named(&self, method: &str) -> Vec<&Value> {
        self.notifications
            .iter()
            .filter(|r| r["method"] == method)
            .collect()
    }

    pub async fn shutdown_and_exit(&mut self) {
        let r = self.request("shutdown", Value::Null).await;
        assert!(r.get("error").is_none(), "{r}");
        self.notify("exit", Value::Null).await;
    }
}
