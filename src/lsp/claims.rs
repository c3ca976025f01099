//! The claim check inside an inserted report: where each checked sentence sits in the document, for
//! diagnostics (a sentence its sources do not back) and hover (the passage that backs a sentence).
//!
//! The claims come from the store (by report id), so this works after a restart. The document is read
//! as it is now: a sentence is found by the mark the report wrote after it (`**(unsupported)**`,
//! `*(uncited)*`, `*(partly backed)*`: web text has its `*` escaped, so only the report writes these),
//! and by the start of its text, escaped as the report wrote it. A sentence the user rewrote is not
//! found, and gets nothing.

use std::sync::Arc;

use crate::report::{Claim, Status};

/// A checked sentence found on a line: the claim's index and the char columns of the sentence (from
/// its first words, when found, else from its mark) to the end of its mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub claim: usize,
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

fn mark_of(status: Status) -> Option<&'static str> {
    crate::render::claim_mark(status).map(str::trim_start)
}

/// The start of a claim's sentence as the report wrote it: its first words, escaped. The last escaped
/// character is dropped, since escaping depends on the character after it.
fn needle(claim: &Claim) -> Option<String> {
    let words: Vec<&str> = claim.text.split_whitespace().take(4).collect();
    if words.is_empty() {
        return None;
    }
    let mut escaped = crate::render::escape_text(&words.join(" "));
    escaped.pop();
    (escaped.chars().count() >= 3).then_some(escaped)
}

fn col(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// Marked (not supported) sentences on `lines` (line number, text) of one report, in order. The k-th
/// mark of a status belongs to the k-th claim with that status.
pub fn marked(claims: &Arc<Vec<Claim>>, lines: &[(usize, String)]) -> Vec<Located> {
    let mut found = Vec::new();
    let mut next = 0; // index into claims: marks come in the claims' order
    for (line, text) in lines {
        let mut marks: Vec<(usize, Status, &str)> = Vec::new();
        for status in [Status::Partial, Status::Unsupported, Status::Uncited] {
            let Some(mark) = mark_of(status) else {
                continue;
            };
            for (at, _) in text.match_indices(mark) {
                let before = text[..at].chars().next_back();
                // A report writes a mark after a space; an escaped `\*` is web text.
                if before == Some(' ') && !text[at..].starts_with(&format!("{mark}*")) {
                    marks.push((at, status, mark));
                }
            }
        }
        marks.sort_by_key(|m| m.0);
        for (at, status, mark) in marks {
            let Some(i) = (next..claims.len()).find(|&i| claims[i].status == status) else {
                continue;
            };
            next = i + 1;
            let start = needle(&claims[i])
                .and_then(|n| text[..at].rfind(&n))
                .unwrap_or(at);
            found.push(Located {
                claim: i,
                line: *line,
                start: col(text, start),
                end: col(text, at + mark.len()),
            });
        }
    }
    found
}

/// The claim whose sentence holds the citation marker at char column `marker` of `text`, citing source
/// `n`: of the claims citing `n`, the one whose sentence starts closest before the marker (and after
/// the end of any earlier sentence's mark).
pub fn at_marker<'a>(
    claims: &'a [Claim],
    text: &str,
    marker: usize,
    n: usize,
) -> Option<&'a Claim> {
    let byte = text
        .char_indices()
        .nth(marker)
        .map_or(text.len(), |(b, _)| b);
    let before = &text[..byte];
    claims
        .iter()
        .filter(|c| c.citations.contains(&n))
        .filter_map(|c| Some((before.rfind(&needle(c)?)?, c)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, c)| c)
}

/// What hover says of a sentence: its status and the passage of source `n` that backs it (or that none
/// does, and why), as markdown (passages escaped for a hover).
pub fn hover_note(claim: &Claim, n: usize) -> String {
    use crate::render::{escape_hover, escape_line_start};
    let status = match claim.status {
        Status::Supported => "backed by its sources",
        Status::Partial => "partly backed",
        Status::Unsupported => "not backed by its sources",
        Status::Uncited => "uncited",
    };
    let mut out = format!("---\n\n*This sentence is {status}.*");
    let passages: Vec<&str> = claim
        .evidence
        .iter()
        .filter(|e| e.source == n)
        .map(|e| e.passage.as_str())
        .collect();
    if passages.is_empty() {
        out.push_str(&format!(
            "\n\nNo passage of source [{n}] was found that backs it"
        ));
        match &claim.why {
            Some(why) => out.push_str(&format!(": {}.", escape_hover(why.trim_end_matches('.')))),
            None => out.push('.'),
        }
    } else {
        out.push_str(&format!("\n\nSource [{n}] says:"));
        for p in passages {
            let p = crate::sanitize::one_line(p, 600);
            out.push_str(&format!("\n\n> {}", escape_line_start(&escape_hover(&p))));
        }
    }
    if let Some(v) = claim.judge {
        out.push_str(&format!(
            "\n\n*The judge model says: {}.*",
            match v {
                crate::report::Verdict::Yes => "backed",
                crate::report::Verdict::No => "not backed",
            }
        ));
    }
    out
}

/// A diagnostic's message for a marked sentence.
pub fn message(claim: &Claim) -> String {
    let what = match claim.status {
        Status::Supported => "Backed by its sources",
        Status::Partial => "Partly backed by its sources",
        Status::Unsupported => "Not backed by the sources it cites",
        Status::Uncited => "This sentence cites no source",
    };
    match &claim.why {
        Some(why) if claim.status != Status::Uncited => format!("{what}: {why}"),
        _ => what.to_string(),
    }
}
