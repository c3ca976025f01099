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

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::net::Http;

pub mod anthropic;
mod backend;
mod call;
mod error;
pub mod grounding;
pub mod openai;
pub mod prompt;
pub mod sse;

pub use crate::report::{Block, BlockKind, Segment, Summary, Synthesis, Usage, plain_text};
pub use backend::{
    ANTHROPIC_URL, ANTHROPIC_VERSION, DEFAULT_ANTHROPIC_MODEL, DEFAULT_MAX_TOKENS,
    DEFAULT_OLLAMA_MODEL, DEFAULT_OPENAI_MODEL, DEFAULT_TEMPERATURE, DEFAULT_TIMEOUT,
    HOSTED_PROMPT_BUDGET, LOCAL_PROMPT_BUDGET, LlmConfig, LlmStatus, OLLAMA_URL, OPENAI_URL,
    Protocol, choose, configured, describe, ollama_endpoint,
};
pub(crate) use call::Answer;
pub use call::{OnDelta, complete, synthesize};
pub use error::LlmError;
pub(crate) use error::error_text;

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

/// The `accept` header of a call to the model: events when streaming, else JSON.
fn accept(stream: bool) -> &'static str {
    if stream {
        "text/event-stream"
    } else {
        "application/json"
    }
}
