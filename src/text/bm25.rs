//! Okapi BM25: the one ranking function of Conductor, used by the `notes` provider (passages of local files)
//! and by the reading stage (passages of pages and provider text).
//!
//! Hand-written because it is a dozen lines: the BM25 crates on crates.io own the index and the
//! tokenizer, while both callers here need their own (notes keep whole term maps per cached passage; the
//! reading stage counts only the query's terms, to stay small on a 3 MiB page).

use std::collections::HashMap;

/// Term-frequency saturation.
pub const K1: f64 = 1.2;
/// Length normalisation.
pub const B: f64 = 0.75;

/// Lowercased runs of alphanumeric characters.
pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

/// What BM25 needs to know of a document: its length in tokens and how often each query term occurs.
pub trait Document {
    /// Length in tokens.
    fn tokens(&self) -> usize;
    /// Occurrences of `term`, the `i`-th term of the query.
    fn tf(&self, i: usize, term: &str) -> u32;
}

/// A query: its distinct terms, in sorted order.
#[derive(Clone, Debug, Default)]
pub struct Query {
    terms: Vec<String>,
}

impl Query {
    pub fn new(text: &str) -> Query {
        let mut terms: Vec<String> = tokenize(text).collect();
        terms.sort();
        terms.dedup();
        Query { terms }
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Counts the query's terms in `text` (and its length), without keeping the other terms: the
    /// [`Document`] of a passage that is ranked once.
    pub fn counts(&self, text: &str) -> Counts {
        let mut counts = Counts {
            len: 0,
            tf: vec![0; self.terms.len()],
        };
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            counts.len += 1;
            // Most words are lowercase already: compare those without allocating.
            let lowercase = word.chars().all(|c| {
                let mut l = c.to_lowercase();
                l.next() == Some(c) && l.next().is_none()
            });
            let found = if lowercase {
                self.terms.binary_search_by(|t| t.as_str().cmp(word))
            } else {
                self.terms.binary_search(&word.to_lowercase())
            };
            if let Ok(i) = found {
                counts.tf[i] += 1;
            }
        }
        counts
    }

    /// The BM25 score of each document against this query, with the inverse document frequencies and
    /// average length taken over `docs` themselves.
    pub fn scores<D: Document>(&self, docs: &[D]) -> Vec<f64> {
        if docs.is_empty() {
            return Vec::new();
        }
        let n = docs.len() as f64;
        let avg_len = (docs.iter().map(Document::tokens).sum::<usize>() as f64 / n).max(1.0);
        let idf: Vec<f64> = self
            .terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let df = docs.iter().filter(|d| d.tf(i, t) > 0).count() as f64;
                ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
            })
            .collect();
        docs.iter()
            .map(|d| {
                self.terms
                    .iter()
                    .enumerate()
                    .zip(&idf)
                    .map(|((i, t), idf)| {
                        let tf = f64::from(d.tf(i, t));
                        idf * tf * (K1 + 1.0)
                            / (tf + K1 * (1.0 - B + B * d.tokens() as f64 / avg_len))
                    })
                    .sum()
            })
            .collect()
    }
}

/// The query's term counts in one text: see [`Query::counts`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    len: usize,
    tf: Vec<u32>,
}

impl Counts {
    /// How many of the text's words are query terms.
    pub fn matches(&self) -> u32 {
        self.tf.iter().sum()
    }

    /// The counts of two texts taken together (a passage of several sentences).
    pub fn add(&mut self, other: &Counts) {
        self.len += other.len;
        for (a, b) in self.tf.iter_mut().zip(&other.tf) {
            *a += b;
        }
    }
}

impl Document for Counts {
    fn tokens(&self) -> usize {
        self.len
    }
    fn tf(&self, i: usize, _term: &str) -> u32 {
        self.tf.get(i).copied().unwrap_or(0)
    }
}

/// Every term of a text with its count: the [`Document`] of a passage kept for many queries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TermMap {
    pub len: usize,
    pub terms: HashMap<String, u32>,
}

impl TermMap {
    pub fn new(text: &str) -> TermMap {
        let mut terms: HashMap<String, u32> = HashMap::new();
        let mut len = 0;
        for t in tokenize(text) {
            len += 1;
            *terms.entry(t).or_default() += 1;
        }
        TermMap { len, terms }
    }
}

impl Document for TermMap {
    fn tokens(&self) -> usize {
        self.len
    }
    fn tf(&self, _i: usize, term: &str) -> u32 {
        self.terms.get(term).copied().unwrap_or(0)
    }
}

impl<D: Document> Document for &D {
    fn tokens(&self) -> usize {
        (**self).tokens()
    }
    fn tf(&self, i: usize, term: &str) -> u32 {
        (**self).tf(i, term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_term_maps_score_alike() {
        let docs = [
            "Tokio is an async runtime for Rust.",
            "Bread needs flour, water and salt.",
            "An async runtime schedules tasks; Tokio's scheduler steals work.",
        ];
        let q = Query::new("async runtime scheduler");
        let by_counts = q.scores(&docs.map(|d| q.counts(d)));
        let by_maps = q.scores(&docs.map(TermMap::new));
        assert_eq!(by_counts, by_maps);
        assert_eq!(by_counts[1], 0.0);
        assert!(by_counts[2] > by_counts[0] && by_counts[0] > 0.0);
    }

    #[test]
    fn tokens_are_lowercased_alphanumeric_runs() {
        let t: Vec<String> = tokenize("Vec<T>, e.g. Ünïcode-2024").collect();
        assert_eq!(t, ["vec", "t", "e", "g", "ünïcode", "2024"]);
        assert!(Query::new(" ,; ").is_empty());
    }
}
