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
use crate::text::bm25::{Counts, Query};

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
    windows(text)
        .into_iter()
        .map(|w| (w.start, w.end))
        .collect()
}

/// A candidate: sentences `first..=last` (indexes into the text's sentences) spanning `start..end`.
struct Window {
    start: usize,
    end: usize,
    first: usize,
    last: usize,
}

/// A sentence (or a piece of a long one): its byte range, characters and words.
struct Sentence {
    start: usize,
    end: usize,
    chars: usize,
    words: usize,
}

/// Every sentence of the text, and the candidate windows over them. Each sentence is measured once.
fn sentences_and_windows(text: &str) -> (Vec<(usize, usize)>, Vec<Window>) {
    let mut sentences: Vec<Sentence> = Vec::new();
    let mut windows = Vec::new();
    let mut line_start = 0;
    for line in text.split('\n') {
        let base = sentences.len();
        sentences.extend(sentence_spans(line).into_iter().map(|(s, e)| Sentence {
            start: line_start + s,
            end: line_start + e,
            chars: line[s..e].chars().count(),
            words: line[s..e].split_whitespace().count(),
        }));
        let line_sentences = &sentences[base..];
        for (i, first) in line_sentences.iter().enumerate() {
            let (mut end, mut chars, mut words, mut last) =
                (first.end, first.chars, first.words, i);
            for (j, next) in line_sentences.iter().enumerate().skip(i + 1) {
                // The gap between two sentences is a space (the text is normalised) or nothing.
                let gap = next.start - end;
                if chars + gap + next.chars > MAX_CHARS {
                    break;
                }
                (end, chars, words, last) =
                    (next.end, chars + gap + next.chars, words + next.words, j);
            }
            if chars >= MIN_CHARS && words >= MIN_WORDS {
                windows.push(Window {
                    start: first.start,
                    end,
                    first: base + i,
                    last: base + last,
                });
            }
        }
        line_start += line.len() + 1;
    }
    let spans = sentences.iter().map(|s| (s.start, s.end)).collect();
    (spans, windows)
}

fn windows(text: &str) -> Vec<Window> {
    sentences_and_windows(text).1
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
    // Each sentence is counted once; a window's counts are the sum of its sentences'.
    let (sentences, windows) = sentences_and_windows(text);
    let sentence_counts: Vec<Counts> = sentences
        .iter()
        .map(|&(s, e)| query.counts(&text[s..e]))
        .collect();
    let counts: Vec<Counts> = windows
        .iter()
        .map(|w| {
            let mut c = sentence_counts[w.first].clone();
            for more in &sentence_counts[w.first + 1..=w.last] {
                c.add(more);
            }
            c
        })
        .collect();
    let scores = query.scores(&counts);
    drop(counts);
    let mut order: Vec<usize> = (0..windows.len()).filter(|&i| scores[i] > 0.0).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut chosen: Vec<&Window> = Vec::new();
    for i in order {
        let w = &windows[i];
        if chosen.iter().all(|c| w.end <= c.start || w.start >= c.end) {
            chosen.push(w);
            if chosen.len() == SHORTLIST {
                break;
            }
        }
    }
    // A window is as long as fits; drop the sentences at its ends that match nothing, so the quote is
    // the part that matters (while it stays long enough to quote).
    let matches = |i: usize| sentence_counts[i].matches() > 0;
    let long_enough = |first: usize, last: usize| {
        text[sentences[first].0..sentences[last].1].chars().count() >= MIN_CHARS
    };
    chosen
        .into_iter()
        .map(|w| {
            let (mut first, mut last) = (w.first, w.last);
            while first < last && !matches(first) && long_enough(first + 1, last) {
                first += 1;
            }
            while last > first && !matches(last) && long_enough(first, last - 1) {
                last -= 1;
            }
            text[sentences[first].0..sentences[last].1].to_string()
        })
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
