//! Trust: bad settings are named and stop research (CLI and server), `-o` never replaces a special file,
//! a symbolic link or a file's mode, and a write error on stdout is an error. The CLI tests drive the real
//! binary; the server test drives the server over its LSP pipes with an editor-like client.

mod common;
mod lsp_support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// A Wikipedia stand-in that answers every search with two articles.
async fn wikipedia() -> Loopback {
    Loopback::start(|_, _| {
        ok(wikipedia_response(&[
            (
                "Rust (programming language)",
                "A language empowering everyone",
            ),
            ("Ownership", "Memory safety without garbage collection"),
        ]))
    })
    .await
}

fn wiki_env(wiki: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        ("CONDUCTOR_PROVIDERS", "wikipedia".into()),
        ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
    ]
}

fn write_config(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("config/conductor")).unwrap();
    std::fs::write(dir.join("config/conductor/config.toml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_is_named_and_suggests_the_right_key() {
    let wiki = wikipedia().await;
    let dir = tempfile::tempdir().unwrap();
    let env = wiki_env(&wiki);

    // An unknown key is an error (never ignored) that suggests the right name.
    write_config(dir.path(), "max_source = 3\n");
    for args in [&["research", "rust"][..], &["providers"][..]] {
        let run = run_cli(args, &env, dir.path()).await;
        assert_eq!(run.status, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("config.toml"), "{}", run.stderr);
        assert!(run.stderr.contains("max_source:"), "{}", run.stderr);
        assert!(
            run.stderr.contains("did you mean max_sources?"),
            "{}",
            run.stderr
        );
    }
    write_config(dir.path(), "[llm]\nmodle = \"llama3.2\"\n");
    let run = run_cli(&["research", "rust"], &env, dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains("llm.modle: unknown setting; did you mean llm.model?"),
        "{}",
        run.stderr
    );

    // A wrong type names the setting and the type expected.
    write_config(dir.path(), "max_sources = \"ten\"\n");
    let run = run_cli(&["research", "rust"], &env, dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains("max_sources: expected a whole number, got the string \"ten\""),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("usize"), "{}", run.stderr);
    write_config(dir.path(), "citation_style = \"apa\"\n");
    let run = run_cli(&["research", "rust"], &env, dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains("citation_style: expected one of links, numbered, footnotes"),
        "{}",
        run.stderr
    );
    // A TOML syntax error names its line and key.
    write_config(dir.path(), "timeout = 30\nmax_sources = ten\n");
    let run = run_cli(&["research", "rust"], &env, dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("line 2, max_sources:"),
        "{}",
        run.stderr
    );

    // A key in the wrong place is named, never echoed.
    let key = "sk-proj-4f9aQ2x7LmB8cD1eF6gH";
    for text in [
        format!("tavily_api_key = \"{key}\"\n"),
        format!("llm = \"{key}\"\n"),
        format!("providers = [\"{key}\"]\n"),
        format!("[llm]\nmodel = 3\napi_key = \"{key}\"\n"),
    ] {
        write_config(dir.path(), &text);
        let run = run_cli(&["research", "rust"], &env, dir.path()).await;
        assert_eq!(run.status, 2, "{text}");
        assert!(
            !run.stderr.contains(key),
            "the key is echoed: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("4f9aQ2x7"), "{}", run.stderr);
    }
    write_config(dir.path(), &format!("tavily_api_key = \"{key}\"\n"));
    let run = run_cli(&["providers"], &env, dir.path()).await;
    assert!(
        run.stderr.contains(
            "tavily_api_key: unknown setting; API keys are read only from the environment"
        ),
        "{}",
        run.stderr
    );

    // The environment: the variable is named, with the type expected.
    std::fs::remove_file(dir.path().join("config/conductor/config.toml")).unwrap();
    let mut bad_env = env.clone();
    bad_env.push(("CONDUCTOR_MAX_SOURCES", "ten".into()));
    let run = run_cli(&["research", "rust"], &bad_env, dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains("CONDUCTOR_MAX_SOURCES must be a whole number from 1 to 100, got \"ten\""),
        "{}",
        run.stderr
    );

    // None of these runs asked a provider.
    assert_eq!(wiki.count(), 0);
    // And a valid file works.
    write_config(dir.path(), "maxSources = 1\n[llm]\nbackend = \"none\"\n");
    let run = run_cli(&["research", "rust"], &env, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(wiki.count(), 1);
}

// ---------------------------------------------------------------- the server

const URI: &str = "file:///trust/note.md";
const NOTE: &str = "# Notes\n\nOwnership in Rust\n";

async fn research(c: &mut lsp_support::Client) -> Value {
    let range = lsp_support::range_of(NOTE, "Ownership in Rust", "utf-16");
    c.request(
        "workspace/executeCommand",
        json!({"command": "conductor.research", "arguments": [{"uri": URI, "range": range}]}),
    )
    .await
}

fn shown(c: &lsp_support::Client) -> Vec<String> {
    c.notifications_named("window/showMessage")
        .iter()
        .map(|m| {
            m["params"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn show_message(c: &mut lsp_support::Client, needle: &str) -> String {
    let m = c
        .wait_for(Duration::from_secs(5), |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .is_some_and(|s| s.contains(needle))
        })
        .await
        .unwrap_or_else(|| panic!("no showMessage naming {needle}: {:?}", shown(c)));
    assert_eq!(m["params"]["type"], 1, "an error: {m}");
    m["params"]["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_research_with_bad_settings() {
    // Bad initializationOptions: a misspelt key.
    let p = lsp_support::Providers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = lsp_support::Config {
        init_options: json!({"citation_style": "numbered", "max_source": 3}),
        ..Default::default()
    };
    let mut h = lsp_support::start(lsp_support::test_env(&p, dir.path()), cfg).await;
    let c = &mut h.client;
    let msg = show_message(c, "max_source:").await;
    assert!(msg.contains("initializationOptions"), "{msg}");
    assert!(msg.contains("did you mean max_sources?"), "{msg}");
    c.open(URI, NOTE).await;
    let res = research(c).await;
    let err = res["error"]["message"].as_str().unwrap_or_default();
    assert!(err.contains("max_source:"), "{res}");
    assert_eq!(c.text(URI), NOTE, "nothing inserted");
    assert_eq!(shown(c).len(), 1, "shown once: {:?}", shown(c));
    assert_eq!(
        p.state.requests.load(Ordering::SeqCst),
        0,
        "no provider asked"
    );

    // A valid didChangeConfiguration clears the error: research works.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"conductor": {"max_sources": 3}}}),
    )
    .await;
    let res = research(c).await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    assert!(p.state.requests.load(Ordering::SeqCst) > 0);
    assert!(c.text(URI).contains("Ownership in Rust history"));

    // A bad change: shown, and research is off again.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"conductor": {"providers": "bing", "timeout": "long"}}}),
    )
    .await;
    show_message(c, "timeout: expected a number, got the string \"long\"").await;
    let before = p.state.requests.load(Ordering::SeqCst);
    let text = c.text(URI).to_string();
    let res = research(c).await;
    assert!(res["error"]["message"].as_str().is_some(), "{res}");
    assert_eq!(p.state.requests.load(Ordering::SeqCst), before);
    assert_eq!(c.text(URI), text);
    c.shutdown_and_exit().await;

    // A bad config file: named with its setting, research is off until the file is fixed.
    let p = lsp_support::Providers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config/conductor/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "max_sources = \"ten\"\n").unwrap();
    let mut h = lsp_support::start(
        lsp_support::test_env(&p, dir.path()),
        lsp_support::Config::default(),
    )
    .await;
    let c = &mut h.client;
    let msg = show_message(c, "max_sources: expected a whole number").await;
    assert!(msg.contains("config.toml"), "{msg}");
    c.open(URI, NOTE).await;
    let res = research(c).await;
    let err = res["error"]["message"].as_str().unwrap_or_default();
    assert!(
        err.contains("config.toml") && err.contains("max_sources"),
        "{res}"
    );
    assert_eq!(
        p.state.requests.load(Ordering::SeqCst),
        0,
        "no provider asked"
    );
    // Still bad at the next settings change: still off.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"conductor": {"max_sources": 4}}}),
    )
    .await;
    let res = research(c).await;
    assert!(res["error"]["message"].as_str().is_some(), "{res}");
    assert_eq!(p.state.requests.load(Ordering::SeqCst), 0);
    // Fixed, then a settings change: research works.
    std::fs::write(&config, "max_sources = 4\n").unwrap();
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"conductor": {}}}),
    )
    .await;
    let res = research(c).await;
    assert_eq!(res["result"]["applied"], true, "{res}");
    assert!(p.state.requests.load(Ordering::SeqCst) > 0);
    c.shutdown_and_exit().await;
}

// ---------------------------------------------------------------- -o and stdout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_to_dev_null_or_a_fifo_stays_special() {
    let wiki = wikipedia().await;
    let dir = tempfile::tempdir().unwrap();
    let env = wiki_env(&wiki);

    let run = run_cli(&["research", "rust", "-o", "/dev/null"], &env, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(
        null.file_type().is_char_device(),
        "/dev/null is still a device"
    );

    let fifo = dir.path().join("report.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        // Opening a FIFO for reading waits for its writer: the CLI.
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::read_to_string(fifo));
        });
    }
    let run = run_cli(
        &["research", "rust", "-o", fifo.to_str().unwrap()],
        &env,
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
    let read = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the reader got the report")
        .unwrap();
    assert!(read.contains("# Conductor Report: rust"), "{read}");
    assert!(read.contains("Rust (programming language)"), "{read}");
    // Nothing left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("conductor-tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_through_a_symlink_keeps_the_link() {
    let wiki = wikipedia().await;
    let dir = tempfile::tempdir().unwrap();
    let env = wiki_env(&wiki);
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::write(dir.path().join("real/report.md"), "old\n").unwrap();
    std::os::unix::fs::symlink("real/report.md", dir.path().join("link.md")).unwrap();
    // A link to a link, and a link whose target does not exist yet.
    std::os::unix::fs::symlink("link.md", dir.path().join("link2.md")).unwrap();
    std::os::unix::fs::symlink("real/new.md", dir.path().join("dangling.md")).unwrap();

    for (out, target) in [
        ("link.md", "real/report.md"),
        ("link2.md", "real/report.md"),
        ("dangling.md", "real/new.md"),
    ] {
        std::fs::write(dir.path().join("real/report.md"), "old\n").unwrap();
        let run = run_cli(&["research", "rust", "-o", out], &env, dir.path()).await;
        assert_eq!(run.status, 0, "{out}: {}", run.stderr);
        let link = std::fs::symlink_metadata(dir.path().join(out)).unwrap();
        assert!(link.file_type().is_symlink(), "{out} is still a link");
        let text = std::fs::read_to_string(dir.path().join(target)).unwrap();
        assert!(
            text.contains("# Conductor Report: rust"),
            "{target}: {text}"
        );
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path().join("real"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["new.md", "report.md"], "no temporary file left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_keeps_the_file_mode() {
    let wiki = wikipedia().await;
    let dir = tempfile::tempdir().unwrap();
    let env = wiki_env(&wiki);
    for mode in [0o600, 0o640, 0o755] {
        let path = dir.path().join(format!("report-{mode:o}.md"));
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let run = run_cli(
            &["research", "rust", "-o", path.to_str().unwrap()],
            &env,
            dir.path(),
        )
        .await;
        assert_eq!(run.status, 0, "{}", run.stderr);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "mode {mode:o} kept"
        );
        assert!(meta.is_file());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# Conductor Report: rust"));
    }
    // Run as root (as CI is), the replaced file also keeps its owner.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if root {
        use std::os::unix::fs::MetadataExt;
        let path = dir.path().join("theirs.md");
        std::fs::write(&path, "old\n").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let run = run_cli(&["research", "rust", "-o", "theirs.md"], &env, dir.path()).await;
        assert_eq!(run.status, 0, "{}", run.stderr);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "owner kept");
    }
    // A name near NAME_MAX (255 bytes) still gets a temporary file beside it.
    let long = format!("{}.md", "r".repeat(250));
    std::fs::write(dir.path().join(&long), "old\n").unwrap();
    let run = run_cli(&["research", "rust", "-o", &long], &env, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        std::fs::read_to_string(dir.path().join(&long))
            .unwrap()
            .contains("# Conductor Report")
    );
    // A folder is refused, and stays a folder.
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let run = run_cli(&["research", "rust", "-o", "folder"], &env, dir.path()).await;
    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .contains("cannot write to folder: it is a directory"),
        "{}",
        run.stderr
    );
    assert!(dir.path().join("folder").is_dir());
}

/// Runs the CLI with `stdout` as its standard output.
async fn run_with_stdout(
    args: &[&str],
    env: &[(&str, String)],
    cwd: &Path,
    stdout: Stdio,
) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"));
    cmd.args(args)
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("XDG_CONFIG_HOME", cwd.join("config"))
        .env("CONDUCTOR_CACHE_DIR", cwd.join("cache"))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Not `output()`: tokio's replaces stdout with a pipe.
    let child = cmd.spawn().expect("the CLI ran");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI finished within 60 s")
        .expect("the CLI finished");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_write_error_exits_1() {
    let wiki = wikipedia().await;
    let dir = tempfile::tempdir().unwrap();
    let env = wiki_env(&wiki);
    let commands: [&[&str]; 4] = [
        &["research", "rust"],
        &["research", "rust", "--format", "json"],
        &["providers"],
        &["--help"],
    ];
    for args in commands {
        // A full disk.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (status, stderr) = run_with_stdout(args, &env, dir.path(), full.into()).await;
        assert_eq!(status, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("conductor-lsp: cannot write to stdout: No space left on device"),
            "{args:?}: {stderr}"
        );
        // A closed pipe (`conductor-lsp ... | head` after head exited).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (status, stderr) = run_with_stdout(args, &env, dir.path(), writer.into()).await;
        assert_eq!(status, 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("conductor-lsp: cannot write to stdout: Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
