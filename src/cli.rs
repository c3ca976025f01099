//! The command line: `research`, `providers`, `read`, and (with no command or `--stdio`) the language
//! server.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config::{self, CitationStyle, Env, Settings};
use crate::net::{Http, HttpLimits};
use crate::providers;
use crate::render::{self, RenderOptions};
use crate::research::{Engine, Progress, ResearchError, ResearchOptions, RunStatus, Selection};
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
    Providers,
    /// Show what the reading stage sees of one page: status, title and readable text.
    Read(ReadArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReadArgs {
    /// The page's http(s) URL.
    pub url: String,
    #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
    pub format: ReadFormat,
    /// Seconds to wait for the page (default: the research timeout).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReadFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ResearchArgs {
    /// What to research.
    pub topic: String,
    /// Comma list of providers (tavily, brave, exa, searxng, wikipedia, arxiv, hackernews, notes).
    #[arg(long, value_name = "a,b,c")]
    pub providers: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
    /// How many sources the report cites at most (1-100).
    #[arg(long, value_name = "N")]
    pub max_sources: Option<usize>,
    /// Whole research deadline, in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
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
            let _ = e.print();
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
        Some(Command::Providers) => list_providers(&env),
        Some(Command::Read(args)) => runtime.block_on(read(args, env)),
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
        let list = config::parse_provider_list(p)?;
        if list.is_empty() {
            return Err("--providers needs at least one provider".into());
        }
        s.providers = Some(list);
    }
    if let Some(n) = args.max_sources {
        s.max_sources = config::validate_max_sources(n)?;
    }
    if let Some(t) = args.timeout {
        s.timeout = config::validate_timeout(t)?;
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
    let available = providers::availability(&env, &notes_roots(&settings));
    let selection = Selection::choose(settings.providers.as_deref(), &available);
    let engine = Engine::new(Http::new(HttpLimits::default()));
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
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let show_progress = std::io::stderr().is_terminal();
    let progress_task = show_progress.then(|| tokio::spawn(progress_display(rx)));
    let result = engine
        .research(
            &args.topic,
            &selection,
            &ResearchOptions::from(&settings),
            show_progress.then_some(&tx),
            &cancel,
        )
        .await;
    drop(tx);
    if let Some(t) = progress_task {
        let _ = t.await;
    }
    let research = match result {
        Ok(r) => r,
        Err(ResearchError::NothingConfigured(_)) => {
            eprintln!("conductor-lsp: research failed: no provider is configured");
            for (name, why) in &selection.unavailable {
                eprintln!("  {name}: {why}");
            }
            return ExitCode::from(1);
        }
        Err(ResearchError::EmptyTopic) => return usage_error("the topic is empty"),
        Err(ResearchError::Cancelled) => {
            eprintln!("conductor-lsp: research cancelled");
            return ExitCode::from(130);
        }
    };
    if !research.any_answered() {
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
    let mut research = research;
    if !args.no_llm
        && let Some(config) = synth::configured(&env, &settings.llm)
    {
        let spinner = show_progress.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message("writing the summary");
            bar
        });
        let step = synth::step(engine.http(), &config, &research, None, &cancel).await;
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        match step {
            Some(s) => research.synthesis = Some(s),
            None => {
                eprintln!("conductor-lsp: research cancelled");
                return ExitCode::from(130);
            }
        }
    }
    if let Some(synth::Synthesis::Failed { error, .. }) = &research.synthesis {
        eprintln!("conductor-lsp: warning: no summary: {error}");
    }
    for p in research.failures() {
        eprintln!(
            "conductor-lsp: warning: {}: {}",
            p.name,
            p.error.as_deref().unwrap_or("failed")
        );
    }
    let text = match args.format {
        Format::Markdown => render::markdown(
            &research,
            &RenderOptions {
                style: settings.citation_style,
                cited_only: settings.cited_only,
                ..RenderOptions::default()
            },
        ),
        Format::Json => render::json(&research),
    };
    match &args.output {
        Some(path) => {
            if let Err(e) = write_atomically(path, &text) {
                eprintln!("conductor-lsp: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

/// Writes through a temporary file in the same folder, so an interrupted write never leaves half a report.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.conductor-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, format!("{text}\n"))?;
    std::fs::rename(&tmp, path)
}

/// A live line on stderr: which providers are done, and how.
async fn progress_display(mut rx: tokio::sync::mpsc::UnboundedReceiver<Progress>) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(100));
    let mut waiting: Vec<String> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    while let Some(p) = rx.recv().await {
        match p {
            Progress::Started { providers } => {
                waiting = providers.iter().map(|p| p.to_string()).collect();
            }
            Progress::ProviderDone(run) => {
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
        ReadFormat::Json => serde_json::to_string_pretty(&page).unwrap_or_default(),
        ReadFormat::Text => {
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

fn list_providers(env: &Env) -> ExitCode {
    let settings = match Settings::load(env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("conductor-lsp: {e}");
            return ExitCode::from(2);
        }
    };
    let available = providers::availability(env, &notes_roots(&settings));
    let selection = Selection::choose(settings.providers.as_deref(), &available);
    let default: Vec<_> = selection.runnable.iter().map(|p| p.name()).collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<11} {:<15} {:<8} detail",
        "provider", "status", "used"
    );
    for a in &available {
        let status = if a.provider.is_some() {
            "configured"
        } else {
            "not configured"
        };
        let used = if default.contains(&a.name) {
            "yes"
        } else {
            "no"
        };
        let _ = writeln!(
            out,
            "{:<11} {:<15} {:<8} {}",
            a.name, status, used, a.detail
        );
    }
    let llm = synth::describe(env, &settings.llm);
    if llm.configured {
        let _ = writeln!(out, "\nLLM synthesis: {}", llm.detail);
    } else {
        let _ = writeln!(out, "\nLLM synthesis: none ({})", llm.detail);
    }
    if let Some(path) = config::config_file_path(env) {
        let _ = writeln!(
            out,
            "\nconfig file: {} ({})",
            path.display(),
            if path.is_file() { "found" } else { "not found" }
        );
    }
    ExitCode::SUCCESS
}
