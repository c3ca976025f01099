//! Numbers read from remote answers (costs, credits, counts, token usage). A server may send anything:
//! `1e400`, `-5`, `"NaN"`, `99999999999999999999`. None of it may panic, fail the whole answer, or reach a
//! report as nonsense: a number that is not finite, is negative, or is beyond a sane bound counts as not
//! reported.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Dollars one call may plausibly cost; more is a broken answer, not a bill.
pub const MAX_COST_USD: f64 = 1_000.0;
/// Provider credits one call may plausibly use.
pub const MAX_CREDITS: f64 = 1_000_000.0;
/// Tokens one LLM call may plausibly use (prompt or answer).
pub const MAX_TOKENS: u64 = 10_000_000;
/// A count shown to people (points, comments).
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// `v` if it is finite, not negative and at most `max`.
pub fn sane(v: f64, max: f64) -> Option<f64> {
    (v.is_finite() && (0.0..=max).contains(&v)).then_some(v)
}

/// A count: a whole, non-negative number at most `max`.
pub fn sane_count(v: f64, max: u64) -> Option<u64> {
    // `max as f64` rounds up for huge `max`; the range check keeps the cast below exact enough.
    sane(v, max as f64).map(|v| v.trunc() as u64)
}

/// The number in raw JSON: a JSON number, or a string holding one. Anything else is `None`.
fn parse_raw(raw: &RawValue) -> Option<f64> {
    let text = raw.get().trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    // Rust's parser also reads "inf" and "NaN"; `sane` turns those away.
    text.trim().parse::<f64>().ok()
}

/// The field read without parsing it as a number first, so `1e400` (which serde_json rejects, failing
/// the whole answer) is just an unreported number.
fn raw_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let raw: Option<Box<RawValue>> = Option::deserialize(d)?;
    Ok(raw.as_deref().and_then(parse_raw))
}

/// `deserialize_with` for an optional block of figures (a usage or cost object): a block of the wrong
/// shape counts as unreported instead of failing the whole answer.
pub fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let raw: Option<Box<RawValue>> = Option::deserialize(d)?;
    Ok(raw.and_then(|r| serde_json::from_str(r.get()).ok()))
}

/// `deserialize_with` for a cost in dollars.
pub fn cost<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(raw_number(d)?.and_then(|v| sane(v, MAX_COST_USD)))
}

/// `deserialize_with` for provider credits.
pub fn credits<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(raw_number(d)?.and_then(|v| sane(v, MAX_CREDITS)))
}

/// `deserialize_with` for a count shown to people.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(raw_number(d)?.and_then(|v| sane_count(v, MAX_COUNT)))
}

/// A token count in a JSON value (LLM usage), if sane.
pub fn tokens(v: &serde_json::Value) -> Option<u32> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    sane_count(n, MAX_TOKENS).and_then(|n| u32::try_from(n).ok())
}

/// A cost in dollars in a JSON value (LLM usage), if sane.
pub fn cost_value(v: &serde_json::Value) -> Option<f64> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    sane(n, MAX_COST_USD)
}

/// Parses JSON as a [`serde_json::Value`], except that a number too large for `f64` (`1e400`, which
/// serde_json refuses, failing the whole document) becomes `null`. Text that is not JSON is still an
/// error. Used for LLM answers, read as untyped JSON: an absurd usage figure costs that figure, not the
/// summary.
pub fn lenient_json(text: &str) -> Result<serde_json::Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) => {
            // Raw values are scanned, not parsed: an out-of-range number passes.
            let raw: &RawValue = serde_json::from_str(text).map_err(|_| e)?;
            Ok(rebuild(raw))
        }
    }
}

/// `raw` as a value, with numbers out of range as `null`. Only called after a full parse failed; the
/// recursion is bounded by serde_json's own depth limit, which the first scan enforced.
fn rebuild(raw: &RawValue) -> serde_json::Value {
    use serde_json::Value;
    if let Ok(v) = serde_json::from_str::<Value>(raw.get()) {
        return v;
    }
    let text = raw.get().trim_start();
    if text.starts_with('{')
        && let Ok(map) =
            serde_json::from_str::<std::collections::BTreeMap<String, &RawValue>>(raw.get())
    {
        return Value::Object(map.into_iter().map(|(k, v)| (k, rebuild(v))).collect());
    }
    if text.starts_with('[')
        && let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get())
    {
        return Value::Array(items.into_iter().map(rebuild).collect());
    }
    Value::Null
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default, deserialize_with = "cost")]
        cost: Option<f64>,
        #[serde(default, deserialize_with = "count")]
        n: Option<u64>,
    }

    fn doc(json: &str) -> (Option<f64>, Option<u64>) {
        let d: Doc = serde_json::from_str(json).expect(json);
        (d.cost, d.n)
    }

    #[test]
    fn absurd_numbers_are_unreported_and_never_fail_the_answer() {
        assert_eq!(doc(r#"{"cost": 0.005, "n": 42}"#), (Some(0.005), Some(42)));
        assert_eq!(doc(r#"{"cost": "0.5", "n": "7"}"#), (Some(0.5), Some(7)));
        for bad in [
            "1e400",
            "-5",
            "\"NaN\"",
            "\"inf\"",
            "\"-inf\"",
            "99999999999999999999",
            "1e300",
            "null",
            "true",
            "{\"x\": 1}",
            "[1]",
            "\"cheap\"",
        ] {
            let json = format!(r#"{{"cost": {bad}, "n": {bad}}}"#);
            let (c, n) = doc(&json);
            assert_eq!((c, n), (None, None), "{json}");
        }
        assert_eq!(doc("{}"), (None, None));
        assert_eq!(tokens(&serde_json::json!(12)), Some(12));
        assert_eq!(tokens(&serde_json::json!(-1)), None);
        assert_eq!(tokens(&serde_json::json!(1e30)), None);
        assert_eq!(tokens(&serde_json::json!("NaN")), None);
        assert_eq!(cost_value(&serde_json::json!(-0.5)), None);
        assert_eq!(cost_value(&serde_json::json!(0.25)), Some(0.25));
    }

    #[test]
    fn json_with_an_out_of_range_number_still_parses() {
        let v = lenient_json(r#"{"a": [1, {"u": 1e400, "s": "x"}], "b": -1e999, "c": 2}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, {"u": null, "s": "x"}], "b": null, "c": 2})
        );
        assert!(lenient_json("not json").is_err());
        assert!(lenient_json(r#"{"a": 1e400"#).is_err());
    }
}
