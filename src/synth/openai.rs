//! OpenAI-compatible Chat Completions (OpenAI, Ollama's `/v1`, llama.cpp, vLLM, LM Studio, OpenRouter):
//! the request, the streamed chunks (`data: {…}` … `data: [DONE]`), and the whole response.
//! Reasoning fields (`reasoning_content`, `reasoning`) are ignored; no tools, no JSON mode.

use serde_json::{Value, json};

use crate::net::{Request, number};

use super::prompt::Prompt;
use super::sse::Event;
use super::{Answer, LlmConfig, LlmError, error_text};

pub(crate) fn request(cfg: &LlmConfig, prompt: &Prompt, key: Option<&str>) -> Request {
    // An empty system prompt is left out (a judge such as bespoke-minicheck takes only the user turn).
    let messages = if prompt.system.is_empty() {
        json!([{"role": "user", "content": prompt.user}])
    } else {
        json!([
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user},
        ])
    };
    let mut body = json!({
        "model": cfg.model,
        "messages": messages,
        "temperature": cfg.temperature,
        // `max_tokens`, not `max_completion_tokens`: local servers know only this one.
        "max_tokens": prompt.max_tokens,
        "stream": cfg.stream,
    });
    if cfg.stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    let mut req =
        Request::post_json(cfg.endpoint.clone(), body).header("accept", super::accept(cfg.stream));
    if let Some(key) = key {
        req = req.secret_header("authorization", format!("Bearer {key}"));
    }
    req
}

/// Applies one streamed event.
pub(crate) fn on_event(answer: &mut Answer, ev: &Event) -> Result<(), LlmError> {
    let data = ev.data.trim();
    if data.is_empty() {
        return Ok(());
    }
    if data.starts_with("[DONE]") {
        answer.done = true;
        return Ok(());
    }
    let v: Value = number::lenient_json(data)
        .map_err(|_| LlmError::Unexpected("a streamed chunk is not the documented JSON".into()))?;
    if ev.name.as_deref() == Some("error") || v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(LlmError::MidStream(error_text(
            v.get("error").unwrap_or(&v),
        )));
    }
    if let Some(choice) = v.pointer("/choices/0") {
        if let Some(t) = choice.pointer("/delta/content").and_then(Value::as_str) {
            answer.text.push_str(t);
        }
        finish_reason(answer, choice);
    }
    usage(answer, &v);
    Ok(())
}

/// Parses a whole (non-streamed) response.
pub(crate) fn parse_whole(body: &[u8]) -> Result<Answer, LlmError> {
    let v: Value = number::lenient_json(&String::from_utf8_lossy(body))
        .map_err(|_| LlmError::Unexpected("the answer is not the documented JSON".into()))?;
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return Err(LlmError::MidStream(error_text(e)));
    }
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| LlmError::Unexpected("the answer has no choices".into()))?;
    let mut answer = Answer {
        text: choice
            .pointer("/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        done: true,
        ..Answer::default()
    };
    finish_reason(&mut answer, choice);
    answer.finished = true;
    usage(&mut answer, &v);
    Ok(answer)
}

fn finish_reason(answer: &mut Answer, choice: &Value) {
    if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
        answer.finished = true;
        if r == "length" {
            answer.truncated = true;
        }
    }
}

fn usage(answer: &mut Answer, v: &Value) {
    let Some(u) = v.get("usage").filter(|u| u.is_object()) else {
        return;
    };
    // Counts that are negative, fractional nonsense or beyond any real call are taken as unreported
    // (then estimated), never printed.
    let num = |k: &str| u.get(k).and_then(number::tokens);
    if let Some(n) = num("prompt_tokens") {
        answer.prompt_tokens = Some(n);
    }
    if let Some(n) = num("completion_tokens") {
        answer.completion_tokens = Some(n);
    }
    // OpenRouter reports dollars in `usage.cost`.
    if let Some(c) = u.get("cost").and_then(number::cost_value) {
        answer.cost_usd = Some(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> Event {
        Event {
            name: None,
            data: s.into(),
        }
    }

    #[test]
    fn chunks_usage_and_end() {
        let mut a = Answer::default();
        for d in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hi [1]"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"cost":0.0001}}"#,
            "[DONE]",
        ] {
            on_event(&mut a, &data(d)).unwrap();
        }
        assert_eq!(a.text, "Hi [1]");
        assert!(a.truncated && a.finished && a.done);
        assert_eq!((a.prompt_tokens, a.completion_tokens), (Some(12), Some(3)));
        assert_eq!(a.cost_usd, Some(0.0001));
    }

    #[test]
    fn error_chunk_is_an_error() {
        let mut a = Answer::default();
        let e = on_event(
            &mut a,
            &data(r#"{"error":{"message":"model crashed","type":"server_error"}}"#),
        )
        .unwrap_err();
        assert_eq!(e, LlmError::MidStream("model crashed".into()));
        assert!(on_event(&mut a, &data("not json")).is_err());
    }

    #[test]
    fn absurd_usage_is_taken_as_unreported() {
        let mut a = Answer::default();
        on_event(
            &mut a,
            &data(
                r#"{"choices":[],"usage":{"prompt_tokens":-3,"completion_tokens":1e30,"cost":"NaN"}}"#,
            ),
        )
        .unwrap();
        assert_eq!(
            (a.prompt_tokens, a.completion_tokens, a.cost_usd),
            (None, None, None)
        );
        on_event(
            &mut a,
            &data(r#"{"choices":[],"usage":{"prompt_tokens":99999999999999999999,"cost":-1}}"#),
        )
        .unwrap();
        assert_eq!((a.prompt_tokens, a.cost_usd), (None, None));
    }

    #[test]
    fn whole_response() {
        let a = parse_whole(
            br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Yes [2]."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(a.text, "Yes [2].");
        assert!(!a.truncated);
        assert_eq!(a.completion_tokens, Some(2));
        assert!(parse_whole(br#"{"choices":[]}"#).is_err());
    }
}
