//! The hostile corpus: web text, URLs, topics and model answers that have turned into markup in some
//! renderer (cmark-gfm, pandoc `gfm` and `commonmark_x`, VS Code's markdown-it with linkify, comrak,
//! pulldown-cmark) or that markdownlint flags. Shared by `render_props.rs` (property tests, comrak and
//! pulldown-cmark) and `renderers.rs` (the external renderers).
#![allow(dead_code)]

/// Titles and snippets as providers return them (they pass `sanitize` like real results).
pub const WEB_TEXT: &[&str] = &[
    // pandoc commonmark_x: attributes, bracketed spans, superscript, subscript, emoji, math.
    r#"Click me{onclick="alert(1)" style="position:fixed;top:0;left:0;width:100%;height:100%"}"#,
    "[span]{.x} and word{#id .class key=val}",
    "E = mc^2^ and H~2~O and ~~struck~~",
    ":smile: :+1: :notes: at 12:30:45",
    "$x^2$ and $$y$$ cost \\$5",
    "::: warning",
    // GFM extended autolinks and linkify (VS Code).
    "www.evil.example and WWW.EVIL.EXAMPLE",
    "admin@evil.example wrote to root@localhost.localdomain",
    "mailto:admin@evil.example and xmpp:admin@evil.example/x",
    "mailto:@evil.example xmpp:@evil.example a;b=c@evil.example @handle",
    "https://evil.example/x and http://evil.example and ftp://evil.example/f",
    "see evil.com/phish or tokio.rs or README.md or //evil.com/x",
    "<https://evil.example> and <admin@evil.example>",
    // Entities (decoded by sanitize, so these are what a page that double-encodes shows).
    "AT&T &amp;amp; &amp;copy; &amp;#169;",
    // CommonMark inline markup.
    "snake_case_name and __init__ and _emphasis_ and *bold* and **strong**",
    "Vec<T> and <script>alert(1)</script> and <img src=x onerror=alert(1)>",
    "`code` and ```fence``` and ``",
    "[x](https://evil.example) ![img](https://evil.example/i.png) [^1] [ref]",
    "[ref]: https://evil.example/def",
    "C:\\Users\\me and ends with \\",
    "a | b | c",
    // Block markup, flattened to one line by sanitize.
    "# heading\nTitle\n---\n> quote\n- item\n1. item\n| a | b |\n|---|---|",
    "Tokio 1.0 *released*",
    // Invisible and non-Latin text.
    "bidi\u{202E}evil\u{202C} zero\u{200B}width 漢字 😀 é",
    "smart \"quotes\" -- dashes --- and ... dots, e.g. Node.js i.e. v1.0",
    "@mention #hashtag issue #123 user/repo#1 50% off & more",
];

/// URLs providers return; each must open exactly itself in every renderer.
pub const URLS: &[&str] = &[
    "https://h.example/x?a=1&copy;=2&amp;b=3",
    "https://en.wikipedia.org/wiki/Rust_(programming_language)",
    "https://h.example/a_b*c~d/e_f_",
    "https://h.example/p?q=a|b^c{d}[e]`f",
    "https://h.example/q?x=\\y&z=%5C",
    "https://h.example/x?a=1&amp;b=2&#169;=3&lt;&#x1F600;",
    "http://www.example.org/",
    "https://h.example/%7Euser/a%20b",
    "https://h.example/x?u=https://evil.example/&e=admin@evil.example",
    "https://h.example/x?q=:smile:&r=www.evil.example",
    "https://h.example/x?a=1&copy=2",
    "https://h.example/page#frag",
    "https://h.example/a b/<c>",
    "https://пример.example/путь",
    "https://h.example/x$y$z",
    "https://tokio.rs/blog/2020-12-tokio-1-0",
];

/// Topics (a selection or heading): each on the Objective line must stay one paragraph of text.
pub const TOPICS: &[&str] = &[
    "---",
    "1. Rust",
    "- Rust",
    "> Rust",
    "+ Rust",
    "* Rust",
    "a) Rust",
    "(1) Rust",
    "i. Rust",
    "#. Rust",
    "# Rust",
    "::: warning",
    ": Rust",
    "| a | b |",
    "= Rust",
    "***",
    "    indented code",
    "Rust #",
    "Rust {#id .x}",
    "www.rust-lang.org and admin@rust.example",
    "What is Vec<T>?",
    ":rocket: Rust ^2^ ~x~ $y$",
    "[Rust](https://evil.example)",
    "Title\n===",
    "- [ ] task",
    "Rust async runtimes.",
    "Why Rust;",
    "Rust: a survey!",
];

/// A model's answer full of what the grounding must neutralise; cites sources 1 to 3.
pub const ANSWER: &str = "## Overview\n\n\
Tokio is a runtime [1]. Contact admin@evil.example, mailto:admin@evil.example or \
xmpp:admin@evil.example/x for more [2].\n\n\
- Visit www.evil.example and evil.com/phish [3]\n\
- Click me{onclick=\"alert(1)\"} ^sup^ ~sub~ :smile: $x$ [1]\n\
1. Numbered item [2]\n\n\
---\n\n\
> quoted [2]\n\n\
::: warning\n\
: definition\n\n\
Term [3] with snake_case_name and https://evil.example/x and <b>bold</b> &copy;.\n";
