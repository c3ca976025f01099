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

/// A report as stored: enough to re-run it.
#[derive(Clone, Debug)]
pub struct StoredReport {
    pub id: String,
    pub topic: String,
    pub style: CitationStyle,
    pub research: Research,
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

impl Store {
    /// Opens (creating) `dir/conductor.sqlite3`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
        let path = dir.join("conductor.sqlite3");
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// A store that forgets everything when the process ends.
    pub fn in_memory() -> Store {
        let conn = Connection::open_in_memory().expect("an in-memory SQLite database opens");
        conn.execute_batch(SCHEMA).expect("the schema is valid");
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
        let research_json = serde_json::to_string(research)?;
        let style = serde_json::to_value(style)?
            .as_str()
            .unwrap_or("links")
            .to_string();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO reports (id, topic, style, created, research) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, research.topic, style, research.date, research_json],
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
        let row: Option<(String, String, String)> = self
            .conn()
            .query_row(
                "SELECT topic, style, research FROM reports WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((topic, style, research)) = row else {
            return Ok(None);
        };
        Ok(Some(StoredReport {
            id: id.to_string(),
            topic,
            style: serde_json::from_value(serde_json::Value::String(style)).unwrap_or_default(),
            research: serde_json::from_str(&research)?,
        }))
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
}
