//! Settings: one schema, read from (later wins) defaults, `$XDG_CONFIG_HOME/conductor/config.toml`,
//! the environment, and (in the server) `initializationOptions` / `didChangeConfiguration`.
//!
//! The environment is captured once into an [`Env`] value instead of being read ad hoc, so tests and the
//! language server can supply their own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Provider names and their facts live in one table, [`crate::registry`].
pub use crate::registry::ProviderName;
use crate::registry::{Needs, PROVIDERS, UnknownProvider};

/// Parses a comma list such as `tavily, brave,exa`, rejecting unknown names and dropping repeats.
pub fn parse_provider_list(list: &str) -> Result<Vec<ProviderName>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let name: ProviderName = part.parse().map_err(|e: UnknownProvider| {
            if looks_secret(&e.given) {
                let known = crate::registry::names();
                format!("unknown provider: a value that looks like a credential (not shown; known: {known})")
            } else {
                e.to_string()
            }
        })?;
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

/// `[verify]`: the optional judge model that checks the summary's sentences the deterministic check
/// could not mark supported. Same back ends as `[llm]` (and the same credentials and endpoints from the
/// environment); off unless `backend` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifySettings {
    /// `None` or `none`: no judge.
    pub backend: Option<LlmBackend>,
    /// Default: `bespoke-minicheck` on Ollama, else the `[llm]` back end's default model.
    pub model: Option<String>,
    /// Seconds for all the judge's calls of one research (within the research deadline).
    pub timeout: Option<f64>,
    /// Answer tokens per call (Yes/No needs few).
    pub max_tokens: Option<u32>,
    /// Calls in flight at once.
    pub concurrency: Option<usize>,
}

/// `[prices]`: the user's prices, over the built-in table (`cost` module; README "Cost"). Keys are
/// provider names (US dollars per search; for Tavily, per credit: a basic search is 1 credit) and
/// `backend:model` for LLMs (`"openai:gpt-4o-mini" = { input = …, output = … }`, US dollars per
/// million prompt and answer tokens).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prices {
    pub providers: BTreeMap<ProviderName, f64>,
    /// By `backend:model`, the back end lowercase (`openai`, `anthropic`, `ollama`).
    pub llm: BTreeMap<String, TokenPrice>,
}

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenPrice {
    /// Per million prompt tokens.
    pub input: f64,
    /// Per million answer tokens.
    pub output: f64,
}

/// The most a `[prices]` entry may say: US dollars per search, and per million tokens.
pub const MAX_SEARCH_PRICE: f64 = 10.0;
pub const MAX_TOKEN_PRICE: f64 = 1000.0;

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
    pub verify: VerifySettings,
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
    /// How long provider answers and read pages are reused, in hours (0: no cache).
    #[serde(alias = "cacheHours")]
    pub cache_hours: f64,
    /// The most one research may spend, in US dollars (None: no cap).
    #[serde(alias = "maxCost")]
    pub max_cost: Option<f64>,
    /// The user's prices, over the built-in table.
    pub prices: Prices,
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
            verify: VerifySettings::default(),
            notes_paths: Vec::new(),
            cited_only: false,
            read: 5,
            dead_links: DeadLinks::Drop,
            cache_hours: 24.0,
            max_cost: None,
            prices: Prices::default(),
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
    pub verify: Option<VerifyLayer>,
    #[serde(alias = "notesPaths")]
    pub notes_paths: Option<Vec<PathBuf>>,
    #[serde(alias = "citedOnly")]
    pub cited_only: Option<bool>,
    pub read: Option<usize>,
    #[serde(alias = "deadLinks")]
    pub dead_links: Option<DeadLinks>,
    #[serde(alias = "cacheHours")]
    pub cache_hours: Option<f64>,
    #[serde(alias = "maxCost")]
    pub max_cost: Option<f64>,
    /// Checked entry by entry in `apply` (`parse_prices`), so each error names its key.
    pub prices: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Providers may be written as a list or as a comma string.
#[derive(Clone, Debug)]
pub enum ProvidersField {
    List(Vec<String>),
    Comma(String),
}

/// Written by hand instead of `#[serde(untagged)]` so that a wrong type is an error that says what is
/// expected ("a list of provider names or a comma-separated string") and keeps the path of the setting.
impl<'de> Deserialize<'de> for ProvidersField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ProvidersField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of provider names or a comma-separated string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ProvidersField, E> {
                Ok(ProvidersField::Comma(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ProvidersField, A::Error> {
                let mut list = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    list.push(name);
                }
                Ok(ProvidersField::List(list))
            }
        }
        d.deserialize_any(Visitor)
    }
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

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct VerifyLayer {
    pub backend: Option<LlmBackend>,
    pub model: Option<String>,
    pub timeout: Option<f64>,
    #[serde(alias = "maxTokens")]
    pub max_tokens: Option<u32>,
    pub concurrency: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read, does not parse, or holds a bad setting (the message names it).
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// A bad setting; the message starts with its name (`max_sources: ...`, `CONDUCTOR_TIMEOUT ...`).
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
            let parsed = parse_provider_list(&list)
                .map_err(|e| ConfigError::Invalid(format!("providers: {e}")))?;
            self.providers = if parsed.is_empty() {
                None
            } else {
                Some(parsed)
            };
        }
        if let Some(n) = layer.max_sources {
            self.max_sources = validate_max_sources(n)
                .map_err(|e| ConfigError::Invalid(format!("max_sources: {e}")))?;
        }
        if let Some(t) = layer.timeout {
            self.timeout =
                validate_timeout(t).map_err(|e| ConfigError::Invalid(format!("timeout: {e}")))?;
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
        if let Some(v) = layer.verify {
            if let Some(t) = v.timeout
                && !(t.is_finite() && (0.1..=600.0).contains(&t))
            {
                return Err(ConfigError::Invalid(format!(
                    "verify timeout must be between 0.1 and 600 seconds, got {t}"
                )));
            }
            if let Some(c) = v.concurrency
                && !(1..=16).contains(&c)
            {
                return Err(ConfigError::Invalid(format!(
                    "verify concurrency must be between 1 and 16, got {c}"
                )));
            }
            let s = &mut self.verify;
            s.backend = v.backend.or(s.backend);
            s.model = v.model.or(s.model.take());
            s.timeout = v.timeout.or(s.timeout);
            s.max_tokens = v.max_tokens.or(s.max_tokens);
            s.concurrency = v.concurrency.or(s.concurrency);
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
        if let Some(h) = layer.cache_hours {
            self.cache_hours = validate_cache_hours(h).map_err(ConfigError::Invalid)?;
        }
        if let Some(c) = layer.max_cost {
            self.max_cost = validate_max_cost(c).map_err(ConfigError::Invalid)?;
        }
        if let Some(p) = layer.prices {
            // A later layer changes only the prices it names.
            let p = parse_prices(&p).map_err(ConfigError::Invalid)?;
            self.prices.providers.extend(p.providers);
            self.prices.llm.extend(p.llm);
        }
        Ok(())
    }

    /// Applies a JSON layer (initializationOptions, didChangeConfiguration). Unknown keys and wrong types
    /// are errors that name the setting.
    pub fn apply_json(&mut self, value: &serde_json::Value) -> Result<(), ConfigError> {
        let layer = parse_layer(value, Syntax::Json).map_err(ConfigError::Invalid)?;
        self.apply(layer)
    }

    /// Applies the environment variables of PRODUCT.md §3. Errors name the variable.
    pub fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        let mut layer = SettingsLayer::default();
        if let Some(p) = env.get("CONDUCTOR_PROVIDERS") {
            let list = parse_provider_list(p)
                .map_err(|e| ConfigError::Invalid(format!("CONDUCTOR_PROVIDERS: {e}")))?;
            layer.providers = Some(ProvidersField::List(
                list.iter().map(|p| p.as_str().to_string()).collect(),
            ));
        }
        if let Some(n) = env.get("CONDUCTOR_MAX_SOURCES") {
            let bad = || {
                ConfigError::Invalid(format!(
                    "CONDUCTOR_MAX_SOURCES must be a whole number from 1 to 100, got {}",
                    quote("CONDUCTOR_MAX_SOURCES", n)
                ))
            };
            let n: usize = n.trim().parse().map_err(|_| bad())?;
            layer.max_sources = Some(validate_max_sources(n).map_err(|_| bad())?);
        }
        if let Some(t) = env.get("CONDUCTOR_TIMEOUT") {
            let bad = || {
                ConfigError::Invalid(format!(
                    "CONDUCTOR_TIMEOUT must be a number of seconds from 0.1 to 600, got {}",
                    quote("CONDUCTOR_TIMEOUT", t)
                ))
            };
            let t: f64 = t.trim().parse().map_err(|_| bad())?;
            layer.timeout = Some(validate_timeout(t).map_err(|_| bad())?);
        }
        let mut llm = LlmLayer::default();
        if let Some(b) = env.get("CONDUCTOR_LLM") {
            llm.backend = Some(
                <LlmBackend as clap::ValueEnum>::from_str(b.trim(), true).map_err(|_| {
                    ConfigError::Invalid(format!(
                        "CONDUCTOR_LLM must be one of openai, anthropic, ollama, none; got {}",
                        quote("CONDUCTOR_LLM", b)
                    ))
                })?,
            );
        }
        llm.model = env.get("CONDUCTOR_LLM_MODEL").map(str::to_string);
        if let Some(h) = env.get("CONDUCTOR_CACHE_HOURS") {
            layer.cache_hours = Some(h.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!("CONDUCTOR_CACHE_HOURS must be a number, got '{h}'"))
            })?);
        }
        if let Some(c) = env.get("CONDUCTOR_MAX_COST") {
            layer.max_cost = Some(c.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "CONDUCTOR_MAX_COST must be a number of US dollars, got '{c}'"
                ))
            })?);
        }
        if let Some(n) = env.get("CONDUCTOR_READ") {
            layer.read = Some(n.trim().parse().map_err(|_| {
                ConfigError::Invalid(format!("CONDUCTOR_READ must be a whole number, got '{n}'"))
            })?);
        }
        layer.llm = Some(llm);
        self.apply(layer)
    }

    /// Defaults, then the config file, then the environment. A config file that cannot be read or
    /// parsed, a wrong type and an unknown key are errors naming the file and the setting.
    pub fn load(env: &Env) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        if let Some(path) = config_file_path(env)
            && path.is_file()
        {
            let file_error = |message: String| ConfigError::File {
                path: path.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| file_error(e.to_string()))?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| {
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                let message = e.message().trim().replace('\n', "; ");
                // The key of that line, if it has one (`max_sources = ten`), so the setting is named.
                let key = line
                    .and_then(|l| text.lines().nth(l - 1))
                    .and_then(|t| t.split_once('='))
                    .map(|(k, _)| k.trim())
                    .filter(|k| {
                        !k.is_empty()
                            && k.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                    });
                file_error(match (line, key) {
                    (Some(l), Some(k)) => format!("line {l}, {k}: {message}"),
                    (Some(l), None) => format!("line {l}: {message}"),
                    _ => message,
                })
            })?;
            // One checker for both syntaxes: the TOML table as a JSON value.
            let value = serde_json::to_value(&table).map_err(|e| file_error(e.to_string()))?;
            let layer = parse_layer(&value, Syntax::Toml).map_err(file_error)?;
            settings
                .apply(layer)
                .map_err(|e| file_error(e.to_string()))?;
        }
        settings.apply_env(env)?;
        Ok(settings)
    }

    pub fn deadline(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

/// How a layer was written, to name types the way its author knows them.
#[derive(Clone, Copy, PartialEq)]
enum Syntax {
    Toml,
    Json,
}

impl Syntax {
    fn table(self) -> &'static str {
        match self {
            Syntax::Toml => "a table",
            Syntax::Json => "an object",
        }
    }
}

/// One step of a setting's path: a key, or an index in a list.
enum Step {
    Key(String),
    Index(usize),
}

fn path_name(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        "settings".into()
    } else {
        out
    }
}

/// Parses one settings layer. Every error names the setting: a wrong type
/// (`max_sources: expected a whole number, got the string "ten"`) or an unknown key
/// (`max_source: unknown setting; did you mean max_sources?`). A value is quoted only when neither it
/// nor its key looks like a credential.
fn parse_layer(value: &serde_json::Value, syntax: Syntax) -> Result<SettingsLayer, String> {
    let mut unknown: Vec<Vec<String>> = Vec::new();
    let mut on_ignored = |path: serde_ignored::Path| unknown.push(ignored_keys(&path));
    let result: Result<SettingsLayer, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut on_ignored));
    match result {
        Err(e) => {
            let path: Vec<Step> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                    _ => None,
                })
                .collect();
            let name = path_name(&path);
            let found = lookup(value, &path).map(|v| describe_value(v, &name, syntax));
            let message = e.into_inner().to_string();
            let expected = message
                .split_once(", expected ")
                .map(|(_, e)| expected_name(e, syntax));
            Err(match (expected, found) {
                (Some(e), Some(f)) => format!("{name}: expected {e}, got {f}"),
                (Some(e), None) => format!("{name}: expected {e}"),
                (None, Some(f)) => format!("{name}: invalid value: {f}"),
                (None, None) => format!("{name}: invalid value"),
            })
        }
        Ok(layer) if unknown.is_empty() => Ok(layer),
        Ok(_) => Err(unknown
            .iter()
            .map(|keys| unknown_setting(keys))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// The keys of a path reported by serde_ignored (`Some`/newtype steps carry no name).
fn ignored_keys(path: &serde_ignored::Path) -> Vec<String> {
    let mut keys = Vec::new();
    let mut p = path;
    loop {
        match p {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Map { parent, key } => {
                keys.push(key.clone());
                p = parent;
            }
            serde_ignored::Path::Seq { parent, index } => {
                keys.push(format!("[{index}]"));
                p = parent;
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => p = parent,
        }
    }
    keys.reverse();
    keys
}

fn unknown_setting(keys: &[String]) -> String {
    let name = keys.join(".");
    let Some((last, parent)) = keys.split_last() else {
        return "unknown setting".into();
    };
    let known = known_keys(parent);
    let lower = last.to_ascii_lowercase();
    if ["key", "token", "secret", "password"]
        .iter()
        .any(|w| lower.contains(w))
        && !known.is_empty()
        && suggest(last, known).is_none()
    {
        return format!(
            "{name}: unknown setting; API keys are read only from the environment (e.g. TAVILY_API_KEY)"
        );
    }
    match suggest(last, known) {
        Some(s) => {
            let mut full = parent.to_vec();
            full.push(s.to_string());
            format!("{name}: unknown setting; did you mean {}?", full.join("."))
        }
        None if known.is_empty() => format!("{name}: unknown setting"),
        None => format!(
            "{name}: unknown setting (known: {})",
            known
                .iter()
                .filter(|k| !k.chars().any(|c| c.is_ascii_uppercase()))
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The keys a table accepts (aliases included). A new nested table of the schema adds its line here;
/// without one, an unknown key in it is still an error, only without a suggestion.
fn known_keys(parent: &[String]) -> &'static [&'static str] {
    match parent {
        [] => fields_of::<SettingsLayer>(),
        [t] if t == "llm" => fields_of::<LlmLayer>(),
        _ => &[],
    }
}

/// Whether `key` is a top-level setting, or close enough to one to be a misspelling of it.
pub fn is_setting_name(key: &str) -> bool {
    let known = known_keys(&[]);
    known.contains(&key) || suggest(key, known).is_some()
}

/// The closest known key: the same letters ignoring case and `_`/`-` (camelCase for snake_case), or a
/// Jaro-Winkler similarity of at least 0.85 (a dropped, doubled or swapped letter; a prefix).
fn suggest(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    let k = norm(key);
    known
        .iter()
        .map(|cand| (strsim::jaro_winkler(&k, &norm(cand)), *cand))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, cand)| cand)
}

/// The field names (aliases included) that serde's derive gives a struct, read by asking it to
/// deserialize from a deserializer that only records them. Hand-written: a dozen lines, where the
/// crate that offers it (serde-aux) brings much more.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor, value::Error};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            *self.0 = fields;
            Err(Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

fn lookup<'a>(value: &'a serde_json::Value, path: &[Step]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

/// What was found, for an error message.
fn describe_value(v: &serde_json::Value, name: &str, syntax: Syntax) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) if is_secret(name, s) => {
            "a string that looks like a credential (not shown)".into()
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("{b}"),
        Value::Null => "null".into(),
        Value::Array(_) => "a list".into(),
        // How the toml crate serialises a date.
        Value::Object(o) if o.contains_key("$__toml_private_datetime") => "a date".into(),
        Value::Object(_) => syntax.table().into(),
    }
}

/// Serde's name for an expected type, in the words of the settings documentation.
fn expected_name(expected: &str, syntax: Syntax) -> String {
    match expected.trim() {
        "usize" | "u8" | "u16" | "u32" | "u64" | "u128" | "isize" | "i8" | "i16" | "i32"
        | "i64" | "i128" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        e if e.starts_with("struct ") || e == "a map" => syntax.table().into(),
        e => e.replace('`', ""),
    }
}

/// A value as an error message may show it: quoted, unless it or the name of its setting looks like a
/// credential (a key put in the wrong place must never be echoed to a terminal, a log or an editor).
pub fn quote(setting: &str, value: &str) -> String {
    if is_secret(setting, value) {
        "a value that looks like a credential (not shown)".into()
    } else {
        format!("{value:?}")
    }
}

fn is_secret(setting: &str, value: &str) -> bool {
    let name = setting.to_ascii_lowercase();
    ["key", "secret", "password", "credential", "auth", "bearer"]
        .iter()
        .any(|w| name.contains(w))
        || looks_secret(value)
}

/// Long mixed letters and digits with no spaces, a known key prefix, or just very long: it may be a
/// credential. Errs on the side of not showing.
fn looks_secret(value: &str) -> bool {
    let v = value.trim();
    let prefixed = [
        "sk-", "tvly-", "BSA", "Bearer ", "xai-", "gsk_", "hf_", "ghp_",
    ]
    .iter()
    .any(|p| v.starts_with(p) && v.len() > p.len() + 4);
    let compact = !v.chars().any(char::is_whitespace);
    let mixed = v.chars().any(|c| c.is_ascii_digit()) && v.chars().any(|c| c.is_ascii_alphabetic());
    prefixed || (compact && mixed && v.chars().count() >= 16) || v.chars().count() > 64
}

pub fn validate_max_sources(n: usize) -> Result<usize, String> {
    if (1..=100).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between 1 and 100, got {n}"))
    }
}

/// The longest a cached answer is reused: a year.
pub const MAX_CACHE_HOURS: f64 = 24.0 * 366.0;

pub fn validate_cache_hours(h: f64) -> Result<f64, String> {
    if h.is_finite() && (0.0..=MAX_CACHE_HOURS).contains(&h) {
        Ok(h)
    } else {
        Err(format!(
            "cache_hours must be between 0 and {MAX_CACHE_HOURS} (0 turns the cache off), got {h}"
        ))
    }
}

/// `max_cost` in dollars: 0 allows only free calls; None (unset) is no cap.
pub fn validate_max_cost(c: f64) -> Result<Option<f64>, String> {
    if c.is_finite() && (0.0..=10_000.0).contains(&c) {
        Ok(Some(c))
    } else {
        Err(format!(
            "max_cost must be a number of US dollars between 0 and 10000, got {c}"
        ))
    }
}

/// Checks a `[prices]` table entry by entry; every error names its entry (`prices.bravee: unknown
/// provider; did you mean brave?`, `prices."openai:m": expected { input = …, output = … }`).
pub fn parse_prices(table: &serde_json::Map<String, serde_json::Value>) -> Result<Prices, String> {
    let mut prices = Prices::default();
    let number = |v: &serde_json::Value, max: f64| {
        v.as_f64()
            .filter(|x| x.is_finite() && (0.0..=max).contains(x))
    };
    for (key, value) in table {
        let shown = if looks_secret(key) {
            "a key that looks like a credential (not shown)".to_string()
        } else if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            key.clone()
        } else {
            format!("{key:?}")
        };
        let name = format!("prices.{shown}");
        if let Some((backend, model)) = key.split_once(':') {
            let backend = backend.trim().to_ascii_lowercase();
            if !["openai", "anthropic", "ollama"].contains(&backend.as_str()) {
                return Err(format!(
                    "{name}: unknown LLM back end '{backend}' (an LLM price is keyed \"backend:model\", backend one of openai, anthropic, ollama)"
                ));
            }
            let model = model.trim();
            if model.is_empty() {
                return Err(format!(
                    "{name}: the model is missing (\"{backend}:<model>\")"
                ));
            }
            let expected = format!(
                "{name}: expected {{ input = <number>, output = <number> }}, US dollars per million prompt and answer tokens (0 to {MAX_TOKEN_PRICE})"
            );
            let Some(fields) = value.as_object() else {
                return Err(format!(
                    "{expected}, got {}",
                    describe_value(value, &name, Syntax::Toml)
                ));
            };
            if let Some(other) = fields.keys().find(|k| *k != "input" && *k != "output") {
                return Err(format!(
                    "{expected}; {} is not one of them",
                    quote("prices", other)
                ));
            }
            let (Some(input), Some(output)) = (
                fields.get("input").and_then(|v| number(v, MAX_TOKEN_PRICE)),
                fields
                    .get("output")
                    .and_then(|v| number(v, MAX_TOKEN_PRICE)),
            ) else {
                return Err(expected);
            };
            prices
                .llm
                .insert(format!("{backend}:{model}"), TokenPrice { input, output });
            continue;
        }
        let provider: ProviderName = key.parse().map_err(|_| {
            let names: Vec<&'static str> = ProviderName::all().map(ProviderName::as_str).collect();
            match suggest(key, &names) {
                Some(s) => format!("{name}: unknown provider; did you mean {s}?"),
                None => format!(
                    "{name}: unknown provider (known: {}; an LLM's price is keyed \"backend:model\")",
                    crate::registry::names()
                ),
            }
        })?;
        let Some(usd) = number(value, MAX_SEARCH_PRICE) else {
            return Err(format!(
                "{name}: expected a number of US dollars per search (0 to {MAX_SEARCH_PRICE}), got {}",
                describe_value(value, &name, Syntax::Toml)
            ));
        };
        prices.providers.insert(provider, usd);
    }
    Ok(prices)
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
        Err(format!("must be between 0.1 and 600 seconds, got {t}"))
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

    /// Every value that looks like a secret, so output can be checked (and scrubbed) for them: the keys
    /// of [`secret_vars`], and the user info (user, password, and `user:pass`) written in any URL setting
    /// (`SEARXNG_URL`, `*_BASE_URL`, `OLLAMA_HOST`, ...), as written and percent-decoded. Values shorter
    /// than 4 characters are left out: scrubbing them would mangle ordinary words.
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = secret_vars()
            .filter_map(|k| self.get(k))
            .map(str::to_string)
            .collect();
        for (key, value) in &self.vars {
            if key.ends_with("_URL") || key.ends_with("_HOST") {
                out.extend(userinfo_secrets(value));
            }
        }
        out.retain(|v| v.chars().count() >= 4);
        out.sort();
        out.dedup();
        out
    }
}

/// The user, password and `user:pass` of the user info in a URL-like value (`scheme://user:pass@host`,
/// or `user:pass@host` with no scheme), as written and percent-decoded. Read from the text rather than
/// parsed, so a value the URL parser rejects is still covered.
fn userinfo_secrets(value: &str) -> Vec<String> {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((userinfo, _host)) = authority.rsplit_once('@') else {
        return Vec::new();
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut out = vec![userinfo.to_string(), decode(userinfo)];
    for part in [user, pass] {
        out.push(part.to_string());
        out.push(decode(part));
    }
    out.push(format!("{}:{}", decode(user), decode(pass)));
    out.retain(|s| !s.is_empty());
    out
}

/// Environment variables that hold credentials: every key of the providers' table (aliases included)
/// and the LLM back ends' keys.
pub fn secret_vars() -> impl Iterator<Item = &'static str> {
    PROVIDERS
        .iter()
        .filter(|p| p.needs == Needs::Key)
        .flat_map(|p| p.env.iter().copied())
        .chain(["OPENAI_API_KEY", "ANTHROPIC_API_KEY"])
}

/// The endpoint URL for an official API URL, honouring `CONDUCTOR_<NAME>_BASE_URL`: the override replaces
/// scheme, host and port, and the official path is appended to the override's path.
pub fn endpoint(env: &Env, env_name: &str, official: &str) -> Result<url::Url, String> {
    let official_url = url::Url::parse(official).map_err(|e| format!("{official}: {e}"))?;
    let var = format!("CONDUCTOR_{env_name}_BASE_URL");
    let Some(base) = env.get(&var) else {
        return Ok(official_url);
    };
    join_base(&var, base, official_url.path(), official_url.query())
}

/// `base` (a URL setting such as `http://127.0.0.1:9000/x` or an SDK-style `http://localhost:11434/v1`)
/// with `path` appended to its path and `query` as its query; an error naming `var` (without the URL's
/// user info) when `base` is not an http(s) URL.
pub fn join_base(
    var: &str,
    base: &str,
    path: &str,
    query: Option<&str>,
) -> Result<url::Url, String> {
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
    url.set_query(query);
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
    fn empty_layers_as_editors_encode_them_are_valid() {
        // Neovim may encode an empty Lua table as [] or {}.
        let mut s = Settings::default();
        s.apply_json(&serde_json::json!([])).unwrap();
        s.apply_json(&serde_json::json!({})).unwrap();
        s.apply_json(&serde_json::json!({"llm": {}, "maxSources": 3}))
            .unwrap();
        assert_eq!(s.max_sources, 3);
    }

    #[test]
    fn suggestions_and_quoting() {
        assert_eq!(suggest("max_source", known_keys(&[])), Some("max_sources"));
        assert_eq!(suggest("Max-Sources", known_keys(&[])), Some("max_sources"));
        assert_eq!(suggest("provider", known_keys(&[])), Some("providers"));
        assert_eq!(suggest("pylsp", known_keys(&[])), None);
        assert_eq!(
            suggest("modle", known_keys(&["llm".to_string()])),
            Some("model")
        );
        assert!(known_keys(&[]).contains(&"maxSources"), "aliases are known");
        assert_eq!(quote("timeout", "soon"), "\"soon\"");
        for secret in [
            "sk-proj-abcdef123456",
            "tvly-dev-abcdef",
            "BSAx9d8f7g6h5j4k3l2",
        ] {
            assert!(!quote("providers", secret).contains(secret));
        }
        assert!(!quote("api_key", "short").contains("short"));
    }

    #[test]
    fn verify_table_is_read_merged_and_checked() {
        let mut s = Settings::default();
        assert_eq!(s.verify, VerifySettings::default());
        let layer: SettingsLayer = toml::from_str(
            "[verify]\nbackend = \"ollama\"\nmodel = \"bespoke-minicheck\"\ntimeout = 20\nconcurrency = 2\n",
        )
        .unwrap();
        s.apply(layer).unwrap();
        assert_eq!(s.verify.backend, Some(LlmBackend::Ollama));
        assert_eq!(s.verify.model.as_deref(), Some("bespoke-minicheck"));
        assert_eq!(
            (s.verify.timeout, s.verify.concurrency),
            (Some(20.0), Some(2))
        );
        // A later layer changes only what it names.
        s.apply_json(&serde_json::json!({"verify": {"maxTokens": 32}}))
            .unwrap();
        assert_eq!(s.verify.max_tokens, Some(32));
        assert_eq!(s.verify.backend, Some(LlmBackend::Ollama));
        let err = s
            .apply_json(&serde_json::json!({"verify": {"concurrency": 0}}))
            .unwrap_err();
        assert!(err.to_string().contains("verify concurrency"));
        assert!(
            s.apply_json(&serde_json::json!({"verify": {"backend": "gpt"}}))
                .is_err()
        );
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
    fn prices_are_read_merged_by_entry_and_checked() {
        let mut s = Settings::default();
        let layer: SettingsLayer = toml::from_str(
            "[prices]\ntavily = 0.0075\n\"openai:gpt-4o-mini\" = { input = 0.5, output = 1.5 }\n",
        )
        .unwrap();
        s.apply(layer).unwrap();
        assert_eq!(s.prices.providers[&ProviderName::Tavily], 0.0075);
        let price = TokenPrice {
            input: 0.5,
            output: 1.5,
        };
        assert_eq!(s.prices.llm["openai:gpt-4o-mini"], price);
        // A later layer (the editor's JSON) changes only the entries it names; an alias names its provider.
        s.apply_json(&serde_json::json!({"prices": {"searx": 0.001, "Ollama:Llama3.2": {"input": 0, "output": 0}}}))
            .unwrap();
        assert_eq!(s.prices.providers[&ProviderName::Tavily], 0.0075);
        assert_eq!(s.prices.providers[&ProviderName::Searxng], 0.001);
        assert!(s.prices.llm.contains_key("ollama:Llama3.2"));
        let err = |v: serde_json::Value| s.clone().apply_json(&v).unwrap_err().to_string();
        assert_eq!(
            err(serde_json::json!({"prices": {"tavly": 1}})),
            "prices.tavly: unknown provider; did you mean tavily?"
        );
        assert!(
            err(serde_json::json!({"prices": {"exa": 11}}))
                .contains("(0 to 10), got the number 11")
        );
        assert!(
            err(serde_json::json!({"prices": {"openai:": {"input": 1, "output": 1}}}))
                .contains("the model is missing")
        );
        assert!(
            err(serde_json::json!({"prices": {"anthropic:m": {"input": -1, "output": 1}}}))
                .starts_with("prices.\"anthropic:m\": expected")
        );
        assert_eq!(
            err(serde_json::json!({"prices": []})),
            "prices: expected an object, got a list"
        );
        let secret = "sk-proj-abcdef1234567890";
        assert!(!err(serde_json::json!({"prices": {secret: 1}})).contains(secret));
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
