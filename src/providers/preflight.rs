//! The preflight of `conductor-lsp providers --check`: every provider a research would ask is asked once,
//! with its cheapest documented call ([`Provider::check`]), all at once under one deadline, and reported
//! as ok, key rejected, rate limited (until when), quota exceeded, unreachable or failed, with the quota
//! left where the API says.
//!
//! Errors come from the HTTP layer, already scrubbed of every configured secret; what a provider's answer
//! says (a plan name) is scrubbed here too before it is shown.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{Availability, Found, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, HttpError};

/// What a one-result preflight search asks for: a common word, so every index has an answer.
pub const PROBE_QUERY: &str = "test";

/// The query of a one-result preflight search.
pub fn probe(deadline: Instant) -> Query {
    Query {
        text: PROBE_QUERY.to_string(),
        max_results: 1,
        deadline,
    }
}

/// Quota left, where the API reports it. Every figure is optional: each API reports its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Quota {
    /// Credits left this billing cycle (Tavily `/usage`: the key's limit where it has one, else the
    /// plan's, minus what was used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits_left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits_used: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits_limit: Option<u64>,
    /// The plan's name, as the API gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Requests left in the longest rate-limit window (Brave `X-RateLimit-Remaining`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Requests allowed in that window (`X-RateLimit-Limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Seconds until that window resets (`X-RateLimit-Reset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_s: Option<u64>,
    /// The window's length in seconds (`X-RateLimit-Policy`), where given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u64>,
}

impl Quota {
    /// The quota in words: `850 of 1000 credits left (plan Researcher)`, `1000 of 15000 requests left
    /// in this 30-day window (resets in 16 d)`. Empty when the API reported nothing.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (self.credits_left, self.credits_limit) {
            (Some(left), Some(limit)) => parts.push(format!("{left} of {limit} credits left")),
            (Some(left), None) => parts.push(format!("{left} credits left")),
            (None, _) => {
                if let Some(used) = self.credits_used {
                    parts.push(format!("{used} credits used"));
                }
            }
        }
        if let Some(plan) = &self.plan {
            parts.push(format!("plan {plan}"));
        }
        if let Some(remaining) = self.remaining {
            let mut s = match self.limit {
                Some(limit) => format!("{remaining} of {limit} requests left"),
                None => format!("{remaining} requests left"),
            };
            if let Some(w) = self.window_s {
                s.push_str(&format!(" per {}", span(w)));
            }
            if let Some(r) = self.reset_s {
                s.push_str(&format!(", resets in {}", span(r)));
            }
            parts.push(s);
        }
        parts.join("; ")
    }
}

/// Seconds as a person reads them: `45 s`, `12 min`, `5 h`, `16 d`.
fn span(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7_200 => format!("{} min", secs / 60),
        7_200..172_800 => format!("{} h", secs / 3_600),
        _ => format!("{} d", secs / 86_400),
    }
}

/// What a provider's preflight call learned when it was answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    /// What was asked and answered, in words.
    pub detail: String,
    pub quota: Option<Quota>,
    /// What the call cost, where the API says (Exa `costDollars.total`).
    pub cost_usd: Option<f64>,
}

impl Answer {
    /// The answer of a one-result search.
    pub fn searched(found: &Found) -> Answer {
        let n = found.hits.len();
        Answer {
            detail: format!(
                "a one-result search answered ({n} result{})",
                if n == 1 { "" } else { "s" }
            ),
            quota: None,
            cost_usd: found.cost_usd,
        }
    }
}

/// How a provider's preflight went (or why it was not asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    KeyRejected,
    RateLimited,
    /// A plan, credit or spending limit is used up (Tavily 432/433, Exa 402).
    QuotaExceeded,
    /// No connection, or no answer before the deadline.
    Unreachable,
    /// Any other failure: an unexpected answer, a server error.
    Failed,
    /// Its key or URL is not set (not asked).
    NotConfigured,
    /// Configured, but a research with these settings does not ask it (not asked).
    NotChecked,
}

impl Status {
    /// The status in words, as the text table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::KeyRejected => "key rejected",
            Status::RateLimited => "rate limited",
            Status::QuotaExceeded => "quota exceeded",
            Status::Unreachable => "unreachable",
            Status::Failed => "failed",
            Status::NotConfigured => "not configured",
            Status::NotChecked => "not checked",
        }
    }

    fn of(error: &HttpError) -> Status {
        match error {
            HttpError::KeyRejected { .. } => Status::KeyRejected,
            HttpError::RateLimited { .. } => Status::RateLimited,
            HttpError::QuotaExceeded { .. } => Status::QuotaExceeded,
            HttpError::Network(_) | HttpError::TimedOut { .. } => Status::Unreachable,
            _ => Status::Failed,
        }
    }
}

/// One provider's row of `providers --check`: its JSON object, and the line of the text table.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub name: ProviderName,
    /// Whether a research with these settings asks it: only these are checked, and only these decide
    /// the exit status.
    pub used: bool,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When a rate-limited provider may be asked again (RFC 3339, UTC), where it said (`Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// How long its check took (absent for providers not asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
}

/// Asks every provider of `asked` at once, each with its [`Provider::check`], all bounded by `deadline`.
/// The outcomes are in the order of `asked`.
pub async fn run(http: &Http, asked: &[Arc<dyn Provider>], deadline: Instant) -> Vec<Outcome> {
    futures::future::join_all(asked.iter().map(|p| check_one(http, p.as_ref(), deadline))).await
}

async fn check_one(http: &Http, provider: &dyn Provider, deadline: Instant) -> Outcome {
    let started = Instant::now();
    // The HTTP layer keeps to the deadline on its own; this bounds a check that does no HTTP (notes).
    let result = match tokio::time::timeout_at(deadline, provider.check(http, deadline)).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::TimedOut {
            after: started.elapsed(),
        }),
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let secrets = http.secrets();
    let mut outcome = Outcome {
        name: provider.name(),
        used: true,
        status: Status::Ok,
        detail: None,
        retry_at: None,
        quota: None,
        cost_usd: None,
        elapsed_ms: Some(elapsed_ms),
    };
    match result {
        Ok(answer) => {
            outcome.detail = Some(secrets.message(&answer.detail));
            outcome.quota = answer.quota.map(|q| Quota {
                plan: q
                    .plan
                    .map(|p| secrets.message(&p))
                    .filter(|p| !p.is_empty()),
                ..q
            });
            outcome.cost_usd = answer.cost_usd;
        }
        Err(error) => {
            let error = error.redact(secrets);
            outcome.status = Status::of(&error);
            if let HttpError::RateLimited {
                retry_after: Some(wait),
            } = &error
            {
                outcome.retry_at = Some(retry_at(*wait));
            }
            outcome.detail = Some(error.to_string());
        }
    }
    outcome
}

/// Now plus `wait`, as RFC 3339 in UTC to the second.
fn retry_at(wait: Duration) -> String {
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    let now = chrono::Utc::now();
    now.checked_add_signed(wait)
        .unwrap_or(now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Every provider of the table in its order: the outcome of those asked, and for the others why they
/// were not asked. `used` are the providers a research with these settings asks, configured or not (a
/// provider named in the settings without its key is used, and fails the check as "not configured").
pub fn rows(
    available: &[Availability],
    used: &[ProviderName],
    mut asked: Vec<Outcome>,
) -> Vec<Outcome> {
    available
        .iter()
        .map(|a| {
            if let Some(i) = asked.iter().position(|o| o.name == a.name) {
                return asked.swap_remove(i);
            }
            let used = used.contains(&a.name);
            let (status, detail) = if a.provider.is_none() {
                (Status::NotConfigured, a.detail.clone())
            } else {
                (
                    Status::NotChecked,
                    "configured, but not used with these settings (name it in --providers to check it)"
                        .to_string(),
                )
            };
            Outcome {
                name: a.name,
                used,
                status,
                detail: Some(detail),
                retry_at: None,
                quota: None,
                cost_usd: None,
                elapsed_ms: None,
            }
        })
        .collect()
}

/// True when a research with these settings asks at least one provider and every one it asks is ok.
pub fn all_ok(rows: &[Outcome]) -> bool {
    rows.iter().any(|r| r.used)
        && rows
            .iter()
            .filter(|r| r.used)
            .all(|r| r.status == Status::Ok)
}

/// `{"ok": bool, "providers": [...]}`, pretty-printed.
pub fn json(rows: &[Outcome]) -> String {
    #[derive(Serialize)]
    struct Checked<'a> {
        ok: bool,
        providers: &'a [Outcome],
    }
    serde_json::to_string_pretty(&Checked {
        ok: all_ok(rows),
        providers: rows,
    })
    .unwrap_or_default()
}

/// The text table: one line per provider (name, whether a research uses it, how its check went, and
/// what it said), then a verdict line.
pub fn text(rows: &[Outcome]) -> String {
    let mut out = format!("{:<11} {:<5} {:<15} detail\n", "provider", "used", "status");
    for r in rows {
        let mut detail: Vec<String> = r.detail.iter().cloned().collect();
        if let Some(at) = &r.retry_at {
            detail.push(format!("until {at}"));
        }
        if let Some(q) = r.quota.as_ref().map(Quota::describe)
            && !q.is_empty()
        {
            detail.push(q);
        }
        if let Some(usd) = r.cost_usd {
            detail.push(format!("the call cost ${usd:.4}"));
        }
        if let Some(ms) = r.elapsed_ms {
            detail.push(format!("{ms} ms"));
        }
        out.push_str(&format!(
            "{:<11} {:<5} {:<15} {}\n",
            r.name,
            if r.used { "yes" } else { "no" },
            r.status.label(),
            detail.join("; ")
        ));
    }
    let used: Vec<&Outcome> = rows.iter().filter(|r| r.used).collect();
    let failing: Vec<String> = used
        .iter()
        .filter(|r| r.status != Status::Ok)
        .map(|r| format!("{} ({})", r.name, r.status.label()))
        .collect();
    out.push('\n');
    if used.is_empty() {
        out.push_str("no provider is used with these settings\n");
    } else if failing.is_empty() {
        out.push_str(&format!(
            "every provider used is ok ({} checked)\n",
            used.len()
        ));
    } else {
        out.push_str(&format!(
            "{} of {} used providers failed the check: {}\n",
            failing.len(),
            used.len(),
            failing.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_in_words() {
        let tavily = Quota {
            credits_left: Some(850),
            credits_limit: Some(1000),
            credits_used: Some(150),
            plan: Some("Researcher".into()),
            ..Quota::default()
        };
        assert_eq!(
            tavily.describe(),
            "850 of 1000 credits left; plan Researcher"
        );
        let brave = Quota {
            remaining: Some(1000),
            limit: Some(15000),
            reset_s: Some(1_419_704),
            window_s: Some(2_592_000),
            ..Quota::default()
        };
        assert_eq!(
            brave.describe(),
            "1000 of 15000 requests left per 30 d, resets in 16 d"
        );
        assert_eq!(Quota::default().describe(), "");
    }

    #[test]
    fn errors_map_to_the_documented_statuses() {
        let cases = [
            (
                HttpError::KeyRejected {
                    status: 401,
                    message: None,
                },
                Status::KeyRejected,
            ),
            (
                HttpError::RateLimited { retry_after: None },
                Status::RateLimited,
            ),
            (
                HttpError::QuotaExceeded {
                    status: 432,
                    message: None,
                },
                Status::QuotaExceeded,
            ),
            (
                HttpError::Network("could not connect".into()),
                Status::Unreachable,
            ),
            (
                HttpError::TimedOut {
                    after: Duration::from_secs(1),
                },
                Status::Unreachable,
            ),
            (
                HttpError::Http {
                    status: 503,
                    message: None,
                },
                Status::Failed,
            ),
            (HttpError::Unexpected("x".into()), Status::Failed),
        ];
        for (error, want) in cases {
            assert_eq!(Status::of(&error), want, "{error}");
        }
    }

    #[test]
    fn retry_at_is_rfc3339_and_never_overflows() {
        let at = retry_at(Duration::from_secs(3600));
        let parsed = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
        let ahead = parsed
            .signed_duration_since(chrono::Utc::now())
            .num_seconds();
        assert!((3590..=3600).contains(&ahead), "{at}");
        assert!(chrono::DateTime::parse_from_rfc3339(&retry_at(Duration::MAX)).is_ok());
    }
}
