//! `conductor-lsp history` and `history show ID`: past reports from the persistent store. Also where the
//! `research` command stores its report.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::{Format, TextOrJson, print_stdout, with_final_newline};
use crate::config::{self, Env, Settings};
use crate::render::{self, RenderOptions};
use crate::research::Research;
use crate::store::{LookupError, ReportMeta, ReportSummary, Store};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// How many reports to list, newest first.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// `text`: a table; `json`: `{"reports": [{"id", "date", "topic", "sources", "providers",
    /// "cost_usd"}]}`.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
}

#[derive(Subcommand, Debug)]
pub enum HistoryCommand {
    /// Print one stored report, as it was printed (its citation style kept).
    Show(ShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The report's id, or a unique beginning of it (at least 4 characters).
    pub id: String,
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
}

const DB_FILE: &str = "conductor.sqlite3";

/// The store, if there is one to read: `Ok(None)` when nothing was ever stored (no file is created for a
/// command that only reads).
fn open_existing(env: &Env) -> Result<Option<Store>, String> {
    let Some(dir) = config::cache_dir(env) else {
        return Ok(None);
    };
    if !dir.join(DB_FILE).exists() {
        return Ok(None);
    }
    Store::open(&dir)
        .map(Some)
        .map_err(|e| format!("cannot open the report store: {e}"))
}

pub fn history(args: HistoryArgs, env: &Env) -> ExitCode {
    if let Some(HistoryCommand::Show(show_args)) = args.command {
        return show(&show_args, env);
    }
    let store = match open_existing(env) {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let reports = match store.map(|s| s.list(limit)).transpose() {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return failed(&format!("cannot read the report store: {e}")),
    };
    match args.format {
        TextOrJson::Json => print_stdout(&format!("{}\n", json(&reports))),
        TextOrJson::Text if reports.is_empty() => print_stdout(
            "No stored reports yet: `conductor-lsp research TOPIC` and the editor's research store \
             theirs.\n",
        ),
        TextOrJson::Text => print_stdout(&table(&reports)),
    }
}

fn show(args: &ShowArgs, env: &Env) -> ExitCode {
    let store = match open_existing(env) {
        Ok(Some(s)) => s,
        Ok(None) => return failed(&LookupError::Unknown(args.id.clone()).to_string()),
        Err(e) => return failed(&e),
    };
    let report = match store.report_by_prefix(args.id.trim()) {
        Ok(r) => r,
        Err(e) => return failed(&e.to_string()),
    };
    let text = match args.format {
        Format::Json => render::json(&report.research),
        Format::Markdown => {
            // The settings of today stand in only for what an old row did not keep.
            let settings = Settings::load(env).unwrap_or_default();
            render::markdown(
                &report.research,
                &RenderOptions {
                    style: report.style,
                    cited_only: report.cited_only.unwrap_or(settings.cited_only),
                    mark_dead: report
                        .mark_dead
                        .unwrap_or(settings.dead_links != config::DeadLinks::Keep),
                    ..RenderOptions::default()
                },
            )
        }
    };
    print_stdout(&with_final_newline(&text))
}

fn failed(msg: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "conductor-lsp: {msg}");
    ExitCode::from(1)
}

/// `{"reports": [...]}`, newest first; `cost_usd` is null when nothing reported a cost.
fn json(reports: &[ReportSummary]) -> String {
    let reports: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "date": r.date,
                "topic": r.topic,
                "sources": r.sources,
                "providers": r.providers,
                "cost_usd": r.cost_usd,
                "credits": r.credits,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "reports": reports })).unwrap_or_default()
}

/// The cost column: dollars where reported, else credits, else a dash.
fn cost(r: &ReportSummary) -> String {
    match (r.cost_usd, r.credits) {
        (Some(usd), _) => format!("${usd:.4}"),
        (None, Some(1.0)) => "1 credit".into(),
        (None, Some(c)) => format!("{c} credits"),
        (None, None) => "—".into(),
    }
}

/// `2026-01-02T03:04:05Z` as `2026-01-02 03:04` (UTC); anything else as it is.
fn short_date(date: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(date) {
        Ok(d) => d
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => crate::sanitize::one_line(date, 20),
    }
}

/// A table, the topic last so the columns before it line up whatever its length.
fn table(reports: &[ReportSummary]) -> String {
    let rows: Vec<[String; 6]> = reports
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                short_date(&r.date),
                r.sources.to_string(),
                if r.providers.is_empty() {
                    "—".into()
                } else {
                    r.providers.join(",")
                },
                cost(r),
                // The topic is the user's text, but an old row may hold anything: one clean line.
                crate::sanitize::one_line(&r.topic, 80),
            ]
        })
        .collect();
    let header = ["id", "date (UTC)", "sources", "providers", "cost", "topic"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 5 {
                out.push_str(cell);
            } else if i == 2 {
                // Numbers align right.
                out.push_str(&format!("{cell:>w$}  ", w = widths[i]));
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    out
}

/// The store of a `research` run (its cache and its history), or why it cannot be opened.
pub fn open_store(env: &Env) -> Result<std::sync::Arc<Store>, String> {
    let dir = config::cache_dir(env).ok_or("no cache dir (set CONDUCTOR_CACHE_DIR or HOME)")?;
    Store::open(&dir)
        .map(std::sync::Arc::new)
        .map_err(|e| e.to_string())
}

/// Stores a report the `research` command produced, under a new id, with how it was rendered. The store
/// is a convenience here: when it could not be opened (`store` says why) or written, say so and go on.
pub fn remember(
    store: Result<&Store, &str>,
    research: &Research,
    meta: &ReportMeta,
) -> Option<String> {
    let warn = |what: &str| {
        let _ = writeln!(
            std::io::stderr(),
            "conductor-lsp: warning: the report was not stored for `history`: {what}"
        );
    };
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            warn(e);
            return None;
        }
    };
    // Like the server's ids: 16 hex digits (the first six name its footnote labels).
    let id = format!("{:016x}", fastrand::u64(..));
    match store.put(&id, research, meta) {
        Ok(()) => Some(id),
        Err(e) => {
            warn(&e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(cost_usd: Option<f64>, credits: Option<f64>) -> ReportSummary {
        ReportSummary {
            id: "0123456789abcdef".into(),
            date: "2026-03-04T05:06:07Z".into(),
            topic: "rust\u{1b}[31m async".into(),
            sources: 3,
            providers: vec!["wikipedia".into()],
            cost_usd,
            credits,
        }
    }

    #[test]
    fn the_cost_column_prefers_dollars_then_credits_then_a_dash() {
        assert_eq!(cost(&summary(Some(0.0125), Some(2.0))), "$0.0125");
        assert_eq!(cost(&summary(None, Some(2.0))), "2 credits");
        assert_eq!(cost(&summary(None, Some(1.0))), "1 credit");
        assert_eq!(cost(&summary(None, None)), "—");
    }

    #[test]
    fn the_table_lines_up_and_shows_no_control_characters() {
        let t = table(&[summary(None, None)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("id "), "{t}");
        assert!(
            lines[1].starts_with("0123456789abcdef  2026-03-04 05:06"),
            "{t}"
        );
        let column = |line: &str, word: &str| line.find(word).map(|b| line[..b].chars().count());
        assert_eq!(column(lines[0], "topic"), column(lines[1], "rust"), "{t}");
        assert!(!t.contains('\u{1b}'), "{t:?}");
    }
}
