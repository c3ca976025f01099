//! Merging providers' hits into sources: URL normalisation, deduplication and reciprocal rank fusion.

use std::collections::HashMap;

use crate::config::ProviderName;
use crate::providers::Hit;
use crate::research::Source;
use crate::sanitize;

/// The RRF constant: each provider contributes `1 / (K + rank)`.
pub const RRF_K: f64 = 60.0;
pub const TITLE_CHARS: usize = 200;
pub const SNIPPET_CHARS: usize = 500;
/// Page text kept for synthesis, per source.
pub const CONTENT_CHARS: usize = 4000;
/// A date as a provider wrote it.
pub const PUBLISHED_CHARS: usize = 40;
/// Hits taken from one provider's answer (providers are asked for at most 50).
pub const MAX_HITS_PER_PROVIDER: usize = 100;
/// Raw text read per character kept: room for tags and entities to be stripped, while a 1 MB title is
/// never cleaned whole.
const RAW_PER_CHAR: usize = 16;

/// At most `chars * RAW_PER_CHAR` bytes of `raw`, cut at a character boundary: the input of cleaning is
/// bounded, whatever a source brings in. A tag or entity cut in half is dropped or escaped later.
fn bounded(raw: &str, chars: usize) -> &str {
    let max = chars.saturating_mul(RAW_PER_CHAR);
    if raw.len() <= max {
        return raw;
    }
    let mut end = max;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    &raw[..end]
}

/// Query parameters that only track the click and never change the page.
fn is_tracking_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_")
        || matches!(
            k.as_str(),
            "fbclid" | "gclid" | "dclid" | "msclkid" | "mc_cid" | "mc_eid" | "igshid" | "yclid"
        )
}

/// The URL to show and link: tracking parameters and fragment dropped, everything meaningful kept.
pub fn clean_url(url: &url::Url) -> url::Url {
    let mut out = url.clone();
    out.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        out.set_query(None);
    } else if kept.len() != url.query_pairs().count() {
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    out
}

/// The deduplication key: scheme, `www.`, trailing slash, fragment and tracking parameters ignored;
/// host lower-cased; the remaining query parameters sorted.
pub fn normalize(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let query = if params.is_empty() {
        String::new()
    } else {
        let mut ser = url::form_urlencoded::Serializer::new(String::from("?"));
        ser.extend_pairs(params);
        ser.finish()
    };
    if url.scheme() == "file" {
        return format!("file://{path}");
    }
    format!("{host}{port}{path}{query}")
}

struct Acc {
    url: url::Url,
    title: Option<(usize, String)>,
    snippet: String,
    published: Option<String>,
    content: Option<String>,
    providers: Vec<ProviderName>,
    score: f64,
    first_seen: usize,
    /// How good `url` is to cite (see `works::Work::quality`); a better mirror replaces it.
    url_quality: u8,
}

/// Merges each provider's hits (in that provider's rank order) into at most `max` sources, best first.
/// Hits whose URL is not an http(s) link (or, for `notes`, a `file:` link) are dropped here.
pub fn merge(results: &[(ProviderName, Vec<Hit>)], max: usize) -> Vec<Source> {
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut accs: Vec<Acc> = Vec::new();
    for (provider, hits) in results {
        let mut rank = 0;
        for hit in hits.iter().take(MAX_HITS_PER_PROVIDER) {
            let url = if *provider == ProviderName::Notes {
                url::Url::parse(hit.url.trim())
                    .ok()
                    .filter(|u| u.scheme() == "file")
            } else {
                sanitize::web_url(&hit.url)
            };
            let Some(url) = url else {
                tracing::debug!(%provider, "dropped a result whose URL is not a web link");
                continue;
            };
            rank += 1;
            // Mirrors of one paper (arXiv versions and formats, a DOI at the resolver and the
            // publisher) are one source, cited at the best of their URLs.
            let (key, cite, quality) = match super::works::identify(&url) {
                Some(w) => (w.key, w.url, w.quality),
                None => (normalize(&url), clean_url(&url), 0),
            };
            let title = hit
                .title
                .as_deref()
                .map(|t| sanitize::clean_text(bounded(t, TITLE_CHARS), TITLE_CHARS))
                .filter(|t| !t.is_empty());
            let snippet = hit
                .snippet
                .as_deref()
                .map(|s| sanitize::clean_text(bounded(s, SNIPPET_CHARS), SNIPPET_CHARS))
                .unwrap_or_default();
            let idx = *by_key.entry(key).or_insert_with(|| {
                accs.push(Acc {
                    url: cite.clone(),
                    url_quality: quality,
                    title: None,
                    snippet: String::new(),
                    published: None,
                    content: None,
                    providers: Vec::new(),
                    score: 0.0,
                    first_seen: accs.len(),
                });
                accs.len() - 1
            });
            let acc = &mut accs[idx];
            if acc.providers.contains(provider) {
                continue; // the same page twice from one provider counts once, at its best rank
            }
            acc.providers.push(*provider);
            acc.score += 1.0 / (RRF_K + rank as f64);
            if quality > acc.url_quality {
                acc.url = cite;
                acc.url_quality = quality;
            }
            if url.scheme() == "https" && acc.url.scheme() == "http" {
                let _ = acc.url.set_scheme("https");
            }
            if let Some(t) = title
                && acc.title.as_ref().is_none_or(|(r, _)| rank < *r)
            {
                acc.title = Some((rank, t));
            }
            if snippet.chars().count() > acc.snippet.chars().count() {
                acc.snippet = snippet;
            }
            if acc.published.is_none() {
                acc.published = hit
                    .published
                    .as_deref()
                    .map(|p| sanitize::clean_text(bounded(p, PUBLISHED_CHARS), PUBLISHED_CHARS))
                    .filter(|p| !p.is_empty());
            }
            if let Some(c) = &hit.content
                && acc.content.as_ref().is_none_or(|old| c.len() > old.len())
            {
                acc.content = Some(sanitize::clean_text(
                    bounded(c, CONTENT_CHARS),
                    CONTENT_CHARS,
                ));
            }
        }
    }
    accs.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.providers.len().cmp(&a.providers.len()))
            .then(a.first_seen.cmp(&b.first_seen))
    });
    accs.into_iter()
        .take(max)
        .enumerate()
        .map(|(i, a)| {
            let title = a.title.map(|(_, t)| t).unwrap_or_else(|| title_for(&a.url));
            Source {
                n: i + 1,
                url: a.url.to_string(),
                title,
                snippet: a.snippet,
                providers: a.providers,
                published: a.published,
                score: a.score,
                content: a.content,
                read: None,
                passages: Vec::new(),
            }
        })
        .collect()
}

fn title_for(url: &url::Url) -> String {
    if url.scheme() == "file" {
        return url
            .to_file_path()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| url.to_string());
    }
    sanitize::title_from_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(url: &str, title: Option<&str>) -> Hit {
        Hit {
            url: url.into(),
            title: title.map(Into::into),
            ..Hit::default()
        }
    }

    #[test]
    fn variants_of_one_page_fold_into_one_source() {
        let results = vec![
            (
                ProviderName::Tavily,
                vec![hit("https://www.example.com/post/", Some("Post"))],
            ),
            (
                ProviderName::Brave,
                vec![hit(
                    "http://example.com/post?utm_source=x&fbclid=y#top",
                    None,
                )],
            ),
            (
                ProviderName::Exa,
                vec![hit("https://example.com/post", Some("Post (Exa)"))],
            ),
        ];
        let merged = merge(&results, 10);
        assert_eq!(merged.len(), 1);
        assert_eq!(
            merged[0].providers,
            vec![ProviderName::Tavily, ProviderName::Brave, ProviderName::Exa]
        );
        assert_eq!(merged[0].title, "Post");
    }

    #[test]
    fn meaningful_query_is_kept_and_distinguishes_pages() {
        let results = vec![(
            ProviderName::Hackernews,
            vec![
                hit(
                    "https://news.ycombinator.com/item?id=1&utm_medium=x",
                    Some("A"),
                ),
                hit("https://news.ycombinator.com/item?id=2", Some("B")),
            ],
        )];
        let merged = merge(&results, 10);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].url, "https://news.ycombinator.com/item?id=1");
    }

    #[test]
    fn agreement_outranks_a_single_first_place() {
        let results = vec![
            (
                ProviderName::Tavily,
                vec![
                    hit("https://a.com/", Some("A")),
                    hit("https://b.com/", Some("B")),
                ],
            ),
            (
                ProviderName::Brave,
                vec![
                    hit("https://c.com/", Some("C")),
                    hit("https://b.com/", Some("B")),
                ],
            ),
        ];
        let merged = merge(&results, 10);
        assert_eq!(merged[0].title, "B");
        assert_eq!(
            merged.iter().map(|s| s.n).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn mirrors_of_one_paper_fold_into_one_source_at_its_best_url() {
        let results = vec![
            (
                ProviderName::Arxiv,
                vec![hit("http://arxiv.org/abs/2401.01234v2", Some("A paper"))],
            ),
            (
                ProviderName::Tavily,
                vec![
                    hit("https://arxiv.org/pdf/2401.01234v1", Some("A paper (PDF)")),
                    hit(
                        "https://doi.org/10.1145/3597503.3639187",
                        Some("Other work"),
                    ),
                ],
            ),
            (
                ProviderName::Exa,
                vec![hit(
                    "https://dl.acm.org/doi/10.1145/3597503.3639187",
                    Some("Other work at ACM"),
                )],
            ),
        ];
        let sources = merge(&results, 10);
        assert_eq!(sources.len(), 2, "{sources:#?}");
        let arxiv = sources.iter().find(|s| s.url.contains("arxiv")).unwrap();
        assert_eq!(arxiv.url, "https://arxiv.org/abs/2401.01234");
        assert_eq!(
            arxiv.providers,
            vec![ProviderName::Arxiv, ProviderName::Tavily]
        );
        let doi = sources.iter().find(|s| !s.url.contains("arxiv")).unwrap();
        assert_eq!(doi.url, "https://dl.acm.org/doi/10.1145/3597503.3639187");
        assert_eq!(doi.providers, vec![ProviderName::Tavily, ProviderName::Exa]);
    }
}
