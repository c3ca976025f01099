//! The command line: `research`, `providers`, `read`, `history`, and (with no command or `--stdio`) the
//! language server.

mod history;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config::{self, CitationStyle, Env, Settings};
use crate::net::{Http, HttpLimits, Secrets};
use crate::pipeline::{self, PipelineError};
use crate::providers;
use crate::render::{self, RenderOptions};
use crate::research::{Engine, RunStatus, Selection};
use crate::synth;

#[derive(Parser, Debug)]
#[command(
    name = "conductor-lsp",
    version,
    about = "Researched, cited markdown reports: a language server and a command line",
    after_help = "With no command (or with --stdio) it runs the language server on stdin/stdout."
)]
pub struct Cli {
    /// Run the language server on stdin/stdout (the default with no command).
    #[arg(long)]
    pub stdio: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Research a topic and print the report.
    Research(ResearchArgs),
    /// List every provider, whether it is configured, and why not.
    Providers(ProvidersArgs),
    /// Show what the reading stage sees of one page: status, title and readable text.
    Read(ReadArgs),
    /// List past reports (newest first), or print one with `history show ID`.
    History(history::HistoryArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReadArgs {
    /// The page's http(s) URL.
    pub url: String,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
    /// Seconds to wait for the page (default: the research timeout).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// `--format` of the `read` and `providers` commands.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ProvidersArgs {
    /// `text`: a table; `json`: every provider's row of the registry (name, env, endpoint, keyed,
    /// price, ...) with configured, used and detail, and the LLM and config file.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
    /// Ask each provider a research would use with its cheapest call (key valid, rate limited until
    /// when, quota left where the API says); exit 1 unless all are ok.
    #[arg(long)]
    pub check: bool,
    /// With --check: the providers to check (default: those a research would use).
    #[arg(long, value_name = "a,b,c", requires = "check")]
    pub providers: Option<String>,
    /// With --check: seconds all checks may take together (default 10).
    #[arg(long, value_name = "SECS", requires = "check")]
    pub timeout: Option<f64>,
}

#[derive(clap::Args, Debug)]
pub struct ResearchArgs {
    /// What to research.
    pub topic: String,
    #[arg(long, value_name = "a,b,c", help = providers::registry::providers_help())]
    pub providers: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
    /// How many sources the report cites at most (1-100).
    #[arg(long, value_name = "N")]
    pub max_sources: Option<usize>,
    /// Whole research deadline, in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// How many of the top sources to read and quote (0 reads none; default 5).
    #[arg(long, value_name = "N")]
    pub read: Option<usize>,
    /// Neither use nor store cached provider answers and pages.
    #[arg(long, conflicts_with = "refresh")]
    pub no_cache: bool,
    /// Ask every provider again (ignore cached answers), then store the new answers.
    #[arg(long)]
    pub refresh: bool,
    /// The most this research may spend, in US dollars; calls that would cross it are not made.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Skip the LLM synthesis step even when a back end is configured.
    #[arg(long)]
    pub no_llm: bool,
    /// Citation style.
    #[arg(long, value_enum)]
    pub style: Option<CitationStyle>,
    /// Write the report to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Markdown,
    Json,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` print to stdout: a failed write is an error there too.
            if let Err(io) = e.print() {
                return write_failed("stdout", &io);
            }
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let env = Env::from_process();
    let server = cli.stdio || cli.command.is_none();
    init_logging(&env, if server { "info" } else { "warn" }, server);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("conductor-lsp: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match cli.command {
        Some(Command::Research(args)) => runtime.block_on(research(args, env)),
        Some(Command::Providers(args)) if args.check => {
            runtime.block_on(check_providers(args, env))
        }
        Some(Command::Providers(args)) => list_providers(&args, &env),
        Some(Command::Read(args)) => runtime.block_on(read(args, env)),
        Some(Command::History(args)) => history::history(args, &env),
        None => runtime.block_on(crate::lsp::serve_stdio(env)),
    };
    // The stdin reader of the server is a blocking thread that may never return (the editor keeps the
    // pipe open after `exit`): do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// Logs go to stderr (stdout belongs to the protocol or the report), filtered by `CONDUCTOR_LOG`.
/// The language server also forwards info and above to the client's log (`window/logMessage`).
fn init_logging(env: &Env, default: &str, server: bool) {
    use tracing_subscriber::prelude::*;
    let filter = |default: &str| {
        tracing_subscriber::EnvFilter::try_new(env.get("CONDUCTOR_LOG").unwrap_or(default))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
    };
    // The server's info lines go to the editor's log (window/logMessage); stderr gets warnings only,
    // unless CONDUCTOR_LOG asks for more (editors show a server's stderr as errors).
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter(if server { "warn" } else { default }));
    let client = server.then(|| crate::lsp::logging::ClientLogLayer.with_filter(filter(default)));
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(client)
        .try_init();
}

/// The folders the `notes` provider searches from the command line: the current one and `notes_paths`.
fn notes_roots(settings: &Settings) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    roots.extend(settings.notes_paths.iter().cloned());
    roots
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("conductor-lsp: {msg}");
    ExitCode::from(2)
}

fn settings_for(args: &ResearchArgs, env: &Env) -> Result<Settings, String> {
    let mut s = Settings::load(env).map_err(|e| e.to_string())?;
    if let Some(p) = &args.providers {
        let list = config::parse_provider_list(p).map_err(|e| format!("--providers: {e}"))?;
        if list.is_empty() {
            return Err("--providers needs at least one provider".into());
        }
        s.providers = Some(list);
    }
    if let Some(n) = args.max_sources {
        s.max_sources =
            config::validate_max_sources(n).map_err(|e| format!("--max-sources: {e}"))?;
    }
    if let Some(t) = args.timeout {
        s.timeout = config::validate_timeout(t).map_err(|e| format!("--timeout: {e}"))?;
    }
    if let Some(n) = args.read {
        s.read = config::validate_read(n).map_err(|e| format!("--read: {e}"))?;
    }
    if let Some(c) = args.max_cost {
        s.max_cost = config::validate_max_cost(c).map_err(|e| format!("--max-cost: {e}"))?;
    }
    if let Some(style) = args.style {
        s.citation_style = style;
    }
    Ok(s)
}

async fn research(args: ResearchArgs, env: Env) -> ExitCode {
    let settings = match settings_for(&args, &env) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    if args.topic.trim().is_empty() {
        return usage_error("the topic is empty");
    }
    let engine =
        Engine::new(Http::new(HttpLimits::default()).with_secrets(Secrets::from_env(&env)));
    let mut stages = match crate::evidence::Fetcher::from_env(&env) {
        Ok(fetcher) => pipeline::Stages::new(engine, fetcher),
        Err(e) => return usage_error(e),
    };
    // One store for the run: the cache the stages read and write, and the history the report goes to.
    let store = history::open_store(&env);
    if let Ok(s) = &store {
        stages = stages.with_store(s.clone());
    }
    let cancel = CancellationToken::new();
    {
        // Ctrl-C cancels the research: in-flight requests are dropped, nothing is written.
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    let request = pipeline::Request {
        topic: args.topic.clone(),
        settings: std::sync::Arc::new(settings),
        roots: std::env::current_dir().into_iter().collect(),
        summary: !args.no_llm,
        cache: if args.no_cache {
            pipeline::CacheMode::Off
        } else if args.refresh {
            pipeline::CacheMode::Refresh
        } else {
            pipeline::CacheMode::Use
        },
    };
    let settings = request.settings.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let show_progress = std::io::stderr().is_terminal();
    let progress_task = show_progress.then(|| tokio::spawn(progress_display(rx)));
    let sink = move |e: pipeline::Event| {
        let _ = tx.send(e);
    };
    let result = pipeline::run(&stages, &env, &request, &sink, &cancel).await;
    drop(sink);
    if let Some(t) = progress_task {
        let _ = t.await;
    }
    let research = match result {
        Ok(r) => r,
        Err(PipelineError::NothingConfigured(unavailable)) => {
            eprintln!("conductor-lsp: research failed: no provider is configured");
            for (name, why) in &unavailable {
                eprintln!("  {name}: {why}");
            }
            return ExitCode::from(1);
        }
        Err(PipelineError::EveryProviderFailed(research)) => {
            eprintln!("conductor-lsp: research failed: every provider failed");
            for p in &research.providers {
                eprintln!(
                    "  {}: {}",
                    p.name,
                    p.error.as_deref().unwrap_or("no answer")
                );
            }
            return ExitCode::from(1);
        }
        Err(e @ PipelineError::OverBudget(_)) => {
            eprintln!("conductor-lsp: research failed: {e}");
            if let PipelineError::OverBudget(research) = &e {
                for p in &research.providers {
                    eprintln!(
                        "  {}: {}",
                        p.name,
                        p.error.as_deref().unwrap_or("not asked")
                    );
                }
            }
            return ExitCode::from(1);
        }
        Err(PipelineError::EmptyTopic) => return usage_error("the topic is empty"),
        Err(PipelineError::Cancelled) => {
            eprintln!("conductor-lsp: research cancelled");
            return ExitCode::from(130);
        }
    };
    if let Some(error) = pipeline::summary_failure(&research) {
        eprintln!("conductor-lsp: warning: no summary: {error}");
    }
    for p in research.failures() {
        eprintln!(
            "conductor-lsp: warning: {}: {}",
            p.name,
            p.error.as_deref().unwrap_or("failed")
        );
    }
    let options = RenderOptions {
        style: settings.citation_style,
        cited_only: settings.cited_only,
        mark_dead: settings.dead_links != config::DeadLinks::Keep,
        ..RenderOptions::default()
    };
    // For `history`: the report and how it was rendered, so `history show` prints it again as here.
    history::remember(
        store.as_deref().map_err(String::as_str),
        &research,
        &crate::store::ReportMeta {
            style: options.style,
            cited_only: options.cited_only,
            mark_dead: options.mark_dead,
            copy_of: None,
        },
    );
    let text = match args.format {
        Format::Markdown => render::markdown(&research, &options),
        Format::Json => render::json(&research),
    };
    match &args.output {
        Some(path) => match write_output(path, &with_final_newline(&text)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => write_failed(&path.display().to_string(), &e),
        },
        None => print_stdout(&with_final_newline(&text)),
    }
}

/// Every command's output goes through here: a write error on stdout (a closed pipe, a full disk) is
/// an error message and exit status 1, never a silent success.
fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => write_failed("stdout", &e),
    }
}

fn write_failed(what: &str, e: &std::io::Error) -> ExitCode {
    // Not eprintln!: it panics when stderr is gone too.
    let _ = writeln!(
        std::io::stderr(),
        "conductor-lsp: cannot write to {what}: {e}"
    );
    ExitCode::from(1)
}

/// Writes `-o FILE` the way a careful editor saves:
/// - a character device or FIFO (`/dev/null`, `/dev/stdout`, a named pipe) is opened and written in
///   place, never replaced by a regular file;
/// - a regular file is replaced through a temporary file in its folder (written, synced, renamed), so
///   an interrupted write never leaves half a report; the replacement keeps the file's permissions and,
///   where allowed, its owner;
/// - a symbolic link is followed: its final target is replaced and the link stays a link (a dangling
///   link gets its target created);
/// - a directory or a block device is refused.
fn write_output(path: &std::path::Path, data: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(m) = &meta {
        let kind = m.file_type();
        if kind.is_dir() {
            return Err(std::io::Error::other("it is a directory"));
        }
        if kind.is_block_device() {
            return Err(std::io::Error::other(
                "it is a block device; refusing to write a report onto it",
            ));
        }
        if !kind.is_file() {
            // The kernel follows any links (also /proc/self/fd/N, whose targets are not paths).
            let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
            f.write_all(data.as_bytes())?;
            return f.flush();
        }
    }
    replace_file(&link_target(path)?, data, meta.as_ref())
}

/// Where a chain of symbolic links ends (which need not exist yet); `path` itself if it is no link.
fn link_target(path: &std::path::Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Replaces (or creates) the regular file `target` through a temporary file in the same folder.
fn replace_file(
    target: &std::path::Path,
    data: &str,
    old: Option<&std::fs::Metadata>,
) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    // At most 100 characters of the name, so the temporary name stays within NAME_MAX.
    let name: String = target
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(100).collect())
        .unwrap_or_default();
    let (tmp, mut file) = {
        let mut attempt = 0;
        loop {
            let tmp = dir.join(format!(
                ".{name}.{}-{:08x}.conductor-tmp",
                std::process::id(),
                fastrand::u32(..)
            ));
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            if old.is_some() {
                // Owner-only until the original's mode is copied: a 0600 report is never readable
                // by others, not even for a moment.
                open.mode(0o600);
            }
            match open.open(&tmp) {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    };
    let result = (|| {
        file.write_all(data.as_bytes())?;
        if let Some(m) = old {
            // The owner first (chown clears set-id bits), then the mode. Changing the owner is only
            // allowed to root; otherwise the file becomes the writer's, as with any editor's save.
            let _ = std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()));
            file.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A live line on stderr: which providers are done, and how.
async fn progress_display(mut rx: tokio::sync::mpsc::UnboundedReceiver<pipeline::Event>) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(100));
    let mut waiting: Vec<String> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    while let Some(p) = rx.recv().await {
        match p {
            pipeline::Event::Started { providers } => {
                waiting = providers.iter().map(|p| p.to_string()).collect();
            }
            pipeline::Event::ProviderDone(run) => {
                waiting.retain(|w| w != run.name.as_str());
                done.push(match run.status {
                    RunStatus::Ok => format!("{} {} results", run.name, run.results),
                    RunStatus::Failed => format!(
                        "{} {}",
                        run.name,
                        run.error_kind
                            .as_deref()
                            .unwrap_or("failed")
                            .replace('_', " ")
                    ),
                });
            }
            pipeline::Event::Reading { done, total } => {
                bar.set_message(format!("reading {done}/{total} pages"));
                continue;
            }
            pipeline::Event::Writing => {
                bar.set_message("writing the summary");
                continue;
            }
            pipeline::Event::SummaryDelta(_) => continue,
        }
        let mut line = done.join(" · ");
        if !waiting.is_empty() {
            if !line.is_empty() {
                line.push_str(" · ");
            }
            line.push_str(&format!("waiting for {}", waiting.join(", ")));
        }
        bar.set_message(line);
    }
    bar.finish_and_clear();
}

/// `conductor-lsp read URL`: exit 0 when the page was read, 1 when it was not (the status says why), 2 for
/// usage errors.
async fn read(args: ReadArgs, env: Env) -> ExitCode {
    let mut settings = match Settings::load(&env) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    if let Some(t) = args.timeout {
        match config::validate_timeout(t) {
            Ok(t) => settings.timeout = t,
            Err(e) => return usage_error(e),
        }
    }
    if crate::sanitize::web_url(&args.url).is_none() {
        return usage_error(format!(
            "'{}' is not an absolute http(s) URL without credentials",
            crate::sanitize::one_line(&args.url, 200)
        ));
    }
    let fetcher = match crate::evidence::FetchConfig::from_env(&env) {
        Ok(config) => crate::evidence::Fetcher::new(crate::evidence::FetchConfig {
            // One page: it may take the whole timeout.
            page_timeout: settings.deadline(),
            ..config
        }),
        Err(e) => return usage_error(e),
    };
    let page = crate::evidence::read_page(&fetcher, &args.url, settings.deadline()).await;
    let out = match args.format {
        TextOrJson::Json => serde_json::to_string_pretty(&page).unwrap_or_default(),
        TextOrJson::Text => {
            let mut out = format!(
                "url: {}\nfinal url: {}\nstatus: {}",
                page.url,
                page.final_url.as_deref().unwrap_or("-"),
                page.status
            );
            if let Some(detail) = &page.detail {
                out.push_str(&format!(" ({detail})"));
            }
            if let Some(title) = &page.title {
                out.push_str(&format!("\ntitle: {title}"));
            }
            if !page.text.is_empty() {
                out.push_str("\n\n");
                out.push_str(&page.text);
            }
            out
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{out}")
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    if page.status == crate::evidence::ReadStatus::Read {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn list_providers(args: &ProvidersArgs, env: &Env) -> ExitCode {
    let settings = match Settings::load(env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("conductor-lsp: {e}");
            return ExitCode::from(2);
        }
    };
    let available = providers::availability(env, &notes_roots(&settings));
    let selection = Selection::choose(settings.providers.as_deref(), &available);
    let used: Vec<_> = selection.runnable.iter().map(|p| p.name()).collect();
    let mut listing = providers::ProviderStatus::list(&available, &used);
    // Suspensions after a rate limit, from the store (never created just to be read).
    if let Some(dir) = config::cache_dir(env)
        && dir.join("conductor.sqlite3").is_file()
        && let Ok(store) = crate::store::Store::open(&dir)
    {
        use crate::research::AnswerCache as _;
        for p in &mut listing {
            if let Some(until) = store.suspended_until(p.info.name) {
                let local = until.with_timezone(&chrono::Local);
                p.detail = format!(
                    "rate limited until {}; {}",
                    local.format("%Y-%m-%d %H:%M"),
                    p.detail
                );
                p.suspended_until = Some(until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
        }
    }
    let llm = synth::describe(env, &settings.llm);
    let config_file = config::config_file_path(env);
    if let TextOrJson::Json = args.format {
        #[derive(serde::Serialize)]
        struct ConfigFile {
            path: PathBuf,
            found: bool,
        }
        #[derive(serde::Serialize)]
        struct Listing<'a> {
            providers: &'a [providers::ProviderStatus],
            llm: &'a synth::LlmStatus,
            config_file: Option<ConfigFile>,
        }
        let json = Listing {
            providers: &listing,
            llm: &llm,
            config_file: config_file.map(|path| ConfigFile {
                found: path.is_file(),
                path,
            }),
        };
        return print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        ));
    }
    // Written whole at the end, so that a write error is seen and reported (print_stdout).
    let mut out: Vec<u8> = Vec::new();
    let _ = writeln!(
        out,
        "{:<11} {:<15} {:<8} detail",
        "provider", "status", "used"
    );
    for p in &listing {
        let status = if p.configured {
            "configured"
        } else {
            "not configured"
        };
        let used = if p.used { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "{:<11} {:<15} {:<8} {}",
            p.info.name, status, used, p.detail
        );
    }
    if llm.configured {
        let _ = writeln!(out, "\nLLM synthesis: {}", llm.detail);
    } else {
        let _ = writeln!(out, "\nLLM synthesis: none ({})", llm.detail);
    }
    if let Some(path) = config_file {
        let _ = writeln!(
            out,
            "\nconfig file: {} ({})",
            path.display(),
            if path.is_file() { "found" } else { "not found" }
        );
    }
    print_stdout(&String::from_utf8_lossy(&out))
}

/// `conductor-lsp providers --check`: the preflight of every provider a research would use
/// ([`providers::preflight`]). Exit 0 when all are ok, 1 otherwise, 2 for usage errors.
async fn check_providers(args: ProvidersArgs, env: Env) -> ExitCode {
    let mut settings = match Settings::load(&env) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    if let Some(p) = &args.providers {
        match config::parse_provider_list(p) {
            Ok(list) if !list.is_empty() => settings.providers = Some(list),
            Ok(_) => return usage_error("--providers needs at least one provider"),
            Err(e) => return usage_error(format!("--providers: {e}")),
        }
    }
    let timeout = match args.timeout.map(config::validate_timeout) {
        None => 10.0,
        Some(Ok(t)) => t,
        Some(Err(e)) => return usage_error(format!("--timeout: {e}")),
    };
    let available = providers::availability(&env, &notes_roots(&settings));
    let selection = Selection::choose(settings.providers.as_deref(), &available);
    let used: Vec<_> = (selection.runnable.iter().map(|p| p.name()))
        .chain(selection.unavailable.iter().map(|(n, _)| *n))
        .collect();
    // One attempt each: a check reports a 429 or a refused connection, it does not wait them out.
    let http = Http::new(HttpLimits {
        max_attempts: 1,
        ..HttpLimits::default()
    })
    .with_secrets(Secrets::from_env(&env));
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
    let asked = providers::preflight::run(&http, &selection.runnable, deadline).await;
    let rows = providers::preflight::rows(&available, &used, asked);
    let out = match args.format {
        TextOrJson::Json => format!("{}\n", providers::preflight::json(&rows)),
        TextOrJson::Text => providers::preflight::text(&rows),
    };
    match print_stdout(&out) {
        code if code != ExitCode::SUCCESS => code,
        _ if providers::preflight::all_ok(&rows) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

/// `text` ending in exactly one line break: the markdown report ends with one already, JSON does not.
fn with_final_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}
