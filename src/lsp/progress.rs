//! Work-done progress for research jobs: server-created (`window/workDoneProgress/create`, with a
//! timeout), cancellable, one report per provider finishing, always ended (also when the job panics:
//! `Drop` sends the end). Clients without `window.workDoneProgress`, or that refuse the token, get
//! `window/logMessage` lines instead, and no `$/progress` is ever sent for a token that was not created.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::notification::Progress as ProgressNotification;
use tower_lsp_server::ls_types::{
    MessageType, NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport,
};

use crate::config::ProviderName;
use crate::research::{ProviderRun, RunStatus};

pub struct Reporter {
    client: Client,
    token: Option<NumberOrString>,
    title: String,
    ended: bool,
}

impl Reporter {
    /// Creates and begins a progress, or falls back to log messages. Gives up early if `cancel` fires.
    pub async fn begin(
        client: &Client,
        supported: bool,
        token: &str,
        title: String,
        message: String,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Reporter {
        let mut r = Reporter {
            client: client.clone(),
            token: None,
            title,
            ended: false,
        };
        if supported {
            let tok = NumberOrString::String(token.to_string());
            let created = tokio::select! {
                _ = cancel.cancelled() => None,
                res = tokio::time::timeout(timeout, client.create_work_done_progress(tok.clone())) => Some(res),
            };
            match created {
                Some(Ok(Ok(()))) => {
                    r.token = Some(tok.clone());
                    r.send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
                        title: r.title.clone(),
                        cancellable: Some(true),
                        message: Some(message),
                        percentage: None,
                    }))
                    .await;
                    return r;
                }
                Some(Ok(Err(e))) => {
                    tracing::info!("the editor refused a progress token: {}", e.message)
                }
                Some(Err(_)) => tracing::warn!(
                    "the editor did not answer window/workDoneProgress/create within {timeout:?}"
                ),
                None => return r,
            }
        }
        r.log(format!("{}: {message}", r.title)).await;
        r
    }

    /// The token, when progress notifications are in use.
    pub fn token(&self) -> Option<String> {
        match &self.token {
            Some(NumberOrString::String(s)) => Some(s.clone()),
            Some(NumberOrString::Number(n)) => Some(n.to_string()),
            None => None,
        }
    }

    pub async fn report(&self, message: String) {
        if self.token.is_some() {
            self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
                cancellable: Some(true),
                message: Some(message),
                percentage: None,
            }))
            .await;
        } else {
            self.log(format!("{}: {message}", self.title)).await;
        }
    }

    pub async fn end(mut self, message: String) {
        self.ended = true;
        if self.token.is_some() {
            self.send(WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(message),
            }))
            .await;
        } else {
            self.log(format!("{}: {message}", self.title)).await;
        }
    }

    async fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.client
                .send_notification::<ProgressNotification>(ProgressParams {
                    token: token.clone(),
                    value: ProgressParamsValue::WorkDone(value),
                })
                .await;
        }
    }

    async fn log(&self, message: String) {
        self.client
            .log_message(MessageType::INFO, format!("Conductor: {message}"))
            .await;
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let Some(token) = self.token.take() else {
            return;
        };
        let client = self.client.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                client
                    .send_notification::<ProgressNotification>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(
                            WorkDoneProgressEnd {
                                message: Some("Stopped".into()),
                            },
                        )),
                    })
                    .await;
            });
        }
    }
}

/// "wikipedia 8 results · hackernews rate limited · arxiv …"
pub fn status_line(names: &[ProviderName], done: &[ProviderRun]) -> String {
    names
        .iter()
        .map(|n| match done.iter().find(|r| r.name == *n) {
            Some(r) if r.status == RunStatus::Ok => format!(
                "{n} {} result{}",
                r.results,
                if r.results == 1 { "" } else { "s" }
            ),
            Some(r) => format!(
                "{n} {}",
                r.error_kind
                    .as_deref()
                    .unwrap_or("failed")
                    .replace('_', " ")
            ),
            None => format!("{n} …"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
