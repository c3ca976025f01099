//! Cleaning web text and URLs. Everything a provider returns is data: it passes through here before it is
//! stored, merged or rendered. The output is plain text (not markdown): escaping is `render`'s job.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Plain single-line text: HTML tags stripped, entities decoded, control, bidi and zero-width characters
/// removed, whitespace collapsed, NFC, at most `max_chars` characters (an ellipsis marks a cut).
pub fn clean_text(raw: &str, max_chars: usize) -> String {
    // Fast paths: most provider text has no tags, no entities and is already NFC.
    let without_tags = if raw.contains('<') {
        Cow::Owned(strip_tags(raw))
    } else {
        Cow::Borrowed(raw)
    };
    let text = if without_tags.contains('&') {
        // Entities can encode tags (`&lt;b&gt;`): strip again after decoding, so none survive either way.
        Cow::Owned(strip_tags(&html_escape::decode_html_entities(
            &without_tags,
        )))
    } else {
        without_tags
    };
    let text = match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => text,
        _ => Cow::Owned(text.nfc().collect()),
    };
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if is_line_break_or_space(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    truncate_chars(&out, max_chars)
}

/// Cuts at a word boundary when one is near, and marks the cut.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > cut.len() * 3 / 4 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

fn is_line_break_or_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Characters that change how text displays without being seen: C0/C1 controls, bidi embeddings,
/// overrides and isolates (Trojan Source), zero-width characters, the BOM, and the like.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// HTML element names. Only these count as tags, so `Vec<T>` or `Option<String>` in a title stays text
/// (and is escaped when rendered) while `<b>`, `<span class=…>` or `<script>` are removed.
const HTML_ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "address",
    "area",
    "article",
    "aside",
    "audio",
    "b",
    "base",
    "bdi",
    "bdo",
    "blockquote",
    "body",
    "br",
    "button",
    "canvas",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "datalist",
    "dd",
    "del",
    "details",
    "dfn",
    "dialog",
    "div",
    "dl",
    "dt",
    "em",
    "embed",
    "fieldset",
    "figcaption",
    "figure",
    "font",
    "footer",
    "form",
    "frame",
    "frameset",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hgroup",
    "hr",
    "html",
    "i",
    "iframe",
    "img",
    "input",
    "ins",
    "kbd",
    "label",
    "legend",
    "li",
    "link",
    "main",
    "map",
    "mark",
    "marquee",
    "math",
    "menu",
    "meta",
    "meter",
    "nav",
    "noscript",
    "object",
    "ol",
    "optgroup",
    "option",
    "output",
    "p",
    "param",
    "picture",
    "pre",
    "progress",
    "q",
    "rp",
    "rt",
    "ruby",
    "s",
    "samp",
    "script",
    "search",
    "section",
    "select",
    "slot",
    "small",
    "source",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "summary",
    "sup",
    "svg",
    "table",
    "tbody",
    "td",
    "template",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "time",
    "title",
    "tr",
    "track",
    "tt",
    "u",
    "ul",
    "var",
    "video",
    "wbr",
    "xmp",
];

/// The element name of a tag starting at `after` (which begins with `<`), if it is an HTML tag.
fn tag_name(after: &str) -> Option<String> {
    let body = after[1..].strip_prefix('/').unwrap_or(&after[1..]);
    let name: String = body
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let next = body[name.len()..].chars().next();
    let ends_name = next.is_none_or(|c| c.is_whitespace() || c == '>' || c == '/');
    (ends_name && HTML_ELEMENTS.contains(&name.as_str())).then_some(name)
}

/// `<https://x.example>` or `<mailto:a@b.c>`: a markdown autolink, removed like a tag.
fn is_autolink(after: &str) -> bool {
    let Some(end) = after.find('>') else {
        return false;
    };
    let inner = &after[1..end];
    let Some((scheme, rest)) = inner.split_once(':') else {
        return false;
    };
    (2..=32).contains(&scheme.len())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && !rest.is_empty()
        && !inner.contains(|c: char| c.is_whitespace() || c == '<')
}

/// Removes HTML tags and comments. Text between tags is kept; the content of `<script>` and `<style>`
/// is dropped. A `<` that starts no HTML tag ("a < b", "Vec<T>") is text.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        if after.starts_with("<!--") {
            rest = after.find("-->").map(|e| &after[e + 3..]).unwrap_or("");
            continue;
        }
        let doctype = after
            .get(..9)
            .is_some_and(|d| d.eq_ignore_ascii_case("<!doctype"));
        let name = tag_name(after);
        if name.is_none() && !doctype && !is_autolink(after) {
            out.push('<');
            rest = &after[1..];
            continue;
        }
        let Some(close) = after.find('>') else {
            // An unterminated tag: drop the rest rather than let a half tag through.
            rest = "";
            break;
        };
        let closing = after[1..].starts_with('/');
        rest = &after[close + 1..];
        if let Some(raw @ ("script" | "style")) = name.as_deref()
            && !closing
        {
            let end = format!("</{raw}");
            // ASCII lower-casing keeps byte offsets, so positions found in the copy index `rest`.
            rest = match rest.to_ascii_lowercase().find(&end) {
                Some(e) => rest[e..]
                    .find('>')
                    .map(|g| &rest[e + g + 1..])
                    .unwrap_or(""),
                None => "",
            };
        }
        out.push(' ');
    }
    out.push_str(rest);
    out
}

/// User text (a topic) as one line: invisible and bidi characters removed, line breaks and runs of
/// white space made one space, at most `max_chars`. Unlike [`clean_text`], nothing is parsed as HTML.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let joined = text
        .split(|c: char| is_line_break_or_space(c))
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().filter(|c| !is_invisible(*c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    truncate_chars(&joined, max_chars)
}

/// Longest URL (bytes, as serialised) a source may cite; browsers and servers commonly stop near here.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest host name DNS allows (bytes, in its ASCII form).
pub const MAX_HOST_BYTES: usize = 253;

/// A web source's URL, if it is one we will link to: absolute http(s), no user info, no control or
/// invisible characters, at most [`MAX_URL_BYTES`] long with a host of at most [`MAX_HOST_BYTES`]. The
/// fragment is kept here (normalisation drops it for deduplication).
pub fn web_url(raw: &str) -> Option<url::Url> {
    let trimmed = raw.trim();
    // Checked before parsing too, so a megabyte of URL is never parsed.
    if trimmed.len() > MAX_URL_BYTES * 4 || trimmed.chars().any(|c| is_invisible(c) && c != '\t') {
        return None;
    }
    let url = url::Url::parse(trimmed).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    if url.as_str().len() > MAX_URL_BYTES
        || url.host_str().is_some_and(|h| h.len() > MAX_HOST_BYTES)
    {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    Some(url)
}

/// A readable title for a source that has none: host and the last meaningful path segment.
pub fn title_from_url(url: &url::Url) -> String {
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches("www.")
        .to_string();
    let segment = url
        .path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()))
        .map(|s| {
            let decoded = percent_decode(s);
            let stem = decoded
                .rsplit_once('.')
                .filter(|(_, ext)| ext.len() <= 5 && !ext.contains(' '))
                .map(|(stem, _)| stem.to_string())
                .unwrap_or(decoded);
            stem.replace(['-', '_', '+'], " ")
        })
        .map(|s| clean_text(&s, 120))
        .filter(|s| !s.is_empty());
    match (host.is_empty(), segment) {
        (false, Some(seg)) => format!("{seg} ({host})"),
        (false, None) => host,
        (true, Some(seg)) => seg,
        (true, None) => url.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What stands where a secret or a URL's user info was removed.
pub const REDACTED: &str = "[redacted]";

/// Removes the user info of every URL in `text`: `https://user:pass@host/x` → `https://[redacted]@host/x`.
/// Hand-written because no crate finds URLs with user info in free text; it reads each `://` and the
/// authority after it (up to `/`, `?`, `#`, white space or a quote or bracket).
pub fn strip_userinfo(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`')
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_single_line_plain_and_visible() {
        assert_eq!(
            clean_text(
                "<b>Tokio</b> &amp; <span class=\"searchmatch\">async</span>\n# runtime",
                100
            ),
            "Tokio & async # runtime"
        );
        assert_eq!(
            clean_text("a\u{202E}evil\u{202C}b\u{200B}c", 100),
            "aevilbc"
        );
        assert_eq!(
            clean_text("line\u{2028}break\r\nnext", 100),
            "line break next"
        );
        assert_eq!(
            clean_text("&lt;script&gt;alert(1)&lt;/script&gt;ok", 100),
            "ok"
        );
        assert_eq!(clean_text("1 < 2 and 3 > 2", 100), "1 < 2 and 3 > 2");
        assert_eq!(clean_text("x<img src=x onerror=alert(1)>y", 100), "x y");
        assert_eq!(
            clean_text("Vec<T> and Option<String> in Rust", 100),
            "Vec<T> and Option<String> in Rust"
        );
        assert_eq!(
            clean_text("<SPAN>a</SPAN><br/>b<!DOCTYPE html>c", 100),
            "a b c"
        );
        assert_eq!(one_line("  a\u{2028}b\n\u{202E}c<T>  ", 100), "a b c<T>");
        let long = "word ".repeat(100);
        let cut = clean_text(&long, 50);
        assert!(cut.chars().count() <= 50 && cut.ends_with('…'), "{cut}");
    }

    #[test]
    fn only_http_links() {
        assert!(web_url("javascript:alert(1)").is_none());
        assert!(web_url("data:text/html,hi").is_none());
        assert!(web_url("file:///etc/passwd").is_none());
        assert!(web_url("https://user:pw@example.com/").is_none());
        assert!(web_url("https://example.com/a\u{202E}b").is_none());
        assert_eq!(
            web_url("https://en.wikipedia.org/wiki/Rust_(programming_language)")
                .unwrap()
                .as_str(),
            "https://en.wikipedia.org/wiki/Rust_(programming_language)"
        );
    }

    #[test]
    fn titles_from_urls() {
        let u = url::Url::parse("https://www.example.com/blog/async-rust-in-2024.html").unwrap();
        assert_eq!(title_from_url(&u), "async rust in 2024 (example.com)");
        let u = url::Url::parse("https://example.com/").unwrap();
        assert_eq!(title_from_url(&u), "example.com");
        let u = url::Url::parse("https://example.com/caf%C3%A9").unwrap();
        assert_eq!(title_from_url(&u), "café (example.com)");
    }
}
