//! Anthropic Messages: the request (`x-api-key`, `anthropic-version`), the named streamed events
//! (`message_start`, `content_block_delta`, `message_delta`, `message_stop`, `ping`, `error`), and the
//! whole response. Thinking deltas are ignored.

use serde_json::{Value, json};

use crate::net::{Request, number};

use super::prompt::Prompt;
use super::sse::Event;
use super::{ANTHROPIC_VERSION, Answer, LlmConfig, LlmError, error_text};

pub(crate) fn request(cfg: &LlmConfig, prompt: &Prompt, key: Option<&str>) -> Request {
    let mut body = json!({
        "model": cfg.model,
        "max_tokens": prompt.max_tokens,
        "messages": [{"role": "user", "content": prompt.user}],
        "temperature": cfg.temperature.min(1.0),
        "stream": cfg.stream,
    });
    // An empty system prompt is left out.
    if !prompt.system.is_empty() {
        body["system"] = json!(prompt.system);
    }
    let mut req = Request::post_json(cfg.endpoint.clone(), body)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .header("accept", super::accept(cfg.stream));
    if let Some(key) = key {
        req = req.secret_header("x-api-key", key);
    }
    req
}

/// Applies one streamed event.
pub(crate) fn on_event(answer: &mut Answer, ev: &Event) -> Result<(), LlmError> {
    let data = ev.data.trim();
    let v: Value = if data.is_empty() {
        Value::Null
    } else {
        number::lenient_json(data).map_err(|_| {
            LlmError::Unexpected("a streamed event is not the documented JSON".into())
        })?
    };
    let kind = ev
        .name
        .clone()
        .or_else(|| v.get("type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    match kind.as_str() {
        "message_start" => {
            if let Some(u) = v.pointer("/message/usage") {
                usage(answer, u);
            }
        }
        "content_block_start" => {
            if let Some(t) = v.pointer("/content_block/text").and_then(Value::as_str)
                && v.pointer("/content_block/type").and_then(Value::as_str) == Some("text")
            {
                answer.text.push_str(t);
            }
        }
        "content_block_delta" => {
            if v.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta")
                && let Some(t) = v.pointer("/delta/text").and_then(Value::as_str)
            {
                answer.text.push_str(t);
            }
        }
        "message_delta" => {
            if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                stop_reason(answer, r);
            }
            if let Some(u) = v.get("usage") {
                usage(answer, u);
            }
        }
        "message_stop" => answer.done = true,
        "error" => {
            return Err(LlmError::MidStream(error_text(
                v.get("error").unwrap_or(&v),
            )));
        }
        // ping, content_block_stop, and event types added later.
        _ => {}
    }
    Ok(())
}

/// Parses a whole (non-streamed) response.
pub(crate) fn parse_whole(body: &[u8]) -> Result<Answer, LlmError> {
    let v: Value = number::lenient_json(&String::from_utf8_lossy(body))
        .map_err(|_| LlmError::Unexpected("the answer is not the documented JSON".into()))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(LlmError::MidStream(error_text(
            v.get("error").unwrap_or(&v),
        )));
    }
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Unexpected("the answer has no content".into()))?;
    let mut answer = Answer {
        text: content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        done: true,
        finished: true,
        ..Answer::default()
    };
    if let Some(r) = v.get("stop_reason").and_then(Value::as_str) {
        stop_reason(&mut answer, r);
    }
    if let Some(u) = v.get("usage") {
        usage(&mut answer, u);
    }
    Ok(answer)
}

fn stop_reason(answer: &mut Answer, r: &str) {
    answer.finished = true;
    if r == "max_tokens" {
        answer.truncated = true;
    }
}

fn usage(answer: &mut Answer, u: &Value) {
    // Absurd counts (negative, huge, not numbers) are taken as unreported, then estimated.
    let num = |k: &str| u.get(k).and_then(number::tokens);
    // Input tokens include the cached ones when prompt caching is on.
    let input = [
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ]
    .iter()
    .filter_map(|k| num(k))
    .reduce(|a, b| a.saturating_add(b));
    if let Some(n) = input.filter(|&n| n > 0) {
        answer.prompt_tokens = Some(n);
    }
    if let Some(n) = num("output_tokens") {
        answer.completion_tokens = Some(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, data: &str) -> Event {
        Event {
            name: Some(name.into()),
            data: data.into(),
        }
    }

    #[test]
    fn events_in_order() {
        let mut a = Answer::default();
        for (n, d) in [
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":20,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ("ping", r#"{"type":"ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello [1]"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":7}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ] {
            on_event(&mut a, &ev(n, d)).unwrap();
        }
        assert_eq!(a.text, "Hello [1]");
        assert!(a.truncated && a.done);
        assert_eq!((a.prompt_tokens, a.completion_tokens), (Some(20), Some(7)));
        let e = on_event(
            &mut a,
            &ev(
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
        )
        .unwrap_err();
        assert_eq!(e, LlmError::MidStream("Overloaded".into()));
    }

    #[test]
    fn whole_response() {
        let a = parse_whole(br#"{"id":"m","type":"message","role":"assistant","content":[{"type":"text","text":"A [1]"},{"type":"text","text":" B"}],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":4}}"#).unwrap();
        assert_eq!(a.text, "A [1] B");
        assert!(!a.truncated);
        assert_eq!(a.prompt_tokens, Some(9));
    }
}
