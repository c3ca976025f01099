//! The deterministic check: each claim against the text of each source it cites.
//!
//! For every cited source, the windows of one or two consecutive units (sentences, see
//! [`super::claims::units`]) around each unit sharing a term with the claim are compared with it:
//!
//! - **coverage**: the share of the claim's key terms (stemmed content words, numbers and dates) the
//!   window holds;
//! - **specials**: every number, date and proper noun of the claim must be in the window (a proper
//!   noun or number may also be in the source's subject: its first unit, or a word in at least
//!   [`SUBJECT_MIN_UNITS`] units; "the runtime" on Tokio's page is Tokio);
//! - **contradiction**: the window gives a different number or date of the same kind where the
//!   claim's is missing, or one of them is negated and the other not (judged on the unit sharing most
//!   with the claim), or they use opposite words ("incompatible"/"compatible", "faster"/"slower").
//!
//! `supported`: coverage ≥ [`SUPPORTED_COVERAGE`], at least [`MIN_SHARED_TERMS`] shared key terms (or
//! all of a shorter claim's), every special present, no contradiction. `partial`: coverage ≥
//! [`PARTIAL_COVERAGE`] and no contradiction. `unsupported`: otherwise.
//!
//! Which window decides: a source supports the claim when some window supports it and the
//! best-matching window (shared terms weighted by their rarity in the source, plus specials found and
//! slots where the window gives a different value) does not contradict it; otherwise the best-matching
//! window's grade stands. A claim citing several sources is supported when one source supports it, or
//! when the best-matching windows of its sources together do (each source then gives its passage).

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::claims;
use super::terms::{self, Features};
use super::{Evidence, Status};

/// Share of a claim's key terms a window must hold to support it.
pub const SUPPORTED_COVERAGE: f64 = 0.6;
/// Share below which a window is not even partial backing.
pub const PARTIAL_COVERAGE: f64 = 0.4;
/// Terms a supporting window must share with the claim (fewer only when the claim has fewer).
pub const MIN_SHARED_TERMS: usize = 2;
/// A word in at least this many units of a source is part of its subject.
const SUBJECT_MIN_UNITS: usize = 3;
/// Longest source text looked at, in bytes (the rest is ignored).
pub const MAX_SOURCE_BYTES: usize = 400_000;

/// A source's text, split and reduced once for all claims.
pub struct Prepared<'a> {
    text: &'a str,
    units: Vec<Range<usize>>,
    features: Vec<Features>,
    subject: Subject,
    /// Inverse unit frequency of each term, for choosing the best-matching window.
    idf: HashMap<String, f64>,
    /// The units each term occurs in.
    index: HashMap<String, Vec<usize>>,
}

/// What a source is about: the terms and numbers of its first unit (a title, a heading, a lead
/// sentence) and the terms found in at least [`SUBJECT_MIN_UNITS`] of its units. A claim's proper noun
/// or number found there counts as present in every passage of the source ("the runtime" on Tokio's
/// page is Tokio; "Python 3.12" heads its release notes).
#[derive(Default)]
struct Subject {
    terms: BTreeSet<String>,
    numbers: Features,
}

impl<'a> Prepared<'a> {
    pub fn new(text: &'a str) -> Prepared<'a> {
        let mut end = text.len().min(MAX_SOURCE_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = &text[..end];
        let units = claims::units(text);
        let features: Vec<Features> = units
            .iter()
            .map(|r| terms::features(&text[r.clone()], false))
            .collect();
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        for (u, f) in features.iter().enumerate() {
            for t in &f.terms {
                index.entry(t.clone()).or_default().push(u);
            }
        }
        let df: HashMap<&str, usize> = index.iter().map(|(t, us)| (t.as_str(), us.len())).collect();
        let mut subject = Subject::default();
        if let Some(first) = features.first() {
            subject.terms.extend(first.terms.iter().cloned());
            subject.numbers.numbers = first.numbers.clone();
        }
        subject.terms.extend(
            df.iter()
                .filter(|(_, n)| **n >= SUBJECT_MIN_UNITS)
                .map(|(t, _)| t.to_string()),
        );
        let units_n = features.len().max(1) as f64;
        let idf = df
            .iter()
            .map(|(t, n)| (t.to_string(), (1.0 + units_n / *n as f64).ln()))
            .collect();
        Prepared {
            text,
            units,
            features,
            subject,
            idf,
            index,
        }
    }

    /// The verbatim text of units `range`.
    pub fn passage(&self, range: &Range<usize>) -> &'a str {
        let start = self.units[range.start].start;
        let end = self.units[range.end - 1].end;
        &self.text[start..end]
    }

    /// Units around the best window for `claim`, up to `max_bytes` of text (the judge's document).
    pub fn context(&self, claim: &Features, max_bytes: usize) -> Option<&'a str> {
        if self.units.is_empty() {
            return None;
        }
        if self.text.len() <= max_bytes {
            return Some(self.text.trim());
        }
        // The best-matching window, else the opening.
        let best = self
            .windows(claim)
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map_or(0..1, |w| w.units);
        let (mut lo, mut hi) = (best.start, best.end);
        let width = |lo: usize, hi: usize| self.units[hi - 1].end - self.units[lo].start;
        loop {
            let mut grew = false;
            if hi < self.units.len() && width(lo, hi + 1) <= max_bytes {
                hi += 1;
                grew = true;
            }
            if lo > 0 && width(lo - 1, hi) <= max_bytes {
                lo -= 1;
                grew = true;
            }
            if !grew {
                break;
            }
        }
        Some(self.passage(&(lo..hi)))
    }

    /// The windows worth comparing: each unit sharing a term with the claim, alone and with each
    /// neighbour (a window sharing nothing cannot back the claim, and skipping those keeps a long page
    /// cheap).
    fn windows<'s>(&'s self, claim: &'s Features) -> impl Iterator<Item = Window> + 's {
        let n = self.units.len();
        let mut candidates: Vec<usize> = claim
            .terms
            .iter()
            .filter_map(|t| self.index.get(t))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        // (start, len) of each window, once.
        let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(candidates.len() * 3);
        for &u in &candidates {
            ranges.push((u, 1));
            if u > 0 {
                ranges.push((u - 1, 2));
            }
            if u + 1 < n {
                ranges.push((u, 2));
            }
        }
        ranges.sort_unstable();
        ranges.dedup();
        ranges
            .into_iter()
            .map(move |(start, len)| self.eval(claim, start..start + len))
    }

    /// The window of `units` as the check sees it.
    fn view(&self, claim: &Features, units: Range<usize>) -> View<'_> {
        let parts: Vec<&Features> = units.clone().map(|u| &self.features[u]).collect();
        // Negation is the main unit's (the one sharing most with the claim): a neighbour's "not"
        // ("When not to use Tokio") says nothing about this claim.
        let shared_in = |f: &Features| claim.terms.iter().filter(|t| f.terms.contains(*t)).count();
        let negated = parts
            .iter()
            .enumerate()
            .max_by_key(|(i, f)| (shared_in(f), std::cmp::Reverse(*i)))
            .is_some_and(|(_, f)| f.negated);
        View { parts, negated }
    }

    fn eval(&self, claim: &Features, units: Range<usize>) -> Window {
        let view = self.view(claim, units.clone());
        let verdict = judge_window(claim, &view, &self.subject, false);
        // Best match: shared terms weighted by rarity in this source, then the claim's numbers, dates
        // and names found, then slots where the window gives a different value (so a contradiction is
        // seen rather than a window that avoids the subject); one unit preferred over two.
        let weighted: f64 = claim
            .terms
            .iter()
            .filter(|t| view.has_term(t))
            .map(|t| self.idf.get(t.as_str()).copied().unwrap_or(1.0))
            .sum();
        let score = weighted + 2.0 * verdict.specials_found as f64 + verdict.addressed as f64
            - 0.5 * (units.len() as f64 - 1.0);
        Window {
            units,
            verdict,
            score,
        }
    }

    /// The verdict of a window with its reason in words.
    fn explain(&self, claim: &Features, units: &Range<usize>) -> Verdict {
        judge_window(claim, &self.view(claim, units.clone()), &self.subject, true)
    }
}

/// One window's comparison with the claim.
#[derive(Clone)]
struct Window {
    units: Range<usize>,
    verdict: Verdict,
    score: f64,
}

/// Units (of one source, or the best of several) seen as one passage, without copying them.
struct View<'f> {
    parts: Vec<&'f Features>,
    negated: bool,
}

impl View<'_> {
    fn has_term(&self, t: &str) -> bool {
        self.parts.iter().any(|f| f.terms.contains(t))
    }
    fn terms(&self) -> impl Iterator<Item = &String> {
        self.parts.iter().flat_map(|f| f.terms.iter())
    }
    fn numbers(&self) -> impl Iterator<Item = &terms::Num> {
        self.parts.iter().flat_map(|f| f.numbers.iter())
    }
    fn dates(&self) -> impl Iterator<Item = &terms::Date> {
        self.parts.iter().flat_map(|f| f.dates.iter())
    }
    fn has_number(&self, n: &terms::Num) -> bool {
        self.parts.iter().any(|f| f.has_number(n))
    }
    fn has_date(&self, d: &terms::Date) -> bool {
        self.parts.iter().any(|f| f.has_date(d))
    }
    fn has_kind(&self, k: terms::NumKind) -> bool {
        self.parts.iter().any(|f| f.has_kind(k))
    }
}

#[derive(Clone, Debug)]
struct Verdict {
    status: Status,
    shared: usize,
    specials_found: usize,
    /// Claim numbers, dates or terms for which the window gives a different value or the opposite.
    addressed: usize,
    /// The window says otherwise: a different number or date, a negation, an opposite word.
    contradicts: bool,
    /// Why it is not supported, in words (only when asked for: building it for every window of a
    /// long page would cost more than the comparison).
    why: Option<String>,
}

/// Grades the window `w` against the claim `c`; with `explain`, says why it is not supported.
fn judge_window(c: &Features, w: &View<'_>, subject: &Subject, explain: bool) -> Verdict {
    let shared = c.terms.iter().filter(|t| w.has_term(t)).count();
    let mut missing: Vec<String> = Vec::new();
    let mut found = 0;
    let mut found_values = 0;
    let mut addressed = 0;
    let mut conflict: Option<String> = None;
    let mut note_missing = |s: &dyn Fn() -> String| {
        if explain {
            missing.push(s());
        }
    };
    for n in &c.numbers {
        if w.has_number(n) || subject.numbers.has_number(n) {
            found += 1;
            found_values += 1;
        } else {
            note_missing(&|| n.show());
            // A different number of the same kind, one the claim does not give: a substitution.
            let kind = n.kind();
            let other = w
                .numbers()
                .find(|m| m.kind() == kind && !c.numbers.iter().any(|x| x.matches(m)));
            if let Some(m) = other {
                addressed += 1;
                if conflict.is_none() {
                    conflict = Some(if explain {
                        format!("it gives {} where the sentence says {}", m.show(), n.show())
                    } else {
                        String::new()
                    });
                }
            } else if kind == terms::NumKind::Year && w.has_kind(terms::NumKind::Year) {
                addressed += 1;
                if conflict.is_none() {
                    conflict = Some(if explain {
                        format!("it gives a different year than {}", n.show())
                    } else {
                        String::new()
                    });
                }
            }
        }
    }
    for d in &c.dates {
        if w.has_date(d) {
            found += 1;
            found_values += 1;
        } else {
            note_missing(&|| d.show());
            if let Some(other) = w.dates().find(|p| *p != d)
                && (d.year.is_none() || other.year.is_some())
            {
                addressed += 1;
                if conflict.is_none() {
                    conflict = Some(if explain {
                        format!(
                            "it gives {} where the sentence says {}",
                            other.show(),
                            d.show()
                        )
                    } else {
                        String::new()
                    });
                }
            }
        }
    }
    let mut names_missing = false;
    for (stem, shown) in &c.names_shown {
        if w.has_term(stem) || subject.terms.contains(stem) {
            found += 1;
        } else {
            names_missing = true;
            note_missing(&|| shown.clone());
        }
    }
    let all_specials =
        found == c.numbers.len() + c.dates.len() + c.names_shown.len() && !names_missing;
    // Opposite words: a claim term missing from the window whose opposite is there.
    let opposite = c
        .terms
        .iter()
        .filter(|t| !w.has_term(t))
        .find_map(|t| w.terms().find(|p| terms::opposite(t, p)).map(|p| (t, p)));
    let negation = c.negated != w.negated;
    if opposite.is_some() {
        addressed += 1;
    }

    // Key terms: content words, numbers and dates.
    let total = c.terms.len() + c.numbers.len() + c.dates.len();
    let coverage = if total == 0 {
        0.0
    } else {
        (shared + found_values) as f64 / total as f64
    };
    let enough = shared + found_values >= MIN_SHARED_TERMS.min(total).max(1);
    let mut contradicts = false;
    let (status, why) = if let Some(why) = conflict.filter(|_| coverage >= PARTIAL_COVERAGE) {
        contradicts = true;
        (Status::Unsupported, why)
    } else if (negation || opposite.is_some()) && coverage >= PARTIAL_COVERAGE {
        contradicts = true;
        let why = match opposite {
            Some((t, p)) => format!("it says \"{p}\" where the sentence says \"{t}\""),
            None if c.negated => "the sentence is negated and the passage is not".to_string(),
            None => "the passage is negated and the sentence is not".to_string(),
        };
        (Status::Unsupported, why)
    } else if coverage >= SUPPORTED_COVERAGE && enough && all_specials {
        (Status::Supported, String::new())
    } else if coverage >= PARTIAL_COVERAGE && enough {
        let why = if all_specials {
            format!(
                "it shares only {} of the sentence's {total} key terms",
                shared + found_values
            )
        } else {
            format!("it does not mention {}", missing.join(", "))
        };
        (Status::Partial, why)
    } else {
        (
            Status::Unsupported,
            "no passage matches the sentence".to_string(),
        )
    };
    Verdict {
        status,
        shared,
        specials_found: found,
        addressed,
        contradicts,
        why: (explain && status != Status::Supported).then_some(why),
    }
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Supported => 3,
        Status::Partial => 2,
        Status::Unsupported => 1,
        Status::Uncited => 0,
    }
}

/// The grade of one claim.
#[derive(Clone, Debug, PartialEq)]
pub struct Grade {
    pub status: Status,
    pub evidence: Vec<Evidence>,
    /// Why the claim is not supported (for diagnostics), e.g. "source 2 gives 1000 where the sentence
    /// says 10000".
    pub why: Option<String>,
}

/// Grades `claim` (its text without markers) against the cited sources. `prepared` holds the text of
/// every source that has one; a cited number without text counts as a source that says nothing.
pub fn grade(claim: &str, citations: &[usize], prepared: &HashMap<usize, Prepared<'_>>) -> Grade {
    let c = terms::features(claim, true);
    if c.terms.is_empty() && c.numbers.is_empty() && c.dates.is_empty() {
        return Grade {
            status: Status::Unsupported,
            evidence: Vec::new(),
            why: Some("the sentence has nothing to check".into()),
        };
    }
    // Per source: its best window (by status, then score) and its best-scoring window.
    struct Best<'p> {
        n: usize,
        p: &'p Prepared<'p>,
        top: Window,
        closest: Window,
    }
    let mut bests: Vec<Best<'_>> = Vec::new();
    let mut missing_text = Vec::new();
    let mut no_match = Vec::new();
    for &n in citations {
        let Some(p) = prepared.get(&n).filter(|p| !p.units.is_empty()) else {
            missing_text.push(n);
            continue;
        };
        if c.terms.iter().all(|t| !p.index.contains_key(t)) {
            no_match.push(n);
            continue;
        }
        let mut top: Option<Window> = None;
        let mut closest: Option<Window> = None;
        for w in p.windows(&c) {
            let better_top = top.as_ref().is_none_or(|t| {
                (rank(w.verdict.status), w.score) > (rank(t.verdict.status), t.score)
            });
            let better_closest = closest.as_ref().is_none_or(|t| w.score > t.score);
            if better_closest {
                closest = Some(w.clone());
            }
            if better_top {
                top = Some(w);
            }
        }
        if let (Some(top), Some(closest)) = (top, closest) {
            bests.push(Best { n, p, top, closest });
        }
    }

    // Supported by one source (each that supports it gives its passage). A source whose best-matching
    // window says otherwise (a different number, a negation) does not support the claim through a
    // weaker match elsewhere: the passage most about the claim decides.
    let supporting: Vec<Evidence> = bests
        .iter()
        .filter(|b| b.top.verdict.status == Status::Supported && !b.closest.verdict.contradicts)
        .map(|b| Evidence {
            source: b.n,
            passage: b.p.passage(&b.top.units).to_string(),
        })
        .collect();
    if !supporting.is_empty() {
        return Grade {
            status: Status::Supported,
            evidence: supporting,
            why: None,
        };
    }

    // Supported by the sources together: their closest windows joined.
    if bests.len() >= 2 {
        let mut joined = View {
            parts: Vec::new(),
            negated: false,
        };
        let mut subject = Subject::default();
        for b in &bests {
            let view = b.p.view(&c, b.closest.units.clone());
            joined.parts.extend(view.parts);
            joined.negated |= view.negated;
            subject.terms.extend(b.p.subject.terms.iter().cloned());
            subject.numbers.absorb(&b.p.subject.numbers);
        }
        let v = judge_window(&c, &joined, &subject, false);
        if v.status == Status::Supported {
            let evidence = bests
                .iter()
                .filter(|b| b.closest.verdict.shared > 0 || b.closest.verdict.specials_found > 0)
                .map(|b| Evidence {
                    source: b.n,
                    passage: b.p.passage(&b.closest.units).to_string(),
                })
                .collect();
            return Grade {
                status: Status::Supported,
                evidence,
                why: None,
            };
        }
    }

    // Otherwise the verdict of the closest window of each source; the best of them stands.
    let Some(best) = bests.iter().max_by(|a, b| {
        (rank(a.closest.verdict.status), a.closest.score)
            .partial_cmp(&(rank(b.closest.verdict.status), b.closest.score))
            .unwrap_or(std::cmp::Ordering::Equal)
    }) else {
        let list = |ns: &[usize]| {
            ns.iter()
                .map(|n| format!("[{n}]"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let why = if no_match.is_empty() {
            format!(
                "no text of {} was available to check against",
                list(&missing_text)
            )
        } else {
            format!("{}: no passage matches the sentence", list(&no_match))
        };
        return Grade {
            status: Status::Unsupported,
            evidence: Vec::new(),
            why: Some(why),
        };
    };
    let status = best.closest.verdict.status;
    let evidence = if status == Status::Partial {
        bests
            .iter()
            .filter(|b| b.closest.verdict.status == Status::Partial)
            .map(|b| Evidence {
                source: b.n,
                passage: b.p.passage(&b.closest.units).to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let why = best
        .p
        .explain(&c, &best.closest.units)
        .why
        .map(|w| format!("[{}]: {w}", best.n));
    Grade {
        status,
        evidence,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grade_one(claim: &str, source: &str) -> Grade {
        let mut prepared = HashMap::new();
        prepared.insert(1, Prepared::new(source));
        grade(claim, &[1], &prepared)
    }

    #[test]
    fn the_backing_passage_is_verbatim_source_text() {
        let source = "Intro line.\n\nTokio uses a work-stealing scheduler.   It starts one worker per core [3].\nOther text.";
        let g = grade_one("Tokio's scheduler uses work stealing.", source);
        assert_eq!(g.status, Status::Supported);
        assert_eq!(g.evidence.len(), 1);
        assert_eq!(
            g.evidence[0].passage,
            "Tokio uses a work-stealing scheduler."
        );
        assert!(source.contains(&g.evidence[0].passage));
    }

    #[test]
    fn a_different_number_is_unsupported_and_says_so() {
        let g = grade_one(
            "SQLite checkpoints when the WAL reaches 10,000 pages.",
            "SQLite does a checkpoint automatically when the WAL file reaches a threshold size of 1000 pages.",
        );
        assert_eq!(g.status, Status::Unsupported);
        assert!(g.why.unwrap().contains("1000"));
        assert!(g.evidence.is_empty());
    }

    #[test]
    fn a_missing_name_is_partial_and_a_missing_source_is_named() {
        let g = grade_one(
            "Zstandard was developed by Yann Collet at Google.",
            "Zstandard is a fast compression algorithm developed by Yann Collet at Facebook.",
        );
        assert_eq!(g.status, Status::Partial);
        assert!(g.why.unwrap().contains("Google"));
        let g = grade("Tokio steals work.", &[4], &HashMap::new());
        assert_eq!(g.status, Status::Unsupported);
        assert!(g.why.unwrap().contains("[4]"));
    }
}
