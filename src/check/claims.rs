//! Sentences: a summary split into sentences, each with the sources it cites, and the same splitter
//! applied to source text (where it yields the units passages are made of).
//!
//! Segmentation is Unicode's sentence boundaries (UAX #29, the `unicode-segmentation` crate), which
//! already keeps decimals ("3.5"), versions ("1.75.0"), dotted names ("Node.js") and lower-case
//! continuations ("e.g. the") together. On top of it, three repairs measured in
//! `segmentation_repairs_fix_what_uax29_splits` (tests below): a break after a known abbreviation or
//! initialism ("Dr.", "U.S.", "e.g." before a capital, "Fig." before a digit) is undone; a break with no
//! space on either side (".NET") is undone; a piece of only closing punctuation joins the sentence before.
//! Citation markers are blanked (replaced by spaces, so byte offsets stay those of the input) before
//! segmenting, so "fast.[1] Next" splits after the marker, and a marker between two sentences belongs
//! to the one before it.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

/// A unit longer than this (bytes) is cut at word boundaries: page text without punctuation (tables,
/// navigation) would otherwise make one huge "sentence".
const MAX_UNIT_BYTES: usize = 600;

/// One sentence of a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sentence {
    /// The sentence without its citation markers, whitespace collapsed.
    pub text: String,
    /// The sources it cites, in order of first mention, each once.
    pub citations: Vec<usize>,
    /// Byte range in the summary: the sentence and the markers that belong to it.
    pub span: Range<usize>,
}

/// Splits a summary (plain text with `[n]` markers, blocks separated by blank lines, bullets as `- `,
/// as `synth::Summary::text` holds it) into sentences. `[n]`, `[n, m]` and `[^n]` are citations.
pub fn split(summary: &str) -> Vec<Sentence> {
    let markers = find_markers(summary);
    let mut blanked = summary.to_string();
    blank(&mut blanked, markers.iter().map(|m| m.span.clone()));
    let units = segment_blanked(&blanked);
    let mut out: Vec<Sentence> = units
        .iter()
        .map(|u| Sentence {
            text: String::new(),
            citations: Vec::new(),
            span: u.clone(),
        })
        .collect();
    if out.is_empty() {
        return out;
    }
    // Each marker goes to the sentence containing it, else to the one before it (a marker after a
    // sentence's full stop), else (before the first sentence) to the first.
    for m in &markers {
        let i = out
            .iter()
            .rposition(|s| s.span.start <= m.span.start)
            .unwrap_or(0);
        // A marker at the start of a block's first sentence ("[1] Tokio is …") is inside no sentence;
        // one that opens a later sentence right after a terminator belongs to the sentence before.
        let s = &mut out[i];
        s.span.start = s.span.start.min(m.span.start);
        s.span.end = s.span.end.max(m.span.end);
        for &n in &m.numbers {
            if !s.citations.contains(&n) {
                s.citations.push(n);
            }
        }
    }
    for s in &mut out {
        s.text = sentence_text(&blanked[s.span.clone()]);
    }
    // A heading the model wrote ("Overview", turned into a paragraph by grounding) is no claim: a piece
    // of under three words without a citation or a sentence's closing punctuation is left out.
    out.retain(|s| {
        s.text.chars().any(char::is_alphanumeric)
            && (!s.citations.is_empty()
                || s.text.split_whitespace().count() >= 3
                || s.text
                    .trim_end()
                    .ends_with(['.', '!', '?', '。', '！', '？']))
    });
    out
}

/// Sentence-like units of source text (byte ranges into `text`, trimmed, never empty). Citation
/// markers such as Wikipedia's `[12]` are blanked first; units longer than [`MAX_UNIT_BYTES`] are cut
/// at spaces.
pub fn units(text: &str) -> Vec<Range<usize>> {
    let markers = find_markers(text);
    if markers.is_empty() {
        return segment_blanked(text);
    }
    let mut blanked = text.to_string();
    blank(&mut blanked, markers.into_iter().map(|m| m.span));
    segment_blanked(&blanked)
}

/// A citation marker: its byte span and the numbers it names.
#[derive(Debug, PartialEq, Eq)]
struct Marker {
    span: Range<usize>,
    numbers: Vec<usize>,
}

/// `[n]`, `[^n]`, `[n, m]`, `[n-m]` (a range of at most 20). Hand-written: the grammar is a few
/// characters, and a regex crate would be a dependency for one pattern.
fn find_markers(text: &str) -> Vec<Marker> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'[' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if b.get(j) == Some(&b'^') {
            j += 1;
        }
        let mut numbers = Vec::new();
        let mut ok = false;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j == start || j - start > 4 {
                break;
            }
            let n: usize = text[start..j].parse().unwrap_or(0);
            let dash = if text[j..].starts_with('-') {
                1
            } else if text[j..].starts_with('–') {
                '–'.len_utf8()
            } else {
                0
            };
            if dash > 0 {
                // `n-m` or `n–m`.
                let s2 = j + dash;
                let mut k = s2;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                if k == s2 || k - s2 > 4 {
                    break;
                }
                let m: usize = text[s2..k].parse().unwrap_or(0);
                if m < n || m - n > 20 {
                    break;
                }
                numbers.extend(n..=m);
                j = k;
            } else {
                numbers.push(n);
            }
            match b.get(j) {
                Some(b']') => {
                    ok = true;
                    j += 1;
                    break;
                }
                Some(b',') | Some(b';') => {
                    j += 1;
                    while b.get(j) == Some(&b' ') {
                        j += 1;
                    }
                }
                _ => break,
            }
        }
        if ok && numbers.iter().all(|&n| n > 0) {
            out.push(Marker {
                span: i..j,
                numbers,
            });
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Replaces each range by spaces (ASCII, so byte offsets do not move).
fn blank(text: &mut String, ranges: impl Iterator<Item = Range<usize>>) {
    let mut bytes = std::mem::take(text).into_bytes();
    for r in ranges {
        for b in &mut bytes[r] {
            *b = b' ';
        }
    }
    // Only whole markers (ASCII) were replaced: still UTF-8.
    *text = String::from_utf8(bytes).unwrap_or_default();
}

/// The units of text whose markers are already blanked.
fn segment_blanked(text: &str) -> Vec<Range<usize>> {
    // Soft line breaks (a wrapped line continued in lower case) become spaces; list markers at the
    // start of a line are blanked. Both keep byte offsets.
    let prepared = prepare_lines(text);
    let mut pieces: Vec<Range<usize>> = Vec::new();
    for (start, piece) in prepared.split_sentence_bound_indices() {
        let range = start..start + piece.len();
        let Some(trimmed) = trim(&prepared, range.clone()) else {
            continue;
        };
        if let Some(prev) = pieces.last_mut()
            && joins_previous(&prepared, prev.clone(), trimmed.clone())
        {
            prev.end = trimmed.end;
            continue;
        }
        pieces.push(trimmed);
    }
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        cut_long(text, p, &mut out);
    }
    out
}

fn prepare_lines(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut line_start = 0;
    for (i, c) in text.char_indices() {
        if i == line_start {
            // A list marker: "- ", "* ", "+ ", "• ", "1. ", "2) ".
            let rest = &text[i..];
            let trimmed = rest.trim_start_matches([' ', '\t']);
            let lead = rest.len() - trimmed.len();
            let marker_len = list_marker_len(trimmed);
            if marker_len > 0 {
                for b in &mut bytes[i + lead..i + lead + marker_len] {
                    *b = b' ';
                }
            }
        }
        if c == '\n' {
            line_start = i + 1;
            let before = text[..i].trim_end_matches([' ', '\t', '\r']);
            let after = text[i + 1..].trim_start_matches([' ', '\t']);
            let ends_sentence =
                before.is_empty() || before.ends_with(['.', '!', '?', ':', ';', '\n']);
            let continues = after
                .chars()
                .next()
                .is_some_and(|c| c.is_lowercase() || c.is_ascii_digit() && !starts_list(after));
            if !ends_sentence && continues {
                bytes[i] = b' ';
                if i > 0 && bytes[i - 1] == b'\r' {
                    bytes[i - 1] = b' ';
                }
            }
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
}

fn starts_list(s: &str) -> bool {
    list_marker_len(s) > 0
}

/// Bytes of a list marker at the start of `s` ("- ", "1. ", "• "), or 0.
fn list_marker_len(s: &str) -> usize {
    for m in ["- ", "* ", "+ ", "• ", "· "] {
        if s.starts_with(m) {
            return m.len();
        }
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=3).contains(&digits) && matches!(s.as_bytes().get(digits), Some(b'.') | Some(b')')) {
        // "1. Overview" is a list number; "3.5 GHz" is not (no space after the dot).
        if s.as_bytes().get(digits + 1) == Some(&b' ') {
            return digits + 2;
        }
    }
    0
}

/// `range` without surrounding whitespace, or `None` when nothing is left.
fn trim(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let s = &text[range.clone()];
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    Some(range.start + lead..range.start + lead + t.len())
}

/// Abbreviations after which a capitalised word does not start a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "cf", "al", "approx", "gen", "gov",
    "sen", "rep", "rev", "capt", "col", "lt", "sgt", "mt", "ft",
];
/// Abbreviations that continue a sentence only before a number ("Fig. 3", "Jan. 5", "No. 7").
const ABBREVIATIONS_BEFORE_NUMBER: &[&str] = &[
    "fig", "figs", "no", "nos", "vol", "vols", "p", "pp", "sec", "eq", "ch", "art", "ref", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "ver", "v",
];

/// Whether the piece `cur` continues the sentence `prev` (both trimmed ranges of `text`).
fn joins_previous(text: &str, prev: Range<usize>, cur: Range<usize>) -> bool {
    let p = &text[prev.clone()];
    let c = &text[cur.clone()];
    // Only closing punctuation or quotes: part of the sentence before.
    if !c.chars().any(char::is_alphanumeric) {
        return true;
    }
    // No space at the break (".NET", "x.Y"): not a sentence boundary.
    if prev.end == cur.start && !p.ends_with(['!', '?']) {
        return true;
    }
    // A hard line break stays a break.
    if text[prev.end..cur.start].contains('\n') {
        return false;
    }
    let Some(word) = p.strip_suffix('.') else {
        return false;
    };
    let last = word
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"' || c == '“')
        .next()
        .unwrap_or("");
    let lower = last.to_lowercase();
    let next_is_digit = c.chars().next().is_some_and(|ch| ch.is_ascii_digit());
    if ABBREVIATIONS.contains(&lower.as_str()) {
        return true;
    }
    if next_is_digit && ABBREVIATIONS_BEFORE_NUMBER.contains(&lower.as_str()) {
        return true;
    }
    // Initialisms: "e.g", "i.e", "U.S", "a.m" (the final dot was stripped above).
    let parts: Vec<&str> = lower.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| p.chars().count() == 1 && p.chars().all(char::is_alphabetic))
}

/// Cuts a unit longer than [`MAX_UNIT_BYTES`] at spaces into pieces of about that size.
fn cut_long(text: &str, unit: Range<usize>, out: &mut Vec<Range<usize>>) {
    let mut start = unit.start;
    while unit.end - start > MAX_UNIT_BYTES {
        let mut limit = start + MAX_UNIT_BYTES;
        while !text.is_char_boundary(limit) {
            limit -= 1;
        }
        let cut = text[start..limit]
            .rfind(char::is_whitespace)
            .filter(|&i| i > MAX_UNIT_BYTES / 2)
            .map_or(limit, |i| start + i);
        if let Some(r) = trim(text, start..cut) {
            out.push(r);
        }
        start = cut;
    }
    if let Some(r) = trim(text, start..unit.end) {
        out.push(r);
    }
}

/// A sentence's text for people: blanked markers removed, whitespace collapsed, no space before
/// closing punctuation.
fn sentence_text(blanked: &str) -> String {
    let collapsed = blanked.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(collapsed.len());
    let chars: Vec<char> = collapsed.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        // "fast [1]." → "fast." (the space a removed marker leaves), but "on .NET" stays.
        let closes = chars
            .get(i + 1)
            .is_some_and(|n| matches!(n, '.' | ',' | ';' | ':' | '!' | '?' | ')'));
        let then_word = chars.get(i + 2).is_some_and(|n| n.is_alphanumeric());
        if c == ' ' && closes && !then_word {
            continue;
        }
        out.push(c);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split(s).into_iter().map(|s| s.text).collect()
    }

    /// Sentences of `s` by raw UAX #29, for comparison.
    fn raw(s: &str) -> Vec<String> {
        s.unicode_sentences()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// Each case: the text and the sentences a person reads in it. The count of cases raw UAX #29 gets
    /// right is printed, so the repairs' worth is measured, and every case must come out right here.
    #[test]
    fn segmentation_repairs_fix_what_uax29_splits() {
        let cases: &[(&str, &[&str])] = &[
            (
                "Tokio is fast. It uses work stealing.",
                &["Tokio is fast.", "It uses work stealing."],
            ),
            (
                "Rust 1.75 added async fn in traits. Go 1.22 fixed loop variables.",
                &[
                    "Rust 1.75 added async fn in traits.",
                    "Go 1.22 fixed loop variables.",
                ],
            ),
            (
                "Latency fell by 3.5% in v2.0.1. Throughput rose.",
                &["Latency fell by 3.5% in v2.0.1.", "Throughput rose."],
            ),
            (
                "Some runtimes, e.g. Tokio, steal work. Others do not.",
                &["Some runtimes, e.g. Tokio, steal work.", "Others do not."],
            ),
            (
                "Runtimes (e.g. the one in Node.js) use an event loop. Fine.",
                &[
                    "Runtimes (e.g. the one in Node.js) use an event loop.",
                    "Fine.",
                ],
            ),
            (
                "The U.S. Department of Commerce issued the rule. It took effect in May.",
                &[
                    "The U.S. Department of Commerce issued the rule.",
                    "It took effect in May.",
                ],
            ),
            (
                "Dr. Lerche wrote Tokio. Prof. Ousterhout co-wrote Raft.",
                &["Dr. Lerche wrote Tokio.", "Prof. Ousterhout co-wrote Raft."],
            ),
            (
                "See Fig. 3 for the results. They are clear.",
                &["See Fig. 3 for the results.", "They are clear."],
            ),
            (
                "C# programs run on .NET and Mono. Both are managed.",
                &["C# programs run on .NET and Mono.", "Both are managed."],
            ),
            (
                "Ongaro et al. (2014) described Raft. It elects a leader.",
                &[
                    "Ongaro et al. (2014) described Raft.",
                    "It elects a leader.",
                ],
            ),
            (
                "Is it safe? The docs say \"mostly.\" Use care!",
                &["Is it safe?", "The docs say \"mostly.\"", "Use care!"],
            ),
            (
                "It was released on Jan. 5, 2024 by Mozilla Corp. staff. Later versions followed.",
                &[
                    "It was released on Jan. 5, 2024 by Mozilla Corp. staff.",
                    "Later versions followed.",
                ],
            ),
            (
                "i.e. the same as before. Then i.e. ends.",
                &["i.e. the same as before.", "Then i.e. ends."],
            ),
            (
                "Vendors such as Apple, Google, etc. ship it. Most do.",
                &["Vendors such as Apple, Google, etc. ship it.", "Most do."],
            ),
            (
                "The limit is 1,000 pages (about 4 MB). Checkpoints run then.",
                &[
                    "The limit is 1,000 pages (about 4 MB).",
                    "Checkpoints run then.",
                ],
            ),
            (
                "- Tokio steals work.\n- Rayon splits work.",
                &["Tokio steals work.", "Rayon splits work."],
            ),
            (
                "First paragraph ends here.\n\nSecond paragraph starts.",
                &["First paragraph ends here.", "Second paragraph starts."],
            ),
            (
                "A heading without a stop\nThe paragraph below it.",
                &["A heading without a stop", "The paragraph below it."],
            ),
            (
                "A line that was wrapped\nin the middle goes on.",
                &["A line that was wrapped in the middle goes on."],
            ),
            (
                "Versions 2.0-beta9 through 2.14.1 are affected. 2.15.0 is not.",
                &[
                    "Versions 2.0-beta9 through 2.14.1 are affected.",
                    "2.15.0 is not.",
                ],
            ),
            (
                "It was 10 a.m. on Monday. Nothing happened.",
                &["It was 10 a.m. on Monday.", "Nothing happened."],
            ),
            (
                "1. An overview of it\nSQLite uses a rollback journal.",
                &["An overview of it", "SQLite uses a rollback journal."],
            ),
        ];
        let mut raw_right = 0;
        for (text, want) in cases {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            if raw(text) == want {
                raw_right += 1;
            }
            assert_eq!(texts(text), want, "{text:?}");
        }
        eprintln!(
            "sentence segmentation: raw UAX #29 {raw_right}/{n} cases right; with repairs {n}/{n}",
            n = cases.len()
        );
        assert!(
            raw_right < cases.len(),
            "the repairs are needed for some case"
        );
    }

    #[test]
    fn citations_belong_to_their_sentence_wherever_the_marker_sits() {
        let s = split(
            "Tokio steals work [1]. Rayon splits it.[2][3] Both are crates. [4] Glommio is per-core [1, 5].",
        );
        let got: Vec<(&str, Vec<usize>)> = s
            .iter()
            .map(|s| (s.text.as_str(), s.citations.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Tokio steals work.", vec![1]),
                ("Rayon splits it.", vec![2, 3]),
                ("Both are crates.", vec![4]),
                ("Glommio is per-core.", vec![1, 5]),
            ]
        );
        // Spans cover the markers that belong to the sentence.
        let text = "Tokio steals work [1]. Rayon splits it.[2][3] Next.";
        let s = split(text);
        assert_eq!(&text[s[0].span.clone()], "Tokio steals work [1].");
        assert_eq!(&text[s[1].span.clone()], "Rayon splits it.[2][3]");
        assert_eq!(&text[s[2].span.clone()], "Next.");
        assert!(s[2].citations.is_empty());
    }

    #[test]
    fn markers_are_numbers_in_brackets_only() {
        let s = split("Arrays like [a] and [1x] are not citations; [^2] and [3-5] are [6].");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].citations, vec![2, 3, 4, 5, 6]);
        assert!(s[0].text.contains("[a]") && s[0].text.contains("[1x]"));
        assert!(split("").is_empty());
        assert!(split("[1]").is_empty(), "a marker alone is no sentence");
        // Bullets and paragraphs never run together.
        let s = split("- Tokio [1]\n- Rayon [2]\n\nAnd a paragraph [3].");
        assert_eq!(
            s.iter().map(|s| s.citations.clone()).collect::<Vec<_>>(),
            vec![vec![1], vec![2], vec![3]]
        );
        assert_eq!(s[0].text, "Tokio");
    }

    #[test]
    fn long_units_are_cut_at_spaces() {
        let text = "word ".repeat(400);
        let u = units(&text);
        assert!(u.len() >= 3);
        for r in &u {
            assert!(r.end - r.start <= MAX_UNIT_BYTES);
            assert!(!text[r.clone()].starts_with(' ') && !text[r.clone()].ends_with(' '));
        }
        // Multi-byte text never panics.
        let text = "é".repeat(1000);
        assert!(!units(&text).is_empty());
    }
}
