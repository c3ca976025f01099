//! Settings in the server: defaults, config file and environment (`Settings::load`), then
//! `initializationOptions`, then the latest `workspace/didChangeConfiguration` (later wins).
//!
//! Invalid settings (a bad config file, an unknown key, a wrong type) are never replaced by defaults:
//! the error is shown to the user once (`window/showMessage`, naming the setting) and research is
//! refused until the settings are valid, so a topic is never sent to providers the user did not choose.
//! A layer that is invalid is dropped; the next valid `didChangeConfiguration` clears its error, and each
//! change reads the config file again, so a fixed file is picked up too.

use std::sync::RwLock;

use serde_json::Value;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc;
use tower_lsp_server::ls_types::MessageType;

use crate::config::{ConfigError, Env, Settings};

/// The settings section of a client payload: `{"settings":{"conductor":{..}}}`, `{"settings":{..}}`,
/// `{"conductor":{..}}` or the section itself. `None` for null (a client that pulls settings), and for a
/// `{"settings":{..}}` that holds only other tools' sections (Emacs' eglot sends its whole workspace
/// configuration to every server): none of its keys is a setting or a near miss of one.
pub fn section(value: &Value) -> Option<&Value> {
    let mut v = value;
    let mut wrapped = false;
    if let Some(inner) = v.get("settings") {
        v = inner;
        wrapped = true;
    }
    if let Some(inner) = v.get("conductor") {
        v = inner;
    } else if wrapped
        && let Some(map) = v.as_object()
        && !map.is_empty()
        && !map.keys().any(|k| crate::config::is_setting_name(k))
    {
        tracing::debug!("didChangeConfiguration holds no Conductor settings");
        return None;
    }
    (!v.is_null()).then_some(v)
}

struct Layers {
    init: Option<Value>,
    change: Option<Value>,
    current: Settings,
    /// Why research is refused; names the file or layer and the setting.
    error: Option<String>,
    /// Whether `error` was shown to the user.
    shown: bool,
}

/// The current settings. The lock is only taken inside these methods, never across an await.
pub struct SettingsCell {
    env: Env,
    inner: RwLock<Layers>,
}

#[derive(Clone, Copy, PartialEq)]
enum Layer {
    Init,
    Change,
}

impl SettingsCell {
    pub fn new(env: &Env) -> SettingsCell {
        let cell = SettingsCell {
            env: env.clone(),
            inner: RwLock::new(Layers {
                init: None,
                change: None,
                current: Settings::default(),
                error: None,
                shown: false,
            }),
        };
        if let Some(e) = cell.recompute(None) {
            tracing::warn!("settings: {e}; research is off until they are fixed");
        }
        cell
    }

    pub fn get(&self) -> Settings {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .clone()
    }

    /// Why research is refused, if it is: the settings are invalid.
    pub fn error(&self) -> Option<String> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .clone()
    }

    pub fn set_init(&self, value: &Value) -> Result<(), ConfigError> {
        self.set(Layer::Init, value)
    }

    pub fn set_change(&self, value: &Value) -> Result<(), ConfigError> {
        self.set(Layer::Change, value)
    }

    fn set(&self, layer: Layer, value: &Value) -> Result<(), ConfigError> {
        match self.recompute(Some((layer, section(value).cloned()))) {
            Some(e) => Err(ConfigError::Invalid(e)),
            None => Ok(()),
        }
    }

    /// Recomputes from the config file, the environment and the layers (replacing one of them first).
    /// Returns the error of the layer just set, if it is invalid (it is then dropped).
    fn recompute(&self, replace: Option<(Layer, Option<Value>)>) -> Option<String> {
        // Read before taking the lock: the file is small, but no lock waits on the disk.
        let base = Settings::load(&self.env);
        let mut l = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let mut errors = Vec::new();
        let mut s = match base {
            Ok(s) => s,
            Err(e @ ConfigError::File { .. }) => {
                errors.push(format!("config file {e}"));
                Settings::default()
            }
            Err(e) => {
                errors.push(format!("environment: {e}"));
                Settings::default()
            }
        };
        if let Some((Layer::Init, v)) = &replace {
            l.init = v.clone();
        }
        if let Some((Layer::Change, v)) = &replace {
            l.change = v.clone();
        }
        let mut new_error = None;
        let layers = [
            (Layer::Init, "initializationOptions"),
            (Layer::Change, "workspace/didChangeConfiguration"),
        ];
        for (which, origin) in layers {
            let slot = match which {
                Layer::Init => &mut l.init,
                Layer::Change => &mut l.change,
            };
            let Some(v) = slot.as_ref() else { continue };
            let mut next = s.clone();
            match next.apply_json(v) {
                Ok(()) => s = next,
                Err(e) => {
                    let e = format!("{origin}: {e}");
                    if matches!(&replace, Some((r, _)) if *r == which) {
                        new_error = Some(e.clone());
                    }
                    errors.push(e);
                    *slot = None;
                }
            }
        }
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        if error != l.error || new_error.is_some() {
            l.shown = false;
        }
        l.error = error;
        l.current = s;
        new_error
    }

    /// Shows the current settings error to the user, once per error (`window/showMessage`).
    pub async fn report(&self, client: &Client) {
        let message = {
            let mut l = self.inner.write().unwrap_or_else(|p| p.into_inner());
            let unshown = l.error.clone().filter(|_| !l.shown);
            l.shown = true;
            unshown
        };
        if let Some(e) = message {
            client
                .show_message(
                    MessageType::ERROR,
                    format!(
                        "Conductor settings: {e}. Research is off until the settings are fixed."
                    ),
                )
                .await;
        }
    }

    /// Research refuses to run while the settings are invalid: the topic must not go to providers the
    /// user did not choose. The answer names the setting; the message is shown once.
    pub async fn refuse_research(&self, client: &Client) -> jsonrpc::Result<()> {
        let Some(e) = self.error() else {
            return Ok(());
        };
        self.report(client).await;
        Err(jsonrpc::Error {
            // LSP's RequestFailed.
            code: jsonrpc::ErrorCode::ServerError(-32803),
            message: format!("Conductor settings are invalid, so research is off: {e}").into(),
            data: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CitationStyle, ProviderName};
    use serde_json::json;

    #[test]
    fn both_payload_shapes_and_bad_values() {
        let cell = SettingsCell::new(&Env::from_pairs([("XDG_CONFIG_HOME", "/nonexistent")]));
        cell.set_init(&json!({"citation_style": "numbered"}))
            .unwrap();
        cell.set_change(&json!({"settings": {"conductor": {"maxSources": 4}}}))
            .unwrap();
        let s = cell.get();
        assert_eq!(
            (s.citation_style, s.max_sources),
            (CitationStyle::Numbered, 4)
        );
        cell.set_change(&json!({"settings": {"providers": "wikipedia"}}))
            .unwrap();
        let s = cell.get();
        assert_eq!(s.providers, Some(vec![ProviderName::Wikipedia]));
        assert_eq!(s.max_sources, 10, "a new change replaces the previous one");
        assert!(cell.error().is_none());
        let err = cell
            .set_change(&json!({"settings": {"max_sources": 0}}))
            .unwrap_err();
        assert!(err.to_string().contains("max_sources"), "{err}");
        assert!(cell.error().is_some(), "research is refused");
        cell.set_change(&json!({"settings": {"conductor": {"providers": ["arxiv"]}}}))
            .unwrap();
        assert!(cell.error().is_none(), "a valid change clears the error");
        assert_eq!(cell.get().providers, Some(vec![ProviderName::Arxiv]));
        // Emacs' eglot sends every server's section: one with none of ours is not an error.
        cell.set_change(&json!({"settings": {"pylsp": {"plugins": {}}, "rust-analyzer": {}}}))
            .unwrap();
        assert!(cell.error().is_none());
        assert!(
            cell.set_change(&json!({"settings": {"max_source": 3}}))
                .is_err(),
            "a misspelt setting is ours, and an error"
        );
    }
}
