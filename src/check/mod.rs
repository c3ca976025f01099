//! Claim checking: every sentence of a summary graded against the text of the sources it cites.
//!
//! Protocol-free, and independent of how the summary and the texts were obtained: [`check`] takes the
//! summary's plain text (with `[n]` markers, as `synth::Summary::text`) and each source's best text
//! (the readable page where it was read, else the provider's text or snippet) by number, and returns
//! the claims with their status and backing passages. It never fails and does no I/O.
//!
//! - [`claims`] splits the summary into sentences and their citations;
//! - [`grade`] is the deterministic check (always on);
//! - [`judge`] asks an optional judge model (`[verify]`) about the claims the check could not mark
//!   supported, recording its verdict beside the check's.
//!
//! The serde types are the JSON contract: `synthesis.claims` ([`Check::claims`]) and
//! `synthesis.check` ([`Check::counts`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub mod claims;
pub mod grade;
pub mod judge;
pub mod terms;

pub use judge::{JudgeConfig, JudgeReport, judge};

pub use crate::report::{Claim, Counts, Evidence, JudgeLine, Status, Verdict};

/// The result: flattened into `synthesis` it gives `synthesis.claims` and `synthesis.check`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub claims: Vec<Claim>,
    #[serde(rename = "check")]
    pub counts: Counts,
}

/// Checks every sentence of `summary` against `sources` (`(number, text)`; the first text given for a
/// number counts). Deterministic; no I/O.
pub fn check(summary: &str, sources: &[(usize, &str)]) -> Check {
    let sentences = claims::split(summary);
    let mut prepared: HashMap<usize, grade::Prepared<'_>> = HashMap::new();
    for s in &sentences {
        for &n in &s.citations {
            if prepared.contains_key(&n) {
                continue;
            }
            if let Some((_, text)) = sources.iter().find(|(m, _)| *m == n) {
                prepared.insert(n, grade::Prepared::new(text));
            }
        }
    }
    let claims: Vec<Claim> = sentences
        .into_iter()
        .map(|s| {
            if s.citations.is_empty() {
                return Claim {
                    text: s.text,
                    citations: Vec::new(),
                    status: Status::Uncited,
                    evidence: Vec::new(),
                    judge: None,
                    why: Some("it cites no source".into()),
                    span: s.span,
                };
            }
            let g = grade::grade(&s.text, &s.citations, &prepared);
            Claim {
                text: s.text,
                citations: s.citations,
                status: g.status,
                evidence: g.evidence,
                judge: None,
                why: g.why,
                span: s.span,
            }
        })
        .collect();
    let counts = counts(&claims);
    Check { claims, counts }
}

fn counts(claims: &[Claim]) -> Counts {
    let mut c = Counts {
        sentences: claims.len(),
        ..Counts::default()
    };
    for claim in claims {
        match claim.status {
            Status::Supported => c.supported += 1,
            Status::Partial => c.partial += 1,
            Status::Unsupported => c.unsupported += 1,
            Status::Uncited => c.uncited += 1,
        }
    }
    c.cited = c.supported + c.partial + c.unsupported;
    c
}

/// The numbers behind the report's check line ("Checked: 5 of 6 cited sentences backed by their
/// sources; 1 unsupported; 1 uncited."). Markdown is `render::check_line`'s business.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    pub cited: usize,
    /// Cited sentences the check marked supported.
    pub backed: usize,
    pub partial: usize,
    pub unsupported: usize,
    pub uncited: usize,
    pub judge: Option<JudgeLine>,
}

impl CheckLine {
    /// The line of a checked summary: its counts and what the judge did.
    pub fn from_counts(c: &Counts, judge: Option<JudgeLine>) -> CheckLine {
        CheckLine {
            cited: c.cited,
            backed: c.supported,
            partial: c.partial,
            unsupported: c.unsupported,
            uncited: c.uncited,
            judge,
        }
    }

    pub fn new(check: &Check, judge: Option<&JudgeReport>) -> CheckLine {
        CheckLine::from_counts(&check.counts, judge.map(JudgeReport::line))
    }

    /// The line as plain text (no markdown), e.g. "Checked: 5 of 6 cited sentences backed by their
    /// sources; 1 unsupported; 1 uncited."
    pub fn sentence(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 {
                one.to_string()
            } else {
                many.to_string()
            }
        };
        let mut s = if self.cited == 0 {
            "Checked: no sentence cites a source".to_string()
        } else {
            format!(
                "Checked: {} of {} cited {} backed by {} sources",
                self.backed,
                self.cited,
                plural(self.cited, "sentence", "sentences"),
                plural(self.cited, "its", "their"),
            )
        };
        if self.partial > 0 {
            s.push_str(&format!("; {} partly backed", self.partial));
        }
        if self.unsupported > 0 {
            s.push_str(&format!("; {} unsupported", self.unsupported));
        }
        if self.uncited > 0 {
            s.push_str(&format!("; {} uncited", self.uncited));
        }
        if let Some(j) = &self.judge {
            let answered = j.yes + j.no;
            if answered > 0 || j.failed.is_none() {
                s.push_str(&format!(
                    "; the judge ({}) backs {} of {} it was asked about",
                    j.model, j.yes, j.asked
                ));
            }
            if let Some(why) = &j.failed {
                if answered > 0 {
                    s.push_str(&format!(" and gave no verdict on the rest: {why}"));
                } else {
                    s.push_str(&format!("; the judge ({}) gave no verdict: {why}", j.model));
                }
            }
        }
        s.push('.');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_is_the_contract() {
        let summary = "Tokio uses work stealing [1]. It is popular.";
        let c = check(summary, &[(1, "Tokio uses a work-stealing scheduler.")]);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "claims": [
                    {"text": "Tokio uses work stealing.", "citations": [1], "status": "supported",
                     "evidence": [{"source": 1, "passage": "Tokio uses a work-stealing scheduler."}]},
                    {"text": "It is popular.", "citations": [], "status": "uncited", "evidence": [],
                     "why": "it cites no source"}
                ],
                "check": {"sentences": 2, "cited": 1, "supported": 1, "partial": 0, "unsupported": 0, "uncited": 1}
            })
        );
        // It reads back (the store keeps it), the judge's verdict included.
        let mut c2 = c.clone();
        c2.claims[0].judge = Some(Verdict::Yes);
        let back: Check = serde_json::from_str(&serde_json::to_string(&c2).unwrap()).unwrap();
        assert_eq!(back.claims[0].judge, Some(Verdict::Yes));
        assert_eq!(back.counts, c.counts);
        assert_eq!(
            serde_json::to_value(&c2).unwrap()["claims"][0]["judge"],
            serde_json::json!("yes")
        );
    }

    #[test]
    fn the_check_line_counts_what_the_report_shows() {
        let c = Check {
            claims: Vec::new(),
            counts: Counts {
                sentences: 7,
                cited: 6,
                supported: 5,
                partial: 0,
                unsupported: 1,
                uncited: 1,
            },
        };
        let line = CheckLine::new(&c, None);
        assert_eq!(
            line.sentence(),
            "Checked: 5 of 6 cited sentences backed by their sources; 1 unsupported; 1 uncited."
        );
        let j = JudgeReport {
            backend: "ollama".into(),
            model: "bespoke-minicheck".into(),
            asked: 1,
            answered: 0,
            yes: 0,
            no: 0,
            error: Some("the LLM answered HTTP 500".into()),
            timed_out: false,
        };
        assert_eq!(
            CheckLine::new(&c, Some(&j)).sentence(),
            "Checked: 5 of 6 cited sentences backed by their sources; 1 unsupported; 1 uncited; the judge \
             (ollama bespoke-minicheck) gave no verdict: the LLM answered HTTP 500."
        );
        let empty = CheckLine::new(&Check::default(), None);
        assert_eq!(empty.sentence(), "Checked: no sentence cites a source.");
    }
}
