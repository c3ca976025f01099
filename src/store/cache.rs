//! The cache in the store: provider answers (by provider and query), read pages (by URL) and rate-limit
//! suspensions, so that a research repeated within `cache_hours` asks nothing again, and a provider that
//! asked to be left alone for an hour is left alone by the next research too. Failures are never kept.
//!
//! Rows are bounded: each table keeps at most its newest [`MAX_ROWS`] rows, and rows older than the
//! longest allowed `cache_hours` are deleted as new ones arrive.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use crate::config::{MAX_CACHE_HOURS, ProviderName};
use crate::evidence::{CachedPage, PageCache};
use crate::providers::Found;
use crate::research::AnswerCache;

/// Rows kept per table (answers, pages). A page row holds at most the reading stage's kept text
/// (256 KiB), so the pages table stays under a few hundred MB in the worst case.
pub const MAX_ROWS: usize = 2_000;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS answers (
    provider TEXT NOT NULL,
    key TEXT NOT NULL,
    at INTEGER NOT NULL,
    found TEXT NOT NULL,
    PRIMARY KEY (provider, key)
);
CREATE INDEX IF NOT EXISTS answers_by_age ON answers(at);
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    page TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_by_age ON pages(at);
CREATE TABLE IF NOT EXISTS suspensions (
    provider TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The age of a row stored at `at`, if it is younger than `max_age` (a clock set back counts as new).
fn fresh(at: i64, max_age: Duration) -> Option<Duration> {
    let age = Duration::from_secs(u64::try_from(now() - at).unwrap_or(0));
    (age < max_age).then_some(age)
}

/// Deletes what is too old to be used by any setting, then all but the newest [`MAX_ROWS`].
fn prune(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    let oldest = now() - (MAX_CACHE_HOURS * 3600.0) as i64;
    conn.execute(
        &format!("DELETE FROM {table} WHERE at < ?1"),
        params![oldest],
    )?;
    conn.execute(
        &format!(
            "DELETE FROM {table} WHERE rowid NOT IN \
             (SELECT rowid FROM {table} ORDER BY at DESC, rowid DESC LIMIT ?1)"
        ),
        params![MAX_ROWS as i64],
    )?;
    Ok(())
}

impl Store {
    fn cache_result<T>(&self, what: &str, r: rusqlite::Result<T>) -> Option<T> {
        r.map_err(|e| tracing::warn!("the cache could not {what}: {e}"))
            .ok()
    }

    /// Forgets every cached answer, page and suspension (what `--refresh` does not need, tests do).
    pub fn clear_cache(&self) -> Result<(), super::StoreError> {
        self.conn()
            .execute_batch("DELETE FROM answers; DELETE FROM pages; DELETE FROM suspensions;")?;
        Ok(())
    }
}

impl AnswerCache for Store {
    fn answer(
        &self,
        provider: ProviderName,
        key: &str,
        max_age: Duration,
    ) -> Option<(Found, Duration)> {
        let row: Option<(i64, String)> = self.cache_result(
            "be read",
            self.conn()
                .query_row(
                    "SELECT at, found FROM answers WHERE provider = ?1 AND key = ?2",
                    params![provider.as_str(), key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
        )?;
        let (at, json) = row?;
        let age = fresh(at, max_age)?;
        // A row this version cannot read is a miss, not an error.
        let found: Found = serde_json::from_str(&json).ok()?;
        Some((found, age))
    }

    fn keep_answer(&self, provider: ProviderName, key: &str, found: &Found) {
        let Ok(json) = serde_json::to_string(found) else {
            return;
        };
        let conn = self.conn();
        let r = conn
            .execute(
                "INSERT OR REPLACE INTO answers (provider, key, at, found) VALUES (?1, ?2, ?3, ?4)",
                params![provider.as_str(), key, now(), json],
            )
            .and_then(|_| prune(&conn, "answers"));
        drop(conn);
        self.cache_result("keep an answer", r);
    }

    fn suspended_until(&self, provider: ProviderName) -> Option<chrono::DateTime<chrono::Utc>> {
        let until: Option<i64> = self.cache_result(
            "be read",
            self.conn()
                .query_row(
                    "SELECT until FROM suspensions WHERE provider = ?1",
                    params![provider.as_str()],
                    |r| r.get(0),
                )
                .optional(),
        )?;
        let until = until?;
        (until > now())
            .then(|| chrono::DateTime::from_timestamp(until, 0))
            .flatten()
    }

    fn suspend(&self, provider: ProviderName, until: chrono::DateTime<chrono::Utc>) {
        let r = self.conn().execute(
            "INSERT OR REPLACE INTO suspensions (provider, until) VALUES (?1, ?2)",
            params![provider.as_str(), until.timestamp()],
        );
        self.cache_result("keep a suspension", r);
    }
}

impl PageCache for Store {
    fn page(&self, url: &str, max_age: Duration) -> Option<(CachedPage, Duration)> {
        let row: Option<(i64, String)> = self.cache_result(
            "be read",
            self.conn()
                .query_row(
                    "SELECT at, page FROM pages WHERE url = ?1",
                    params![url],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
        )?;
        let (at, json) = row?;
        let age = fresh(at, max_age)?;
        let page: CachedPage = serde_json::from_str(&json).ok()?;
        Some((page, age))
    }

    fn keep_page(&self, url: &str, page: &CachedPage) {
        let Ok(json) = serde_json::to_string(page) else {
            return;
        };
        let conn = self.conn();
        let r = conn
            .execute(
                "INSERT OR REPLACE INTO pages (url, at, page) VALUES (?1, ?2, ?3)",
                params![url, now(), json],
            )
            .and_then(|_| prune(&conn, "pages"));
        drop(conn);
        self.cache_result("keep a page", r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Hit;

    #[test]
    fn answers_are_kept_fresh_and_bounded() {
        let s = Store::in_memory();
        let found = Found {
            hits: vec![Hit {
                url: "https://e.org/a".into(),
                title: Some("A".into()),
                ..Hit::default()
            }],
            cost_usd: Some(0.01),
            credits: None,
        };
        s.keep_answer(ProviderName::Exa, "rust\u{1f}10", &found);
        let (back, age) = s
            .answer(ProviderName::Exa, "rust\u{1f}10", Duration::from_secs(3600))
            .unwrap();
        assert_eq!(back, found);
        assert!(age < Duration::from_secs(5));
        // Another provider, another key, or too old: a miss.
        assert!(
            s.answer(
                ProviderName::Tavily,
                "rust\u{1f}10",
                Duration::from_secs(3600)
            )
            .is_none()
        );
        assert!(
            s.answer(ProviderName::Exa, "go\u{1f}10", Duration::from_secs(3600))
                .is_none()
        );
        assert!(
            s.answer(ProviderName::Exa, "rust\u{1f}10", Duration::ZERO)
                .is_none()
        );
        for i in 0..MAX_ROWS + 10 {
            s.keep_answer(ProviderName::Exa, &format!("q{i}"), &found);
        }
        let rows: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM answers", [], |r| r.get(0))
            .unwrap();
        assert!(rows as usize <= MAX_ROWS, "{rows} rows");
    }

    #[test]
    fn a_suspension_ends_when_it_says() {
        let s = Store::in_memory();
        assert_eq!(s.suspended_until(ProviderName::Brave), None);
        let until = chrono::Utc::now() + chrono::Duration::seconds(3600);
        s.suspend(ProviderName::Brave, until);
        assert_eq!(
            s.suspended_until(ProviderName::Brave)
                .map(|u| u.timestamp()),
            Some(until.timestamp())
        );
        s.suspend(
            ProviderName::Brave,
            chrono::Utc::now() - chrono::Duration::seconds(1),
        );
        assert_eq!(s.suspended_until(ProviderName::Brave), None);
    }
}
