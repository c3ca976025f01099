//! The call: the request to the chosen back end, the streamed answer (with the visible-text filter for
//! progress), and the checked [`Summary`] made from it.

use std::collections::BTreeSet;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LlmConfig, LlmError, Protocol, anthropic, grounding, openai, prompt, sse};
use crate::net::{Http, Request, Secrets};
use crate::report::{Summary, Synthesis, Usage, plain_text};
use crate::research::Source;

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
        claims: Vec::new(),
        check: None,
        judge: None,
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
}
