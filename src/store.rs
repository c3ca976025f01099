//! The persistent store: what hover needs to preview a citation in a report written by an earlier run,
//! and what refresh needs to re-run a report's topic. SQLite (rusqlite, bundled) in WAL mode, one file
//! `conductor.sqlite3` under the cache dir.
//!
//! Why SQLite and not redb: several servers share one cache dir (two editor windows, or VS Code and Neovim
//! at once). SQLite allows that, with readers never blocked and writers waiting their turn (busy timeout);
//! redb locks its file for one process, so the second server would lose its hover data. The bundled build
//! needs only a C compiler, and keeps working if the cache dir is unusable (an in-memory database).
//!
//! Protocol-free: keys are report ids and citation numbers, values the core's own [`Source`] and
//! [`Research`] as JSON.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

pub mod cache;

use crate::config::CitationStyle;
use crate::research::{Research, Source};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cache dir {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored data: {0}")]
    Json(#[from] serde_json::Error),
}

/// A report as stored: enough to re-run it, and to print it again as it was printed.
#[derive(Clone, Debug)]
pub struct StoredReport {
    pub id: String,
    pub topic: String,
    pub style: CitationStyle,
    /// How it was rendered besides its style (`None` in rows written before these were kept).
    pub cited_only: Option<bool>,
    pub mark_dead: Option<bool>,
    pub research: Research,
}

/// How a report was rendered when it was stored, and where it came from.
#[derive(Clone, Debug)]
pub struct ReportMeta {
    pub style: CitationStyle,
    pub cited_only: bool,
    pub mark_dead: bool,
    /// The stored report this one is a copy of (`conductor.insertStored`): not listed in the history,
    /// which lists researches. A copy of a copy is stored as a copy of the original.
    pub copy_of: Option<String>,
}

impl ReportMeta {
    /// The defaults: only the style is known.
    pub fn style(style: CitationStyle) -> ReportMeta {
        ReportMeta {
            style,
            cited_only: false,
            mark_dead: true,
            copy_of: None,
        }
    }
}

/// One line of the history: what listing needs, read from columns, never from the research JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSummary {
    pub id: String,
    /// RFC 3339, when the research finished.
    pub date: String,
    pub topic: String,
    pub sources: usize,
    /// The providers that answered, in the order they were asked.
    pub providers: Vec<String>,
    /// Dollars, summed over what the providers and the LLM reported; `None` when nothing reported it.
    pub cost_usd: Option<f64>,
    /// Provider credits, summed, where reported.
    pub credits: Option<f64>,
}

/// The history's numbers of one research.
struct Stats {
    sources: i64,
    providers: String,
    cost_usd: Option<f64>,
    credits: Option<f64>,
}

impl Stats {
    fn of(r: &Research) -> Stats {
        let sum = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>());
        let mut usd: Vec<f64> = r.providers.iter().filter_map(|p| p.cost_usd).collect();
        if let Some(crate::report::Synthesis::Written(s)) = &r.synthesis
            && let Some(c) = s.usage.cost_usd
        {
            usd.push(c);
        }
        Stats {
            sources: r.sources.len() as i64,
            providers: r
                .providers
                .iter()
                .filter(|p| p.status == crate::report::RunStatus::Ok)
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            cost_usd: sum(usd).filter(|c| c.is_finite()),
            credits: sum(r.providers.iter().filter_map(|p| p.credits).collect())
                .filter(|c| c.is_finite()),
        }
    }
}

/// The key a topic is matched by: cleaned as a research cleans its topic (one line, invisible
/// characters removed, whitespace collapsed to single spaces), then case-folded.
pub fn topic_key(topic: &str) -> String {
    crate::sanitize::one_line(topic, 500).to_lowercase()
}

/// The day of a stored date (`2026-01-02` of `2026-01-02T03:04:05Z`); the date itself when it does not
/// start with one.
pub fn day(date: &str) -> &str {
    match date.get(..10) {
        Some(d) if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() => d,
        _ => date,
    }
}

/// Why `report_by_prefix` found no single report.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no stored report has the id {0}")]
    Unknown(String),
    #[error("the id {0} is ambiguous: it begins {1}")]
    Ambiguous(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store. Calls are synchronous and short (indexed lookups); the connection's mutex is never held
/// across an await because nothing here is async.
pub struct Store {
    conn: Mutex<Connection>,
}

/// Reports kept at most; the oldest go first. Enough for years of notes, small enough to stay fast.
pub const MAX_REPORTS: usize = 5_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    style TEXT NOT NULL,
    created TEXT NOT NULL,
    research TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    report_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    url TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (report_id, n)
);
CREATE INDEX IF NOT EXISTS sources_by_url ON sources(url);
";

/// Columns added to `reports` after its first release, for the history and the "insert the stored
/// report" action: added by [`migrate`] to a database of any age, filled by `put_report` (old rows:
/// `topic_key` when migrating, the rest when first listed).
const REPORT_COLUMNS: &[(&str, &str)] = &[
    ("topic_key", "TEXT"),
    ("n_sources", "INTEGER"),
    ("providers", "TEXT"),
    ("cost_usd", "REAL"),
    ("credits", "REAL"),
    ("cited_only", "INTEGER"),
    ("mark_dead", "INTEGER"),
    ("copy_of", "TEXT"),
];

/// The history's indexes (after [`migrate`]: they name its columns). Listing walks `reports_by_date`
/// backwards (rowid, the index's last key, orders reports of the same second); the code action looks a
/// topic up by `reports_by_topic`.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS reports_by_date ON reports(created);
CREATE INDEX IF NOT EXISTS reports_by_topic ON reports(topic_key, created);
";

/// The columns `reports` lacks.
fn missing_columns(conn: &Connection) -> rusqlite::Result<Vec<(&'static str, &'static str)>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('reports')")?;
    let have = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(REPORT_COLUMNS
        .iter()
        .filter(|(name, _)| !have.iter().any(|h| h == name))
        .copied()
        .collect())
}

/// Brings a database written by an older version up to date: each missing column is added (guarded by
/// `PRAGMA table_info`, checked again under the write lock, so two servers opening one old database at
/// once add each column once), and old rows get their `topic_key`. Rows keep their data.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    if missing_columns(conn)?.is_empty() {
        return conn.execute_batch(INDEXES);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (name, kind) in missing_columns(&tx)? {
        tx.execute_batch(&format!("ALTER TABLE reports ADD COLUMN {name} {kind}"))?;
    }
    let old: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT id, topic FROM reports WHERE topic_key IS NULL")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (id, topic) in old {
        tx.execute(
            "UPDATE reports SET topic_key = ?1 WHERE id = ?2",
            params![topic_key(&topic), id],
        )?;
    }
    tx.execute_batch(INDEXES)?;
    tx.commit()
}

impl Store {
    /// Opens (creating) `dir/conductor.sqlite3`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
        let path = dir.join("conductor.sqlite3");
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut conn = conn;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        conn.execute_batch(cache::SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// A store that forgets everything when the process ends.
    pub fn in_memory() -> Store {
        let mut conn = Connection::open_in_memory().expect("an in-memory SQLite database opens");
        conn.execute_batch(SCHEMA).expect("the schema is valid");
        migrate(&mut conn).expect("the schema is valid");
        conn.execute_batch(cache::SCHEMA)
            .expect("the cache schema is valid");
        Store {
            conn: Mutex::new(conn),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the lock leaves the connection usable: SQLite is transactional.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves a report and its sources, replacing an earlier report with the same id (refresh).
    pub fn put_report(
        &self,
        id: &str,
        research: &Research,
        style: CitationStyle,
    ) -> Result<(), StoreError> {
        self.put(id, research, &ReportMeta::style(style))
    }

    /// [`Store::put_report`] with how the report was rendered and where it came from.
    pub fn put(&self, id: &str, research: &Research, meta: &ReportMeta) -> Result<(), StoreError> {
        let research_json = serde_json::to_string(research)?;
        let style = serde_json::to_value(meta.style)?
            .as_str()
            .unwrap_or("links")
            .to_string();
        let stats = Stats::of(research);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO reports (id, topic, style, created, research, topic_key, \
             n_sources, providers, cost_usd, credits, cited_only, mark_dead, copy_of) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
             COALESCE((SELECT copy_of FROM reports WHERE id = ?13), ?13))",
            params![
                id,
                research.topic,
                style,
                research.date,
                research_json,
                topic_key(&research.topic),
                stats.sources,
                stats.providers,
                stats.cost_usd,
                stats.credits,
                meta.cited_only,
                meta.mark_dead,
                meta.copy_of,
            ],
        )?;
        tx.execute("DELETE FROM sources WHERE report_id = ?1", params![id])?;
        for s in &research.sources {
            tx.execute(
                "INSERT INTO sources (report_id, n, url, source) VALUES (?1, ?2, ?3, ?4)",
                params![id, s.n as i64, s.url, serde_json::to_string(s)?],
            )?;
        }
        // Bounded: the oldest reports beyond the cap are dropped with their sources.
        let pruned = tx.execute(
            "DELETE FROM reports WHERE rowid IN (SELECT rowid FROM reports ORDER BY rowid DESC LIMIT -1 OFFSET ?1)",
            params![MAX_REPORTS as i64],
        )?;
        if pruned > 0 {
            tx.execute(
                "DELETE FROM sources WHERE report_id NOT IN (SELECT id FROM reports)",
                [],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes a report and its sources (the old report after a refresh).
    pub fn delete_report(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM sources WHERE report_id = ?1", params![id])?;
        tx.execute("DELETE FROM reports WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(())
    }

    /// How many reports the store holds.
    pub fn report_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))?;
        Ok(n.max(0) as usize)
    }

    pub fn report(&self, id: &str) -> Result<Option<StoredReport>, StoreError> {
        type Row = (String, String, String, Option<bool>, Option<bool>);
        let row: Option<Row> = self
            .conn()
            .query_row(
                "SELECT topic, style, research, cited_only, mark_dead FROM reports WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((topic, style, research, cited_only, mark_dead)) = row else {
            return Ok(None);
        };
        Ok(Some(StoredReport {
            id: id.to_string(),
            topic,
            style: serde_json::from_value(serde_json::Value::String(style)).unwrap_or_default(),
            cited_only,
            mark_dead,
            research: serde_json::from_str(&research)?,
        }))
    }

    /// The report whose id is `id`, or else the only one whose id begins with it (at least 4
    /// characters, as git takes a commit).
    pub fn report_by_prefix(&self, id: &str) -> Result<StoredReport, LookupError> {
        if let Some(r) = self.report(id)? {
            return Ok(r);
        }
        let unknown = || LookupError::Unknown(id.to_string());
        if id.chars().count() < 4 {
            return Err(unknown());
        }
        // `substr` rather than LIKE or GLOB: the prefix is the user's text, with no wildcards to escape.
        let ids = self.ids_beginning(id)?;
        match ids.as_slice() {
            [] => Err(unknown()),
            [one] => self.report(one)?.ok_or_else(unknown),
            many => Err(LookupError::Ambiguous(
                id.to_string(),
                many.iter()
                    .take(2)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if many.len() > 2 { ", ..." } else { "" },
            )),
        }
    }

    /// Up to 3 ids that begin with `prefix`.
    fn ids_beginning(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id FROM reports WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id LIMIT 3",
        )?;
        let ids = stmt
            .query_map(params![prefix], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// The history: researches (not copies), newest first, at most `limit`. Reads the columns through
    /// the date index; a row written before the columns existed is read once from its JSON and filled.
    pub fn list(&self, limit: usize) -> Result<Vec<ReportSummary>, StoreError> {
        type Row = (
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<f64>,
            Option<f64>,
        );
        let rows: Vec<Row> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id, created, topic, n_sources, providers, cost_usd, credits FROM reports \
                 WHERE copy_of IS NULL ORDER BY created DESC, rowid DESC LIMIT ?1",
            )?;
            stmt.query_map(params![limit.min(i64::MAX as usize) as i64], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, date, topic, n, providers, cost_usd, credits) in rows {
            let (n, providers, cost_usd, credits) = match n {
                Some(n) => (n, providers.unwrap_or_default(), cost_usd, credits),
                None => {
                    let stats = self.fill(&id)?;
                    (
                        stats.sources,
                        stats.providers,
                        stats.cost_usd,
                        stats.credits,
                    )
                }
            };
            out.push(ReportSummary {
                id,
                date,
                topic,
                sources: n.max(0) as usize,
                providers: providers
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
                cost_usd,
                credits,
            });
        }
        Ok(out)
    }

    /// Fills the history's columns of a row written before they existed, from its research JSON.
    fn fill(&self, id: &str) -> Result<Stats, StoreError> {
        let conn = self.conn();
        let (json, topic): (String, String) = conn.query_row(
            "SELECT research, topic FROM reports WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let stats = Stats::of(&serde_json::from_str(&json)?);
        // Best effort: a store another process holds locked is filled another time.
        if let Err(e) = conn.execute(
            "UPDATE reports SET n_sources = ?1, providers = ?2, cost_usd = ?3, credits = ?4, \
             topic_key = ?5 WHERE id = ?6",
            params![
                stats.sources,
                stats.providers,
                stats.cost_usd,
                stats.credits,
                topic_key(&topic),
                id
            ],
        ) {
            tracing::debug!("could not fill the history of report {id}: {e}");
        }
        Ok(stats)
    }

    /// The newest stored report of a topic (matched by [`topic_key`]): its id and date.
    pub fn latest_for_topic(&self, topic: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, created FROM reports WHERE topic_key = ?1 \
                 ORDER BY created DESC, rowid DESC LIMIT 1",
                params![topic_key(topic)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Source `n` of report `id`.
    pub fn source(&self, id: &str, n: usize) -> Result<Option<Source>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT source FROM sources WHERE report_id = ?1 AND n = ?2",
                params![id, n as i64],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// The most recently stored source with this URL.
    pub fn source_by_url(&self, url: &str) -> Result<Option<Source>, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT source FROM sources WHERE url = ?1 ORDER BY rowid DESC LIMIT 1",
                params![url],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderName;

    fn research() -> Research {
        Research {
            topic: "rust".into(),
            date: "2026-01-01T00:00:00Z".into(),
            elapsed_ms: 5,
            providers: vec![],
            sources: vec![Source {
                n: 1,
                url: "https://e.org/a".into(),
                title: "A".into(),
                snippet: "s".into(),
                providers: vec![ProviderName::Wikipedia],
                published: None,
                score: 1.0,
                content: None,
                read: None,
                passages: Vec::new(),
            }],
            dropped: Vec::new(),
            cost: None,
            synthesis: None,
        }
    }

    #[test]
    fn survives_reopening_and_refresh_replaces() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.put_report("r1", &research(), CitationStyle::Numbered)
                .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.source("r1", 1).unwrap().unwrap().title, "A");
        assert_eq!(s.source_by_url("https://e.org/a").unwrap().unwrap().n, 1);
        let r = s.report("r1").unwrap().unwrap();
        assert_eq!(
            (r.topic.as_str(), r.style),
            ("rust", CitationStyle::Numbered)
        );
        let mut again = research();
        again.sources[0].title = "B".into();
        s.put_report("r1", &again, CitationStyle::Numbered).unwrap();
        assert_eq!(s.source("r1", 1).unwrap().unwrap().title, "B");
        assert!(s.source("r2", 1).unwrap().is_none());
    }

    #[test]
    fn the_store_is_bounded_and_a_replaced_report_leaves_no_rows() {
        let s = Store::in_memory();
        for i in 0..MAX_REPORTS + 20 {
            s.put_report(&format!("r{i}"), &research(), CitationStyle::Numbered)
                .unwrap();
        }
        assert_eq!(s.report_count().unwrap(), MAX_REPORTS);
        // The oldest went, with their sources; the newest stayed.
        assert!(s.report("r0").unwrap().is_none());
        assert!(s.source("r0", 1).unwrap().is_none());
        assert!(
            s.report(&format!("r{}", MAX_REPORTS + 19))
                .unwrap()
                .is_some()
        );
        // A refreshed report's old rows are deleted.
        s.delete_report("r100").unwrap();
        assert!(s.report("r100").unwrap().is_none());
        assert!(s.source("r100", 1).unwrap().is_none());
        assert_eq!(s.report_count().unwrap(), MAX_REPORTS - 1);
    }

    #[test]
    fn a_stored_report_reads_back_exactly_scores_included() {
        // Fusion scores are sums of 1/(60 + rank): without serde_json's `float_roundtrip`, about one
        // in five of these read back one bit off, and `history show --format json` would differ.
        let mut r = research();
        let template = r.sources[0].clone();
        r.sources = (1..=50)
            .map(|n| Source {
                n,
                score: 1.0 / (60.0 + n as f64) + 1.0 / (61.0 + (n * 7 % 13) as f64),
                ..template.clone()
            })
            .collect();
        let s = Store::in_memory();
        s.put_report("r1", &r, CitationStyle::Links).unwrap();
        assert_eq!(s.report("r1").unwrap().unwrap().research, r);
    }

    fn dated(topic: &str, date: &str) -> Research {
        Research {
            topic: topic.into(),
            date: date.into(),
            ..research()
        }
    }

    #[test]
    fn the_history_lists_researches_newest_first_by_the_date_index_without_copies() {
        let s = Store::in_memory();
        s.put_report(
            "a1",
            &dated("Old", "2026-01-01T00:00:00Z"),
            CitationStyle::Links,
        )
        .unwrap();
        s.put_report(
            "b2",
            &dated("New", "2026-02-01T00:00:00Z"),
            CitationStyle::Links,
        )
        .unwrap();
        // Same second as b2, stored later: listed before it.
        s.put_report(
            "c3",
            &dated("Newer", "2026-02-01T00:00:00Z"),
            CitationStyle::Links,
        )
        .unwrap();
        let copy = ReportMeta {
            copy_of: Some("a1".into()),
            ..ReportMeta::style(CitationStyle::Links)
        };
        s.put("d4", &dated("Old", "2026-01-01T00:00:00Z"), &copy)
            .unwrap();
        let copy_of_copy = ReportMeta {
            copy_of: Some("d4".into()),
            ..ReportMeta::style(CitationStyle::Links)
        };
        s.put("e5", &dated("Old", "2026-01-01T00:00:00Z"), &copy_of_copy)
            .unwrap();
        let original: Option<String> = s
            .conn()
            .query_row("SELECT copy_of FROM reports WHERE id = 'e5'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(original.as_deref(), Some("a1"));
        let ids: Vec<String> = s.list(10).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["c3", "b2", "a1"]);
        assert_eq!(s.list(1).unwrap().len(), 1);
        let first = &s.list(10).unwrap()[2];
        assert_eq!(
            (first.sources, first.providers.as_slice()),
            (1, &[] as &[String])
        );
        // Listing and the topic lookup read an index, never sort the table or read the JSON.
        let conn = s.conn();
        for (sql, index) in [
            (
                "SELECT id, created, topic, n_sources, providers, cost_usd, credits FROM reports \
                 WHERE copy_of IS NULL ORDER BY created DESC, rowid DESC LIMIT 20",
                "reports_by_date",
            ),
            (
                "SELECT id, created FROM reports WHERE topic_key = 'x' \
                 ORDER BY created DESC, rowid DESC LIMIT 1",
                "reports_by_topic",
            ),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("; ");
            assert!(plan.contains(index), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }

    #[test]
    fn a_topic_is_found_whatever_its_case_and_spacing_and_an_id_by_a_unique_prefix() {
        let s = Store::in_memory();
        s.put_report(
            "abcd0001",
            &dated("Rust  Ownership", "2026-01-01T00:00:00Z"),
            CitationStyle::Links,
        )
        .unwrap();
        s.put_report(
            "abcd0002",
            &dated("rust ownership", "2026-03-01T00:00:00Z"),
            CitationStyle::Footnotes,
        )
        .unwrap();
        assert_eq!(
            s.latest_for_topic(" RUST\n ownership ").unwrap(),
            Some(("abcd0002".into(), "2026-03-01T00:00:00Z".into()))
        );
        assert_eq!(s.latest_for_topic("rust").unwrap(), None);
        assert_eq!(s.report_by_prefix("abcd0001").unwrap().id, "abcd0001");
        assert_eq!(
            s.report_by_prefix("abcd0002").unwrap().style,
            CitationStyle::Footnotes
        );
        assert!(matches!(
            s.report_by_prefix("abcd"),
            Err(LookupError::Ambiguous(..))
        ));
        assert!(matches!(
            s.report_by_prefix("abc"),
            Err(LookupError::Unknown(_))
        ));
        assert!(matches!(
            s.report_by_prefix("%"),
            Err(LookupError::Unknown(_))
        ));
        s.put_report("ffff1234", &research(), CitationStyle::Links)
            .unwrap();
        assert_eq!(s.report_by_prefix("ffff").unwrap().id, "ffff1234");
        assert_eq!(day("2026-03-01T00:00:00Z"), "2026-03-01");
        assert_eq!(day("soon"), "soon");
    }

    #[test]
    fn migrating_twice_or_from_two_connections_adds_each_column_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conductor.sqlite3");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(SCHEMA).unwrap();
        }
        let a = Store::open(dir.path()).unwrap();
        let b = Store::open(dir.path()).unwrap();
        a.put_report("r1", &research(), CitationStyle::Links)
            .unwrap();
        assert_eq!(b.list(5).unwrap().len(), 1);
        assert!(missing_columns(&b.conn()).unwrap().is_empty());
    }
}
