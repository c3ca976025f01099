//! Hover floats as an editor receives them. Neovim and Emacs show a hover's markdown with its escapes,
//! so it must read as written: `snake_case_name`, not `snake\_case\_name`; the URL as typed, not
//! `https\://…`. The server is driven in-process over LSP as an editor would.

mod lsp_support;

use lsp_support::*;

const URI: &str = "file:///notes/hover.md";

fn value(hover: &serde_json::Value) -> String {
    hover["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no hover: {hover}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hover_floats_read_without_markdown_escapes() {
    let p = Providers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = start(test_env(&p, dir.path()), Config::default()).await;
    let c = &mut h.client;
    let text = "# snake_case_name\n\nNotes.\n";
    c.open(URI, text).await;
    let actions = c
        .code_actions(URI, range_of(text, "snake_case_name", "utf-16"))
        .await;
    let cmd = actions["result"][0]["command"].clone();
    let res = c
        .request(
            "workspace/executeCommand",
            serde_json::json!({"command": cmd["command"], "arguments": cmd["arguments"]}),
        )
        .await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    let doc = c.text(URI).to_string();

    // On a marker: the title as written, the URL as an autolink that needs no escapes.
    let marker_line = doc
        .lines()
        .position(|l| {
            l.contains("snake\\_case\\_name history**") || l.contains("snake_case_name history**")
        })
        .expect("the result line");
    let line = doc.lines().nth(marker_line).unwrap();
    let col = line.rfind("[1]").expect("a marker") + 1;
    let hover = c
        .hover(
            URI,
            serde_json::json!({"line": marker_line, "character": col}),
        )
        .await;
    let v = value(&hover);
    assert!(v.starts_with("**snake_case_name history**"), "{v}");
    let url_line = v.lines().last().unwrap();
    assert!(
        url_line.starts_with("<https://") && url_line.ends_with('>') && !url_line.contains('\\'),
        "{v}"
    );

    // A citation entry in a note saved from the CLI: a URL with entity-like text opens exactly itself,
    // shown in a code span, and `*` in a title stays escaped.
    let saved = Fixture::parse(
        "## Citations\n\n1. [|Tokio 1.0 \\*released\\* for snake_case](https://h.example/x?a=1&amp;copy;=2) - hackernews\n",
    );
    c.open("file:///notes/saved.md", &saved.text).await;
    let hover = c
        .hover("file:///notes/saved.md", saved.cursor(&c.enc))
        .await;
    let v = value(&hover);
    assert!(
        v.starts_with("**Tokio 1.0 \\*released\\* for snake_case**"),
        "{v}"
    );
    assert!(
        v.ends_with("[`https://h.example/x?a=1&copy;=2`](https://h.example/x?a=1&amp;copy;=2)"),
        "{v}"
    );
    c.shutdown_and_exit().await;
}
