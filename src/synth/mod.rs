//! Synthesis: an LLM summary of the retrieved sources whose citations cannot lie.
//!
//! Protocol-free (the CLI and the language server both drive it). The flow:
//! 1. [`choose`] picks a back end from the settings and the environment (PRODUCT.md §3): an
//!    OpenAI-compatible server (OpenAI, Ollama's `/v1`, llama.cpp, vLLM, LM Studio), Anthropic Messages,
//!    or none.
//! 2. [`synthesize`] sends the sources to the model as delimited data ([`prompt`]), within the token cap,
//!    streams the answer ([`sse`], [`openai`], [`anthropic`]) through the one HTTP layer, and checks it
//!    ([`grounding`]): only numbers of sources that were sent survive as citations, and no URL, link,
//!    heading, HTML or fence the model wrote reaches the report.
//! 3. `render::summary` is where the checked summary becomes markdown.
//!
//! API keys travel only in request headers (marked sensitive); error texts are scrubbed of them and
//! `LlmConfig`'s Debug output redacts them.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Env, LlmBackend, LlmSettings};
use crate::net::{Http, HttpError, Request, Secrets};
use crate::research::Source;

pub mod anthropic;
pub mod grounding;
pub mod openai;
pub mod prompt;
pub mod sse;

pub use crate::report::{Block, BlockKind, Segment, Summary, Synthesis, Usage, plain_text};

pub const OPENAI_URL: &str = "https://api.openai.com/v1/chat/completions";
pub const ANTHROPIC_URL: &str = "https://api.anthropic.com/v1/messages";
/// Ollama's OpenAI-compatible endpoint at its default address.
pub const OLLAMA_URL: &str = "http://127.0.0.1:11434/v1/chat/completions";
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-haiku-4-5";
pub const DEFAULT_OLLAMA_MODEL: &str = "llama3.2";
pub const DEFAULT_TEMPERATURE: f32 = 0.2;
pub const DEFAULT_MAX_TOKENS: u32 = 1024;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Prompt budget (tokens) for hosted models.
pub const HOSTED_PROMPT_BUDGET: u32 = 12_000;
/// Prompt budget (tokens) for local servers, which often run with a 4,096-token context and silently
/// drop the start of a longer prompt (our instructions).
pub const LOCAL_PROMPT_BUDGET: u32 = 3_000;

/// The wire protocol a back end speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `POST …/chat/completions`, SSE `data:` chunks ending with `[DONE]`.
    Openai,
    /// `POST …/v1/messages`, SSE named events ending with `message_stop`.
    Anthropic,
}

/// A chosen, validated LLM back end. The key is private: it leaves only in a request header.
#[derive(Clone)]
pub struct LlmConfig {
    /// `Openai`, `Anthropic` or `Ollama` (never `None`).
    pub backend: LlmBackend,
    /// The full URL of the chat endpoint.
    pub endpoint: url::Url,
    api_key: Option<String>,
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Bound on the whole call (within the research deadline).
    pub timeout: Duration,
    /// Upper bound on prompt + answer tokens.
    pub token_cap: Option<u32>,
    /// Upper bound on the prompt's tokens (the sources are shortened to fit).
    pub prompt_budget: u32,
    /// Ask for a streamed answer (default); a server that answers whole anyway is understood too.
    pub stream: bool,
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("backend", &self.backend)
            .field("endpoint", &origin(&self.endpoint))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("timeout", &self.timeout)
            .field("token_cap", &self.token_cap)
            .field("prompt_budget", &self.prompt_budget)
            .field("stream", &self.stream)
            .finish()
    }
}

impl LlmConfig {
    pub fn protocol(&self) -> Protocol {
        match self.backend {
            LlmBackend::Anthropic => Protocol::Anthropic,
            _ => Protocol::Openai,
        }
    }

    /// `openai`, `anthropic` or `ollama`.
    pub fn backend_name(&self) -> &'static str {
        backend_name(self.backend)
    }

    pub fn has_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// One line for the `providers` listing: back end, model, and where (scheme, host and port only).
    pub fn describe(&self) -> String {
        let kind = match self.backend {
            LlmBackend::Openai => "OpenAI-compatible",
            LlmBackend::Anthropic => "Anthropic Messages",
            _ => "Ollama (OpenAI-compatible)",
        };
        format!(
            "{} ({kind}), model {} at {}{}",
            self.backend_name(),
            self.model,
            origin(&self.endpoint),
            if self.has_key() { ", key set" } else { "" }
        )
    }
}

fn backend_name(b: LlmBackend) -> &'static str {
    match b {
        LlmBackend::Openai => "openai",
        LlmBackend::Anthropic => "anthropic",
        LlmBackend::Ollama => "ollama",
        LlmBackend::None => "none",
    }
}

/// `scheme://host:port` of a URL: no credentials, path or query.
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Chooses the back end: `settings.backend`, else `CONDUCTOR_LLM`, else the first with credentials
/// (`OPENAI_API_KEY` or `OPENAI_BASE_URL` → openai; `ANTHROPIC_API_KEY` → anthropic; `OLLAMA_HOST` →
/// ollama), else none (`Ok(None)`). `Err` says what is wrong with an explicit choice or a setting.
///
/// Endpoints: `CONDUCTOR_<NAME>_BASE_URL` (scheme, host and port replaced, official path appended), else
/// `OPENAI_BASE_URL` + `/chat/completions`, `ANTHROPIC_BASE_URL` + `/v1/messages`, `OLLAMA_HOST`
/// (normalised) + `/v1/chat/completions`, else the official one. Model: `settings.model`, else
/// `CONDUCTOR_LLM_MODEL`, else a default per back end.
pub fn choose(env: &Env, settings: &LlmSettings) -> Result<Option<LlmConfig>, String> {
    let explicit = match settings.backend {
        Some(b) => Some(b),
        None => env
            .get("CONDUCTOR_LLM")
            .map(|v| {
                <LlmBackend as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                    format!(
                        "CONDUCTOR_LLM must be one of openai, anthropic, ollama, none; got '{v}'"
                    )
                })
            })
            .transpose()?,
    };
    let backend = match explicit {
        Some(LlmBackend::None) => return Ok(None),
        Some(b) => b,
        None => {
            if env.first(&["OPENAI_API_KEY", "OPENAI_BASE_URL"]).is_some() {
                LlmBackend::Openai
            } else if env.get("ANTHROPIC_API_KEY").is_some() {
                LlmBackend::Anthropic
            } else if env.get("OLLAMA_HOST").is_some() {
                LlmBackend::Ollama
            } else {
                return Ok(None);
            }
        }
    };

    let (endpoint, api_key, official) = match backend {
        LlmBackend::Openai => {
            let (url, official) = if env.get("CONDUCTOR_OPENAI_BASE_URL").is_some() {
                (crate::config::endpoint(env, "OPENAI", OPENAI_URL)?, false)
            } else if let Some(base) = env.get("OPENAI_BASE_URL") {
                (
                    join_base(base, "/chat/completions", "OPENAI_BASE_URL")?,
                    false,
                )
            } else {
                (
                    url::Url::parse(OPENAI_URL).map_err(|e| e.to_string())?,
                    true,
                )
            };
            let key = env.get("OPENAI_API_KEY").map(str::to_string);
            if official && key.is_none() {
                return Err(
                    "OPENAI_API_KEY is not set (for a local OpenAI-compatible server, set OPENAI_BASE_URL)"
                        .into(),
                );
            }
            (url, key, official)
        }
        LlmBackend::Anthropic => {
            let (url, official) = if env.get("CONDUCTOR_ANTHROPIC_BASE_URL").is_some() {
                (
                    crate::config::endpoint(env, "ANTHROPIC", ANTHROPIC_URL)?,
                    false,
                )
            } else if let Some(base) = env.get("ANTHROPIC_BASE_URL") {
                (
                    join_base(base, "/v1/messages", "ANTHROPIC_BASE_URL")?,
                    false,
                )
            } else {
                (
                    url::Url::parse(ANTHROPIC_URL).map_err(|e| e.to_string())?,
                    true,
                )
            };
            let key = env.get("ANTHROPIC_API_KEY").map(str::to_string);
            if official && key.is_none() {
                return Err("ANTHROPIC_API_KEY is not set".into());
            }
            (url, key, official)
        }
        LlmBackend::Ollama => {
            let url = if env.get("CONDUCTOR_OLLAMA_BASE_URL").is_some() {
                crate::config::endpoint(env, "OLLAMA", OLLAMA_URL)?
            } else if let Some(host) = env.get("OLLAMA_HOST") {
                ollama_endpoint(host)?
            } else {
                url::Url::parse(OLLAMA_URL).map_err(|e| e.to_string())?
            };
            // Ollama needs no key; no other back end's key is ever sent to it.
            (url, None, false)
        }
        LlmBackend::None => return Ok(None),
    };

    let model = settings
        .model
        .clone()
        .or_else(|| env.get("CONDUCTOR_LLM_MODEL").map(str::to_string))
        .unwrap_or_else(|| {
            match backend {
                LlmBackend::Anthropic => DEFAULT_ANTHROPIC_MODEL,
                LlmBackend::Ollama => DEFAULT_OLLAMA_MODEL,
                _ => DEFAULT_OPENAI_MODEL,
            }
            .to_string()
        });
    let temperature = settings.temperature.unwrap_or(DEFAULT_TEMPERATURE);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(format!(
            "LLM temperature must be between 0 and 2, got {temperature}"
        ));
    }
    let max_tokens = settings.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if !(16..=200_000).contains(&max_tokens) {
        return Err(format!(
            "LLM max tokens must be between 16 and 200000, got {max_tokens}"
        ));
    }
    let timeout = match settings.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) if t.is_finite() && (0.1..=3600.0).contains(&t) => Duration::from_secs_f64(t),
        Some(t) => {
            return Err(format!(
                "LLM timeout must be between 0.1 and 3600 seconds, got {t}"
            ));
        }
    };
    if let Some(cap) = settings.token_cap
        && cap < 100
    {
        return Err(format!("LLM token cap must be at least 100, got {cap}"));
    }
    let hosted = official
        || (backend == LlmBackend::Anthropic)
        || endpoint
            .host_str()
            .is_some_and(|h| h.ends_with("openai.com") || h.ends_with("anthropic.com"));
    Ok(Some(LlmConfig {
        backend,
        endpoint,
        api_key,
        model,
        temperature,
        max_tokens,
        timeout,
        token_cap: settings.token_cap,
        prompt_budget: if hosted {
            HOSTED_PROMPT_BUDGET
        } else {
            LOCAL_PROMPT_BUDGET
        },
        stream: true,
    }))
}

/// `base` (an SDK-style base URL such as `http://localhost:11434/v1`) + `path`.
fn join_base(base: &str, path: &str, var: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(base).map_err(|e| {
        format!(
            "{var}: '{}' is not a URL: {e}",
            crate::sanitize::strip_userinfo(base)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{var}: only http and https URLs are allowed"));
    }
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    Ok(url)
}

/// Ollama's OpenAI-compatible endpoint for an `OLLAMA_HOST` value such as `0.0.0.0:11434`,
/// `127.0.0.1`, `http://host:11434` or `https://ollama.example`: `http://` added when there is no scheme,
/// `0.0.0.0` (a bind address) mapped to `127.0.0.1`, port 11434 when none is given.
pub fn ollama_endpoint(host: &str) -> Result<url::Url, String> {
    let host = host.trim();
    let with_scheme = if host.contains("://") {
        host.to_string()
    } else {
        format!("http://{host}")
    };
    let mut url = url::Url::parse(&with_scheme).map_err(|e| {
        format!(
            "OLLAMA_HOST: '{}' is not a host or URL: {e}",
            crate::sanitize::strip_userinfo(&with_scheme)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("OLLAMA_HOST: only http and https URLs are allowed".into());
    }
    match url.host_str() {
        Some("0.0.0.0") => url.set_host(Some("127.0.0.1")).map_err(|e| e.to_string())?,
        Some("[::]") => url.set_host(Some("[::1]")).map_err(|e| e.to_string())?,
        None => {
            return Err(format!(
                "OLLAMA_HOST: '{}' has no host",
                crate::sanitize::strip_userinfo(&with_scheme)
            ));
        }
        _ => {}
    }
    // No port written: Ollama's default (an explicit :80 or :443 is kept as the scheme's default).
    let authority_has_port = with_scheme
        .split("://")
        .nth(1)
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .is_some_and(|auth| {
            auth.rsplit_once(':')
                .is_some_and(|(h, p)| !p.is_empty() && !h.ends_with('[') && !p.contains(']'))
        });
    if !authority_has_port && url.scheme() == "http" {
        let _ = url.set_port(Some(11434));
    }
    join_base(url.as_str(), "/v1/chat/completions", "OLLAMA_HOST")
}

/// What the `providers` listing says about synthesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LlmStatus {
    /// `openai`, `anthropic`, `ollama` or `none`.
    pub backend: String,
    pub configured: bool,
    /// What it will use, or why there is none.
    pub detail: String,
}

pub fn describe(env: &Env, settings: &LlmSettings) -> LlmStatus {
    match choose(env, settings) {
        Ok(Some(cfg)) => LlmStatus {
            backend: cfg.backend_name().into(),
            configured: true,
            detail: cfg.describe(),
        },
        Ok(None) => {
            let explicit = settings.backend == Some(LlmBackend::None)
                || env
                    .get("CONDUCTOR_LLM")
                    .is_some_and(|v| v.eq_ignore_ascii_case("none"));
            LlmStatus {
                backend: "none".into(),
                configured: false,
                detail: if explicit {
                    "synthesis turned off (CONDUCTOR_LLM=none or llm.backend = \"none\")".into()
                } else {
                    "no LLM configured: set OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY or \
                     OLLAMA_HOST (or CONDUCTOR_LLM)"
                        .into()
                },
            }
        }
        Err(e) => LlmStatus {
            backend: settings
                .backend
                .map(backend_name)
                .or_else(|| env.get("CONDUCTOR_LLM"))
                .unwrap_or("none")
                .to_string(),
            configured: false,
            detail: e,
        },
    }
}

// ---- Results ------------------------------------------------------------------------------------------

/// Why synthesis failed, in words a person can act on. Never holds an API key.
#[derive(Clone, Debug, PartialEq)]
pub enum LlmError {
    /// What the HTTP layer found (rate limit, timeout, rejected key, …), worded for the LLM.
    Http(HttpError),
    /// The model's stream ended with an error event.
    MidStream(String),
    /// An answer that is not the documented format.
    Unexpected(String),
    /// A back end that is chosen but unusable.
    Config(String),
    Cancelled,
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::net::error::{detail, retry_hint, secs};
        match self {
            LlmError::Http(e) => match e {
                HttpError::RateLimited { retry_after } => write!(
                    f,
                    "the LLM is rate limiting requests (HTTP 429){}",
                    retry_hint(retry_after)
                ),
                HttpError::TimedOut { after } => {
                    write!(
                        f,
                        "the LLM did not answer in time (gave up after {})",
                        secs(after)
                    )
                }
                HttpError::KeyRejected { status, message } => write!(
                    f,
                    "the LLM rejected the API key (HTTP {status}){}",
                    detail(message)
                ),
                HttpError::QuotaExceeded { status, message } => write!(
                    f,
                    "the LLM account is out of credit or over its plan (HTTP {status}){}",
                    detail(message)
                ),
                HttpError::Unexpected(m) => write!(f, "unexpected response from the LLM: {m}"),
                HttpError::TooLarge { limit } => write!(
                    f,
                    "unexpected response from the LLM: answer larger than {} MiB",
                    limit / (1024 * 1024)
                ),
                HttpError::Http { status, message } => {
                    write!(f, "the LLM answered HTTP {status}{}", detail(message))
                }
                HttpError::Network(m) => write!(f, "could not reach the LLM: {m}"),
                HttpError::Config(m) | HttpError::NotConfigured(m) => {
                    write!(f, "LLM configuration error: {m}")
                }
                HttpError::Cancelled => write!(f, "synthesis cancelled"),
            },
            LlmError::MidStream(m) => {
                write!(f, "the LLM stopped with an error while answering: {m}")
            }
            LlmError::Unexpected(m) => write!(f, "unexpected response from the LLM: {m}"),
            LlmError::Config(m) => write!(f, "LLM configuration error: {m}"),
            LlmError::Cancelled => write!(f, "synthesis cancelled"),
        }
    }
}

impl std::error::Error for LlmError {}

impl From<HttpError> for LlmError {
    fn from(e: HttpError) -> LlmError {
        match e {
            HttpError::Cancelled => LlmError::Cancelled,
            e => LlmError::Http(e),
        }
    }
}

impl LlmError {
    /// A short machine-readable kind, for JSON output and editor clients.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Http(HttpError::TooLarge { .. }) | LlmError::Unexpected(_) => {
                "unexpected_response"
            }
            LlmError::Http(HttpError::Config(_) | HttpError::NotConfigured(_))
            | LlmError::Config(_) => "config",
            LlmError::Http(e) => e.kind(),
            LlmError::MidStream(_) => "stream_error",
            LlmError::Cancelled => "cancelled",
        }
    }

    /// Every message passed through [`Secrets::message`] (a server may echo the key it was sent, or any
    /// other configured secret): secrets and URL user info removed, one clean line, capped.
    pub fn redact(self, secrets: &Secrets) -> LlmError {
        let s = |m: String| secrets.message(&m);
        match self {
            LlmError::Http(e) => LlmError::Http(e.redact(secrets)),
            LlmError::MidStream(m) => LlmError::MidStream(s(m)),
            LlmError::Unexpected(m) => LlmError::Unexpected(s(m)),
            LlmError::Config(m) => LlmError::Config(s(m)),
            LlmError::Cancelled => LlmError::Cancelled,
        }
    }
}

/// The raw answer as a back end delivered it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Answer {
    pub text: String,
    /// finish_reason `length` / stop_reason `max_tokens`.
    pub truncated: bool,
    /// A finish or stop reason arrived.
    pub finished: bool,
    /// The stream's end marker arrived (`[DONE]`, `message_stop`).
    pub done: bool,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub cost_usd: Option<f64>,
}

/// The message of a JSON error object (`{"message": …}`, a string, or anything else), cleaned.
pub(crate) fn error_text(v: &serde_json::Value) -> String {
    let m = v
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| v.as_str().map(str::to_string))
        .unwrap_or_else(|| v.to_string());
    // Cut loosely: `LlmError::redact` scrubs secrets before it cuts to the final length.
    let m = crate::sanitize::clean_text(&m, crate::net::MAX_REMOTE_CHARS);
    if m.is_empty() { "no message".into() } else { m }
}

// ---- The call -----------------------------------------------------------------------------------------

/// Callback receiving the answer's visible text as it streams (reasoning blocks held back). For progress
/// display only: this text is not yet checked; the [`Summary`] is.
pub type OnDelta<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Writes the summary of `sources` on `topic`. With no sources, asks nothing and returns
/// [`Synthesis::NoSources`]; when the token cap leaves no room for a prompt, returns
/// [`Synthesis::Skipped`]. Stops at `deadline` (or `cfg.timeout`, if sooner) and on `cancel`.
pub async fn synthesize(
    http: &Http,
    cfg: &LlmConfig,
    topic: &str,
    sources: &[Source],
    deadline: Instant,
    on_delta: Option<OnDelta<'_>>,
    cancel: &CancellationToken,
) -> Result<Synthesis, LlmError> {
    if sources.is_empty() {
        return Ok(Synthesis::NoSources);
    }
    if cancel.is_cancelled() {
        return Err(LlmError::Cancelled);
    }
    let deadline = deadline.min(Instant::now() + cfg.timeout);
    let prompt = match prompt::build(cfg, topic, sources) {
        Ok(p) => p,
        Err(reason) => return Ok(Synthesis::Skipped { reason }),
    };
    let request = match cfg.protocol() {
        Protocol::Openai => openai::request(cfg, &prompt, cfg.api_key.as_deref()),
        Protocol::Anthropic => anthropic::request(cfg, &prompt, cfg.api_key.as_deref()),
    };
    // A server may echo the key, in an error or in the answer itself: neither ever shows it.
    let secrets = http.secrets().including(cfg.api_key.as_deref());
    let mut answer = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(LlmError::Cancelled),
        r = call(http, cfg, &request, deadline, on_delta, &secrets) => r,
    }
    .map_err(|e| e.redact(&secrets))?;
    answer.text = secrets.scrub(&answer.text);
    Ok(Synthesis::Written(finish(cfg, &prompt, answer)))
}

/// One short completion outside synthesis (the claim judge of `check::judge`): `system` (omitted when
/// empty) and `user` sent as they are, through the same back ends, HTTP layer, error mapping and key
/// scrubbing as [`synthesize`]. Returns the answer's text without reasoning blocks.
pub async fn complete(
    http: &Http,
    cfg: &LlmConfig,
    system: &str,
    user: &str,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<String, LlmError> {
    if cancel.is_cancelled() {
        return Err(LlmError::Cancelled);
    }
    let deadline = deadline.min(Instant::now() + cfg.timeout);
    let prompt = prompt::Prompt {
        system: system.to_string(),
        user: user.to_string(),
        sent: Vec::new(),
        estimated_tokens: prompt::estimate_tokens(system.chars().count() + user.chars().count()),
        max_tokens: cfg.max_tokens,
    };
    let request = match cfg.protocol() {
        Protocol::Openai => openai::request(cfg, &prompt, cfg.api_key.as_deref()),
        Protocol::Anthropic => anthropic::request(cfg, &prompt, cfg.api_key.as_deref()),
    };
    let secrets = http.secrets().including(cfg.api_key.as_deref());
    let answer = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(LlmError::Cancelled),
        r = call(http, cfg, &request, deadline, None, &secrets) => r,
    }
    .map_err(|e| e.redact(&secrets))?;
    Ok(secrets.scrub(&grounding::strip_reasoning(&answer.text)))
}

async fn call(
    http: &Http,
    cfg: &LlmConfig,
    request: &Request,
    deadline: Instant,
    on_delta: Option<OnDelta<'_>>,
    secrets: &Secrets,
) -> Result<Answer, LlmError> {
    let mut resp = http
        .send_stream(request, deadline)
        .await
        .map_err(LlmError::from)?;
    let protocol = cfg.protocol();
    let on_event = |answer: &mut Answer, ev: &sse::Event| match protocol {
        Protocol::Openai => openai::on_event(answer, ev),
        Protocol::Anthropic => anthropic::on_event(answer, ev),
    };
    let mut answer = Answer::default();
    if resp.content_type().contains("text/event-stream") {
        let mut parser = sse::SseParser::new();
        let mut visible = Visible::default();
        loop {
            let chunk = resp.chunk().await.map_err(LlmError::from)?;
            let events = match &chunk {
                Some(bytes) => parser.push(bytes),
                None => parser.finish().into_iter().collect(),
            };
            for ev in &events {
                let before = answer.text.len();
                on_event(&mut answer, ev)?;
                if let Some(cb) = on_delta
                    && answer.text.len() > before
                    && let Some(new) = visible.advance(&answer.text, secrets)
                {
                    cb(&new);
                }
                if answer.done {
                    return Ok(answer);
                }
            }
            if chunk.is_none() {
                break;
            }
        }
        if !answer.finished {
            return Err(LlmError::MidStream(
                "the answer stream ended before the answer was complete".into(),
            ));
        }
        return Ok(answer);
    }
    // A whole answer (streaming not asked for, or not supported by the server).
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(LlmError::from)? {
        body.extend_from_slice(&chunk);
    }
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_some_and(|i| body[i] == b'{') {
        let answer = match protocol {
            Protocol::Openai => openai::parse_whole(&body)?,
            Protocol::Anthropic => anthropic::parse_whole(&body)?,
        };
        if let Some(cb) = on_delta {
            let text = secrets.scrub(&grounding::strip_reasoning(&answer.text));
            if !text.is_empty() {
                cb(&text);
            }
        }
        return Ok(answer);
    }
    // Events sent with the wrong content type.
    let mut parser = sse::SseParser::new();
    let mut events = parser.push(&body);
    events.extend(parser.finish());
    if events.is_empty() {
        return Err(LlmError::Unexpected(
            "neither JSON nor server-sent events".into(),
        ));
    }
    for ev in &events {
        on_event(&mut answer, ev)?;
        if answer.done {
            break;
        }
    }
    if !answer.done && !answer.finished {
        return Err(LlmError::MidStream(
            "the answer stream ended before the answer was complete".into(),
        ));
    }
    Ok(answer)
}

/// The streamed text a person may see: reasoning blocks and a half-received `<think` held back, secrets
/// redacted, and a tail that could be the start of a secret held back until it is complete.
#[derive(Default)]
struct Visible {
    /// Bytes of the raw answer already looked at.
    pos: usize,
    /// Inside a reasoning block: the tag that closes it.
    closing: Option<&'static str>,
    /// Visible text not shown yet: a tail that could be the start of a secret (at most a secret long).
    held: String,
}

const OPEN_TAGS: [(&str, &str); 2] = [("<think>", "</think>"), ("<thinking>", "</thinking>")];
const CLOSE_TAGS: [&str; 2] = ["</think>", "</thinking>"];

impl Visible {
    /// The text outside reasoning blocks that `raw` (the whole answer so far) adds to what was shown.
    /// Looks only at the new bytes (streaming stays linear in the answer's length); a tail that could
    /// be the start of a tag waits for the next chunk.
    fn advance(&mut self, raw: &str, secrets: &Secrets) -> Option<String> {
        let bytes = raw.as_bytes();
        let starts = |at: usize, tag: &str| {
            bytes.len() >= at + tag.len()
                && bytes[at..at + tag.len()].eq_ignore_ascii_case(tag.as_bytes())
        };
        let partial = |at: usize, tag: &str| {
            let rest = &bytes[at..];
            rest.len() < tag.len() && tag.as_bytes()[..rest.len()].eq_ignore_ascii_case(rest)
        };
        let mut out = String::new();
        let mut i = self.pos.min(raw.len());
        let mut shown_from = i;
        while i < raw.len() {
            if bytes[i] != b'<' {
                i += 1;
                continue;
            }
            match self.closing {
                Some(close) => {
                    if starts(i, close) {
                        self.closing = None;
                        i += close.len();
                        shown_from = i;
                        continue;
                    }
                    if partial(i, close) {
                        break;
                    }
                }
                None => {
                    if let Some((open, close)) = OPEN_TAGS.iter().find(|(o, _)| starts(i, o)) {
                        out.push_str(&raw[shown_from..i]);
                        self.closing = Some(close);
                        i += open.len();
                        shown_from = i;
                        continue;
                    }
                    // An orphan close: the chat template opened the block; drop the tag.
                    if let Some(close) = CLOSE_TAGS.iter().find(|c| starts(i, c)) {
                        out.push_str(&raw[shown_from..i]);
                        i += close.len();
                        shown_from = i;
                        continue;
                    }
                    if OPEN_TAGS
                        .iter()
                        .any(|(o, c)| partial(i, o) || partial(i, c))
                    {
                        break;
                    }
                }
            }
            i += 1;
        }
        if self.closing.is_none() {
            out.push_str(&raw[shown_from..i]);
        }
        self.pos = i;
        // Every secret received whole is redacted; a tail that could be one still arriving waits.
        self.held.push_str(&out);
        let (shown, used) = secrets.settle(&self.held);
        self.held.drain(..used);
        (!shown.is_empty()).then_some(shown)
    }
}

fn finish(cfg: &LlmConfig, prompt: &prompt::Prompt, answer: Answer) -> Summary {
    let valid: BTreeSet<usize> = prompt.sent.iter().copied().collect();
    let g = grounding::ground(&answer.text, &valid);
    let estimated = answer.prompt_tokens.is_none() || answer.completion_tokens.is_none();
    let usage = Usage {
        prompt_tokens: answer.prompt_tokens.unwrap_or(prompt.estimated_tokens),
        completion_tokens: answer
            .completion_tokens
            .unwrap_or_else(|| prompt::estimate_tokens(answer.text.chars().count())),
        estimated,
        cost_usd: answer.cost_usd,
    };
    let text = plain_text(&g.blocks);
    Summary {
        uncited: g.cited.is_empty(),
        blocks: g.blocks,
        text,
        cited: g.cited,
        truncated: answer.truncated,
        removed_citations: g.removed_citations,
        removed_links: g.removed_links,
        sources_sent: prompt.sent.len(),
        usage,
        backend: cfg.backend_name().into(),
        model: cfg.model.clone(),
    }
}

/// The summary as plain text with `[n]` markers, blocks separated by blank lines, bullets by `- `.
/// The back end a research should use: `None` when no LLM is configured, `Some(Err(why))` when one is
/// chosen but unusable (the report then says why there is no summary).
pub fn configured(env: &Env, settings: &LlmSettings) -> Option<Result<LlmConfig, String>> {
    choose(env, settings).transpose()
}

/// The synthesis step of a report, which never fails the report: an LLM error (or a back end that is
/// chosen but unusable) becomes [`Synthesis::Failed`]. `None` only when cancelled.
pub async fn step(
    http: &Http,
    config: &Result<LlmConfig, String>,
    research: &crate::research::Research,
    on_delta: Option<OnDelta<'_>>,
    cancel: &CancellationToken,
) -> Option<Synthesis> {
    let cfg = match config {
        Ok(cfg) => cfg,
        Err(why) => {
            return Some(Synthesis::Failed {
                error: http.secrets().message(why),
                kind: "config".into(),
            });
        }
    };
    // The LLM gets its own time (`llm.timeout`) after retrieval, not what is left of the search deadline.
    let deadline = Instant::now() + cfg.timeout;
    match synthesize(
        http,
        cfg,
        &research.topic,
        &research.sources,
        deadline,
        on_delta,
        cancel,
    )
    .await
    {
        Ok(s) => Some(s),
        Err(LlmError::Cancelled) => None,
        Err(e) => {
            tracing::info!(error = %e, "synthesis failed");
            Some(Synthesis::Failed {
                error: e.to_string(),
                kind: e.kind().into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_text_hides_reasoning_whatever_the_chunking() {
        let answer = "Intro <think>secret plan</think>Tokio [1] is <b>fast</b>.<THINKING>more</thinking> End <thi";
        let expected = "Intro Tokio [1] is <b>fast</b>. End ";
        for step in [1, 2, 3, 5, 7, 100] {
            let mut v = Visible::default();
            let mut shown = String::new();
            let mut raw = String::new();
            let chars: Vec<char> = answer.chars().collect();
            for chunk in chars.chunks(step) {
                raw.extend(chunk);
                if let Some(new) = v.advance(&raw, &Secrets::default()) {
                    shown.push_str(&new);
                }
            }
            assert_eq!(shown, expected, "chunks of {step}");
        }
        // An orphan close (the template opened the block): the tag never shows.
        let mut v = Visible::default();
        assert_eq!(
            v.advance("plan</think>Answer", &Secrets::default())
                .as_deref(),
            Some("planAnswer")
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn choice_follows_credentials_in_order() {
        let s = LlmSettings::default();
        assert!(choose(&env(&[]), &s).unwrap().is_none());
        let c = choose(
            &env(&[("OPENAI_API_KEY", "sk-1"), ("ANTHROPIC_API_KEY", "a")]),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.backend, LlmBackend::Openai);
        assert_eq!(c.endpoint.as_str(), OPENAI_URL);
        assert_eq!(c.model, DEFAULT_OPENAI_MODEL);
        assert_eq!(c.prompt_budget, HOSTED_PROMPT_BUDGET);
        let c = choose(
            &env(&[("ANTHROPIC_API_KEY", "a"), ("OLLAMA_HOST", "x")]),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.backend, LlmBackend::Anthropic);
        assert_eq!(c.endpoint.as_str(), ANTHROPIC_URL);
        let c = choose(&env(&[("OLLAMA_HOST", "0.0.0.0")]), &s)
            .unwrap()
            .unwrap();
        assert_eq!(c.backend, LlmBackend::Ollama);
        assert_eq!(
            c.endpoint.as_str(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert!(!c.has_key());
        assert_eq!(c.prompt_budget, LOCAL_PROMPT_BUDGET);
        // A local OpenAI-compatible server needs no key.
        let c = choose(
            &env(&[("OPENAI_BASE_URL", "http://localhost:8080/v1/")]),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "http://localhost:8080/v1/chat/completions"
        );
    }

    #[test]
    fn explicit_choice_and_overrides() {
        let mut s = LlmSettings::default();
        let e = env(&[("CONDUCTOR_LLM", "none"), ("OPENAI_API_KEY", "sk-1")]);
        assert!(choose(&e, &s).unwrap().is_none());
        assert!(describe(&e, &s).detail.contains("turned off"));
        let e = env(&[("CONDUCTOR_LLM", "openai")]);
        assert!(choose(&e, &s).unwrap_err().contains("OPENAI_API_KEY"));
        let e = env(&[("CONDUCTOR_LLM", "gpt")]);
        assert!(choose(&e, &s).unwrap_err().contains("CONDUCTOR_LLM"));
        let e = env(&[
            ("CONDUCTOR_LLM", "anthropic"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("CONDUCTOR_ANTHROPIC_BASE_URL", "http://127.0.0.1:9/x"),
            ("CONDUCTOR_LLM_MODEL", "claude-x"),
        ]);
        let c = choose(&e, &s).unwrap().unwrap();
        assert_eq!(c.endpoint.as_str(), "http://127.0.0.1:9/x/v1/messages");
        assert_eq!(c.model, "claude-x");
        assert!(!format!("{c:?}").contains("sk-ant-secret"));
        assert!(!c.describe().contains("sk-ant-secret"));
        let e = env(&[
            ("ANTHROPIC_API_KEY", "k"),
            ("ANTHROPIC_BASE_URL", "https://proxy.example/anthropic"),
        ]);
        let c = choose(&e, &s).unwrap().unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "https://proxy.example/anthropic/v1/messages"
        );
        let e = env(&[
            ("CONDUCTOR_LLM", "ollama"),
            ("CONDUCTOR_OLLAMA_BASE_URL", "http://127.0.0.1:9"),
            ("OPENAI_API_KEY", "sk-never-sent"),
        ]);
        let c = choose(&e, &s).unwrap().unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        assert!(!c.has_key());
        // Settings win over the environment.
        s.backend = Some(LlmBackend::Ollama);
        s.model = Some("qwen3".into());
        s.temperature = Some(0.7);
        s.max_tokens = Some(300);
        s.token_cap = Some(4000);
        let c = choose(
            &env(&[("CONDUCTOR_LLM", "openai"), ("CONDUCTOR_LLM_MODEL", "m")]),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                c.backend,
                c.model.as_str(),
                c.temperature,
                c.max_tokens,
                c.token_cap
            ),
            (LlmBackend::Ollama, "qwen3", 0.7, 300, Some(4000))
        );
        s.temperature = Some(5.0);
        assert!(choose(&env(&[]), &s).unwrap_err().contains("temperature"));
    }

    #[test]
    fn ollama_host_forms() {
        let cases = [
            ("0.0.0.0", "http://127.0.0.1:11434/v1/chat/completions"),
            (
                "0.0.0.0:11434",
                "http://127.0.0.1:11434/v1/chat/completions",
            ),
            (
                "127.0.0.1:8000",
                "http://127.0.0.1:8000/v1/chat/completions",
            ),
            (
                "http://gpu-box:11434/",
                "http://gpu-box:11434/v1/chat/completions",
            ),
            ("gpu-box", "http://gpu-box:11434/v1/chat/completions"),
            (
                "https://ollama.example",
                "https://ollama.example/v1/chat/completions",
            ),
            ("[::]:11434", "http://[::1]:11434/v1/chat/completions"),
        ];
        for (host, want) in cases {
            assert_eq!(ollama_endpoint(host).unwrap().as_str(), want, "{host}");
        }
        assert!(ollama_endpoint("ftp://x").is_err());
    }

    #[test]
    fn visible_text_holds_back_reasoning() {
        let mut v = Visible::default();
        let none = Secrets::default();
        assert_eq!(v.advance("<thi", &none), None);
        assert_eq!(v.advance("<think>plan", &none), None);
        assert_eq!(v.advance("<think>plan</think>An", &none), Some("An".into()));
        assert_eq!(
            v.advance("<think>plan</think>Answer <", &none),
            Some("swer ".into())
        );
        assert_eq!(
            v.advance("<think>plan</think>Answer <b", &none),
            Some("<b".into())
        );
    }

    #[test]
    fn streamed_text_never_shows_a_secret_split_across_deltas() {
        let secrets = Secrets::new(["sk-live-123456"]);
        let mut v = Visible::default();
        let mut shown = String::new();
        let mut raw = String::new();
        for delta in [
            "Your key is sk-l",
            "ive-12",
            "3456 and ",
            "that is all there is to say about it.",
        ] {
            raw.push_str(delta);
            if let Some(new) = v.advance(&raw, &secrets) {
                shown.push_str(&new);
            }
            assert!(!shown.contains("sk-l"), "{shown}");
        }
        assert!(shown.starts_with("Your key is [redacted] and"), "{shown}");
    }

    #[test]
    fn errors_are_scrubbed_of_the_key() {
        let e = LlmError::Http(HttpError::KeyRejected {
            status: 401,
            message: Some("Incorrect API key provided: sk-secret-123".into()),
        })
        .redact(&Secrets::new(["sk-secret-123"]));
        assert!(!e.to_string().contains("sk-secret-123"));
        assert!(!format!("{e:?}").contains("sk-secret-123"));
        assert_eq!(e.kind(), "key_rejected");
    }
}
