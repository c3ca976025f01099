//! What a user reads, as snapshots (insta): the markdown report in each citation style, with and without
//! a summary, with providers that failed; the JSON output; hover previews. The research is fixed data
//! (written as the JSON the CLI prints, so the input is the same contract as the output), so nothing
//! needs redacting. The CLI's own output for a loopback research is snapshotted in `research_cli.rs`
//! and `research_llm.rs`. See `tests/snap_support/mod.rs` for how snapshots are reviewed and what CI
//! does.
//!
//! Promises that must hold whatever the snapshot says (escaping, links, secrets) keep their explicit
//! assertions in `renderers.rs`, `render_props.rs`, `research_cli.rs` and `trust_net.rs`.

use conductor::config::CitationStyle;
use conductor::render::{self, RenderOptions};
use conductor::research::{Research, Source};
use serde_json::{Value, json};

/// Four sources, found by two providers of four (two failed); the summary cites the third source
/// first, so footnotes are renumbered in reading order, and does not cite the fourth.
fn research_data() -> Value {
    json!({
        "topic": "Rust async runtimes",
        "date": "2026-01-02T03:04:05Z",
        "elapsed_ms": 1234,
        "providers": [
            {"name": "tavily", "status": "ok", "results": 3, "elapsed_ms": 800, "credits": 1.0},
            {"name": "exa", "status": "ok", "results": 2, "elapsed_ms": 900, "cost_usd": 0.005},
            {"name": "brave", "status": "failed", "results": 0, "elapsed_ms": 15,
             "error": "rate limited (HTTP 429), retry after 120 s", "error_kind": "rate_limited"},
            {"name": "hackernews", "status": "failed", "results": 0, "elapsed_ms": 10000,
             "error": "timed out after 10.0 s", "error_kind": "timed_out"}
        ],
        "sources": [
            {"rank": 1, "url": "https://tokio.rs/", "title": "Tokio - An asynchronous Rust runtime",
             "snippet": "Tokio is an event-driven, non-blocking I/O platform.",
             "providers": ["tavily", "exa"], "published": "2024-05-01T00:00:00.000Z", "score": 0.0328},
            {"rank": 2, "url": "https://en.wikipedia.org/wiki/Async/await", "title": "Async/await",
             "snippet": "", "providers": ["tavily"], "published": null, "score": 0.0164},
            {"rank": 3, "url": "https://github.com/smol-rs/smol", "title": "smol: a *small* and fast async runtime",
             "snippet": "Spawns tasks with `spawn` and runs blocking code in a [thread pool].",
             "providers": ["tavily"], "published": null, "score": 0.0161},
            {"rank": 4, "url": "https://en.wikipedia.org/wiki/Rust_(programming_language)",
             "title": "Rust (programming language)",
             "snippet": "Rust is a general-purpose programming language.",
             "providers": ["exa"], "published": "2024-01-01T00:00:00Z", "score": 0.0159}
        ]
    })
}

fn summary_data() -> Value {
    let text = |t: &str| json!({"type": "text", "text": t});
    let cite = |n: usize| json!({"type": "cite", "n": n});
    json!({
        "status": "written",
        "blocks": [
            {"kind": "paragraph", "segments": [
                text("smol stays small "), cite(3), text(", while Tokio is the most used runtime "),
                cite(1), text(".")]},
            {"kind": "bullet", "segments": [text("Both run async/await code "), cite(2), text(".")]},
            {"kind": "bullet", "segments": [text("Tokio schedules by work stealing "), cite(1), text(".")]}
        ],
        "text": "smol stays small [3], while Tokio is the most used runtime [1].\n\n- Both run async/await code [2].\n- Tokio schedules by work stealing [1].",
        "cited": [1, 2, 3],
        "uncited": false,
        "truncated": false,
        "removed_citations": [9],
        "removed_links": 1,
        "sources_sent": 4,
        "usage": {"prompt_tokens": 1200, "completion_tokens": 85, "estimated": false, "cost_usd": null},
        "backend": "openai",
        "model": "test-model"
    })
}

/// Snapshot settings for fixed inputs: nothing filtered, so the date and timings show as rendered.
fn fixed() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_omit_expression(true);
    s
}

fn research(summary: bool) -> Research {
    let mut data = research_data();
    if summary {
        data["synthesis"] = summary_data();
    }
    serde_json::from_value(data).expect("the fixture is a research")
}

/// The report as the CLI writes it: footnotes numbered in reading order first.
fn report(mut r: Research, opts: &RenderOptions) -> String {
    render::number_in_reading_order(&mut r, opts.style);
    render::markdown(&r, opts)
}

const STYLES: [(CitationStyle, &str); 3] = [
    (CitationStyle::Links, "links"),
    (CitationStyle::Numbered, "numbered"),
    (CitationStyle::Footnotes, "footnotes"),
];

#[test]
fn the_report_in_each_citation_style_with_and_without_a_summary() {
    fixed().bind(|| {
        for (style, name) in STYLES {
            for summary in [false, true] {
                let opts = RenderOptions {
                    style,
                    ..RenderOptions::default()
                };
                let md = report(research(summary), &opts);
                let with = if summary {
                    "with_summary"
                } else {
                    "no_summary"
                };
                insta::assert_snapshot!(format!("report_{name}_{with}"), md);
            }
        }
    });
}

#[test]
fn the_report_as_the_server_inserts_it_under_a_level_two_heading() {
    // Title at level 3, wrapped in markers, citing only what the summary cites.
    let opts = RenderOptions {
        style: CitationStyle::Footnotes,
        heading_level: 3,
        marker_id: Some("0123456789abcdef".into()),
        cited_only: true,
        mark_dead: true,
    };
    fixed().bind(|| {
        insta::assert_snapshot!(report(research(true), &opts));
    });
}

#[test]
fn the_report_when_the_summary_failed_or_nothing_was_found() {
    let mut failed = research(false);
    failed.synthesis = Some(
        serde_json::from_value(json!({"status": "failed", "kind": "rate_limited",
            "error": "the LLM is rate limiting requests (HTTP 429), retry after 30.0 s"}))
        .unwrap(),
    );
    let mut empty = research(false);
    empty.sources.clear();
    empty.providers.truncate(1);
    empty.providers[0].results = 0;
    empty.synthesis = Some(serde_json::from_value(json!({"status": "no_sources"})).unwrap());
    fixed().bind(|| {
        insta::assert_snapshot!(
            "report_summary_failed",
            report(failed, &RenderOptions::default())
        );
        insta::assert_snapshot!(
            "report_nothing_found",
            report(empty, &RenderOptions::default())
        );
    });
}

#[test]
fn the_json_output() {
    // As the CLI prints it in the footnote style: sources numbered in the order a reader meets them.
    let mut r = research(true);
    render::number_in_reading_order(&mut r, CitationStyle::Footnotes);
    let json = render::json(&r);
    fixed().bind(|| insta::assert_snapshot!(json));
    // The JSON reads back as the same research: it is the report's data, not a rendering of it.
    let back: Research = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

fn source(v: Value) -> Source {
    let mut base = json!({"rank": 1, "snippet": "", "providers": ["wikipedia"], "published": null,
                          "score": 0.01});
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

#[test]
fn hover_previews() {
    let full = research(false).sources[0].clone();
    let cases = [
        ("hover_full", full),
        (
            "hover_title_and_url_only",
            source(
                json!({"url": "https://en.wikipedia.org/wiki/Async/await", "title": "Async/await"}),
            ),
        ),
        (
            // Neovim and Emacs show escapes as typed: only what would form markup is escaped.
            "hover_markup_in_web_text",
            source(
                json!({"url": "https://example.com/a_b?x=1", "title": "snake_case *stars* <b>tag</b>",
                          "snippet": "# not a heading, [not](a link) and `code`",
                          "providers": ["brave", "hackernews"], "published": "last week"}),
            ),
        ),
        (
            // An autolink would decode `&copy;`: the URL is shown in a code span instead.
            "hover_url_with_entity_like_text",
            source(json!({"url": "https://h.example/x?a=1&copy;=2", "title": "Tokio 1.0"})),
        ),
    ];
    fixed().bind(|| {
        for (name, s) in cases {
            insta::assert_snapshot!(name, render::hover(&s));
        }
    });
}
