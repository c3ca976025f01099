//! The block structure of a document as pulldown-cmark sees it: headings (ATX or setext) and code
//! blocks.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// A heading as renderers see it: ATX or setext, outside code, lists and block quotes. `line` is the
/// line its text starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heading {
    pub line: usize,
    pub level: u8,
    pub text: String,
}

/// What pulldown-cmark sees of a document's blocks: its headings, and the lines of its code blocks
/// (inclusive ranges, in order).
#[derive(Debug, Default)]
pub struct Blocks {
    pub headings: Vec<Heading>,
    pub code: Vec<(usize, usize)>,
}

/// The markdown a note is written in: CommonMark with GitHub's tables, footnotes, strikethrough and task
/// lists, and front matter (`---` YAML or `+++` TOML) at the top, which is no setext heading.
pub fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS
}

/// The headings and code blocks of `text`, with line numbers counted as ropey counts them (`\n`,
/// `\r\n` and `\r` end a line).
pub fn blocks(text: &str) -> Blocks {
    let mut starts = vec![0];
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
        }
        if b[i] == b'\n' || b[i] == b'\r' {
            starts.push(i + 1);
        }
        i += 1;
    }
    let line_of = |offset: usize| starts.partition_point(|&s| s <= offset) - 1;
    // pulldown-cmark misreads fences and front matter in lines ended by a lone `\r`: give it `\n`
    // instead (one byte for one, so offsets and line numbers stay the same).
    let lone_cr = |i: usize| b[i] == b'\r' && b.get(i + 1) != Some(&b'\n');
    let normalized: std::borrow::Cow<str> = if (0..b.len()).any(lone_cr) {
        let bytes: Vec<u8> = (0..b.len())
            .map(|i| if lone_cr(i) { b'\n' } else { b[i] })
            .collect();
        String::from_utf8(bytes).map_or(text.into(), Into::into)
    } else {
        text.into()
    };
    let mut out = Blocks::default();
    let mut containers = 0usize;
    let mut heading: Option<Heading> = None;
    for (event, range) in Parser::new_ext(&normalized, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::BlockQuote(_) | Tag::Item | Tag::FootnoteDefinition(_)) => {
                containers += 1
            }
            Event::End(TagEnd::BlockQuote(_) | TagEnd::Item | TagEnd::FootnoteDefinition) => {
                containers = containers.saturating_sub(1)
            }
            Event::Start(Tag::Heading { level, .. }) if containers == 0 => {
                heading = Some(Heading {
                    line: line_of(range.start),
                    level: level as u8,
                    text: String::new(),
                });
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.text.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => out.headings.extend(heading.take()),
            Event::Start(Tag::CodeBlock(_)) => {
                let last = line_of(range.end.saturating_sub(1).max(range.start));
                out.code.push((line_of(range.start), last));
            }
            _ => {}
        }
    }
    out
}

/// A heading that opens a citation list: `Citations`, `References` or `Sources`.
pub fn is_citations_heading(text: &str) -> bool {
    let t = text.trim().trim_end_matches(':').trim();
    ["citations", "references", "sources"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
}
