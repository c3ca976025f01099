//! Open documents: a rope per document, position encodings, incremental edits, and anchors that follow
//! edits (where a running research will insert its report).
//!
//! Invariants:
//! - Edits are applied by [`Documents::apply_change`] / [`Documents::open`] / [`Documents::close`], which
//!   the transport wrapper in `mod.rs` calls synchronously, in arrival order, before any handler runs.
//! - Every client position is clamped: a line past the end means the end of the document; a character
//!   past the end of its line means the end of that line (before its line break). Nothing here panics on
//!   client input.
//! - Line breaks are exactly `\n`, `\r\n` and `\r` (ropey with `cr_lines`, without `unicode_lines`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use ropey::Rope;
use tokio::sync::Notify;
use tower_lsp_server::ls_types::{Position, PositionEncodingKind, Range};

/// How `Position.character` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

impl Encoding {
    /// UTF-8 > UTF-32 > UTF-16; UTF-16 when the client offers nothing we know.
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Encoding {
        let offered = offered.unwrap_or_default();
        let has = |k: &str| offered.iter().any(|o| o.as_str() == k);
        if has("utf-8") {
            Encoding::Utf8
        } else if has("utf-32") {
            Encoding::Utf32
        } else {
            Encoding::Utf16
        }
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
            Encoding::Utf32 => PositionEncodingKind::UTF32,
        }
    }
}

/// The char index where `line`'s content ends (before its line break). `line` must exist.
pub fn line_content_end(rope: &Rope, line: usize) -> usize {
    let start = rope.line_to_char(line);
    let slice = rope.line(line);
    let mut len = slice.len_chars();
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
        if len > 0 && slice.char(len - 1) == '\r' {
            len -= 1;
        }
    } else if len > 0 && slice.char(len - 1) == '\r' {
        len -= 1;
    }
    start + len
}

/// A client position as a char index, clamped to the document.
pub fn position_to_char(rope: &Rope, pos: Position, enc: Encoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let start = rope.line_to_char(line);
    let end = line_content_end(rope, line);
    let character = pos.character as usize;
    match enc {
        Encoding::Utf32 => start + character.min(end - start),
        Encoding::Utf16 => {
            let start_cu = rope.char_to_utf16_cu(start);
            let end_cu = rope.char_to_utf16_cu(end);
            let cu = start_cu.saturating_add(character).min(end_cu);
            // Inside a surrogate pair rounds down to the char holding it.
            rope.utf16_cu_to_char(cu).clamp(start, end)
        }
        Encoding::Utf8 => {
            let start_b = rope.char_to_byte(start);
            let end_b = rope.char_to_byte(end);
            let b = start_b.saturating_add(character).min(end_b);
            // Inside a multi-byte char rounds down to that char.
            rope.byte_to_char(b).clamp(start, end)
        }
    }
}

/// A char index as a client position. `idx` is clamped to the document.
pub fn char_to_position(rope: &Rope, idx: usize, enc: Encoding) -> Position {
    let idx = idx.min(rope.len_chars());
    let line = rope.char_to_line(idx);
    let start = rope.line_to_char(line);
    let character = match enc {
        Encoding::Utf32 => idx - start,
        Encoding::Utf16 => rope.char_to_utf16_cu(idx) - rope.char_to_utf16_cu(start),
        Encoding::Utf8 => rope.char_to_byte(idx) - rope.char_to_byte(start),
    };
    Position::new(line as u32, character as u32)
}

/// A client range as ordered, clamped char indices.
pub fn range_to_chars(rope: &Rope, range: Range, enc: Encoding) -> (usize, usize) {
    let a = position_to_char(rope, range.start, enc);
    let b = position_to_char(rope, range.end, enc);
    (a.min(b), a.max(b))
}

pub fn chars_to_range(rope: &Rope, start: usize, end: usize, enc: Encoding) -> Range {
    Range::new(
        char_to_position(rope, start, enc),
        char_to_position(rope, end, enc),
    )
}

/// The text of `line` without its line break (empty when the line does not exist).
pub fn line_text(rope: &Rope, line: usize) -> String {
    if line >= rope.len_lines() {
        return String::new();
    }
    let start = rope.line_to_char(line);
    let end = line_content_end(rope, line);
    rope.slice(start..end).to_string()
}

/// Which way an anchor goes when text is inserted exactly at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gravity {
    /// Stays before the inserted text.
    Left,
    /// Moves after the inserted text.
    Right,
}

#[derive(Clone, Debug)]
struct Anchor {
    id: u64,
    pos: usize,
    gravity: Gravity,
}

/// One open document.
#[derive(Clone, Debug)]
pub struct Document {
    pub rope: Rope,
    pub version: i32,
    anchors: Vec<Anchor>,
}

impl Document {
    pub fn new(text: &str, version: i32) -> Document {
        Document {
            rope: Rope::from_str(text),
            version,
            anchors: Vec::new(),
        }
    }

    /// Replaces chars `start..end` with `text`, moving anchors: after the edit they shift; inside the
    /// replaced range they go to its start (left gravity) or to the end of the new text (right gravity).
    pub fn replace(&mut self, start: usize, end: usize, text: &str) {
        let len = self.rope.len_chars();
        let (start, end) = (start.min(len), end.min(len));
        let (start, end) = (start.min(end), start.max(end));
        if start < end {
            self.rope.remove(start..end);
        }
        if !text.is_empty() {
            self.rope.insert(start, text);
        }
        let inserted = text.chars().count();
        for a in &mut self.anchors {
            if a.pos > end || (a.pos == end && end > start) {
                a.pos = a.pos - (end - start) + inserted;
            } else if a.pos > start {
                a.pos = match a.gravity {
                    Gravity::Left => start,
                    Gravity::Right => start + inserted,
                };
            } else if a.pos == start && a.gravity == Gravity::Right {
                a.pos = start + inserted;
            }
        }
    }

    /// Replaces the whole text, expressed as the smallest single edit so anchors survive.
    pub fn replace_all(&mut self, text: &str) {
        let old = self.rope.to_string();
        let prefix: usize = old
            .chars()
            .zip(text.chars())
            .take_while(|(a, b)| a == b)
            .count();
        let old_len = old.chars().count();
        let new_len = text.chars().count();
        let max_suffix = (old_len - prefix).min(new_len - prefix);
        let suffix = old
            .chars()
            .rev()
            .zip(text.chars().rev())
            .take(max_suffix)
            .take_while(|(a, b)| a == b)
            .count();
        let middle: String = text
            .chars()
            .skip(prefix)
            .take(new_len - prefix - suffix)
            .collect();
        self.replace(prefix, old_len - suffix, &middle);
    }

    pub fn add_anchor(&mut self, id: u64, pos: usize, gravity: Gravity) {
        let pos = pos.min(self.rope.len_chars());
        self.anchors.push(Anchor { id, pos, gravity });
    }

    pub fn anchor(&self, id: u64) -> Option<usize> {
        self.anchors.iter().find(|a| a.id == id).map(|a| a.pos)
    }

    pub fn remove_anchor(&mut self, id: u64) {
        self.anchors.retain(|a| a.id != id);
    }
}

/// A cheap copy of a document's state (ropes share their tree).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub rope: Rope,
    pub version: i32,
}

/// What happened when a change was applied.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    Applied,
    UnknownDocument,
    StaleVersion { have: i32, got: i32 },
    OutOfSync,
}

/// All open documents. Guards never leave this type's methods, so no guard can be held across an await.
#[derive(Default)]
pub struct Documents {
    map: DashMap<String, Document>,
    /// Woken after every change, for jobs waiting to see their edit arrive.
    pub changed: Notify,
    next_anchor: AtomicU64,
    /// Documents whose text the server could not follow (a change it could not read, an oversized
    /// open): nothing is inserted into them until the editor opens them again.
    out_of_sync: DashMap<String, ()>,
    /// One insertion at a time per document.
    queues: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl Documents {
    pub fn open(&self, uri: &str, text: &str, version: i32) {
        self.map
            .insert(uri.to_string(), Document::new(text, version));
        self.out_of_sync.remove(uri);
        self.changed.notify_waiters();
    }

    pub fn close(&self, uri: &str) -> bool {
        let had = self.map.remove(uri).is_some();
        self.out_of_sync.remove(uri);
        self.queues.remove(uri);
        self.changed.notify_waiters();
        had
    }

    /// Marks `uri` as out of sync. True the first time (so the user is told once).
    pub fn mark_out_of_sync(&self, uri: &str) -> bool {
        let first = self.out_of_sync.insert(uri.to_string(), ()).is_none();
        self.changed.notify_waiters();
        first
    }

    pub fn is_out_of_sync(&self, uri: &str) -> bool {
        self.out_of_sync.contains_key(uri)
    }

    /// The queue that insertions into `uri` take turns on.
    pub fn insertion_queue(&self, uri: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.queues.entry(uri.to_string()).or_default().clone()
    }

    /// Applies one `didChange` (all its content changes, in order) if its version is newer.
    pub fn apply_change(
        &self,
        uri: &str,
        version: i32,
        changes: &[tower_lsp_server::ls_types::TextDocumentContentChangeEvent],
        enc: Encoding,
    ) -> ChangeOutcome {
        let outcome = match self.map.get_mut(uri) {
            None => ChangeOutcome::UnknownDocument,
            // Its text is already wrong: applying more positions to it would only spread the damage.
            Some(_) if self.out_of_sync.contains_key(uri) => ChangeOutcome::OutOfSync,
            Some(doc) if version <= doc.version => ChangeOutcome::StaleVersion {
                have: doc.version,
                got: version,
            },
            Some(mut doc) => {
                for change in changes {
                    match change.range {
                        Some(range) => {
                            let (s, e) = range_to_chars(&doc.rope, range, enc);
                            doc.replace(s, e, &change.text);
                        }
                        None => doc.replace_all(&change.text),
                    }
                }
                doc.version = version;
                ChangeOutcome::Applied
            }
        };
        self.changed.notify_waiters();
        outcome
    }

    pub fn snapshot(&self, uri: &str) -> Option<Snapshot> {
        self.map.get(uri).map(|d| Snapshot {
            rope: d.rope.clone(),
            version: d.version,
        })
    }

    /// Adds an anchor at `pos` and returns its id.
    pub fn add_anchor(&self, uri: &str, pos: usize, gravity: Gravity) -> Option<u64> {
        let id = self.next_anchor.fetch_add(1, Ordering::Relaxed) + 1;
        let mut doc = self.map.get_mut(uri)?;
        doc.add_anchor(id, pos, gravity);
        Some(id)
    }

    /// The snapshot and the current positions of `anchors`, taken together.
    pub fn snapshot_with_anchors(
        &self,
        uri: &str,
        anchors: &[u64],
    ) -> Option<(Snapshot, Vec<usize>)> {
        let doc = self.map.get(uri)?;
        let positions = anchors
            .iter()
            .map(|id| doc.anchor(*id))
            .collect::<Option<Vec<_>>>()?;
        Some((
            Snapshot {
                rope: doc.rope.clone(),
                version: doc.version,
            },
            positions,
        ))
    }

    pub fn remove_anchors(&self, uri: &str, anchors: &[u64]) {
        if let Some(mut doc) = self.map.get_mut(uri) {
            for id in anchors {
                doc.remove_anchor(*id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(l: u32, c: u32) -> Position {
        Position::new(l, c)
    }

    #[test]
    fn spec_example_in_each_encoding() {
        let rope = Rope::from_str("a𐐀b");
        assert_eq!(position_to_char(&rope, pos(0, 3), Encoding::Utf16), 2);
        assert_eq!(position_to_char(&rope, pos(0, 5), Encoding::Utf8), 2);
        assert_eq!(position_to_char(&rope, pos(0, 2), Encoding::Utf32), 2);
        // Inside the surrogate pair / inside the UTF-8 sequence: round down to the char.
        assert_eq!(position_to_char(&rope, pos(0, 2), Encoding::Utf16), 1);
        assert_eq!(position_to_char(&rope, pos(0, 3), Encoding::Utf8), 1);
        for enc in [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32] {
            for i in 0..=3 {
                let p = char_to_position(&rope, i, enc);
                assert_eq!(position_to_char(&rope, p, enc), i, "{enc:?} {i}");
            }
        }
    }

    #[test]
    fn line_breaks_are_lf_crlf_cr_only() {
        let rope = Rope::from_str("a\r\nb\rc\nd\u{2028}e\u{85}f");
        assert_eq!(rope.len_lines(), 4);
        assert_eq!(line_text(&rope, 0), "a");
        assert_eq!(line_text(&rope, 1), "b");
        assert_eq!(line_text(&rope, 3), "d\u{2028}e\u{85}f");
        // Past the end of a line: its end, before the break; past the last line: the document's end.
        assert_eq!(position_to_char(&rope, pos(0, 99), Encoding::Utf16), 1);
        assert_eq!(
            position_to_char(&rope, pos(99, 0), Encoding::Utf16),
            rope.len_chars()
        );
        assert_eq!(
            position_to_char(&rope, pos(u32::MAX, u32::MAX), Encoding::Utf8),
            rope.len_chars()
        );
    }

    #[test]
    fn anchors_follow_edits() {
        let mut d = Document::new("hello world", 1);
        d.add_anchor(1, 5, Gravity::Right);
        d.add_anchor(2, 5, Gravity::Left);
        d.replace(0, 0, "XX");
        assert_eq!((d.anchor(1), d.anchor(2)), (Some(7), Some(7)));
        d.replace(7, 7, "!");
        assert_eq!((d.anchor(1), d.anchor(2)), (Some(8), Some(7)));
        d.replace(0, 11, "");
        assert_eq!((d.anchor(1), d.anchor(2)), (Some(0), Some(0)));
        let mut d = Document::new("abc\ndef", 1);
        d.add_anchor(1, 3, Gravity::Right);
        d.replace_all("zzabc\ndef");
        assert_eq!(d.anchor(1), Some(5));
        assert_eq!(d.rope.to_string(), "zzabc\ndef");
    }
}
