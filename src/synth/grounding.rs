//! Checking a model's answer before it goes anywhere near a report. The model's text is data, like web
//! text: this module turns it into typed blocks of plain text and citation numbers, and only
//! `render::summary::render_blocks` turns those into markdown.
//!
//! What it does, in order:
//! - drops reasoning: `<think>…</think>` (and `<thinking>`), an unterminated one, and everything before
//!   an orphan `</think>` (templates that open the block themselves);
//! - keeps paragraphs and bullet items; headings become plain paragraphs; fences, rules, tables,
//!   block quotes, link definitions and a trailing "Sources"/"References" section are neutralised or
//!   dropped (the citation list is built by code from the retrieved sources);
//! - strips HTML tags, decodes entities, removes control, bidi and zero-width characters;
//! - removes every link and URL the model wrote (a markdown link keeps its text; a bare URL goes);
//! - keeps `[n]`, `[n, m]`, `[n-m]`, `[^n]`, `[Source n]`, `【n】` as citations of source `n` when `n` was
//!   sent to the model, and removes the numbers that were not.

use std::collections::BTreeSet;

pub use crate::report::{Block, BlockKind, Segment};
use crate::sanitize::clean_text;

/// Longest paragraph or bullet item kept, in characters.
const MAX_BLOCK_CHARS: usize = 4000;
/// At most this many blocks are kept.
const MAX_BLOCKS: usize = 60;

/// The checked answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grounded {
    pub blocks: Vec<Block>,
    /// Source numbers cited, ascending, each once.
    pub cited: Vec<usize>,
    /// Numbers the model cited that name no source it was given (removed), ascending, each once.
    pub removed_citations: Vec<usize>,
    /// Links and URLs the model wrote (removed).
    pub removed_links: usize,
}

/// Checks `raw` against the source numbers the model was given.
pub fn ground(raw: &str, valid: &BTreeSet<usize>) -> Grounded {
    let text = strip_reasoning(raw);
    let mut g = Grounded::default();
    let mut removed = BTreeSet::new();
    for (kind, raw_block) in split_blocks(&text, &mut g.removed_links) {
        if g.blocks.len() >= MAX_BLOCKS {
            break;
        }
        let cleaned = clean_text(&raw_block, MAX_BLOCK_CHARS);
        let mut inline = Inline {
            valid,
            out: Vec::new(),
            removed: &mut removed,
            links: &mut g.removed_links,
        };
        inline.run(&cleaned);
        let segments = tidy(inline.out);
        if !segments.is_empty() {
            g.blocks.push(Block { kind, segments });
        }
    }
    let cited: BTreeSet<usize> = g
        .blocks
        .iter()
        .flat_map(|b| &b.segments)
        .filter_map(|s| match s {
            Segment::Cite { n } => Some(*n),
            Segment::Text { .. } => None,
        })
        .collect();
    g.cited = cited.into_iter().collect();
    g.removed_citations = removed.into_iter().collect();
    g
}

// ---- Reasoning ----------------------------------------------------------------------------------------

/// Removes `<think>…</think>` / `<thinking>…</thinking>` blocks; an unterminated one runs to the end; an
/// orphan closing tag drops everything before it.
pub fn strip_reasoning(raw: &str) -> String {
    let mut text = raw.to_string();
    // An orphan close before any open: the chat template opened the block.
    let lower = text.to_ascii_lowercase();
    let first_open = ["<think>", "<thinking>"]
        .iter()
        .filter_map(|t| lower.find(t))
        .min();
    let first_close = ["</think>", "</thinking>"]
        .iter()
        .filter_map(|t| lower.find(t).map(|i| (i, t.len())))
        .min();
    if let Some((i, len)) = first_close
        && first_open.is_none_or(|o| o > i)
    {
        text.drain(..i + len);
    }
    loop {
        // ASCII lowercasing keeps byte offsets, so indices into `lower` are valid in `text`.
        let lower = text.to_ascii_lowercase();
        let Some((open, tag)) = ["<think>", "<thinking>"]
            .iter()
            .filter_map(|t| lower.find(t).map(|i| (i, *t)))
            .min()
        else {
            break;
        };
        let close_tag = format!("</{}", &tag[1..]);
        match lower[open..].find(&close_tag) {
            Some(rel) => {
                text.drain(open..open + rel + close_tag.len());
            }
            None => text.truncate(open),
        }
    }
    text
}

// ---- Block structure ----------------------------------------------------------------------------------

/// Splits the answer into paragraphs and bullet items (raw inline text), neutralising block markup.
fn split_blocks(text: &str, links: &mut usize) -> Vec<(BlockKind, String)> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut blocks: Vec<(BlockKind, String)> = Vec::new();
    let mut current: Option<(BlockKind, String)> = None;
    let flush = |current: &mut Option<(BlockKind, String)>, blocks: &mut Vec<_>| {
        if let Some(b) = current.take()
            && !b.1.trim().is_empty()
        {
            blocks.push(b);
        }
    };
    for line in text.split('\n') {
        let mut line = line.trim();
        // Fences: the marker lines go; what was inside stays as text.
        if line.starts_with("```") || line.starts_with("~~~") {
            flush(&mut current, &mut blocks);
            continue;
        }
        // Block quotes: the markers go.
        while let Some(rest) = line.strip_prefix('>') {
            line = rest.trim_start();
        }
        if line.is_empty() {
            flush(&mut current, &mut blocks);
            continue;
        }
        if is_rule(line) {
            flush(&mut current, &mut blocks);
            continue;
        }
        if is_sources_heading(line) {
            break;
        }
        if is_link_definition(line) {
            *links += 1;
            continue;
        }
        if let Some(rest) = heading_text(line) {
            flush(&mut current, &mut blocks);
            blocks.push((BlockKind::Paragraph, rest.to_string()));
            continue;
        }
        // Table rows: each row a paragraph, pipes become separators.
        if line.starts_with('|') {
            flush(&mut current, &mut blocks);
            if !line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
                let row = line
                    .trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" - ");
                blocks.push((BlockKind::Paragraph, row));
            }
            continue;
        }
        if let Some(item) = bullet_text(line) {
            flush(&mut current, &mut blocks);
            current = Some((BlockKind::Bullet, item.to_string()));
            continue;
        }
        match &mut current {
            Some((_, t)) => {
                t.push(' ');
                t.push_str(line);
            }
            None => current = Some((BlockKind::Paragraph, line.to_string())),
        }
    }
    flush(&mut current, &mut blocks);
    blocks
}

/// `---`, `***`, `___`, `===` (also spaced): thematic breaks and setext underlines.
fn is_rule(line: &str) -> bool {
    let marks: Vec<char> = line.chars().filter(|c| !c.is_whitespace()).collect();
    marks.len() >= 3
        && ['-', '*', '_', '=']
            .iter()
            .any(|m| marks.iter().all(|c| c == m))
}

/// The text of an ATX heading line (`## Title ##`).
fn heading_text(line: &str) -> Option<&str> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if hashes == 0 || hashes > 6 {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim())
}

/// The text of a list item (`- x`, `* x`, `+ x`, `1. x`, `1) x`).
fn bullet_text(line: &str) -> Option<&str> {
    for m in ["- ", "* ", "+ ", "• "] {
        if let Some(rest) = line.strip_prefix(m) {
            return Some(rest.trim());
        }
    }
    let digits = line.chars().take_while(|c| c.is_ascii_digit()).count();
    if (1..=3).contains(&digits) {
        let rest = &line[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(r.trim());
        }
    }
    None
}

/// `[label]: destination` and `[^n]: text` lines.
fn is_link_definition(line: &str) -> bool {
    line.starts_with('[')
        && line
            .find("]:")
            .is_some_and(|i| !line[1..i].contains(['[', ']']))
}

/// A heading or label that opens a list of sources the model wrote itself.
fn is_sources_heading(line: &str) -> bool {
    let words: String = line
        .chars()
        .filter(|c| !matches!(c, '#' | '*' | '_' | ':' | '`'))
        .collect::<String>()
        .trim()
        .to_ascii_lowercase();
    matches!(
        words.as_str(),
        "sources" | "references" | "citations" | "bibliography" | "works cited" | "sources used"
    )
}

// ---- Inline text ----------------------------------------------------------------------------------------

struct Inline<'a> {
    valid: &'a BTreeSet<usize>,
    out: Vec<Segment>,
    removed: &'a mut BTreeSet<usize>,
    links: &'a mut usize,
}

impl Inline<'_> {
    fn push_char(&mut self, c: char) {
        if let Some(Segment::Text { text }) = self.out.last_mut() {
            text.push(c);
        } else {
            self.out.push(Segment::Text {
                text: c.to_string(),
            });
        }
    }

    /// After removing something: drop the space before it when what follows is a space, punctuation or
    /// the end, so "claim [9]." becomes "claim." and not "claim .".
    fn trim_before(&mut self, next: Option<char>) {
        if next.is_none_or(|c| c.is_whitespace() || ".,;:!?)".contains(c))
            && let Some(Segment::Text { text }) = self.out.last_mut()
        {
            let t = text.trim_end().len();
            text.truncate(t);
        }
    }

    fn run(&mut self, s: &str) {
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let prev_word = i > 0 && chars[i - 1].is_alphanumeric();
            if c == '[' || (c == '!' && chars.get(i + 1) == Some(&'[')) {
                let start = if c == '!' { i + 1 } else { i };
                if c == '['
                    && let Some((nums, end)) = citation_group(&chars, start)
                {
                    let mut end = end;
                    // A citation the model made a link of: the link goes.
                    if chars.get(end) == Some(&'(')
                        && let Some(close) = matching(&chars, end, '(', ')')
                    {
                        *self.links += 1;
                        end = close + 1;
                    }
                    self.cite(nums, chars.get(end).copied());
                    i = end;
                    continue;
                }
                if let Some(close) = matching(&chars, start, '[', ']') {
                    let next = chars.get(close + 1);
                    let inner: String = chars[start + 1..close].iter().collect();
                    if next == Some(&'(')
                        && let Some(end) = matching(&chars, close + 1, '(', ')')
                    {
                        // [text](destination) or ![alt](src): the text stays, the link goes.
                        *self.links += 1;
                        self.run(&inner);
                        i = end + 1;
                        continue;
                    }
                    if next == Some(&'[')
                        && let Some(end) = matching(&chars, close + 1, '[', ']')
                    {
                        // [text][label]: a reference link.
                        *self.links += 1;
                        self.run(&inner);
                        i = end + 1;
                        continue;
                    }
                }
                self.push_char(c);
                i += 1;
                continue;
            }
            if c == '【'
                && let Some(rel) = chars[i + 1..].iter().take(40).position(|&c| c == '】')
            {
                let inner: String = chars[i + 1..i + 1 + rel].iter().collect();
                let digits: String = inner.chars().take_while(|c| c.is_ascii_digit()).collect();
                if let Ok(n) = digits.parse::<usize>() {
                    let end = i + 2 + rel;
                    self.cite(vec![n], chars.get(end).copied());
                    i = end;
                    continue;
                }
            }
            if !prev_word && let Some(len) = url_len(&chars[i..]) {
                *self.links += 1;
                let mut end = i + len;
                // "(https://…)" and "[https://…]" leave no empty brackets behind.
                let last = match self.out.last() {
                    Some(Segment::Text { text }) => text.chars().last(),
                    _ => None,
                };
                let pair = match last {
                    Some('(') => Some(')'),
                    Some('[') => Some(']'),
                    _ => None,
                };
                if pair.is_some() && chars.get(end).copied() == pair {
                    if let Some(Segment::Text { text }) = self.out.last_mut() {
                        text.pop();
                    }
                    end += 1;
                }
                self.trim_before(chars.get(end).copied());
                i = end;
                continue;
            }
            // Emphasis and code markers go; their text stays.
            if (c == '*' || c == '_') && chars.get(i + 1) == Some(&c) {
                i += 2;
                continue;
            }
            if c == '`' {
                i += 1;
                continue;
            }
            self.push_char(c);
            i += 1;
        }
    }

    fn cite(&mut self, nums: Vec<usize>, next: Option<char>) {
        let mut any = false;
        for n in nums {
            if self.valid.contains(&n) {
                self.out.push(Segment::Cite { n });
                any = true;
            } else {
                self.removed.insert(n);
            }
        }
        if !any {
            self.trim_before(next);
        }
    }
}

/// The index of the bracket closing the one at `open`, counting nesting.
fn matching(chars: &[char], open: usize, o: char, c: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (j, &ch) in chars.iter().enumerate().skip(open) {
        if escaped {
            escaped = false;
            continue;
        }
        if ch == '\\' {
            escaped = true;
            continue;
        }
        if ch == o {
            depth += 1;
        } else if ch == c {
            depth -= 1;
            if depth == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// A citation group at `open` (`[`): `[3]`, `[^3]`, `[1, 2]`, `[1; 4]`, `[2-4]`, `[Source 3]`,
/// `[Sources 1, 2]`. Returns the numbers and the index after the closing bracket.
fn citation_group(chars: &[char], open: usize) -> Option<(Vec<usize>, usize)> {
    let close = open + 1 + chars[open + 1..].iter().take(64).position(|&c| c == ']')?;
    let inner: String = chars[open + 1..close].iter().collect();
    let mut body = inner.trim();
    body = body.strip_prefix('^').unwrap_or(body).trim_start();
    let lower = body.to_ascii_lowercase();
    for word in ["sources", "source", "refs", "ref", "citations", "citation"] {
        if lower.starts_with(word) {
            body = body[word.len()..].trim_start();
            break;
        }
    }
    let mut nums = Vec::new();
    for part in body.split([',', ';']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if let Some((a, b)) = part.split_once(['-', '–']) {
            let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if a <= b && b - a <= 20 {
                nums.extend(a..=b);
            } else {
                nums.extend([a, b]);
            }
        } else if part.chars().all(|c| c.is_ascii_digit()) && part.len() <= 6 {
            nums.push(part.parse().ok()?);
        } else if part.split_whitespace().all(|w| w.parse::<usize>().is_ok()) {
            // "[1 2]"
            nums.extend(
                part.split_whitespace()
                    .filter_map(|w| w.parse::<usize>().ok()),
            );
        } else {
            return None;
        }
    }
    (!nums.is_empty()).then_some((nums, close + 1))
}

/// The length of a URL starting here (`scheme://…`, `www.…`, `mailto:…`), not counting punctuation that
/// ends the sentence or an unbalanced closing parenthesis.
fn url_len(chars: &[char]) -> Option<usize> {
    let starts = |p: &str| {
        let n = p.chars().count();
        chars.len() > n
            && chars[..n]
                .iter()
                .zip(p.chars())
                .all(|(a, b)| a.eq_ignore_ascii_case(&b))
    };
    let scheme = chars
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .count();
    let is_url = (scheme >= 2
        && chars.get(scheme) == Some(&':')
        && chars.get(scheme + 1) == Some(&'/')
        && chars.get(scheme + 2) == Some(&'/'))
        || starts("www.")
        || starts("mailto:")
        || starts("xmpp:")
        || starts("javascript:")
        || starts("data:");
    if !is_url {
        return None;
    }
    let mut len = chars.iter().take_while(|c| !c.is_whitespace()).count();
    loop {
        let last = chars[len - 1];
        let open = chars[..len].iter().filter(|&&c| c == '(').count();
        let close = chars[..len].iter().filter(|&&c| c == ')').count();
        if ".,;:!?'\"".contains(last) || (last == ')' && close > open) || last == ']' {
            len -= 1;
            if len == 0 {
                return None;
            }
        } else {
            break;
        }
    }
    Some(len)
}

/// Merges texts, collapses spaces, drops empty brackets left by removals, trims the ends.
fn tidy(segments: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for s in segments {
        match (out.last_mut(), s) {
            (Some(Segment::Text { text }), Segment::Text { text: more }) => text.push_str(&more),
            (_, s) => out.push(s),
        }
    }
    for s in &mut out {
        if let Segment::Text { text } = s {
            let mut t = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.starts_with(char::is_whitespace) {
                t.insert(0, ' ');
            }
            if text.ends_with(char::is_whitespace) && !t.ends_with(' ') {
                t.push(' ');
            }
            *text = t;
        }
    }
    // Trim the block's ends.
    if let Some(Segment::Text { text }) = out.first_mut() {
        *text = text.trim_start().to_string();
    }
    if let Some(Segment::Text { text }) = out.last_mut() {
        *text = text.trim_end().to_string();
    }
    out.retain(|s| !matches!(s, Segment::Text { text } if text.is_empty()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::summary::{numbered, render_blocks};

    fn valid(n: usize) -> BTreeSet<usize> {
        (1..=n).collect()
    }

    fn plain(g: &Grounded) -> String {
        g.blocks
            .iter()
            .map(|b| {
                let p = b.plain();
                if b.kind == BlockKind::Bullet {
                    format!("- {p}")
                } else {
                    p
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn table_of_answers() {
        // (model output, plain text after checking, cited, removed citations, removed links)
        type Case<'a> = (&'a str, &'a str, &'a [usize], &'a [usize], usize);
        let cases: &[Case] = &[
            ("Rust is fast [1].", "Rust is fast [1].", &[1], &[], 0),
            (
                "Fast [1][3] and safe [9].",
                "Fast [1][3] and safe.",
                &[1, 3],
                &[9],
                0,
            ),
            (
                "Both [1, 2]; also [2; 9].",
                "Both [1][2]; also [2].",
                &[1, 2],
                &[9],
                0,
            ),
            ("Range [1-3].", "Range [1][2][3].", &[1, 2, 3], &[], 0),
            ("Footnote[^2] style.", "Footnote[2] style.", &[2], &[], 0),
            ("As [Source 2] says.", "As [2] says.", &[2], &[], 0),
            (
                "Bracketed 【3†source】 cite.",
                "Bracketed [3] cite.",
                &[3],
                &[],
                0,
            ),
            ("Only bad [7] [8].", "Only bad.", &[], &[7, 8], 0),
            ("Year [2023] noted.", "Year noted.", &[], &[2023], 0),
            (
                "See [the docs](https://evil.example/x) now [1].",
                "See the docs now [1].",
                &[1],
                &[],
                1,
            ),
            (
                "Visit https://evil.example/a?b=c. Then [2].",
                "Visit. Then [2].",
                &[2],
                &[],
                1,
            ),
            ("Go to www.evil.example today.", "Go to today.", &[], &[], 1),
            (
                "Link (https://x.example/y) here.",
                "Link here.",
                &[],
                &[],
                1,
            ),
            ("See [https://x.example] end.", "See end.", &[], &[], 1),
            ("Mail mailto:a@b.example now.", "Mail now.", &[], &[], 1),
            ("Run javascript:alert(1) now.", "Run now.", &[], &[], 1),
            ("Auto <https://x.example> link.", "Auto link.", &[], &[], 0),
            (
                "Cite-link [1](https://x.example).",
                "Cite-link [1].",
                &[1],
                &[],
                1,
            ),
            (
                "Image ![alt text](https://x.example/i.png).",
                "Image alt text.",
                &[],
                &[],
                1,
            ),
            ("Ref [text][r] here.", "Ref text here.", &[], &[], 1),
            (
                "[r]: https://x.example\nBody [1].",
                "Body [1].",
                &[1],
                &[],
                1,
            ),
            ("# Heading\nBody [1].", "Heading\nBody [1].", &[1], &[], 0),
            ("## Sub ##", "Sub", &[], &[], 0),
            ("Title\n=====\nText.", "Title\nText.", &[], &[], 0),
            (
                "```rust\nfn x() {}\n```\nAfter.",
                "fn x() {}\nAfter.",
                &[],
                &[],
                0,
            ),
            (
                "<b>bold</b> <script>alert(1)</script>x",
                "bold x",
                &[],
                &[],
                0,
            ),
            ("&lt;img src=x onerror=y&gt;ok", "ok", &[], &[], 0),
            ("**Bold** and `code` [1]", "Bold and code [1]", &[1], &[], 0),
            (
                "- one [1]\n- two [2]\n\nend",
                "- one [1]\n- two [2]\nend",
                &[1, 2],
                &[],
                0,
            ),
            ("1. first\n2) second", "- first\n- second", &[], &[], 0),
            ("> quoted [1]", "quoted [1]", &[1], &[], 0),
            (
                "| a | b |\n|---|---|\n| c | d |",
                "a - b\nc - d",
                &[],
                &[],
                0,
            ),
            (
                "Body [1].\n\nSources:\n[1] Title - https://x",
                "Body [1].",
                &[1],
                &[],
                0,
            ),
            ("Body.\n\n**References**\n1. x", "Body.", &[], &[], 0),
            (
                "Zero\u{200B}width and \u{202E}bidi",
                "Zerowidth and bidi",
                &[],
                &[],
                0,
            ),
            (
                "Square [brackets] stay.",
                "Square [brackets] stay.",
                &[],
                &[],
                0,
            ),
            (
                r"Escaped [a\](b) and [x](y\)z) end",
                r"Escaped [a\](b) and x end",
                &[],
                &[],
                1,
            ),
            ("", "", &[], &[], 0),
        ];
        for (input, want, cited, removed, links) in cases {
            let g = ground(input, &valid(3));
            assert_eq!(plain(&g), *want, "input: {input:?}");
            assert_eq!(g.cited, *cited, "cited of {input:?}");
            assert_eq!(g.removed_citations, *removed, "removed of {input:?}");
            assert_eq!(g.removed_links, *links, "links of {input:?}");
        }
    }

    #[test]
    fn reasoning_is_stripped() {
        let cases = [
            (
                "<think>plan [9] https://x</think>Answer [1].",
                "Answer [1].",
            ),
            ("<THINK>a</THINK>\n\nAnswer.", "Answer."),
            ("<thinking>a</thinking>Answer.", "Answer."),
            ("<think>never closed, cut by the limit", ""),
            ("Answer. <think>late", "Answer."),
            (
                "reasoning the template opened</think>Answer [2].",
                "Answer [2].",
            ),
            ("<think>a</think>B<think>c</think>D", "BD"),
        ];
        for (input, want) in cases {
            assert_eq!(plain(&ground(input, &valid(3))), want, "input: {input:?}");
        }
    }

    #[test]
    fn markdown_cannot_be_injected() {
        let nasty = "# H\n<div>x</div>\n```\ncode\n```\n[a](javascript:alert(1)) \
                     https://evil.example 1990. was a year\n\n- [1](x) and [1]: def\n\n+ plus\n\n\
                     ---\n\n=== \n\n--- not a rule? [2](y)\n\n3) item\n\n[1]: https://evil.example\n\n\
                     ![i](https://t.example/p.png) &copy; \\[1\\] <https://a.example>";
        let g = ground(nasty, &valid(3));
        let md = render_blocks(&g.blocks, &mut numbered);
        use pulldown_cmark::{Event, Parser, Tag};
        for ev in Parser::new(&md) {
            match ev {
                Event::Start(Tag::Link { .. } | Tag::Image { .. } | Tag::Heading { .. })
                | Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock)
                | Event::Html(_)
                | Event::InlineHtml(_)
                | Event::Code(_) => panic!("{ev:?} in {md}"),
                _ => {}
            }
        }
        assert!(!md.contains("http"), "{md}");
        assert!(!md.contains("evil"), "{md}");
    }

    #[test]
    fn rendering_escapes_text_and_keeps_markers() {
        let blocks = vec![
            Block {
                kind: BlockKind::Paragraph,
                segments: vec![
                    Segment::Text {
                        text: "1990. *Stars* ".into(),
                    },
                    Segment::Cite { n: 1 },
                    Segment::Text {
                        text: "(aside) x".into(),
                    },
                ],
            },
            Block {
                kind: BlockKind::Bullet,
                segments: vec![
                    Segment::Cite { n: 2 },
                    Segment::Text {
                        text: ": def".into(),
                    },
                ],
            },
            Block {
                kind: BlockKind::Bullet,
                segments: vec![Segment::Text {
                    text: "- dash".into(),
                }],
            },
        ];
        assert_eq!(
            render_blocks(&blocks, &mut numbered),
            "1990\\. \\*Stars\\* [1]\\(aside) x\n\n- [2]\\: def\n- \\- dash"
        );
        assert!(render_blocks(&blocks, &mut |n| format!("[^{n}]")).contains("[^1]"));
    }

    #[test]
    fn an_email_address_in_the_summary_becomes_no_link() {
        let g = ground(
            "Write to admin@evil.example, xmpp:admin@evil.example/x or mailto:a@evil.example [1].",
            &valid(1),
        );
        // The URIs go like any link; the bare address stays as text, written so no renderer links it.
        assert_eq!(g.removed_links, 2);
        assert_eq!(
            render_blocks(&g.blocks, &mut |n| format!("[{n}]")),
            "Write to admin＠evil\\.example, or [1]."
        );
        // A summary line that looks like a pandoc fancy list or fenced div stays a paragraph.
        let g = ground("a) first [1]\n\n::: note", &valid(1));
        assert_eq!(
            render_blocks(&g.blocks, &mut |n| format!("[{n}]")),
            "a\\) first [1]\n\n\\::: note"
        );
    }
}
