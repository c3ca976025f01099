//! Zed extension for Conductor: starts `conductor-lsp --stdio` for Markdown and Plain Text.
//! The binary comes from `lsp.conductor.binary.path` in Zed's settings, else from PATH.
//! `lsp.conductor.initialization_options` and `lsp.conductor.settings` are passed through.
use zed_extension_api::{self as zed, settings::LspSettings, LanguageServerId, Result};

struct Conductor;

impl zed::Extension for Conductor {
    fn new() -> Self {
        Conductor
    }

    fn language_server_command(
        &mut self,
        _id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let configured = LspSettings::for_worktree("conductor", worktree)
            .ok()
            .and_then(|s| s.binary)
            .and_then(|b| b.path);
        let command = configured
            .or_else(|| worktree.which("conductor-lsp"))
            .ok_or_else(|| {
                "conductor-lsp was not found on PATH; install it (cargo install --path . in the \
                 Conductor repository) or set lsp.conductor.binary.path"
                    .to_string()
            })?;
        Ok(zed::Command {
            command,
            args: vec!["--stdio".into()],
            env: worktree.shell_env(),
        })
    }

    fn language_server_initialization_options(
        &mut self,
        _id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(LspSettings::for_worktree("conductor", worktree)
            .ok()
            .and_then(|s| s.initialization_options))
    }

    fn language_server_workspace_configuration(
        &mut self,
        _id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        let settings = LspSettings::for_worktree("conductor", worktree)
            .ok()
            .and_then(|s| s.settings);
        Ok(settings.map(|s| zed::serde_json::json!({ "conductor": s })))
    }
}

zed::register_extension!(Conductor);
