//! The user's own notes: BM25 full-text search over the markdown and text files of some folders.
//!
//! Files are split into passages (paragraphs, merged up to a size), each passage is a BM25 document, and
//! a file is ranked by its best passage, which becomes the snippet. Notes cite as `file://` links.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::Http;

const EXTENSIONS: &[&str] = &[
    "md", "markdown", "mdx", "txt", "org", "rst", "adoc", "typ", "tex",
];
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
const MAX_FILES: usize = 20_000;
const PASSAGE_CHARS: usize = 600;
const K1: f64 = 1.2;
const B: f64 = 0.75;

pub struct Notes {
    roots: Vec<PathBuf>,
}

impl Notes {
    pub fn new(roots: Vec<PathBuf>) -> Notes {
        Notes { roots }
    }
}

impl Provider for Notes {
    fn name(&self) -> ProviderName {
        ProviderName::Notes
    }

    fn search<'a>(
        &'a self,
        _http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>> {
        let roots = self.roots.clone();
        let text = query.text.clone();
        let max = query.max_results;
        async move {
            // File reading and scoring are blocking work: keep them off the async workers.
            tokio::task::spawn_blocking(move || search(&roots, &text, max))
                .await
                .map_err(|e| ProviderError::Unexpected(format!("notes search failed: {e}")))
        }
        .map_ok(Found::from)
        .boxed()
    }
}

struct Passage {
    file: usize,
    text: String,
    terms: HashMap<String, u32>,
    len: usize,
}

fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

/// Searches `roots` for `query`, returning at most `max` files, best first.
pub fn search(roots: &[PathBuf], query: &str, max: usize) -> Vec<Hit> {
    let query_terms: Vec<String> = {
        let mut t: Vec<String> = tokenize(query).collect();
        t.sort();
        t.dedup();
        t
    };
    if query_terms.is_empty() {
        return Vec::new();
    }
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut passages: Vec<Passage> = Vec::new();
    for root in roots {
        let walker = ignore::WalkBuilder::new(root).follow_links(false).build();
        for entry in walker.flatten() {
            if files.len() >= MAX_FILES {
                break;
            }
            let path = entry.path();
            if !is_note(path)
                || entry
                    .metadata()
                    .map(|m| m.len() > MAX_FILE_BYTES)
                    .unwrap_or(true)
            {
                continue;
            }
            let Ok(content) = std::fs::read_to_string(path) else {
                continue;
            };
            let file = files.len();
            files.push((path.to_path_buf(), title_of(path, &content)));
            for text in split_passages(&content) {
                let mut terms: HashMap<String, u32> = HashMap::new();
                let mut len = 0;
                for t in tokenize(&text) {
                    len += 1;
                    *terms.entry(t).or_default() += 1;
                }
                if len > 0 {
                    passages.push(Passage {
                        file,
                        text,
                        terms,
                        len,
                    });
                }
            }
        }
    }
    if passages.is_empty() {
        return Vec::new();
    }
    let n = passages.len() as f64;
    let avg_len = passages.iter().map(|p| p.len).sum::<usize>() as f64 / n;
    let idf: Vec<f64> = query_terms
        .iter()
        .map(|t| {
            let df = passages.iter().filter(|p| p.terms.contains_key(t)).count() as f64;
            ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
        })
        .collect();
    let mut best: HashMap<usize, (f64, usize)> = HashMap::new();
    for (i, p) in passages.iter().enumerate() {
        let score: f64 = query_terms
            .iter()
            .zip(&idf)
            .map(|(t, idf)| {
                let tf = f64::from(*p.terms.get(t).unwrap_or(&0));
                idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * p.len as f64 / avg_len))
            })
            .sum();
        if score > 0.0 {
            let slot = best.entry(p.file).or_insert((score, i));
            if score > slot.0 {
                *slot = (score, i);
            }
        }
    }
    let mut ranked: Vec<(usize, f64, usize)> =
        best.into_iter().map(|(f, (s, i))| (f, s, i)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(max)
        .filter_map(|(file, _, passage)| {
            let (path, title) = &files[file];
            let url = url::Url::from_file_path(path).ok()?;
            Some(Hit {
                url: url.to_string(),
                title: Some(title.clone()),
                snippet: Some(passages[passage].text.clone()),
                published: None,
                content: Some(passages[passage].text.clone()),
            })
        })
        .collect()
}

fn is_note(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The first markdown heading, else the file name.
fn title_of(path: &Path, content: &str) -> String {
    content
        .lines()
        .find_map(|l| {
            let t = l.trim_start();
            t.starts_with('#')
                .then(|| t.trim_start_matches('#').trim().to_string())
                .filter(|t| !t.is_empty())
        })
        .unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

/// Paragraphs, merged until a passage holds about `PASSAGE_CHARS` characters.
fn split_passages(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for para in content
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if !current.is_empty() && current.len() + para.len() > PASSAGE_CHARS {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(para);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_the_matching_note_first_with_its_passage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokio.md"),
            "# Tokio notes\n\nUnrelated intro.\n\nTokio is an async runtime with a work-stealing scheduler.",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("cooking.md"),
            "# Bread\n\nFlour, water, salt, runtime of 4 hours.",
        )
        .unwrap();
        std::fs::write(dir.path().join("image.png"), "async runtime").unwrap();
        let hits = search(&[dir.path().to_path_buf()], "async runtime scheduler", 10);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].title.as_deref(), Some("Tokio notes"));
        assert!(hits[0].url.starts_with("file:///"));
        assert!(
            hits[0]
                .snippet
                .as_deref()
                .unwrap()
                .contains("work-stealing")
        );
    }
}
