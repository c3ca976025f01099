//! Settings: one schema, read from (later wins) defaults, `$XDG_CONFIG_HOME/conductor/config.toml`,
//! the environment, and (in the server) `initializationOptions` / `didChangeConfiguration`.
//!
//! The environment is captured once into an [`Env`] value instead of being read ad hoc, so tests and the
//! language server can supply their own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every search provider Conductor knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Tavily,
    Brave,
    Exa,
    Searxng,
    Wikipedia,
    Arxiv,
    Hackernews,
    Notes,
}

impl ProviderName {
    pub const ALL: [ProviderName; 8] = [
        ProviderName::Tavily,
        ProviderName::Brave,
        ProviderName::Exa,
        ProviderName::Searxng,
        ProviderName::Wikipedia,
        ProviderName::Arxiv,
        ProviderName::Hackernews,
        ProviderName::Notes,
    ];

    /// Providers that need neither a key nor a URL: the default on a fresh machine.
    pub const KEYLESS: [ProviderName; 3] = [
        ProviderName::Wikipedia,
        ProviderName::Hackernews,
        ProviderName::Arxiv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Tavily => "tavily",
            ProviderName::Brave => "brave",
            ProviderName::Exa => "exa",
            ProviderName::Searxng => "searxng",
            ProviderName::Wikipedia => "wikipedia",
            ProviderName::Arxiv => "arxiv",
            ProviderName::Hackernews => "hackernews",
            ProviderName::Notes => "notes",
        }
    }

    /// The NAME in `CONDUCTOR_<NAME>_BASE_URL`.
    pub fn env_name(self) -> &'static str {
        match self {
            ProviderName::Tavily => "TAVILY",
            ProviderName::Brave => "BRAVE",
            ProviderName::Exa => "EXA",
            ProviderName::Searxng => "SEARXNG",
            ProviderName::Wikipedia => "WIKIPEDIA",
            ProviderName::Arxiv => "ARXIV",
            ProviderName::Hackernews => "HACKERNEWS",
            ProviderName::Notes => "NOTES",
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for ProviderName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        ProviderName::ALL
            .into_iter()
            .find(|p| p.as_str() == s || (s == "searx" && *p == ProviderName::Searxng))
            .ok_or_else(|| {
                format!(
                    "unknown provider '{s}' (known: {})",
                    ProviderName::ALL.map(|p| p.as_str()).join(", ")
                )
            })
    }
}

/// Parses a comma list such as `tavily, brave,exa`, rejecting unknown names and dropping repeats.
pub fn parse_provider_list(list: &str) -> Result<Vec<ProviderName>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let name: ProviderName = part.parse()?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CitationStyle {
    /// `[Title](url) - provider, provider`, as in the seed report.
    #[default]
    Links,
    /// `[n]` markers and a numbered list.
    Numbered,
    /// `[^n]` markers and footnote definitions.
    Footnotes,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    #[default]
    Below,
    Replace,
    End,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LlmBackend {
    Openai,
    Anthropic,
    Ollama,
    #[default]
    None,
}

/// What a report does with a source whose page is dead (404/410, or its host does not exist).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeadLinks {
    /// Leave it out of the report, and name it among the dropped.
    #[default]
    Drop,
    /// Keep it, marked as dead.
    Mark,
    /// Keep it as if nothing were wrong.
    Keep,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    /// `None` here means "choose": the first back end with credentials, else none.
    pub backend: Option<LlmBackend>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Seconds for the whole synthesis call.
    pub timeout: Option<f64>,
    /// Upper bound on tokens (prompt + answer) one research may spend.
    pub token_cap: Option<u32>,
}

/// The settings schema. Field names are the keys of config.toml and of `initializationOptions`;
/// camelCase aliases are accepted for editors whose settings are camelCase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Providers to use; `None` = the default choice (configured keyed providers, else key-less ones).
    pub providers: Option<Vec<ProviderName>>,
    #[serde(alias = "maxSources")]
    pub max_sources: usize,
    /// Whole research deadline, seconds.
    pub timeout: f64,
    #[serde(alias = "citationStyle", alias = "style")]
    pub citation_style: CitationStyle,
    pub placement: Placement,
    pub llm: LlmSettings,
    /// Extra folders the `notes` provider searches (the workspace or current directory is always searched).
    #[serde(alias = "notesPaths")]
    pub notes_paths: Vec<PathBuf>,
    /// With a summary, list only the sources it cites.
    #[serde(alias = "citedOnly")]
    pub cited_only: bool,
    /// How many of the top sources the reading stage reads (0: none).
    pub read: usize,
    /// What happens to sources whose page is dead.
    #[serde(alias = "deadLinks")]
    pub dead_links: DeadLinks,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            providers: None,
            max_sources: 10,
            timeout: 30.0,
            citation_style: CitationStyle::Links,
            placement: Placement::Below,
            llm: LlmSettings::default(),
            notes_paths: Vec::new(),
            cited_only: false,
            read: 5,
            dead_links: DeadLinks::Drop,
        }
    }
}

/// A settings layer where every field is optional, so layers merge field by field.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SettingsLayer {
    pub providers: Option<ProvidersField>,
    #[serde(alias = "maxSources")]
    pub max_sources: Option<usize>,
    pub timeout: Option<f64>,
    #[serde(alias = "citationStyle", alias = "style")]
    pub citation_style: Option<CitationStyle>,
    pub placement: Option<Placement>,
    pub llm: Option<LlmLayer>,
    #[serde(alias = "notesPaths")]
    pub notes_paths: Option<Vec<PathBuf>>,
    #[serde(alias = "citedOnly")]
    pub cited_only: Option<bool>,
    pub read: Option<usize>,
    #[serde(alias = "deadLinks")]
    pub dead_links: Option<DeadLinks>,
}

/// Providers may be written as a list or as a comma string.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ProvidersField {
    List(Vec<String>),
    Comma(String),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct LlmLayer {
    pub backend: Option<LlmBackend>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    #[serde(alias = "maxTokens")]
    pub max_tokens: Option<u32>,
    pub timeout: Option<f64>,
    #[serde(alias = "tokenCap")]
    pub token_cap: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Applies one layer on top of `self`. Invalid values are reported, never silently ignored.
    pub fn apply(&mut self, layer: SettingsLayer) -> Result<(), ConfigError> {
        if let Some(p) = layer.providers {
            let list = match p {
                ProvidersField::List(v) => v.join(","),
                ProvidersField::Comma(s) => s,
            };
            let parsed = parse_provider_list(&list).map_err(ConfigError::Invalid)?;
            self.providers = if parsed.is_empty() {
                None
            } else {
                Some(parsed)
            };
        }
        if let Some(n) = layer.max_sources {
            self.max_sources = validate_max_sources(n).map_err(ConfigError::Invalid)?;
        }
        if let Some(t) = layer.timeout {
            self.timeout = validate_timeout(t).map_err(ConfigError::Invalid)?;
        }
        if let Some(s) = layer.citation_style {
            self.citation_style = s;
        }
        if let Some(p) = layer.placement {
            self.placement = p;
        }
        if let Some(llm) = layer.llm {
            let l = &mut self.llm;
            l.backend = llm.backend.or(l.backend);
            l.model = llm.model.or(l.model.take());
            l.temperature = llm.temperature.or(l.temperature);
            l.max_tokens = llm.max_tokens.or(l.max_tokens);
            l.timeout = llm.timeout.or(l.timeout);
            l.token_cap = llm.token_cap.or(l.token_cap);
        }
        if let Some(paths) = layer.notes_paths {
            self.notes_paths = paths;
        }
        if let Some(c) = layer.cited_only {
            self.cited_only = c;
        }
        if let Some(n) = layer.read {
            self.read = validate_read(n).map_err(ConfigError::Invalid)?;
        }
        if let Some(d) = layer.dead_links {
            self.dead_links = d;
        }
        Ok(())
    }

    /// Applies a JSON layer (initializationOptions, didChangeConfiguration).
    pub fn apply_json(&mut self, value: &serde_json::Value) -> Result<(), ConfigError> {
        let layer: SettingsLayer = serde_json::from_value(value.clone())
            .map_err(|e| ConfigError::Invalid(format!("settings: {e}")))?;
        self.apply(layer)
    }

    /// Applies the environment variables of PRODUCT.md §3.
    pub fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        let mut layer = SettingsLayer::default();
        if let Some(p) = env.get("CONDUCTOR_PROVIDERS") {
            layer.providers = Some(ProvidersField::Comma(p.to_string()));
        }
        if let Some(n) = env.get("CONDUCTOR_MAX_SOURCES") {
            layer.max_sources = Some(n.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "CONDUCTOR_MAX_SOURCES must be a whole number, got '{n}'"
                ))
            })?);
        }
        if let Some(t) = env.get("CONDUCTOR_TIMEOUT") {
            layer.timeout = Some(t.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "CONDUCTOR_TIMEOUT must be a number of seconds, got '{t}'"
                ))
            })?);
        }
        let mut llm = LlmLayer::default();
        if let Some(b) = env.get("CONDUCTOR_LLM") {
            llm.backend = Some(
                <LlmBackend as clap::ValueEnum>::from_str(b.trim(), true).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "CONDUCTOR_LLM must be one of openai, anthropic, ollama, none; got '{b}'"
                    ))
                })?,
            );
        }
        llm.model = env.get("CONDUCTOR_LLM_MODEL").map(str::to_string);
        if let Some(n) = env.get("CONDUCTOR_READ") {
            layer.read = Some(n.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!("CONDUCTOR_READ must be a whole number, got '{n}'"))
            })?);
        }
        layer.llm = Some(llm);
        self.apply(layer)
    }

    /// Defaults, then the config file, then the environment.
    pub fn load(env: &Env) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        if let Some(path) = config_file_path(env)
            && path.is_file()
        {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let layer: SettingsLayer = toml::from_str(&text).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.message().to_string(),
            })?;
            settings.apply(layer).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        }
        settings.apply_env(env)?;
        Ok(settings)
    }

    pub fn deadline(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

pub fn validate_max_sources(n: usize) -> Result<usize, String> {
    if (1..=100).contains(&n) {
        Ok(n)
    } else {
        Err(format!("max sources must be between 1 and 100, got {n}"))
    }
}

pub fn validate_read(n: usize) -> Result<usize, String> {
    if n <= MAX_READ {
        Ok(n)
    } else {
        Err(format!("read must be between 0 and {MAX_READ}, got {n}"))
    }
}

/// The most pages one research reads.
pub const MAX_READ: usize = 50;

/// `CONDUCTOR_FETCH_ALLOW` (tests only): a comma list of `ip:port` that page reading may reach although
/// they are loopback or private. Only URLs whose host is that very IP literal, on that port, match; names
/// never resolve to a private address. Not a setting: no config file or editor can open it.
pub fn fetch_allow(env: &Env) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
    let Some(list) = env.get("CONDUCTOR_FETCH_ALLOW") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "CONDUCTOR_FETCH_ALLOW must be a comma list of ip:port, got '{p}'"
                ))
            })
        })
        .collect()
}

pub fn validate_timeout(t: f64) -> Result<f64, String> {
    if t.is_finite() && (0.1..=600.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!(
            "timeout must be between 0.1 and 600 seconds, got {t}"
        ))
    }
}

/// `$XDG_CONFIG_HOME/conductor/config.toml` (or the platform's config dir).
pub fn config_file_path(env: &Env) -> Option<PathBuf> {
    let base = env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| PathBuf::from(h).join(".config")))
        .or_else(dirs::config_dir)?;
    Some(base.join("conductor").join("config.toml"))
}

/// Where the persistent store (hover data, provider cache) lives.
pub fn cache_dir(env: &Env) -> Option<PathBuf> {
    if let Some(d) = env.get("CONDUCTOR_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    env.get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .or_else(dirs::cache_dir)
        .map(|d| d.join("conductor"))
}

/// A snapshot of the environment variables Conductor reads. Empty values count as unset.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Env
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first of several aliases that is set.
    pub fn first(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// Every value that looks like a secret, so output can be checked (and scrubbed) for them.
    pub fn secrets(&self) -> Vec<String> {
        SECRET_VARS
            .iter()
            .filter_map(|k| self.get(k))
            .filter(|v| v.len() >= 4)
            .map(str::to_string)
            .collect()
    }
}

/// Environment variables that hold credentials.
pub const SECRET_VARS: &[&str] = &[
    "TAVILY_API_KEY",
    "BRAVE_API_KEY",
    "BRAVE_SEARCH_API_KEY",
    "EXA_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
];

/// The endpoint URL for an official API URL, honouring `CONDUCTOR_<NAME>_BASE_URL`: the override replaces
/// scheme, host and port, and the official path is appended to the override's path.
pub fn endpoint(env: &Env, env_name: &str, official: &str) -> Result<url::Url, String> {
    let official_url = url::Url::parse(official).map_err(|e| format!("{official}: {e}"))?;
    let var = format!("CONDUCTOR_{env_name}_BASE_URL");
    let Some(base) = env.get(&var) else {
        return Ok(official_url);
    };
    let mut url =
        url::Url::parse(base).map_err(|e| format!("{var}: '{base}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{var}: only http and https URLs are allowed"));
    }
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}{}", official_url.path()));
    url.set_query(official_url.query());
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_override_keeps_official_path() {
        let env = Env::from_pairs([("CONDUCTOR_BRAVE_BASE_URL", "http://127.0.0.1:9000/x")]);
        let url = endpoint(
            &env,
            "BRAVE",
            "https://api.search.brave.com/res/v1/web/search",
        )
        .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/x/res/v1/web/search");
        let url = endpoint(
            &Env::default(),
            "BRAVE",
            "https://api.search.brave.com/res/v1/web/search",
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.search.brave.com/res/v1/web/search"
        );
    }

    #[test]
    fn layers_merge_and_reject_bad_values() {
        let mut s = Settings::default();
        s.apply_json(&serde_json::json!({"maxSources": 5, "providers": ["brave", "exa"]}))
            .unwrap();
        assert_eq!(s.max_sources, 5);
        assert_eq!(
            s.providers,
            Some(vec![ProviderName::Brave, ProviderName::Exa])
        );
        let env = Env::from_pairs([
            ("CONDUCTOR_PROVIDERS", "wikipedia"),
            ("CONDUCTOR_TIMEOUT", "7"),
        ]);
        s.apply_env(&env).unwrap();
        assert_eq!(s.providers, Some(vec![ProviderName::Wikipedia]));
        assert_eq!(s.timeout, 7.0);
        let err = s
            .apply_env(&Env::from_pairs([("CONDUCTOR_PROVIDERS", "bing")]))
            .unwrap_err();
        assert!(err.to_string().contains("unknown provider 'bing'"));
    }

    #[test]
    fn reading_settings_from_each_layer() {
        let mut s = Settings::default();
        assert_eq!((s.read, s.dead_links), (5, DeadLinks::Drop));
        s.apply_json(&serde_json::json!({"read": 3, "deadLinks": "mark"}))
            .unwrap();
        assert_eq!((s.read, s.dead_links), (3, DeadLinks::Mark));
        let layer: SettingsLayer = toml::from_str("read = 0\ndead_links = \"keep\"").unwrap();
        s.apply(layer).unwrap();
        assert_eq!((s.read, s.dead_links), (0, DeadLinks::Keep));
        s.apply_env(&Env::from_pairs([("CONDUCTOR_READ", "7")]))
            .unwrap();
        assert_eq!(s.read, 7);
        assert!(
            s.apply_env(&Env::from_pairs([("CONDUCTOR_READ", "many")]))
                .is_err()
        );
        assert!(s.apply_json(&serde_json::json!({"read": 500})).is_err());
        assert!(
            s.apply_json(&serde_json::json!({"dead_links": "hide"}))
                .is_err()
        );
    }

    #[test]
    fn fetch_allow_is_a_list_of_socket_addresses() {
        assert!(fetch_allow(&Env::default()).unwrap().is_empty());
        let env = Env::from_pairs([("CONDUCTOR_FETCH_ALLOW", "127.0.0.1:8080, [::1]:9000")]);
        assert_eq!(
            fetch_allow(&env).unwrap(),
            vec![
                "127.0.0.1:8080".parse().unwrap(),
                "[::1]:9000".parse().unwrap()
            ]
        );
        let bad = Env::from_pairs([("CONDUCTOR_FETCH_ALLOW", "localhost:80")]);
        assert!(fetch_allow(&bad).is_err());
    }
}
