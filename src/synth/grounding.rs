//! Checking a model's answer before it goes anywhere near a report. The model's text is data, like web
//! text: this module turns it into typed blocks of plain text and citation numbers, and only
//! `render::summary::render_blocks` turns those into markdown.
//!
//! The answer is read with pulldown-cmark, the parser the renderer tests use, so grounding sees the
//! blocks, links and brackets a renderer would. What it does, in order:
//! - drops reasoning: `<think>…</think>` (and `<thinking>`), an unterminated one, and everything before
//!   an orphan `</think>` (templates that open the block themselves);
//! - drops a trailing "Sources"/"References" section (the citation list is built by code from the
//!   retrieved sources);
//! - keeps paragraphs and list items (as bullets); headings, table rows, code blocks and HTML blocks
//!   become plain paragraphs; rules, block quote markers and link definitions go;
//! - strips HTML tags (a `<script>` or `<style>` with its content), decodes entities, removes control,
//!   bidi and zero-width characters;
//! - removes every link and URL the model wrote (a markdown link or image keeps its text; an autolink or
//!   bare URL goes);
//! - keeps `[n]`, `[n, m]`, `[n-m]`, `[n][m]`, `[^n]`, `[Source n]`, `【n】` as citations of source `n`
//!   when `n` was sent to the model, and removes the numbers that were not.

use std::collections::BTreeSet;

use pulldown_cmark::{BrokenLink, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

pub use crate::report::{Block, BlockKind, Segment};
use crate::sanitize::{clean_text, truncate_chars};

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
    let text = before_sources(&strip_reasoning(raw));
    // `[3]`, `[1, 2]` or `[Source 2]` with no definition is a "broken" shortcut link: resolving it makes
    // it a link event whose label is read as a citation. `[text][label]` and `[text][]` are links the
    // model wrote, so they resolve too and are counted; other brackets stay text.
    let resolve = |link: BrokenLink<'_>| {
        let wrote_link = matches!(link.link_type, LinkType::Reference | LinkType::Collapsed);
        (wrote_link || citation_numbers(&link.reference).is_some())
            .then(|| (CowStr::from(""), CowStr::from("")))
    };
    // Footnotes as GitHub reads them: `[^1]` with a definition is a reference, `[^1]: …` a definition.
    let options = Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES;
    let parser = Parser::new_with_broken_link_callback(&text, options, Some(resolve));
    let mut read = Read {
        valid,
        grounded: Grounded {
            removed_links: parser.reference_definitions().iter().count(),
            ..Grounded::default()
        },
        removed: BTreeSet::new(),
        current: None,
        open: Vec::new(),
        raw: None,
        skip: None,
        note: false,
    };
    for event in parser {
        if read.grounded.blocks.len() >= MAX_BLOCKS {
            break;
        }
        read.event(event);
    }
    read.flush();
    let mut g = read.grounded;
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
    g.removed_citations = read.removed.into_iter().collect();
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

/// The answer up to a line that opens a list of sources the model wrote itself (a heading or a label
/// such as `**References**` or `Sources:`), with line endings made `\n` and `• ` items made `- ` items.
/// Both are per-line decisions about the model's habits, not markdown syntax, so they are made here
/// rather than on the parsed blocks.
fn before_sources(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        // Block quote markers and indentation do not change what the line says.
        let body = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        if is_sources_heading(body) {
            break;
        }
        match body.strip_prefix("• ") {
            Some(rest) => {
                out.push_str(&line[..line.len() - body.len()]);
                out.push_str("- ");
                out.push_str(rest);
            }
            None => out.push_str(line),
        }
    }
    out
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

/// Part of a block as the parser saw it.
enum Piece {
    /// Text as a renderer shows it (entities decoded), not yet cleaned.
    Text(String),
    /// A citation group written as brackets (`[1]`, `[1, 2]`, `[1][3]`, `[1](url)`); an empty one
    /// where a link left no text (an autolink), which like a removed citation may take the space before.
    Cite(Vec<usize>),
}

/// The answer as pulldown-cmark reads it, grounded a block at a time.
struct Read<'a> {
    valid: &'a BTreeSet<usize>,
    grounded: Grounded,
    /// Numbers cited that name no source given.
    removed: BTreeSet<usize>,
    /// The block being read.
    current: Option<(BlockKind, Vec<Piece>)>,
    /// Open links and images: the piece their text starts, how they were written, their label.
    open: Vec<(usize, LinkType, String)>,
    /// The text of the code block or HTML block being read.
    raw: Option<String>,
    /// Inside an inline `<script>` or `<style>`: its closing tag, until which everything goes.
    skip: Option<&'static str>,
    /// Inside a footnote definition: the model's own note on a source, which goes like a link
    /// definition.
    note: bool,
}

impl Read<'_> {
    fn event(&mut self, event: Event<'_>) {
        if self.note {
            self.note = !matches!(event, Event::End(TagEnd::FootnoteDefinition));
            return;
        }
        if let (Some(close), Event::InlineHtml(h)) = (self.skip, &event) {
            if h.to_ascii_lowercase().contains(close) {
                self.skip = None;
            }
            return;
        }
        let skipped = self.skip.is_some();
        match event {
            Event::Text(_) | Event::Code(_) | Event::SoftBreak | Event::HardBreak if skipped => {}
            Event::Start(Tag::Paragraph | Tag::Heading { .. } | Tag::TableHead | Tag::TableRow) => {
                self.start(BlockKind::Paragraph);
            }
            Event::Start(Tag::Item) => self.start(BlockKind::Bullet),
            Event::Start(Tag::TableCell) if self.has_text() => self.push_text(" - "),
            Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock) => {
                self.flush();
                self.raw = Some(String::new());
            }
            Event::End(TagEnd::CodeBlock) => {
                // What was inside stays as text: a paragraph for each run of lines between blank ones.
                for part in self.raw.take().unwrap_or_default().split("\n\n") {
                    self.push_text(part);
                    self.flush();
                }
            }
            Event::End(TagEnd::HtmlBlock) => {
                let html = self.raw.take().unwrap_or_default();
                self.push_text(&clean_text(&html, usize::MAX));
                self.flush();
            }
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::TableHead
                | TagEnd::TableRow,
            )
            | Event::Rule => self.flush(),
            Event::Start(Tag::Link { link_type, id, .. } | Tag::Image { link_type, id, .. }) => {
                // An empty text starts the link's own, so it can be told from what came before.
                let pieces = self.pieces();
                pieces.push(Piece::Text(String::new()));
                let at = pieces.len() - 1;
                self.open.push((at, link_type, id.to_string()));
            }
            Event::End(TagEnd::Link | TagEnd::Image) => self.close_link(skipped),
            Event::FootnoteReference(label) => {
                let nums = citation_numbers(&label).unwrap_or_default();
                self.pieces().push(Piece::Cite(nums));
            }
            Event::Start(Tag::FootnoteDefinition(_)) => {
                self.flush();
                self.note = true;
                self.grounded.removed_links += 1;
            }
            Event::Text(t) | Event::Code(t) | Event::Html(t) => match &mut self.raw {
                Some(raw) => raw.push_str(&t),
                None => self.push_text(&t),
            },
            Event::InlineHtml(h) => {
                let lower = h.to_ascii_lowercase();
                self.skip = [("<script", "</script"), ("<style", "</style")]
                    .into_iter()
                    .find(|(open, close)| {
                        lower.starts_with(open)
                            && !lower[open.len()..].starts_with(char::is_alphanumeric)
                            && !lower.contains(close)
                    })
                    .map(|(_, close)| close);
                // Like a tag in web text, a tag here separates words.
                self.push_text(" ");
            }
            Event::SoftBreak | Event::HardBreak => self.push_text(" "),
            _ => {}
        }
    }

    fn has_text(&self) -> bool {
        self.current.as_ref().is_some_and(|(_, p)| !p.is_empty())
    }

    /// Starts a block of `kind`, unless one has started and has nothing yet (a list item's paragraph).
    fn start(&mut self, kind: BlockKind) {
        if self.has_text() {
            self.flush();
        }
        self.current.get_or_insert_with(|| (kind, Vec::new()));
    }

    /// Grounds the block read so far: its text cleaned and read for citations and URLs.
    fn flush(&mut self) {
        self.open.clear();
        self.skip = None;
        let Some((kind, pieces)) = self.current.take() else {
            return;
        };
        let mut inline = Inline {
            valid: self.valid,
            out: Vec::new(),
            removed: &mut self.removed,
            links: &mut self.grounded.removed_links,
            trim: false,
        };
        let mut text = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => text.push_str(&t),
                Piece::Cite(nums) => {
                    inline.text(&clean(&std::mem::take(&mut text)));
                    inline.cite(nums);
                }
            }
        }
        inline.text(&clean(&text));
        let segments = limit(tidy(inline.out));
        if !segments.is_empty() && self.grounded.blocks.len() < MAX_BLOCKS {
            self.grounded.blocks.push(Block { kind, segments });
        }
    }

    fn pieces(&mut self) -> &mut Vec<Piece> {
        &mut (self.current)
            .get_or_insert_with(|| (BlockKind::Paragraph, Vec::new()))
            .1
    }

    fn push_text(&mut self, text: &str) {
        match self.pieces().last_mut() {
            Some(Piece::Text(last)) => last.push_str(text),
            _ if text.is_empty() => {}
            _ => self.pieces().push(Piece::Text(text.to_string())),
        }
    }

    /// At the end of a link or image: a citation written as one becomes a citation; any other link is
    /// counted and keeps its text, except an autolink, whose text is its address.
    fn close_link(&mut self, skipped: bool) {
        let Some((at, link_type, label)) = self.open.pop() else {
            return;
        };
        let pieces = self.pieces();
        let at = at.min(pieces.len());
        let text_cite = match &pieces[at..] {
            [Piece::Text(t)] => citation_numbers(t),
            _ => None,
        };
        // Only a reference link (`[3]`, `[3][]`, `[see][3]`) has a label.
        let label_cite = citation_numbers(&label).filter(|_| !skipped);
        let written = !skipped && label_cite.is_none();
        use LinkType::*;
        let address = matches!(link_type, Autolink | Email);
        let shortcut = matches!(
            link_type,
            Shortcut | ShortcutUnknown | Collapsed | CollapsedUnknown
        );
        if skipped || address || (shortcut && label_cite.is_some()) {
            // A link inside a script is script; the brackets of `[3]` are the citation.
            pieces.truncate(at);
        } else if let Some(nums) = text_cite {
            // `[1](url)`, `[1][3]`: the citation stays, the link goes.
            pieces.truncate(at);
            pieces.push(Piece::Cite(nums));
        }
        if address {
            pieces.push(Piece::Cite(Vec::new()));
        }
        pieces.extend(label_cite.map(Piece::Cite));
        self.grounded.removed_links += usize::from(written);
    }
}

// ---- Inline text ----------------------------------------------------------------------------------------

/// Text as a renderer shows it, cleaned like web text: tags stripped (also ones written as entities),
/// invisible characters removed, spaces collapsed; a space at either end is kept.
fn clean(text: &str) -> String {
    // pulldown-cmark has decoded entities already and `clean_text` decodes them again: `&` is written
    // as an entity so that each decodes exactly once.
    let mut out = clean_text(&text.replace('&', "&amp;"), usize::MAX);
    if text.starts_with(char::is_whitespace) {
        out.insert(0, ' ');
    }
    if text.ends_with(char::is_whitespace) {
        out.push(' ');
    }
    out
}

struct Inline<'a> {
    valid: &'a BTreeSet<usize>,
    out: Vec<Segment>,
    removed: &'a mut BTreeSet<usize>,
    links: &'a mut usize,
    /// Something was just removed: drop the space before it if a space, punctuation or the end follows,
    /// so "claim [9]." becomes "claim." and not "claim .".
    trim: bool,
}

impl Inline<'_> {
    fn push_char(&mut self, c: char) {
        if std::mem::take(&mut self.trim)
            && (c.is_whitespace() || ".,;:!?)".contains(c))
            && let Some(Segment::Text { text }) = self.out.last_mut()
        {
            let t = text.trim_end().len();
            text.truncate(t);
        }
        if let Some(Segment::Text { text }) = self.out.last_mut() {
            text.push(c);
        } else {
            self.out.push(Segment::Text {
                text: c.to_string(),
            });
        }
    }

    /// Plain text: brackets, `【n】` and URLs that a renderer shows as they are (in code, HTML blocks, or
    /// written with escapes) are read here, so no `[9]` or address reaches the report as text either.
    fn text(&mut self, s: &str) {
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '['
                && let Some(len) = chars[i + 1..].iter().take(64).position(|&c| c == ']')
                && let Some(nums) =
                    citation_numbers(&chars[i + 1..i + 1 + len].iter().collect::<String>())
            {
                self.cite(nums);
                i += len + 2;
                continue;
            }
            if c == '【'
                && let Some(len) = chars[i + 1..].iter().take(40).position(|&c| c == '】')
            {
                let digits: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if let Ok(n) = digits.parse::<usize>() {
                    self.cite(vec![n]);
                    i += len + 2;
                    continue;
                }
            }
            let prev_word = i > 0 && chars[i - 1].is_alphanumeric();
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
                self.trim = true;
                i = end;
                continue;
            }
            self.push_char(c);
            i += 1;
        }
    }

    fn cite(&mut self, nums: Vec<usize>) {
        let mut any = false;
        for n in nums {
            if self.valid.contains(&n) {
                self.out.push(Segment::Cite { n });
                self.trim = false;
                any = true;
            } else {
                self.removed.insert(n);
            }
        }
        if !any {
            self.trim = true;
        }
    }
}

/// The numbers of a citation group, given what is between its brackets: `3`, `^3`, `1, 2`, `1; 4`,
/// `2-4`, `1 2`, `Source 3`, `Sources 1, 2`.
fn citation_numbers(inner: &str) -> Option<Vec<usize>> {
    if inner.chars().count() > 63 {
        return None;
    }
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
    (!nums.is_empty()).then_some(nums)
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

/// At most [`MAX_BLOCK_CHARS`] characters of text (a citation counts as one), cut at a word boundary
/// when one is near, and marked.
fn limit(segments: Vec<Segment>) -> Vec<Segment> {
    let mut left = MAX_BLOCK_CHARS;
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        let len = match &s {
            Segment::Text { text } => text.chars().count(),
            Segment::Cite { .. } => 1,
        };
        if len <= left {
            left -= len;
            out.push(s);
            continue;
        }
        if let Segment::Text { text } = s {
            out.push(Segment::Text {
                text: truncate_chars(&text, left),
            });
        }
        break;
    }
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
            (
                "Note[^1] and[^9].\n\n[^1]: Source one.\n[^9]: Two https://x.example.",
                "Note[1] and.",
                &[1],
                &[9],
                2,
            ),
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
            // An autolink is a link to every renderer: it goes, and is counted.
            ("Auto <https://x.example> link.", "Auto link.", &[], &[], 1),
            ("Mail <a@b.example>, then.", "Mail, then.", &[], &[], 1),
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
            // `\]` is an escape: renderers show `[a](b)` and a link `x`.
            (
                r"Escaped [a\](b) and [x](y\)z) end",
                "Escaped [a](b) and x end",
                &[],
                &[],
                1,
            ),
            // Brackets a renderer shows as text still cite, and still lose numbers not sent.
            (
                r"Escaped \[2\] and \[9\].",
                "Escaped [2] and.",
                &[2],
                &[9],
                0,
            ),
            (
                "Code `[1]` and\n\n    [2] indented",
                "Code [1] and\n[2] indented",
                &[1, 2],
                &[],
                0,
            ),
            (
                "<div>\nHTML [3] https://x.example\n</div>",
                "HTML [3]",
                &[3],
                &[],
                1,
            ),
            (
                "Label [Smith][2] and [Jones][9].",
                "Label Smith[2] and Jones.",
                &[2],
                &[9],
                0,
            ),
            (
                "x <script>alert([1])</script> y <style>p{}</style>z",
                "x y z",
                &[],
                &[],
                0,
            ),
            (
                "Lead:\n• one [1]\n• two",
                "Lead:\n- one [1]\n- two",
                &[1],
                &[],
                0,
            ),
            (
                "- a\n  - nested [1]\n\n  more",
                "- a\n- nested [1]\nmore",
                &[1],
                &[],
                0,
            ),
            (
                "[1]: https://x.example\nSee [1] and [r][1].",
                "See [1] and r[1].",
                &[1],
                &[],
                1,
            ),
            ("&amp;lt;b&amp;gt; stays", "&lt;b&gt; stays", &[], &[], 0),
            ("> quote\n> Sources:\n> [1] x", "quote", &[], &[], 0),
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
    fn a_long_answer_is_cut_to_the_block_limits() {
        let long = format!("{} [1] tail", "word ".repeat(1000));
        let g = ground(&long, &valid(1));
        let text = g.blocks[0].plain();
        assert!(text.chars().count() <= MAX_BLOCK_CHARS, "{}", text.len());
        assert!(text.ends_with("word…"), "{text}");
        let many: String = (0..100).map(|i| format!("Para {i} [1].\n\n")).collect();
        let g = ground(&many, &valid(1));
        assert_eq!(g.blocks.len(), MAX_BLOCKS);
        assert_eq!(
            g.blocks[MAX_BLOCKS - 1].plain(),
            format!("Para {} [1].", MAX_BLOCKS - 1)
        );
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
