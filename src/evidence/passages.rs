//! Passages: the few sentences of a source that matter for the topic, quoted verbatim.
//!
//! The readable text is cut into candidate windows: whole sentences (UAX #29 sentence boundaries, from
//! `unicode-segmentation`) inside one paragraph, as many as fit in [`MAX_CHARS`]. A sentence longer than
//! that is cut at a clause boundary (or a space) instead. Every candidate is a slice of the text, so a
//! quote is the page's own words. Candidates are ranked against the topic with BM25 ([`crate::text::bm25`],
//! the same ranking the `notes` provider uses) in two rounds: within the page, to keep a short list
//! without holding every candidate of a long page; then across every source of one research, so that
//! scores compare between sources (the "Key passages" of a report are ordered by them).

use unicode_segmentation::UnicodeSegmentation;

use super::Passage;
use crate::text::bm25::Query;

/// A passage is at most about this many characters.
pub const MAX_CHARS: usize = 300;
/// Shorter candidates (headings, captions, menu remnants) are not quoted.
const MIN_CHARS: usize = 25;
const MIN_WORDS: usize = 4;
/// Candidates kept per source after the first round.
pub const SHORTLIST: usize = 4;
/// Passages quoted per source at most.
pub const PER_SOURCE: usize = 2;
/// A second passage is quoted only when it scores at least this fraction of the first.
const SECOND_RATIO: f64 = 0.5;

/// Byte ranges of `text` that are candidate passages, in text order.
pub fn candidates(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split('\n') {
        let sentences = sentence_spans(line);
        for i in 0..sentences.len() {
            let (start, mut end) = sentences[i];
            for &(_, next_end) in &sentences[i + 1..] {
                if line[start..next_end].chars().count() > MAX_CHARS {
                    break;
                }
                end = next_end;
            }
            let slice = &line[start..end];
            if slice.chars().count() >= MIN_CHARS && slice.split_whitespace().count() >= MIN_WORDS {
                out.push((line_start + start, line_start + end));
            }
        }
        line_start += line.len() + 1;
    }
    out
}

/// The sentences of one line as trimmed byte ranges; a sentence longer than [`MAX_CHARS`] is cut into
/// pieces that fit.
fn sentence_spans(line: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for (offset, sentence) in line.split_sentence_bound_indices() {
        let trimmed = sentence.trim_end();
        let lead = trimmed.len() - trimmed.trim_start().len();
        let (mut start, end) = (offset + lead, offset + trimmed.len());
        while start < end {
            let piece = cut(&line[start..end]);
            spans.push((start, start + piece));
            start += piece;
            start += line[start..end].len() - line[start..end].trim_start().len();
        }
    }
    spans
}

/// The byte length of the first piece of `s` that fits in [`MAX_CHARS`]: all of it when it fits, else up
/// to the last clause boundary (`,` `;` `:` or a dash) in its second half, else the last space, else
/// [`MAX_CHARS`] characters.
fn cut(s: &str) -> usize {
    let Some((limit, _)) = s.char_indices().nth(MAX_CHARS) else {
        return s.len();
    };
    let head = &s[..limit];
    let clause = [", ", "; ", ": ", " — ", " – ", " - "]
        .iter()
        .filter_map(|sep| head.rfind(sep).map(|i| i + sep.trim_end().len()))
        .max()
        .filter(|&i| i >= limit / 2);
    clause
        .or_else(|| head.rfind(' ').filter(|&i| i > 0))
        .unwrap_or(limit)
}

/// The first round: the page's best [`SHORTLIST`] candidates that do not overlap, best first, each with a
/// positive score against `query`.
pub fn shortlist(text: &str, query: &Query) -> Vec<String> {
    if query.is_empty() {
        return Vec::new();
    }
    let spans = candidates(text);
    let counts: Vec<_> = spans
        .iter()
        .map(|&(s, e)| query.counts(&text[s..e]))
        .collect();
    let scores = query.scores(&counts);
    drop(counts);
    let mut order: Vec<usize> = (0..spans.len()).filter(|&i| scores[i] > 0.0).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    for i in order {
        let (s, e) = spans[i];
        if chosen.iter().all(|&(cs, ce)| e <= cs || s >= ce) {
            chosen.push((s, e));
            if chosen.len() == SHORTLIST {
                break;
            }
        }
    }
    chosen
        .into_iter()
        .map(|(s, e)| text[s..e].to_string())
        .collect()
}

/// The second round: every source's short list ranked together, then at most [`PER_SOURCE`] passages per
/// source (a second one only when it scores at least half the first). Returns one list per source.
pub fn select(query: &Query, shortlists: &[Vec<String>]) -> Vec<Vec<Passage>> {
    let all: Vec<(usize, &str)> = shortlists
        .iter()
        .enumerate()
        .flat_map(|(i, list)| list.iter().map(move |p| (i, p.as_str())))
        .collect();
    let counts: Vec<_> = all.iter().map(|(_, p)| query.counts(p)).collect();
    let scores = query.scores(&counts);
    let mut out: Vec<Vec<Passage>> = vec![Vec::new(); shortlists.len()];
    for (source, list) in out.iter_mut().enumerate() {
        let mut mine: Vec<(f64, &str)> = all
            .iter()
            .zip(&scores)
            .filter(|((i, _), s)| *i == source && **s > 0.0)
            .map(|((_, p), s)| (*s, *p))
            .collect();
        mine.sort_by(|a, b| b.0.total_cmp(&a.0));
        let best = mine.first().map_or(0.0, |m| m.0);
        *list = mine
            .into_iter()
            .take(PER_SOURCE)
            .filter(|(s, _)| *s >= best * SECOND_RATIO)
            .map(|(score, text)| Passage {
                text: text.to_string(),
                score: (score * 1000.0).round() / 1000.0,
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_whole_sentences_within_a_paragraph() {
        let text = "Short heading\nTokio is a runtime. It schedules tasks on worker threads. Work stealing keeps cores busy.\n\nAnother paragraph about the reactor and its timers here.";
        for (s, e) in candidates(text) {
            let c = &text[s..e];
            assert!(!c.contains('\n'), "{c:?}");
            assert!(c.ends_with('.'), "{c:?}");
            assert!(c.chars().count() <= MAX_CHARS);
        }
        assert!(
            candidates(text)
                .iter()
                .any(|&(s, e)| &text[s..e] == "Tokio is a runtime. It schedules tasks on worker threads. Work stealing keeps cores busy.")
        );
        // The heading is too short to quote.
        assert!(
            !candidates(text)
                .iter()
                .any(|&(s, e)| text[s..e].contains("heading"))
        );
    }

    #[test]
    fn a_long_sentence_is_cut_at_a_clause_and_stays_verbatim() {
        let long = format!(
            "The scheduler {} keeps a local queue per worker, and a global queue for tasks spawned elsewhere.",
            "really ".repeat(60)
        );
        let spans = candidates(&long);
        assert!(!spans.is_empty());
        for (s, e) in spans {
            let c = &long[s..e];
            assert!(c.chars().count() <= MAX_CHARS, "{}", c.len());
            assert!(long.contains(c));
        }
    }

    #[test]
    fn the_best_passages_match_the_topic_and_do_not_overlap() {
        let text = "Bread needs flour, water, salt and time to rise.\n\nTokio's multi-threaded scheduler uses work stealing between worker threads. Idle workers steal tasks from busy ones.\n\nThe weather was fine that day and nobody went out.";
        let q = Query::new("tokio work stealing scheduler");
        let short = shortlist(text, &q);
        assert!(short[0].contains("work stealing"), "{short:?}");
        assert!(short.iter().all(|p| text.contains(p.as_str())));
        let picked = select(&q, &[short, Vec::new()]);
        assert_eq!(picked.len(), 2);
        assert!(!picked[0].is_empty() && picked[0].len() <= PER_SOURCE);
        assert!(picked[1].is_empty());
        assert!(picked[0][0].score > 0.0);
        assert!(!picked[0].iter().any(|p| p.text.contains("Bread")));
    }
}
