//! What the snapshot tests share (insta, as ruff uses it): the filters and redactions that take out of a
//! real research what changes from one run to the next (the date, timings, report ids, footnote
//! prefixes, which are derived from the date and the time taken), so a snapshot holds only what a
//! change to the code can change.
//!
//! The expected outputs are the `.snap` files in `tests/snapshots/`, committed. A run that differs
//! fails. Locally insta then writes the new output beside the old one as `.snap.new`: review it with
//! `cargo insta review`, or accept it with `INSTA_UPDATE=always cargo test --test NAME` and read the
//! diff in git. Under `CI=true` nothing is written and a mismatch or a missing snapshot fails.
#![allow(dead_code)]

use serde_json::Value;

/// insta settings with the report filters. Use as `snap_support::settings().bind(|| { ... })`.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_omit_expression(true);
    // The snapshots of every test file live in tests/snapshots/, named `<test file>__<name>.snap`
    // (the assertions are made here, so insta would otherwise file them under this module).
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    // The line under the title: `*Researched 2026-11-25 in 1.2 s with wikipedia (2).*`.
    s.add_filter(
        r"Researched \d{4}-\d{2}-\d{2} in (\d+ ms|\d+\.\d s)",
        "Researched [date] in [elapsed]",
    );
    // A provider that ran out of time says how long it ran, as measured (`1 s`, `1.0 s` or `1.1 s` for a
    // 1 s deadline, depending on when its clock started).
    s.add_filter(
        r"timed out after (\d+|\d+\.\d) s",
        "timed out after [elapsed]",
    );
    // The server's report markers carry a random id.
    s.add_filter(
        r"<!-- conductor:report [0-9a-f]+ -->",
        "<!-- conductor:report [id] -->",
    );
    // A CLI report's footnote labels are prefixed with a hash of its topic, date and time taken.
    s.add_filter(r"\[\^c[0-9a-f]{6}-", "[^c[prefix]-");
    s
}

/// A report's JSON (`--format json`) as a value, with what changes between runs redacted.
pub fn assert_report_json(name: &str, json: &str) {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}):\n{json}"));
    settings().bind(|| {
        insta::assert_json_snapshot!(snapshot_name(name), v, {
            ".date" => "[date]",
            ".elapsed_ms" => "[elapsed_ms]",
            ".providers[].elapsed_ms" => "[elapsed_ms]",
        });
    });
}

/// The lines a person reads on the CLI's stderr (`conductor-lsp: ...` and the indented reasons under
/// them); tracing output, if a test turns it on, is left out.
pub fn user_stderr(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.starts_with("conductor-lsp: ") || l.starts_with("  "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A CLI run as one snapshot: what it printed on stdout, then what a person reads on stderr.
pub fn assert_cli(name: &str, stdout: &str, stderr: &str) {
    settings().bind(|| {
        insta::assert_snapshot!(
            snapshot_name(name),
            format!("{stdout}\n---- stderr ----\n{}", user_stderr(stderr))
        );
    });
}

/// `name` prefixed with the test file it belongs to (`research_cli__json_output`).
fn snapshot_name(name: &str) -> String {
    format!("{}__{name}", env!("CARGO_CRATE_NAME"))
}

/// Any text: a document after the server inserted a report into it, a hover (report ids, dates and
/// timings filtered).
pub fn assert_text(name: &str, doc: &str) {
    settings().bind(|| insta::assert_snapshot!(snapshot_name(name), doc));
}
