//! The user's own notes: BM25 full-text search over the markdown and text files of some folders.
//!
//! Files are split into passages (paragraphs, merged up to a size), each passage is a BM25 document, and
//! a file is ranked by its best passage, which becomes the snippet. Notes cite as `file://` links.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::Http;
use crate::text::bm25::{self, TermMap};

const EXTENSIONS: &[&str] = &[
    "md", "markdown", "mdx", "txt", "org", "rst", "adoc", "typ", "tex",
];
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
const MAX_FILES: usize = 20_000;
const PASSAGE_CHARS: usize = 600;

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
            // File reading and scoring are blocking work: keep them off the async workers. The blocking
            // task cannot be aborted, so dropping this future (cancel, deadline) raises a flag that the
            // walk checks between files.
            let stop = Arc::new(AtomicBool::new(false));
            let _stop_on_drop = StopOnDrop(stop.clone());
            tokio::task::spawn_blocking(move || {
                search_until(&roots, &text, max, &|| stop.load(Ordering::Relaxed))
            })
            .await
            .map_err(|e| ProviderError::Unexpected(format!("notes search failed: {e}")))
        }
        .map_ok(Found::from)
        .boxed()
    }

    /// Nothing leaves the machine and nothing is indexed: each folder must be readable.
    fn check<'a>(
        &'a self,
        _http: &'a Http,
        _deadline: tokio::time::Instant,
    ) -> BoxFuture<'a, Result<super::preflight::Answer, ProviderError>> {
        let roots = self.roots.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                for root in &roots {
                    std::fs::read_dir(root).map_err(|e| {
                        ProviderError::Config(format!("cannot read {}: {e}", root.display()))
                    })?;
                }
                Ok(super::preflight::Answer {
                    detail: format!(
                        "{} folder{} readable",
                        roots.len(),
                        if roots.len() == 1 { "" } else { "s" }
                    ),
                    ..Default::default()
                })
            })
            .await
            .map_err(|e| ProviderError::Unexpected(format!("notes check failed: {e}")))?
        }
        .boxed()
    }
}

/// Raises the stop flag when the search's future is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Passage {
    text: String,
    terms: TermMap,
}

/// One note as indexed: kept between searches while its size and modification time stay the same.
struct IndexedFile {
    modified: Option<SystemTime>,
    size: u64,
    title: String,
    passages: Vec<Passage>,
}

/// Indexed notes by path, shared by every search in the process, so a query re-reads only the files
/// that changed since the last one. Bounded by [`MAX_CACHED_BYTES`] of note text.
static INDEX: LazyLock<Mutex<HashMap<PathBuf, Arc<IndexedFile>>>> = LazyLock::new(Mutex::default);
const MAX_CACHED_BYTES: u64 = 64 * 1024 * 1024;

fn index_file(path: &Path, modified: Option<SystemTime>, size: u64) -> Option<IndexedFile> {
    let content = std::fs::read_to_string(path).ok()?;
    let passages = split_passages(&content)
        .into_iter()
        .filter_map(|text| {
            let terms = TermMap::new(&text);
            (terms.len > 0).then_some(Passage { text, terms })
        })
        .collect();
    Some(IndexedFile {
        modified,
        size,
        title: title_of(path, &content),
        passages,
    })
}

/// Searches `roots` for `query`, returning at most `max` files, best first.
pub fn search(roots: &[PathBuf], query: &str, max: usize) -> Vec<Hit> {
    search_until(roots, query, max, &|| false)
}

/// [`search`], giving up (with no hits) as soon as `stop()` says so (asked between files).
pub fn search_until(
    roots: &[PathBuf],
    query: &str,
    max: usize,
    stop: &dyn Fn() -> bool,
) -> Vec<Hit> {
    let query = bm25::Query::new(query);
    if query.is_empty() {
        return Vec::new();
    }
    let cached: HashMap<PathBuf, Arc<IndexedFile>> =
        INDEX.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut files: Vec<(PathBuf, Arc<IndexedFile>)> = Vec::new();
    'roots: for root in roots {
        let walker = ignore::WalkBuilder::new(root).follow_links(false).build();
        for entry in walker.flatten() {
            if stop() {
                return Vec::new();
            }
            if files.len() >= MAX_FILES {
                break 'roots;
            }
            let path = entry.path();
            if !is_note(path) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.len() > MAX_FILE_BYTES || !meta.is_file() {
                continue;
            }
            let modified = meta.modified().ok();
            let file = match cached.get(path) {
                Some(f) if f.modified == modified && f.size == meta.len() && modified.is_some() => {
                    f.clone()
                }
                _ => match index_file(path, modified, meta.len()) {
                    Some(f) => Arc::new(f),
                    None => continue,
                },
            };
            files.push((path.to_path_buf(), file));
        }
    }
    {
        let mut index = INDEX.lock().unwrap_or_else(|p| p.into_inner());
        let mut bytes: u64 = index.values().map(|f| f.size).sum();
        for (path, f) in &files {
            if index.contains_key(path) {
                index.insert(path.clone(), f.clone());
            } else if bytes + f.size <= MAX_CACHED_BYTES {
                bytes += f.size;
                index.insert(path.clone(), f.clone());
            }
        }
    }
    let passages: Vec<(usize, &Passage)> = files
        .iter()
        .enumerate()
        .flat_map(|(i, (_, f))| f.passages.iter().map(move |p| (i, p)))
        .collect();
    if passages.is_empty() || stop() {
        return Vec::new();
    }
    let docs: Vec<&TermMap> = passages.iter().map(|(_, p)| &p.terms).collect();
    let scores = query.scores(&docs);
    let mut best: HashMap<usize, (f64, usize)> = HashMap::new();
    for (i, ((file, _), score)) in passages.iter().zip(scores).enumerate() {
        if score > 0.0 {
            let slot = best.entry(*file).or_insert((score, i));
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
            let (path, f) = &files[file];
            let url = url::Url::from_file_path(path).ok()?;
            let text = &passages[passage].1.text;
            Some(Hit {
                url: url.to_string(),
                title: Some(f.title.clone()),
                snippet: Some(text.clone()),
                published: None,
                content: Some(text.clone()),
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
    fn a_raised_stop_flag_ends_the_walk_with_no_hits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), "async runtime").unwrap();
        assert!(search_until(&[dir.path().to_path_buf()], "async", 10, &|| true).is_empty());
        assert_eq!(search(&[dir.path().to_path_buf()], "async", 10).len(), 1);
    }

    #[test]
    fn a_search_stops_within_100ms_of_being_told() {
        let dir = tempfile::tempdir().unwrap();
        let body = "async runtime scheduler words and more words to read. ".repeat(40);
        for i in 0..4000 {
            std::fs::write(
                dir.path().join(format!("n{i}.md")),
                format!("# N{i}\n\n{body}"),
            )
            .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s, root) = (stop.clone(), dir.path().to_path_buf());
        let (tx, rx) = std::sync::mpsc::channel();
        let (started_tx, started) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            // The walk says it is under way once it has checked the flag a hundred times (files).
            let asked = std::sync::atomic::AtomicUsize::new(0);
            let check = || {
                if asked.fetch_add(1, Ordering::Relaxed) == 100 {
                    let _ = started_tx.send(());
                }
                s.load(Ordering::Relaxed)
            };
            let hits = search_until(&[root], "async", 10, &check);
            tx.send(std::time::Instant::now()).unwrap();
            hits
        });
        // Once the walk is under way (the event, not a clock), stop it.
        started.recv().unwrap();
        let told = std::time::Instant::now();
        stop.store(true, Ordering::Relaxed);
        let ended = rx.recv().unwrap();
        assert!(t.join().unwrap().is_empty());
        let took = ended.saturating_duration_since(told);
        assert!(
            took < std::time::Duration::from_millis(100),
            "took {took:?}"
        );
    }

    #[test]
    fn a_changed_note_is_read_again_and_a_deleted_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let root = [dir.path().to_path_buf()];
        let note = dir.path().join("n.md");
        std::fs::write(&note, "# N\n\nalpha words here").unwrap();
        assert_eq!(search(&root, "alpha", 10).len(), 1);
        std::fs::write(&note, "# N\n\nbeta words here, a longer text now").unwrap();
        assert_eq!(search(&root, "alpha", 10).len(), 0);
        assert_eq!(search(&root, "beta", 10).len(), 1);
        std::fs::remove_file(&note).unwrap();
        assert_eq!(search(&root, "beta", 10).len(), 0);
    }

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
