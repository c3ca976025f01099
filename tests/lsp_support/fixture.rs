//! A mini-language for LSP test documents (texlab's way): the document is written with its positions
//! marked, and the test reads the positions back in the negotiated encoding.
//!
//! - `|` is the cursor (at most one per fixture): `snippet [|1]` hovers inside the marker.
//! - `<<` and `>>` enclose a range (any number, not nested), numbered from 0 in the order they open:
//!   `<<Rust traits>>` is the selection of a code action, `<<[3]>>` the range a diagnostic must have.
//!
//! The markers are removed from the text the editor opens. They were chosen because the markdown these
//! tests write never contains them: `|` would be a table cell separator and `>>` a nested block quote
//! at a line start, and `<<` has no meaning in markdown at all. A fixture that needs one of them as
//! text is written as a plain string with positions from `find`/`range_of` instead; a fixture that
//! holds a second `|` or an unbalanced `<<`/`>>` panics rather than mark a wrong position.

use serde_json::{Value, json};

use super::position;

#[derive(Clone, Debug)]
pub struct Fixture {
    /// The document as the editor has it (markers removed).
    pub text: String,
    cursor: Option<usize>,
    ranges: Vec<(usize, usize)>,
}

impl Fixture {
    pub fn parse(marked: &str) -> Fixture {
        let mut text = String::with_capacity(marked.len());
        let mut cursor = None;
        let mut ranges = Vec::new();
        let mut open: Option<usize> = None;
        let mut rest = marked;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("<<") {
                assert!(open.is_none(), "nested `<<` in fixture:\n{marked}");
                open = Some(text.len());
                rest = after;
            } else if let Some(after) = rest.strip_prefix(">>") {
                let start = open
                    .take()
                    .unwrap_or_else(|| panic!("`>>` without `<<` in fixture:\n{marked}"));
                ranges.push((start, text.len()));
                rest = after;
            } else if let Some(after) = rest.strip_prefix('|') {
                assert!(cursor.is_none(), "two cursors `|` in fixture:\n{marked}");
                cursor = Some(text.len());
                rest = after;
            } else {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        assert!(open.is_none(), "`<<` without `>>` in fixture:\n{marked}");
        Fixture {
            text,
            cursor,
            ranges,
        }
    }

    /// The cursor as an LSP position in `enc` (`utf-8`, `utf-16` or `utf-32`).
    pub fn cursor(&self, enc: &str) -> Value {
        let b = self.cursor.expect("the fixture has a cursor `|`");
        let (line, character) = position(&self.text, b, enc);
        json!({"line": line, "character": character})
    }

    /// Range `i` (0-based, in the order the `<<` appear) as an LSP range in `enc`.
    pub fn range(&self, i: usize, enc: &str) -> Value {
        let (s, e) = *self
            .ranges
            .get(i)
            .unwrap_or_else(|| panic!("the fixture has no range {i}"));
        let (l1, c1) = position(&self.text, s, enc);
        let (l2, c2) = position(&self.text, e, enc);
        json!({"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}})
    }

    /// The text of range `i`.
    pub fn range_text(&self, i: usize) -> &str {
        let (s, e) = self.ranges[i];
        &self.text[s..e]
    }

    /// The 0-based line range `i` starts on.
    pub fn range_line(&self, i: usize) -> u64 {
        position(&self.text, self.ranges[i].0, "utf-32").0 as u64
    }
}
