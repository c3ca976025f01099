//! A page's readable main text: the article without navigation, banners, comments or related lists.
//!
//! HTML goes through `dom_smoothie` (a port of Mozilla's Readability, the algorithm behind Firefox Reader
//! View), chosen by measurement against Mozilla's 130 test pages over a port of trafilatura and other
//! Readability ports: see `benches/extraction.rs` and ARCHITECTURE.md. Markdown goes through
//! `pulldown-cmark`; plain text is kept as it is. A bot-check, login or paywall page is recognised and
//! never quoted.
//!
//! The text is returned as lines (one per paragraph, heading or list item), each with its whitespace
//! collapsed and invisible characters removed: nothing else of the page's wording is changed, so a
//! passage cut from it can be found on the page.

use super::{NotRead, ReadStatus};

/// What the reading stage sees of a page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readable {
    pub title: Option<String>,
    /// Paragraphs, headings and list items, one per line; a blank line between blocks.
    pub text: String,
}

/// Titles of challenge pages (Cloudflare, Akamai, Imperva, DataDome, PerimeterX, DDoS-Guard, ...): a
/// title that starts with one and is not much longer.
const CHALLENGE_TITLES: &[&str] = &[
    "just a moment",
    "attention required",
    "please wait... | cloudflare",
    "are you a robot",
    "are you a human",
    "robot or human",
    "human verification",
    "verify you are human",
    "verifying you are human",
    "checking your browser",
    "ddos-guard",
    "pardon our interruption",
    "bot verification",
];

/// Titles that mean a challenge or a refusal only when the page has little text.
const SHORT_PAGE_TITLES: &[&str] = &["access denied", "captcha", "security check", "forbidden"];

/// Markup only challenge pages carry.
const CHALLENGE_MARKUP: &[&str] = &[
    "cf-chl",
    "cf_chl_",
    "/cdn-cgi/challenge-platform/",
    "_incapsula_resource",
    "px-captcha",
    "captcha-delivery.com",
    "checking if the site connection is secure",
    "enable javascript and cookies to continue",
];

/// Said by pages that show nothing without scripts or a human check, when little else is there.
const SHORT_PAGE_CHALLENGE: &[&str] = &[
    "captcha",
    "enable javascript",
    "javascript is disabled",
    "javascript is required",
    "requires javascript",
    "turn on javascript",
    "please enable js",
    "not a robot",
    "unusual traffic",
];

/// Said by login walls and paywalls, when little else is there.
const SHORT_PAGE_WALL: &[&str] = &[
    "sign in to continue",
    "log in to continue",
    "login to continue",
    "sign in to read",
    "log in to read",
    "subscribe to continue",
    "subscribe to read",
    "subscribers only",
    "for subscribers",
    "to continue reading",
    "create a free account",
    "you must be logged in",
    "please log in",
    "please sign in",
    "already a subscriber",
];

/// A readable text shorter than this is checked for challenge and wall wording.
const SHORT_PAGE_CHARS: usize = 1500;

/// True for a bot-check page, judged by its `<title>` and markup (the first 64 KiB).
pub fn is_challenge_page(html: &str) -> bool {
    let head = &html[..floor_char_boundary(html, 64 * 1024)];
    let lower = head.to_lowercase();
    let title = lower
        .find("<title")
        .and_then(|i| {
            let rest = &lower[i..];
            let open = rest.find('>')? + 1;
            let close = rest[open..].find("</title")?;
            Some(rest[open..open + close].trim().to_string())
        })
        .unwrap_or_default();
    CHALLENGE_TITLES
        .iter()
        .any(|m| title.starts_with(m) && title.len() <= m.len() + 24)
        || CHALLENGE_MARKUP.iter().any(|m| lower.contains(m))
}

/// A short readable text that is a challenge or a wall, not content.
fn wall(title: &str, text: &str) -> Option<&'static str> {
    if text.len() >= SHORT_PAGE_CHARS {
        return None;
    }
    let lower = text.to_lowercase();
    let title = title.to_lowercase();
    if SHORT_PAGE_CHALLENGE.iter().any(|m| lower.contains(m))
        || SHORT_PAGE_TITLES.iter().any(|m| title.contains(m))
    {
        Some("bot check")
    } else if SHORT_PAGE_WALL.iter().any(|m| lower.contains(m)) {
        Some("login or paywall")
    } else {
        None
    }
}

/// The readable text of an HTML page.
pub fn html(html: String) -> Result<Readable, NotRead> {
    if is_challenge_page(&html) {
        return Err(NotRead::new(ReadStatus::Blocked, "bot check"));
    }
    // One copy of the markup for both attempts below (tendrils share their buffer), and the page's
    // own string freed before the DOM is built.
    let page = tendril::StrTendril::from(html);
    let config = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        ..dom_smoothie::Config::default()
    };
    // `parse` keeps a copy of the page's DOM for each further attempt (a DOM is some 5 times the page).
    // One strict attempt first, which needs no copy; only when it finds less than Readability's own
    // threshold does the full `parse` run, which then gives the same result `parse` alone would.
    let grab = |policy: Option<dom_smoothie::ParsePolicy>| {
        let mut r = dom_smoothie::Readability::new(page.clone(), None, Some(config.clone()))?;
        match policy {
            Some(p) => r.parse_with_policy(p),
            None => r.parse(),
        }
    };
    let article = match grab(Some(dom_smoothie::ParsePolicy::Strict)) {
        Ok(a) if a.text_content.chars().count() >= config.char_threshold => Ok(a),
        _ => grab(None),
    }
    .map_err(|e| {
        tracing::debug!(error = %e, "no article found");
        NotRead::new(ReadStatus::Failed, "no readable text")
    })?;
    drop(page);
    // Only the text and the title are used: the article's HTML and the rest go now.
    let dom_smoothie::Article {
        title,
        text_content,
        ..
    } = article;
    let text = normalise(&text_content);
    drop(text_content);
    if text.is_empty() {
        return Err(NotRead::new(ReadStatus::Failed, "no readable text"));
    }
    let title = normalise_line(&title);
    if let Some(why) = wall(&title, &text) {
        return Err(NotRead::new(ReadStatus::Blocked, why));
    }
    Ok(Readable {
        title: (!title.is_empty()).then_some(title),
        text,
    })
}

/// Plain text, as it is (whitespace normalised).
pub fn plain(text: &str) -> Result<Readable, NotRead> {
    let text = normalise(text);
    if text.is_empty() {
        return Err(NotRead::new(ReadStatus::Failed, "no readable text"));
    }
    if let Some(why) = wall("", &text) {
        return Err(NotRead::new(ReadStatus::Blocked, why));
    }
    Ok(Readable { title: None, text })
}

/// Markdown: the text of its blocks, without the markup; the first heading is the title.
pub fn markdown(source: &str) -> Result<Readable, NotRead> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = String::with_capacity(source.len());
    let mut title: Option<String> = None;
    let mut heading: Option<String> = None;
    for event in Parser::new(source) {
        match event {
            Event::Text(t) | Event::Code(t) => {
                out.push_str(&t);
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if title.is_none() {
                    title = heading.take();
                }
                heading = None;
                out.push_str("\n\n");
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock | TagEnd::TableRow) => {
                out.push_str("\n\n");
            }
            Event::End(TagEnd::TableCell) => out.push(' '),
            _ => {}
        }
    }
    let text = normalise(&out);
    if text.is_empty() {
        return Err(NotRead::new(ReadStatus::Failed, "no readable text"));
    }
    Ok(Readable {
        title: title.map(|t| normalise_line(&t)).filter(|t| !t.is_empty()),
        text,
    })
}

/// One line: invisible characters removed, whitespace runs collapsed to one space, trimmed.
pub fn normalise_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut space = false;
    for c in line.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if !crate::sanitize::is_invisible(c) {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Lines normalised with [`normalise_line`]; runs of blank lines become one.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.split(['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}']) {
        let line = normalise_line(line);
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank {
                out.push('\n');
            }
        }
        blank = false;
        out.push_str(&line);
    }
    out
}

/// The largest char boundary at or below `i`.
pub(crate) fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = r#"<!doctype html><html><head><title>Tokio's scheduler | Example Blog</title></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/shop">Shop now</a></li></ul></nav>
<div class="cookie-banner">We use cookies. Accept all cookies?</div>
<article>
<h1>Tokio's scheduler</h1>
<p>Tokio is an asynchronous runtime for the Rust programming language. It provides the building blocks
needed for writing network applications.</p>
<p>The multi-threaded scheduler uses   work stealing: an idle worker takes tasks from the queues of busy
workers, which keeps every core busy without a central queue.</p>
<p>Each worker has a local run queue with a fixed capacity, and a global injection queue receives tasks
spawned from outside the runtime.</p>
<p>When a task wakes up, it is pushed to the queue of the worker that woke it, which keeps related tasks
on the same core and their data in the same cache.</p>
</article>
<footer><p>Copyright 2024 Example Blog. All rights reserved. Privacy policy.</p></footer>
</body></html>"#;

    #[test]
    fn the_article_without_its_navigation_and_footer() {
        let r = html(ARTICLE.to_string()).unwrap();
        assert!(
            r.text.contains("The multi-threaded scheduler uses work stealing: an idle worker takes tasks from the queues of busy workers"),
            "{}",
            r.text
        );
        for chrome in [
            "Shop now",
            "About us",
            "Copyright 2024",
            "Accept all cookies",
        ] {
            assert!(!r.text.contains(chrome), "{chrome} in {}", r.text);
        }
        assert!(r.title.unwrap().contains("Tokio's scheduler"));
    }

    #[test]
    fn challenge_pages_are_blocked() {
        let cf = r#"<html><head><title>Just a moment...</title></head><body><div id="cf-chl-widget"></div>
            <p>Checking if the site connection is secure</p></body></html>"#;
        assert_eq!(
            html(cf.to_string()).unwrap_err().status,
            ReadStatus::Blocked
        );
        let js = r#"<html><head><title>News</title></head><body><div><p>Please enable JavaScript to view this
            page. This site requires JavaScript to work properly and will not load without it.</p></div></body></html>"#;
        let err = html(js.to_string()).unwrap_err();
        assert_eq!(
            (err.status, err.detail.as_str()),
            (ReadStatus::Blocked, "bot check")
        );
        let wall = r#"<html><head><title>Big story</title></head><body><article><h1>Big story</h1>
            <p>Subscribe to continue reading this article. Already a subscriber? Sign in.</p></article></body></html>"#;
        let err = html(wall.to_string()).unwrap_err();
        assert_eq!(
            (err.status, err.detail.as_str()),
            (ReadStatus::Blocked, "login or paywall")
        );
    }

    #[test]
    fn markdown_and_plain_text() {
        let md = markdown("# Title here\n\nSome *emphasis* and `code`\nwrapped.\n\n- one\n- two\n")
            .unwrap();
        assert_eq!(md.title.as_deref(), Some("Title here"));
        assert_eq!(
            md.text,
            "Title here\n\nSome emphasis and code wrapped.\n\none\n\ntwo"
        );
        let p = plain("  a\u{200B}b   c \r\n\r\n\r\n d\te ").unwrap();
        assert_eq!(p.text, "ab c\n\nd e");
    }
}
