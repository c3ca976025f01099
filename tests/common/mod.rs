//! Loopback stand-ins for the providers: HTTP servers on 127.0.0.1 that answer in each provider's
//! documented format, and record what they were asked. Nothing in the tests reaches the internet.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use serde_json::{Value, json};

/// A request as the stand-in saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What the stand-in answers.
pub enum Reply {
    Json(StatusCode, Value),
    Raw {
        status: StatusCode,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Waits, then answers.
    Delayed(Duration, Box<Reply>),
    /// Never answers (until the client gives up).
    Hang,
    /// A body of `total` bytes streamed in 64 KiB chunks, without a Content-Length; counts what was pulled.
    Stream {
        total: u64,
        pulled: Arc<AtomicUsize>,
    },
}

pub fn ok(v: Value) -> Reply {
    Reply::Json(StatusCode::OK, v)
}

pub fn status(code: u16, v: Value) -> Reply {
    Reply::Json(StatusCode::from_u16(code).unwrap(), v)
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A loopback HTTP server. `handler(request, n)` gets each request with its 0-based number.
pub struct Loopback {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// How many requests have arrived, for tests that wait for one (see `wait_for_requests`).
    arrived: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Loopback {
    pub async fn start(
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> Loopback {
        let handler: Arc<Handler> = Arc::new(handler);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen2 = seen.clone();
        let arrived = Arc::new(tokio::sync::watch::Sender::new(0));
        let arrived2 = arrived.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let handler = handler.clone();
                let seen = seen2.clone();
                let arrived = arrived2.clone();
                async move {
                    let query = uri
                        .query()
                        .map(|q| {
                            url::form_urlencoded::parse(q.as_bytes())
                                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let req = Seen {
                        method,
                        path: uri.path().to_string(),
                        query,
                        headers,
                        body,
                    };
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push(req.clone());
                        arrived.send_replace(s.len());
                        s.len() - 1
                    };
                    respond(handler(&req, n)).await
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Loopback {
            addr,
            seen,
            arrived,
        }
    }

    /// Waits for the event itself: until the stand-in has received `n` requests.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.arrived.subscribe();
        let _ = rx.wait_for(|&count| count >= n).await;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn respond(
    reply: Reply,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
    Box::pin(async move {
        match reply {
            Reply::Json(status, v) => Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            Reply::Raw {
                status,
                headers,
                body,
            } => {
                let mut b = Response::builder().status(status);
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                b.body(Body::from(body)).unwrap()
            }
            Reply::Delayed(d, inner) => {
                tokio::time::sleep(d).await;
                respond(*inner).await
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Response::new(Body::empty())
            }
            Reply::Stream { total, pulled } => {
                let chunk = Bytes::from(vec![b' '; 64 * 1024]);
                let n = total / chunk.len() as u64;
                let stream = futures::stream::iter(0..n).map(move |_| {
                    pulled.fetch_add(chunk.len(), Ordering::SeqCst);
                    Ok::<_, std::io::Error>(chunk.clone())
                });
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from_stream(stream))
                    .unwrap()
            }
        }
    })
}

use futures::StreamExt as _;

// ---- Documented response shapes -------------------------------------------------------------------

/// Tavily `POST /search` response.
pub fn tavily_response(results: &[(Option<&str>, &str, &str)]) -> Value {
    json!({
        "query": "q",
        "follow_up_questions": null,
        "answer": null,
        "images": [],
        "results": results.iter().map(|(title, url, content)| json!({
            "title": title, "url": url, "content": content, "score": 0.9, "raw_content": null
        })).collect::<Vec<_>>(),
        "response_time": 0.5,
        "request_id": "r1"
    })
}

/// Brave `GET /res/v1/web/search` response.
pub fn brave_response(results: &[(&str, &str, &str)]) -> Value {
    json!({
        "type": "search",
        "query": {"original": "q", "more_results_available": true},
        "web": {
            "type": "search",
            "family_friendly": true,
            "results": results.iter().map(|(title, url, desc)| json!({
                "title": title, "url": url, "description": desc, "type": "search_result",
                "page_age": "2025-04-12T14:22:41",
                "meta_url": {"scheme": "https", "netloc": "x", "hostname": "x", "path": "/"}
            })).collect::<Vec<_>>()
        }
    })
}

/// Exa `POST /search` response (title optional).
pub fn exa_response(results: &[(Option<&str>, &str, &str)]) -> Value {
    json!({
        "requestId": "r1",
        "resolvedSearchType": "neural",
        "results": results.iter().map(|(title, url, hl)| {
            let mut r = json!({"id": url, "url": url, "publishedDate": "2024-05-01T00:00:00.000Z",
                               "highlights": [hl], "highlightScores": [0.5]});
            if let Some(t) = title { r["title"] = json!(t); }
            r
        }).collect::<Vec<_>>(),
        "costDollars": {"total": 0.005}
    })
}

/// Wikipedia Action API response to `generator=search&prop=extracts|info&inprop=url` (formatversion 2):
/// `(title, intro extract)` in search rank order. Like the real API, `pages` is not in rank order (here
/// it is sorted by page id, the last found first): each page's `index` is its rank. A search that finds
/// nothing generates no pages, and the answer has no `query` at all.
pub fn wikipedia_response(titles: &[(&str, &str)]) -> Value {
    let mut pages: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(i, (t, extract))| {
            json!({
                "pageid": 1000 - i, "ns": 0, "title": t, "index": i + 1,
                "contentmodel": "wikitext", "pagelanguage": "en", "pagelanguagehtmlcode": "en",
                "pagelanguagedir": "ltr", "touched": "2024-01-01T00:00:00Z", "lastrevid": 1, "length": 100,
                "fullurl": format!("https://en.wikipedia.org/wiki/{}", t.replace(' ', "_")),
                "editurl": "https://en.wikipedia.org/w/index.php?action=edit",
                "canonicalurl": "https://en.wikipedia.org/wiki/x",
                "extract": extract
            })
        })
        .collect();
    pages.reverse();
    if pages.is_empty() {
        return json!({"batchcomplete": true});
    }
    json!({"batchcomplete": true, "query": {"pages": pages}})
}

/// Hacker News Algolia response.
pub fn hn_response(hits: &[(&str, Option<&str>, &str)]) -> Value {
    json!({
        "hits": hits.iter().map(|(title, url, id)| json!({
            "objectID": id, "title": title, "url": url, "author": "a", "points": 42,
            "num_comments": 7, "story_text": null, "created_at": "2024-01-01T00:00:00Z",
            "created_at_i": 1704067200, "_tags": ["story"]
        })).collect::<Vec<_>>(),
        "nbHits": hits.len(), "page": 0, "nbPages": 1, "hitsPerPage": 20,
        "query": "q", "params": "", "processingTimeMS": 1, "exhaustiveNbHits": true
    })
}

/// SearXNG JSON response.
pub fn searxng_response(results: &[(&str, &str, &str)]) -> Value {
    json!({
        "query": "q",
        "results": results.iter().map(|(title, url, content)| json!({
            "url": url, "title": title, "content": content, "engine": "duckduckgo",
            "engines": ["duckduckgo"], "positions": [1], "score": 1.0, "category": "general",
            "publishedDate": null
        })).collect::<Vec<_>>(),
        "answers": [], "corrections": [], "infoboxes": [], "suggestions": [],
        "unresponsive_engines": []
    })
}

/// An arXiv Atom feed.
pub fn arxiv_feed(entries: &[(&str, &str, &str)]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query</title>
  <opensearch:totalResults>1</opensearch:totalResults>
"#,
    );
    for (id, title, summary) in entries {
        xml.push_str(&format!(
            r#"  <entry>
    <id>http://arxiv.org/abs/{id}</id>
    <updated>2024-01-02T00:00:00Z</updated>
    <published>2024-01-01T00:00:00Z</published>
    <title>{title}</title>
    <summary>{summary}</summary>
    <author><name>A. Author</name></author>
    <link href="http://arxiv.org/abs/{id}" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/{id}" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="cs.PL" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
"#
        ));
    }
    xml.push_str("</feed>\n");
    xml
}

// ---- Running the CLI -------------------------------------------------------------------------------

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `conductor-lsp` with only the given environment (plus PATH), in `cwd`.
pub async fn run_cli(args: &[&str], env: &[(&str, String)], cwd: &std::path::Path) -> Run {
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_conductor-lsp"));
    cmd.args(args)
        .env_clear()
        // Fake results carry public URLs: nothing reads them (tests that read serve their own pages).
        .env("CONDUCTOR_READ", "0")
        // Runs of one test may go at once: each asks its stand-ins (tests/cache.rs turns the cache on).
        .env("CONDUCTOR_CACHE_HOURS", "0")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("XDG_CONFIG_HOME", cwd.join("config"))
        .env("CONDUCTOR_CACHE_DIR", cwd.join("cache"))
        .current_dir(cwd)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the CLI finished within 60 s")
        .expect("the CLI ran");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}
