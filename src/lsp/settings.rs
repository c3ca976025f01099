//! Settings in the server: defaults, config file and environment (`Settings::load`), then
//! `initializationOptions`, then the latest `workspace/didChangeConfiguration` (later wins).

use std::sync::RwLock;

use serde_json::Value;

use crate::config::{ConfigError, Env, Settings};

/// The settings section of a client payload: `{"settings":{"conductor":{..}}}`, `{"settings":{..}}`,
/// `{"conductor":{..}}` or the section itself. `None` for null (a client that pulls settings).
pub fn section(value: &Value) -> Option<&Value> {
    let mut v = value;
    if let Some(inner) = v.get("settings") {
        v = inner;
    }
    if let Some(inner) = v.get("conductor") {
        v = inner;
    }
    (!v.is_null()).then_some(v)
}

struct Layers {
    base: Settings,
    init: Option<Value>,
    change: Option<Value>,
    current: Settings,
}

/// The current settings. The lock is only taken inside these methods, never across an await.
pub struct SettingsCell {
    inner: RwLock<Layers>,
}

impl SettingsCell {
    pub fn new(env: &Env) -> SettingsCell {
        let base = Settings::load(env).unwrap_or_else(|e| {
            tracing::warn!("settings: {e}; using defaults");
            Settings::default()
        });
        SettingsCell {
            inner: RwLock::new(Layers {
                current: base.clone(),
                base,
                init: None,
                change: None,
            }),
        }
    }

    pub fn get(&self) -> Settings {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .clone()
    }

    pub fn set_init(&self, value: &Value) -> Result<(), ConfigError> {
        self.update(|l| l.init = section(value).cloned())
    }

    pub fn set_change(&self, value: &Value) -> Result<(), ConfigError> {
        self.update(|l| l.change = section(value).cloned())
    }

    /// Recomputes from the layers; on an invalid value keeps the previous settings.
    fn update(&self, f: impl FnOnce(&mut Layers)) -> Result<(), ConfigError> {
        let mut l = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let previous = (l.init.clone(), l.change.clone());
        f(&mut l);
        let mut s = l.base.clone();
        let result = (|| {
            if let Some(v) = &l.init {
                s.apply_json(v)?;
            }
            if let Some(v) = &l.change {
                s.apply_json(v)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                l.current = s;
                Ok(())
            }
            Err(e) => {
                (l.init, l.change) = previous;
                Err(e)
            }
        }
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
        assert!(
            cell.set_change(&json!({"settings": {"max_sources": 0}}))
                .is_err()
        );
        assert_eq!(cell.get().providers, Some(vec![ProviderName::Wikipedia]));
    }
}
