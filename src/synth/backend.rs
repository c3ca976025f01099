//! The back end: which LLM a research uses (settings, then the environment), its endpoint, model and
//! limits, and what the `providers` listing says about it.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Env, LlmBackend, LlmSettings};

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
    pub(super) api_key: Option<String>,
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
    crate::config::join_base(var, base, path, None)
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

/// The summary as plain text with `[n]` markers, blocks separated by blank lines, bullets by `- `.
/// The back end a research should use: `None` when no LLM is configured, `Some(Err(why))` when one is
/// chosen but unusable (the report then says why there is no summary).
pub fn configured(env: &Env, settings: &LlmSettings) -> Option<Result<LlmConfig, String>> {
    choose(env, settings).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
