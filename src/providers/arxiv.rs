//! arXiv export API (key-less): an Atom feed. Errors come back as a feed whose one entry is titled "Error".

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use quick_xml::Reader;
use quick_xml::events::Event;

use super::{Found, Hit, Provider, ProviderError, Query};
use crate::config::ProviderName;
use crate::net::{Http, Request};

pub struct Arxiv {
    pub url: url::Url,
}

impl Provider for Arxiv {
    fn name(&self) -> ProviderName {
        ProviderName::Arxiv
    }

    fn search<'a>(
        &'a self,
        http: &'a Http,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Found, ProviderError>> {
        async move {
            let mut url = self.url.clone();
            url.query_pairs_mut()
                .append_pair("search_query", &search_query(&query.text))
                .append_pair("start", "0")
                .append_pair("max_results", &query.max_results.clamp(1, 50).to_string())
                .append_pair("sortBy", "relevance")
                .append_pair("sortOrder", "descending");
            let resp = http.send(&Request::get(url), query.deadline).await?;
            parse_feed(&resp.body)
        }
        .map_ok(Found::from)
        .boxed()
    }
}

/// `all:word AND all:word …`: every word must match somewhere, which ranks far better than a phrase.
fn search_query(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .take(12)
        .map(|w| format!("all:{w}"))
        .collect();
    if words.is_empty() {
        format!("all:\"{}\"", text.replace('"', ""))
    } else {
        words.join(" AND ")
    }
}

#[derive(Default)]
struct Entry {
    id: String,
    title: String,
    summary: String,
    published: String,
    alternate: Option<String>,
}

fn slot<'e>(entry: &'e mut Entry, field: &str) -> &'e mut String {
    match field {
        "id" => &mut entry.id,
        "title" => &mut entry.title,
        "summary" => &mut entry.summary,
        _ => &mut entry.published,
    }
}

/// Parses an arXiv Atom feed into hits.
pub fn parse_feed(xml: &[u8]) -> Result<Vec<Hit>, ProviderError> {
    let start = xml
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if xml[start..].starts_with(b"<!DOCTYPE html") || xml[start..].starts_with(b"<html") {
        return Err(ProviderError::Unexpected(
            "HTML instead of an Atom feed".into(),
        ));
    }
    let mut reader = Reader::from_reader(xml);
    // No trimming: it would eat the spaces around entity references ("A &amp; B").
    reader.config_mut().trim_text(false);
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    let mut field: Option<&'static str> = None;
    let mut saw_feed = false;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| ProviderError::Unexpected(format!("malformed Atom feed: {e}")))?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                b"feed" => saw_feed = true,
                b"entry" => current = Some(Entry::default()),
                b"id" if current.is_some() => field = Some("id"),
                b"title" if current.is_some() => field = Some("title"),
                b"summary" if current.is_some() => field = Some("summary"),
                b"published" if current.is_some() => field = Some("published"),
                _ => field = None,
            },
            Event::Empty(e) if e.local_name().as_ref() == b"link" => {
                if let Some(entry) = current.as_mut() {
                    let mut rel = None;
                    let mut href = None;
                    for attr in e.attributes().flatten() {
                        let value = attr.unescape_value().map(|v| v.into_owned()).ok();
                        match attr.key.local_name().as_ref() {
                            b"rel" => rel = value,
                            b"href" => href = value,
                            _ => {}
                        }
                    }
                    if rel.as_deref() == Some("alternate") {
                        entry.alternate = href;
                    }
                }
            }
            Event::Text(t) => {
                if let (Some(entry), Some(f)) = (current.as_mut(), field) {
                    let text = t.decode().map(|c| c.into_owned()).unwrap_or_default();
                    slot(entry, f).push_str(&text);
                }
            }
            // Entity and character references arrive as their own events.
            Event::GeneralRef(r) => {
                if let (Some(entry), Some(f)) = (current.as_mut(), field) {
                    let name = r.decode().map(|c| c.into_owned()).unwrap_or_default();
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        _ => {
                            quick_xml::escape::resolve_predefined_entity(&name).map(str::to_string)
                        }
                    };
                    slot(entry, f).push_str(&resolved.unwrap_or_default());
                }
            }
            Event::CData(t) => {
                if let (Some(entry), Some("summary")) = (current.as_mut(), field) {
                    entry.summary.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"entry" => {
                    if let Some(entry) = current.take() {
                        entries.push(entry);
                    }
                }
                _ => field = None,
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_feed {
        return Err(ProviderError::Unexpected("not an Atom feed".into()));
    }
    if let [only] = entries.as_slice()
        && only.title.trim() == "Error"
    {
        return Err(ProviderError::Unexpected(format!(
            "arXiv error: {}",
            only.summary.trim()
        )));
    }
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let id = e.id.trim().to_string();
            let url = e.alternate.or_else(|| (!id.is_empty()).then_some(id))?;
            // arXiv serves every page over https; its feed still says http.
            let url = match url.strip_prefix("http://arxiv.org/") {
                Some(rest) => format!("https://arxiv.org/{rest}"),
                None => url,
            };
            Some(Hit {
                url,
                title: Some(e.title),
                snippet: Some(e.summary.clone()),
                published: Some(e.published.trim().to_string()).filter(|p| !p.is_empty()),
                content: Some(e.summary),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">ArXiv Query</title>
  <entry>
    <id>http://arxiv.org/abs/2101.00001v1</id>
    <published>2021-01-01T00:00:00Z</published>
    <title>Async
      Runtimes &amp; Schedulers</title>
    <summary>We study &lt;b&gt;work stealing&lt;/b&gt;.</summary>
    <link href="http://arxiv.org/abs/2101.00001v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2101.00001v1" rel="related" type="application/pdf"/>
  </entry>
</feed>"#;

    #[test]
    fn parses_entries_with_entities_and_https_links() {
        let hits = parse_feed(FEED.as_bytes()).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].url, "https://arxiv.org/abs/2101.00001v1");
        assert!(
            hits[0]
                .title
                .as_deref()
                .unwrap()
                .contains("Runtimes & Schedulers")
        );
        assert_eq!(
            hits[0].snippet.as_deref().map(str::trim),
            Some("We study <b>work stealing</b>.")
        );
        assert_eq!(hits[0].published.as_deref(), Some("2021-01-01T00:00:00Z"));
    }

    #[test]
    fn an_error_feed_and_html_are_errors() {
        let err = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/api/errors#x</id>
            <title>Error</title><summary>incorrect id format</summary></entry></feed>"#;
        assert_eq!(
            parse_feed(err.as_bytes()).unwrap_err().to_string(),
            "unexpected response: arXiv error: incorrect id format"
        );
        assert!(parse_feed(b"<!DOCTYPE html><html></html>").is_err());
    }
}
