//! Reports rendered by the renderers people read notes with: comrak (the cmark-gfm port, in process),
//! GitHub's `cmark-gfm`, `pandoc` (`gfm` and `commonmark_x`), VS Code's preview (markdown-it with
//! linkify, from npm) and `markdownlint-cli2`. For the hostile corpus, in every citation style, with and
//! without a summary: every citation is exactly one link opening exactly its URL, with its title as the
//! text; the Objective is the topic as written; nothing else is a link, heading, list, rule, image,
//! code, table, raw HTML, attribute, span or emoji; and markdownlint finds nothing (line length aside).
//!
//! The external renderers come from Debian (`apt-get install cmark-gfm pandoc`) and npm
//! (`scripts/install-renderers`, pinned in `tests/renderers/package.json`, into `target/renderers`).
//! When one is missing the test says so and checks the others; with `CI=true` a missing renderer fails.

mod common;
mod corpus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use conductor::config::{CitationStyle, ProviderName};
use conductor::providers::Hit;
use conductor::render::{self, RenderOptions};
use conductor::report::{DroppedSource, Passage};
use conductor::research::{ProviderRun, Research, RunStatus, Source, merge::merge};
use conductor::synth::{Summary, Synthesis, Usage, grounding};

// ---- The renderers ------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Renderer {
    Comrak,
    CmarkGfm,
    PandocGfm,
    PandocCommonmarkX,
    MarkdownIt,
}

const RENDERERS: [Renderer; 5] = [
    Renderer::Comrak,
    Renderer::CmarkGfm,
    Renderer::PandocGfm,
    Renderer::PandocCommonmarkX,
    Renderer::MarkdownIt,
];

/// VS Code's preview engine: markdown-it with HTML and linkify on, as VS Code configures it.
const MARKDOWN_IT: &str = "const path = require('path');\
const MarkdownIt = require(path.join(process.argv[1], 'node_modules', 'markdown-it'));\
const md = new MarkdownIt({ html: true, linkify: true });\
process.stdout.write(md.render(require('fs').readFileSync(0, 'utf8')));";

/// Where `scripts/install-renderers` puts the npm renderers.
fn npm_dir() -> PathBuf {
    std::env::var_os("CONDUCTOR_RENDERERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/renderers"))
}

fn markdownlint_bin() -> PathBuf {
    npm_dir().join("node_modules/.bin/markdownlint-cli2")
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Renderer {
    fn name(self) -> &'static str {
        match self {
            Renderer::Comrak => "comrak",
            Renderer::CmarkGfm => "cmark-gfm",
            Renderer::PandocGfm => "pandoc -f gfm",
            Renderer::PandocCommonmarkX => "pandoc -f commonmark_x",
            Renderer::MarkdownIt => "markdown-it (VS Code preview)",
        }
    }

    fn available(self) -> bool {
        match self {
            Renderer::Comrak => true,
            Renderer::CmarkGfm => runs("cmark-gfm", &["--version"]),
            Renderer::PandocGfm | Renderer::PandocCommonmarkX => runs("pandoc", &["--version"]),
            Renderer::MarkdownIt => {
                npm_dir().join("node_modules/markdown-it").is_dir() && runs("node", &["--version"])
            }
        }
    }

    fn html(self, markdown: &str) -> String {
        let (program, args): (&str, Vec<String>) = match self {
            Renderer::Comrak => {
                let mut o = comrak::Options::default();
                o.extension.autolink = true;
                o.extension.table = true;
                o.extension.strikethrough = true;
                o.extension.footnotes = true;
                o.extension.tasklist = true;
                o.render.r#unsafe = true;
                return comrak::markdown_to_html(markdown, &o);
            }
            // GitHub's extensions; raw HTML passed through so that any would be seen.
            Renderer::CmarkGfm => (
                "cmark-gfm",
                [
                    "--unsafe",
                    "-e",
                    "autolink",
                    "-e",
                    "table",
                    "-e",
                    "strikethrough",
                    "-e",
                    "footnotes",
                    "-e",
                    "tasklist",
                ]
                .map(String::from)
                .to_vec(),
            ),
            Renderer::PandocGfm => (
                "pandoc",
                ["-f", "gfm", "-t", "html", "--wrap=none"]
                    .map(String::from)
                    .to_vec(),
            ),
            Renderer::PandocCommonmarkX => (
                "pandoc",
                ["-f", "commonmark_x", "-t", "html", "--wrap=none"]
                    .map(String::from)
                    .to_vec(),
            ),
            Renderer::MarkdownIt => (
                "node",
                vec![
                    "-e".into(),
                    MARKDOWN_IT.into(),
                    npm_dir().to_string_lossy().into_owned(),
                ],
            ),
        };
        let mut child = Command::new(program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", self.name()));
        let mut stdin = child.stdin.take().unwrap();
        let input = markdown.to_string();
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            stdin.write_all(input.as_bytes()).unwrap();
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "{} failed: {}",
            self.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The renderers to use here: all that are installed. Missing ones are named; under `CI=true` a missing
/// renderer fails the test instead.
fn installed() -> Vec<Renderer> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let mut found = Vec::new();
    for r in RENDERERS {
        if r.available() {
            found.push(r);
        } else if ci {
            panic!(
                "{} is not installed (CI=true): run scripts/install-renderers",
                r.name()
            );
        } else {
            eprintln!(
                "renderers: {} is not installed, not checked (scripts/install-renderers)",
                r.name()
            );
        }
    }
    found
}

// ---- Reading the HTML ---------------------------------------------------------------------------------

#[derive(Debug)]
enum Tok {
    Open(String, Vec<(String, String)>),
    Close(String),
    Text(String),
    Comment(String),
}

/// The renderers' HTML as tags, comments and text (entities decoded). Their output is regular: every
/// `<` in it starts a tag or comment, text `<` being `&lt;`.
fn tokens(html: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.push(Tok::Text(decode(rest)));
            break;
        };
        if lt > 0 {
            out.push(Tok::Text(decode(&rest[..lt])));
        }
        rest = &rest[lt..];
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").expect("closed comment");
            out.push(Tok::Comment(body[..end].to_string()));
            rest = &body[end + 3..];
            continue;
        }
        let end = tag_end(rest);
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            out.push(Tok::Close(name.trim().to_ascii_lowercase()));
            continue;
        }
        let tag = tag.trim_end_matches('/');
        let name_len = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
        out.push(Tok::Open(
            tag[..name_len].to_ascii_lowercase(),
            attributes(&tag[name_len..]),
        ));
    }
    out
}

/// The `>` closing the tag at the start of `s`, skipping quoted attribute values.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i,
            _ => {}
        }
    }
    panic!("unclosed tag in {s}");
}

fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let name_len = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let name = rest[..name_len].to_ascii_lowercase();
        rest = rest[name_len..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, next) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let end = after[1..].find(q).expect("closed attribute") + 1;
                    (&after[1..end], &after[end + 1..])
                }
                _ => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = decode(v);
            rest = next.trim_start();
        }
        out.push((name, value));
    }
    out
}

fn decode(s: &str) -> String {
    html_escape::decode_html_entities(s).into_owned()
}

/// A URL as a browser requests it: what no URL may hold raw (space, non-ASCII, `"<>\^`{|}` and the
/// like) percent-encoded, hex in upper case. Renderers differ only in which of those they encode.
fn canonical_url(url: &str) -> String {
    let mut out = String::new();
    let bytes = url.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            out.push('%');
            out.push(bytes[i + 1].to_ascii_uppercase() as char);
            out.push(bytes[i + 2].to_ascii_uppercase() as char);
            i += 3;
            continue;
        }
        let allowed = b.is_ascii_alphanumeric() || b"-._~:/?#@!$&'()*+,;=%".contains(&b);
        if allowed {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
    out
}

/// Text as compared: white space collapsed, pandoc's smart punctuation (`commonmark_x`) undone, and
/// the full-width at sign of a defanged e-mail address read as `@`.
fn plain(text: &str) -> String {
    let text = text
        .replace(['\u{2018}', '\u{2019}'], "'")
        .replace(['\u{201C}', '\u{201D}'], "\"")
        .replace('\u{2014}', "---")
        .replace('\u{2013}', "--")
        .replace('\u{2026}', "...")
        .replace('＠', "@");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a report's HTML holds.
#[derive(Debug, Default)]
struct Seen {
    /// (href, text) of every link that is not a footnote reference or back link.
    links: Vec<(String, String)>,
    /// (level, text) of every heading.
    headings: Vec<(u8, String)>,
    /// List items.
    items: usize,
    /// The text of each paragraph inside a block quote (the quotes under sources).
    quotes: Vec<String>,
    /// The text of the paragraph after the Objective heading.
    objective: Option<String>,
    /// Everything that is not what the report wrote: unexpected tags, attributes, comments.
    problems: Vec<String>,
}

fn read_html(html: &str, footnotes: bool) -> Seen {
    let mut seen = Seen::default();
    let mut link: Option<(String, String)> = None;
    let mut heading: Option<(u8, String)> = None;
    let mut objective: Option<String> = None;
    let mut after_objective = false;
    let mut in_quote = 0usize;
    let mut quote: Option<String> = None;
    for tok in tokens(html) {
        match tok {
            Tok::Comment(c) => {
                let ours = c.trim_start().starts_with("conductor:report")
                    || c.trim() == "/conductor:report";
                if !ours {
                    seen.problems.push(format!("comment <!--{c}-->"));
                }
            }
            Tok::Text(t) => {
                if let Some((_, text)) = &mut link {
                    text.push_str(&t);
                }
                if let Some((_, text)) = &mut heading {
                    text.push_str(&t);
                }
                if let Some(text) = &mut objective {
                    text.push_str(&t);
                }
                if let Some(text) = &mut quote {
                    text.push_str(&t);
                }
            }
            Tok::Open(name, attrs) => {
                let footnote_markup = footnotes
                    && attrs.iter().any(|(k, v)| {
                        (k == "class" && v.contains("footnote"))
                            || k.starts_with("data-footnote")
                            || (k == "role" && v.starts_with("doc-"))
                    });
                let allowed = match name.as_str() {
                    "p" | "ul" | "ol" | "li" | "strong" | "em" | "a" | "blockquote" => true,
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => true,
                    // Footnotes: cmark-gfm's and pandoc's section, references and (pandoc) its rule.
                    "section" | "sup" => footnote_markup || (footnotes && name == "sup"),
                    "hr" => footnotes,
                    _ => false,
                };
                if !allowed {
                    seen.problems.push(format!("<{name}> {attrs:?}"));
                }
                for (k, v) in &attrs {
                    let ok = match k.as_str() {
                        "href" => name == "a",
                        "id" => true,
                        // pandoc writes `type="1"` on every ordered list.
                        "start" | "type" => name == "ol",
                        "class" | "role" | "aria-label" => footnote_markup,
                        k if k.starts_with("data-footnote") => footnote_markup,
                        _ => false,
                    };
                    if !ok {
                        seen.problems
                            .push(format!("attribute {k}={v:?} on <{name}>"));
                    }
                }
                match name.as_str() {
                    "a" => {
                        let href = attrs
                            .iter()
                            .find(|(k, _)| k == "href")
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default();
                        if link.is_some() {
                            seen.problems.push(format!("a link inside a link: {href}"));
                        }
                        if href.starts_with('#') && footnote_markup {
                            link = None;
                        } else {
                            link = Some((href, String::new()));
                        }
                    }
                    "li" => seen.items += 1,
                    "blockquote" => in_quote += 1,
                    "p" if in_quote > 0 => quote = Some(String::new()),
                    h if h.len() == 2 && h.starts_with('h') && h != "hr" => {
                        heading = Some((h[1..].parse().unwrap(), String::new()));
                    }
                    "p" if after_objective => {
                        objective = Some(String::new());
                        after_objective = false;
                    }
                    _ => {}
                }
            }
            Tok::Close(name) => match name.as_str() {
                "blockquote" => in_quote = in_quote.saturating_sub(1),
                "p" if quote.is_some() => {
                    seen.quotes.push(plain(&quote.take().unwrap_or_default()))
                }
                "a" => {
                    if let Some((href, text)) = link.take() {
                        seen.links.push((href, plain(&text)));
                    }
                }
                h if h.len() == 2 && h.starts_with('h') && h != "hr" => {
                    if let Some((level, text)) = heading.take() {
                        after_objective = plain(&text) == "Objective";
                        seen.headings.push((level, plain(&text)));
                    }
                }
                "p" => {
                    if let Some(text) = objective.take() {
                        seen.objective = Some(plain(&text));
                    }
                }
                _ => {}
            },
        }
    }
    seen
}

// ---- The reports ----------------------------------------------------------------------------------------

/// One report of the corpus and what it must render as.
struct Doc {
    name: String,
    markdown: String,
    research: Research,
    style: CitationStyle,
    summary: bool,
}

fn sources() -> Vec<Source> {
    let hits: Vec<Hit> = corpus::WEB_TEXT
        .iter()
        .enumerate()
        .map(|(i, text)| Hit {
            url: corpus::URLS
                .get(i)
                .map_or_else(|| format!("https://site.example/t{i}"), |u| u.to_string()),
            title: Some(text.to_string()),
            snippet: Some(corpus::WEB_TEXT[(i + 7) % corpus::WEB_TEXT.len()].to_string()),
            ..Hit::default()
        })
        // Every URL once (the corpus has more texts than URLs), and a source with no title.
        .chain(
            corpus::URLS
                .iter()
                .skip(corpus::WEB_TEXT.len())
                .map(|u| Hit {
                    url: u.to_string(),
                    title: Some(u.to_string()),
                    ..Hit::default()
                }),
        )
        .chain([Hit {
            url: "https://site.example/docs/snake_case_page-name.html".into(),
            ..Hit::default()
        }])
        .collect();
    let sources = merge(&[(ProviderName::Tavily, hits)], 100);
    assert_eq!(
        sources.len(),
        corpus::WEB_TEXT.len().max(corpus::URLS.len()) + 1,
        "every text is a title and every URL a source"
    );
    sources
}

/// Hostile web text as the reading stage's quotes: one or two for most sources, none for some.
fn with_passages(mut sources: Vec<Source>) -> Vec<Source> {
    let texts = corpus::WEB_TEXT;
    for (k, s) in sources.iter_mut().enumerate() {
        let count = [1, 2, 0][k % 3];
        s.passages = (0..count)
            .map(|j| Passage {
                text: texts[(k * 2 + j + 3) % texts.len()].to_string(),
                score: 10.0 - (k as f64) / 10.0 - j as f64,
            })
            .collect();
    }
    sources
}

fn dropped() -> Vec<DroppedSource> {
    corpus::WEB_TEXT
        .iter()
        .take(3)
        .zip(corpus::URLS)
        .map(|(t, u)| DroppedSource {
            url: u.to_string(),
            title: t.to_string(),
            providers: vec![ProviderName::Tavily],
            detail: Some("HTTP 404".into()),
        })
        .collect()
}

fn summary(sources: &[Source]) -> Synthesis {
    let valid = sources.iter().map(|s| s.n).collect();
    let g = grounding::ground(corpus::ANSWER, &valid);
    Synthesis::Written(Summary {
        text: String::new(),
        uncited: g.cited.is_empty(),
        cited: g.cited,
        blocks: g.blocks,
        truncated: false,
        removed_citations: g.removed_citations,
        removed_links: g.removed_links,
        sources_sent: sources.len(),
        usage: Usage::default(),
        backend: "openai".into(),
        model: "test_model:v1".into(),
        claims: Vec::new(),
        check: None,
        judge: None,
    })
}

/// Every style with and without a summary, with and without the server's markers, each topic once.
fn docs() -> Vec<Doc> {
    let sources = with_passages(sources());
    let styles = [
        CitationStyle::Links,
        CitationStyle::Numbered,
        CitationStyle::Footnotes,
    ];
    let variants = styles.len() * 2;
    let count = corpus::TOPICS.len().max(variants);
    (0..count)
        .map(|i| {
            let style = styles[i % 3];
            let with_summary = (i / 3) % 2 == 1;
            let topic = corpus::TOPICS[i % corpus::TOPICS.len()];
            let mut research = Research {
                topic: topic.to_string(),
                date: "2026-01-01T00:00:00Z".into(),
                elapsed_ms: 1200,
                providers: vec![
                    ProviderRun {
                        name: ProviderName::Tavily,
                        status: RunStatus::Ok,
                        results: sources.len(),
                        elapsed_ms: 1000,
                        cost_usd: Some(0.008),
                        credits: Some(1.0),
                        error: None,
                        error_kind: None,
                        cached: None,
                    },
                    ProviderRun {
                        name: ProviderName::Brave,
                        status: RunStatus::Failed,
                        results: 0,
                        elapsed_ms: 20,
                        cost_usd: None,
                        credits: None,
                        error: Some(corpus::WEB_TEXT[i % corpus::WEB_TEXT.len()].to_string()),
                        error_kind: Some("unexpected".into()),
                        cached: None,
                    },
                ]
                .into_iter()
                // Every other report names a provider `max_cost` kept from being asked.
                .chain((i % 2 == 1).then(|| {
                    ProviderRun::over_budget(
                        ProviderName::Exa,
                        "not asked: its $0.0070 search would cross max_cost $0.01",
                    )
                }))
                .collect(),
                sources: sources.clone(),
                // Every other report names hostile dead links it dropped.
                dropped: if i % 2 == 0 { dropped() } else { Vec::new() },
                // The pipeline's cost, with the cap, or (None) the renderer's own from the table.
                cost: (i % 2 == 1).then(|| conductor::report::Cost {
                    usd: 0.013,
                    estimated: true,
                    by: [("tavily".to_string(), 0.008), ("brave".to_string(), 0.005)].into(),
                    unpriced: vec!["llm".into()],
                    max_cost: Some(0.01),
                }),
                synthesis: with_summary.then(|| summary(&sources)),
            };
            // As the CLI and the server do: footnotes numbered in the order a reader meets them.
            render::number_in_reading_order(&mut research, style);
            let opts = RenderOptions {
                style,
                heading_level: 1,
                marker_id: (i % 4 == 0).then(|| format!("r{i}")),
                cited_only: false,
                mark_dead: true,
            };
            Doc {
                name: format!(
                    "report-{i:02}-{style:?}{}",
                    if with_summary { "-summary" } else { "" }
                )
                .to_lowercase(),
                markdown: render::markdown(&research, &opts),
                research,
                style,
                summary: with_summary,
            }
        })
        .collect()
}

/// Checks one rendering of a report; returns what is wrong.
fn check(doc: &Doc, renderer: Renderer, html: &str) -> Vec<String> {
    let r = &doc.research;
    // With a summary, the links style numbers its citations.
    let footnotes = doc.style == CitationStyle::Footnotes;
    let seen = read_html(html, footnotes);
    let mut wrong = seen.problems.clone();

    // Exactly one link per citation, opening its URL, its title as text.
    let mut expected: Vec<(String, String)> = r
        .sources
        .iter()
        .map(|s| (canonical_url(&s.url), plain(&s.title)))
        .collect();
    let mut links: Vec<(String, String)> = seen
        .links
        .iter()
        .map(|(h, t)| (canonical_url(h), t.clone()))
        .collect();
    if footnotes {
        // Footnotes are listed in the order they are first referenced.
        expected.sort();
        links.sort();
    }
    if links != expected {
        let extra: Vec<_> = links.iter().filter(|l| !expected.contains(l)).collect();
        let missing: Vec<_> = expected.iter().filter(|l| !links.contains(l)).collect();
        wrong.push(format!(
            "links differ ({} seen, {} expected)\n  extra: {extra:#?}\n  missing: {missing:#?}",
            links.len(),
            expected.len()
        ));
    }

    // Our headings only.
    let key = if doc.summary {
        0
    } else {
        render::key_passages(r).len()
    };
    let mut headings = vec![1u8, 2];
    if key > 0 {
        headings.push(2);
    }
    if r.synthesis.is_some() {
        headings.push(2);
    }
    headings.extend([2, 2]);
    let levels: Vec<u8> = seen.headings.iter().map(|h| h.0).collect();
    if levels != headings {
        wrong.push(format!("headings {:?}", seen.headings));
    }
    let topic = plain(&conductor::sanitize::one_line(&r.topic, 500));
    let title = seen
        .headings
        .first()
        .map(|h| h.1.clone())
        .unwrap_or_default();
    // The title drops punctuation at its end (markdownlint MD026).
    let title_topic = topic.trim_end_matches(['.', ',', ';', ':', '!']);
    let expected_title = if title_topic.is_empty() {
        "Conductor Report".to_string()
    } else {
        format!("Conductor Report: {title_topic}")
    };
    if title != expected_title {
        wrong.push(format!("title {title:?}, topic {topic:?}"));
    }
    if seen.objective.as_deref() != Some(topic.as_str()) {
        wrong.push(format!("objective {:?}, topic {topic:?}", seen.objective));
    }

    // Our lists only: results, failures, summary bullets, citations (footnotes: the notes section,
    // which markdown-it does not have).
    let bullets = match &r.synthesis {
        Some(Synthesis::Written(s)) => s
            .blocks
            .iter()
            .filter(|b| b.kind == conductor::synth::BlockKind::Bullet)
            .count(),
        _ => 0,
    };
    let citations = if footnotes && renderer == Renderer::MarkdownIt {
        0
    } else if footnotes
        && doc.summary
        && matches!(renderer, Renderer::PandocGfm | Renderer::PandocCommonmarkX)
    {
        seen.items.saturating_sub(r.sources.len() + 1 + bullets)
    } else {
        r.sources.len()
    };
    // Providers `max_cost` did not ask are named on a line of their own, not listed as failed.
    let failures = r.failures().filter(|f| !f.is_over_budget()).count();
    let items = r.sources.len() + failures + bullets + citations + key + r.dropped.len();
    if seen.items != items {
        wrong.push(format!("{} list items, expected {items}", seen.items));
    }

    // The quotes under the sources, as the pages wrote them.
    let quotes: Vec<String> = r
        .sources
        .iter()
        .flat_map(|s| &s.passages)
        .map(|p| plain(&conductor::sanitize::one_line(&p.text, 600)))
        .collect();
    if seen.quotes != quotes {
        wrong.push(format!(
            "quotes differ\n  seen: {:#?}\n  expected: {quotes:#?}",
            seen.quotes
        ));
    }
    wrong
}

fn write_html_for_inspection(doc: &Doc, renderer: Renderer, html: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/renderers/out");
    std::fs::create_dir_all(&dir).unwrap();
    let base = format!(
        "{}.{}",
        doc.name,
        renderer.name().replace([' ', '(', ')'], "_")
    );
    std::fs::write(dir.join(format!("{}.md", doc.name)), &doc.markdown).unwrap();
    let path = dir.join(format!("{base}.html"));
    std::fs::write(&path, html).unwrap();
    path
}

#[test]
fn hostile_web_text_renders_exactly_as_written_in_every_renderer() {
    let renderers = installed();
    let docs = docs();
    let mut failures = BTreeMap::new();
    for doc in &docs {
        for &renderer in &renderers {
            let html = renderer.html(&doc.markdown);
            let wrong = check(doc, renderer, &html);
            // Kept for reading: target/renderers/out/<report>.md and .<renderer>.html.
            let path = write_html_for_inspection(doc, renderer, &html);
            if !wrong.is_empty() {
                failures.insert(
                    format!("{} in {} ({})", doc.name, renderer.name(), path.display()),
                    wrong,
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} renderings are not what the report wrote:\n{failures:#?}",
        failures.len()
    );
}

// ---- markdownlint -------------------------------------------------------------------------------------

/// `markdownlint-cli2` with its default rules over `files` (name, markdown), line length (MD013) aside,
/// and duplicate headings (MD024) aside when `several_reports`. Returns its findings, `None` when it is
/// not installed (outside CI).
fn markdownlint(files: &[(String, String)], several_reports: bool) -> Option<String> {
    let bin = markdownlint_bin();
    if !bin.exists() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "markdownlint-cli2 is not installed at {} (CI=true): run scripts/install-renderers",
            bin.display()
        );
        eprintln!("renderers: markdownlint-cli2 is not installed, not checked");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = if several_reports {
        r#"{ "config": { "default": true, "MD013": false, "MD024": false } }"#
    } else {
        r#"{ "config": { "default": true, "MD013": false } }"#
    };
    std::fs::write(dir.path().join(".markdownlint-cli2.jsonc"), config).unwrap();
    for (name, md) in files {
        std::fs::write(dir.path().join(format!("{name}.md")), md).unwrap();
    }
    let out = Command::new(&bin)
        .arg("*.md")
        .current_dir(dir.path())
        .output()
        .expect("markdownlint-cli2 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("Linting: {} file(s)", files.len())),
        "markdownlint-cli2 did not lint the files:\n{text}"
    );
    Some(if out.status.success() {
        String::new()
    } else {
        text
    })
}

/// A report as `-o notes.md` writes it.
fn as_file(markdown: &str) -> String {
    markdown.to_string()
}

#[test]
fn every_report_is_markdownlint_clean_under_the_default_rules() {
    let files: Vec<(String, String)> = docs()
        .iter()
        .map(|d| (d.name.clone(), as_file(&d.markdown)))
        .collect();
    if let Some(findings) = markdownlint(&files, false) {
        assert!(findings.is_empty(), "{findings}");
    }
}

/// A note with two reports of one style, each under its own heading, as the server inserts them.
fn note_with_two_reports(style: CitationStyle) -> String {
    let sources = sources();
    let research = |topic: &str, summary: bool| Research {
        topic: topic.into(),
        date: "2026-01-01T00:00:00Z".into(),
        elapsed_ms: 10,
        providers: vec![],
        sources: sources.clone(),
        dropped: Vec::new(),
        cost: None,
        synthesis: summary.then(|| self::summary(&sources)),
    };
    let report = |mut r: Research, level: u8, id: &str| {
        render::number_in_reading_order(&mut r, style);
        let opts = RenderOptions {
            style,
            heading_level: level,
            marker_id: Some(id.into()),
            cited_only: false,
            mark_dead: true,
        };
        render::markdown(&r, &opts).trim_end().to_string()
    };
    // As the server inserts them: one level below the heading above, blank lines around.
    format!(
        "# Notes\n\nWhat I know so far.\n\n{}\n\n## More notes\n\n{}\n",
        report(
            research("Rust async runtimes", false),
            2,
            "a1a1a1a1a1a1a1a1"
        ),
        report(research("Tokio vs smol", true), 3, "b2b2b2b2b2b2b2b2"),
    )
}

#[test]
fn a_note_with_several_reports_is_markdownlint_clean_but_for_repeated_headings() {
    // Footnote labels are unique per report, so two footnote reports define no label twice (MD053).
    let files: Vec<(String, String)> = [
        CitationStyle::Links,
        CitationStyle::Numbered,
        CitationStyle::Footnotes,
    ]
    .into_iter()
    .map(|s| (format!("note-{s:?}"), note_with_two_reports(s)))
    .collect();
    if let Some(findings) = markdownlint(&files, true) {
        assert!(findings.is_empty(), "{findings}");
    }
}

// ---- The CLI, end to end ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_report_from_hostile_providers_renders_and_lints_clean() {
    use common::*;
    let results: Vec<(Option<&str>, &str, &str)> = corpus::URLS
        .iter()
        .zip(corpus::WEB_TEXT.iter().cycle())
        .zip(corpus::WEB_TEXT.iter().rev().cycle())
        .map(|((url, title), snippet)| (Some(*title), *url, *snippet))
        .collect();
    let tavily = Loopback::start(move |_, _| ok(tavily_response(&results))).await;
    let llm = Loopback::start(|_, _| {
        let chunk = serde_json::json!({
            "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": corpus::ANSWER}, "finish_reason": "stop"}]
        });
        Reply::Raw {
            status: axum::http::StatusCode::OK,
            headers: vec![("content-type", "text/event-stream".into())],
            body: format!("data: {chunk}\n\ndata: [DONE]\n\n").into_bytes(),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("TAVILY_API_KEY", "tvly-test-secret".to_string()),
        ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
        ("CONDUCTOR_PROVIDERS", "tavily".into()),
        ("CONDUCTOR_READ", "0".into()),
        ("OPENAI_API_KEY", "sk-test-secret".into()),
        ("CONDUCTOR_OPENAI_BASE_URL", llm.url()),
        ("CONDUCTOR_LLM_MODEL", "test-model".into()),
    ];
    let mut files = Vec::new();
    for (i, style) in ["links", "numbered", "footnotes"].iter().enumerate() {
        let out = format!("report-{style}.md");
        for llm in [true, false] {
            let mut args = vec!["research", "--style", style, "--max-sources", "20"];
            if !llm {
                args.push("--no-llm");
            }
            let to_file = llm;
            if to_file {
                args.extend(["-o", &out]);
            }
            // The topic after `--`: it may look like an option (`---`).
            args.extend(["--", corpus::TOPICS[i]]);
            let run = run_cli(&args, &env, dir.path()).await;
            assert_eq!(run.status, 0, "{}", run.stderr);
            let text = if to_file {
                std::fs::read_to_string(dir.path().join(&out)).unwrap()
            } else {
                run.stdout.clone()
            };
            assert!(
                text.ends_with(" - tavily\n"),
                "the report ends with one newline:\n{text:?}"
            );
            assert!(!text.ends_with("\n\n"), "no blank line at the end");
            let name = format!("cli-{style}{}", if llm { "-summary" } else { "" });
            for renderer in installed() {
                let html = renderer.html(&text);
                let footnotes = *style == "footnotes";
                let seen = read_html(&html, footnotes);
                let mut hrefs: Vec<String> =
                    seen.links.iter().map(|l| canonical_url(&l.0)).collect();
                hrefs.sort();
                hrefs.dedup();
                let mut urls: Vec<String> =
                    sources().iter().map(|s| canonical_url(&s.url)).collect();
                urls.sort();
                urls.dedup();
                assert!(
                    seen.problems.is_empty(),
                    "{name} in {}: {:#?}\n{text}",
                    renderer.name(),
                    seen.problems
                );
                assert!(
                    hrefs.iter().all(|h| urls.contains(h)),
                    "{name} in {}: a link that is no source: {hrefs:#?}",
                    renderer.name()
                );
            }
            files.push((name, text));
        }
    }
    if let Some(findings) = markdownlint(&files, false) {
        assert!(findings.is_empty(), "{findings}");
    }
}

// ---- Hovers ---------------------------------------------------------------------------------------------------

/// Hovers are read raw in Neovim and Emacs: the URL as typed, titles without needless escapes; and
/// rendered in VS Code, where they must make no markup but the URL's link.
#[test]
fn hovers_read_as_written_and_render_one_link() {
    let renderers = installed();
    for s in sources() {
        let hover = render::hover(&s);
        let url_line = hover.lines().last().unwrap();
        // Entity-like text in the URL: a link whose text is the URL in a code span.
        let fallback = format!("[`{}`]({})", s.url, render::link_destination(&s.url));
        assert!(
            url_line == format!("<{}>", s.url) || (s.url.contains('&') && url_line == fallback),
            "the URL reads as typed: {url_line}"
        );
        let title_line = hover.lines().next().unwrap();
        if s.title.contains("snake_case_name") {
            assert!(title_line.contains("snake_case_name"), "{title_line}");
        }
        if s.title.starts_with("https://") {
            assert!(
                title_line.contains("https\\://"),
                "a URL in a title is no autolink"
            );
        }
        // Hovers are rendered as CommonMark with GFM's autolinks (VS Code's hover is marked in GFM
        // mode; Neovim and Emacs read the markdown as it is): no pandoc, no linkify of bare domains.
        for &renderer in renderers
            .iter()
            .filter(|r| matches!(r, Renderer::Comrak | Renderer::CmarkGfm))
        {
            let html = renderer.html(&hover);
            let seen = read_html(&html, false);
            let problems: Vec<&String> = seen
                .problems
                .iter()
                .filter(|p| !(url_line.starts_with('[') && p.starts_with("<code>")))
                .collect();
            assert!(
                problems.is_empty(),
                "{}: {hover}\n{problems:#?}",
                renderer.name()
            );
            let links: Vec<String> = seen.links.iter().map(|l| canonical_url(&l.0)).collect();
            assert_eq!(
                links,
                vec![canonical_url(&s.url)],
                "{}: {hover}",
                renderer.name()
            );
            let strong = html
                .split("<strong>")
                .nth(1)
                .and_then(|t| t.split("</strong>").next())
                .unwrap_or_default();
            assert_eq!(
                plain(&decode(strong)),
                plain(&s.title),
                "{}: {hover}",
                renderer.name()
            );
        }
    }
}

#[test]
fn two_reports_in_one_note_keep_their_own_citations_in_every_renderer() {
    // Each report's citations render, once each, under its own markers: with shared footnote labels
    // the second report's notes would vanish (cmark-gfm, pandoc keep the first definition).
    for style in [
        CitationStyle::Links,
        CitationStyle::Numbered,
        CitationStyle::Footnotes,
    ] {
        let note = note_with_two_reports(style);
        let per_report = sources().len();
        for renderer in installed() {
            let html = renderer.html(&note);
            let seen = read_html(&html, style == CitationStyle::Footnotes);
            assert_eq!(
                seen.links.len(),
                2 * per_report,
                "{style:?} in {}: {} links for two reports of {per_report} sources\n{note}",
                renderer.name(),
                seen.links.len()
            );
        }
    }
}
