//! An incremental parser of server-sent events (the WHATWG event-stream format), as OpenAI-compatible
//! servers and Anthropic send them: events separated by blank lines, `event:` names, `data:` lines (several
//! join with `\n`), comments (`:` lines, used as keep-alives) and `id:`/`retry:` ignored. Bytes may arrive
//! split anywhere, even inside a UTF-8 character.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` name, if any.
    pub name: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    /// The previous byte was a CR (a following LF belongs to the same line end).
    after_cr: bool,
    name: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes; returns every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.line_done(&line) {
                        events.push(ev);
                    }
                }
                _ => self.line.push(b),
            }
        }
        events
    }

    /// The end of the stream: an event not followed by a blank line is still dispatched.
    pub fn finish(&mut self) -> Option<Event> {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            // A last line with no line end: process it, then dispatch.
            if let Some(ev) = self.line_done(&line) {
                return Some(ev);
            }
        }
        self.dispatch()
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.name = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {} // id, retry, and unknown fields
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let name = self.name.take();
        let data = self.data.take()?;
        Some(Event { name, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: Option<&str>, data: &str) -> Event {
        Event {
            name: name.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn events_comments_and_line_ends() {
        let text = ": keep-alive\r\n\r\nevent: ping\ndata: {}\n\nid: 7\nretry: 10\ndata: a\ndata:b\r\rdata: [DONE]";
        let want = vec![ev(Some("ping"), "{}"), ev(None, "a\nb"), ev(None, "[DONE]")];
        // Whole, and split at every byte (including inside CRLF pairs and UTF-8 characters).
        let mut p = SseParser::new();
        let mut got = p.push(text.as_bytes());
        got.extend(p.finish());
        assert_eq!(got, want);
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for b in text.as_bytes() {
            got.extend(p.push(&[*b]));
        }
        got.extend(p.finish());
        assert_eq!(got, want);
    }

    #[test]
    fn utf8_split_across_chunks() {
        let text = "data: héllo ✓\n\n".as_bytes();
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for chunk in text.chunks(1) {
            got.extend(p.push(chunk));
        }
        assert_eq!(got, vec![ev(None, "héllo ✓")]);
    }

    #[test]
    fn name_without_data_is_not_an_event() {
        let mut p = SseParser::new();
        assert!(p.push(b"event: ping\n\n").is_empty());
        assert_eq!(p.push(b"data: x\n\n"), vec![ev(None, "x")]);
    }
}
