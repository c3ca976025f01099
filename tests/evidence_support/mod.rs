//! Loopback pages for the reading stage's tests: a page server, a canary that counts every TCP
//! connection made to it, and a resolver that answers from a table (so no lookup leaves the machine).
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response, Uri};
use conductor::evidence::fetch::{Lookup, LookupError};
use conductor::evidence::{FetchConfig, Fetcher};
use futures::future::BoxFuture;
use tokio::sync::Notify;

/// A page server on 127.0.0.1: `page(path, headers)` answers each request.
pub struct Site {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
}

impl Site {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub async fn serve<F, Fut>(page: F) -> Site
where
    F: Fn(String, HeaderMap) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let hits: Arc<AtomicUsize> = Arc::default();
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let page = page.clone();
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            page(uri.path().to_string(), headers).await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Site { addr, hits }
}

pub fn html(body: impl Into<Body>) -> Response<Body> {
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .body(body.into())
        .unwrap()
}

pub fn status(code: u16, content_type: &str, body: impl Into<Body>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

pub fn redirect(to: &str) -> Response<Body> {
    Response::builder()
        .status(302)
        .header("location", to)
        .body(Body::empty())
        .unwrap()
}

/// A TCP listener on 127.0.0.1 that records every connection made to it and serves nothing.
pub struct Canary {
    pub addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    notify: Arc<Notify>,
}

impl Canary {
    pub async fn start() -> Canary {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let notify = Arc::new(Notify::new());
        let (p, n) = (peers.clone(), notify.clone());
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                p.lock().unwrap().push(peer);
                n.notify_waiters();
                drop(stream);
            }
        });
        Canary {
            addr,
            peers,
            notify,
        }
    }

    /// Connections made to the canary so far. It connects once itself and waits until that probe is
    /// accepted: the listener accepts in arrival order, so every earlier connection is counted by then.
    pub async fn connections(&self) -> usize {
        let probe = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let me = probe.local_addr().unwrap();
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let peers = self.peers.lock().unwrap();
                if peers.contains(&me) {
                    return peers.len() - 1;
                }
            }
            notified.await;
        }
    }
}

/// A resolver answering from a table; any other name does not exist.
pub struct FakeDns(pub HashMap<String, Result<Vec<IpAddr>, LookupError>>);

impl Lookup for FakeDns {
    fn lookup(&self, host: &str) -> BoxFuture<'static, Result<Vec<IpAddr>, LookupError>> {
        let answer = self
            .0
            .get(host)
            .cloned()
            .unwrap_or(Err(LookupError::NotFound));
        Box::pin(async move { answer })
    }
}

/// A fetcher that may reach exactly `allow`, resolving names from `dns` only.
pub fn fetcher_with(
    allow: &[SocketAddr],
    dns: &[(&str, Result<Vec<IpAddr>, LookupError>)],
) -> Fetcher {
    Fetcher::new(FetchConfig {
        allow: allow.to_vec(),
        lookup: Some(Arc::new(FakeDns(
            dns.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ))),
        ..FetchConfig::default()
    })
}

pub fn fetcher(allow: &[SocketAddr]) -> Fetcher {
    fetcher_with(allow, &[])
}

/// The key passage of [`ARTICLE`], as it reads on the page (whitespace normalised).
pub const KEY_PASSAGE: &str = "The multi-threaded scheduler uses work stealing: an idle worker takes tasks from the queues of busy workers, which keeps every core busy without a central queue.";

/// An article page with the furniture of a real one: navigation, a cookie banner, a sidebar of related
/// articles, comments and a footer, several of which mention the topic.
pub const ARTICLE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>How Tokio schedules tasks | Example Engineering Blog</title></head>
<body>
<header class="site-header">
  <nav class="menu">
    <ul>
      <li><a href="/">Home</a></li>
      <li><a href="/tokio-scheduler-tutorial">Tokio scheduler tutorial</a></li>
      <li><a href="/work-stealing-explained">Work stealing explained in five minutes</a></li>
      <li><a href="/subscribe">Subscribe to our newsletter</a></li>
    </ul>
  </nav>
</header>
<div class="cookie-banner" id="gdpr">We use cookies to improve the scheduler of your visits. Accept all cookies?</div>
<main>
<article class="post">
  <h1>How Tokio schedules tasks</h1>
  <p class="byline">By Jane Doe, 3 March 2024</p>
  <p>Tokio is an asynchronous runtime for the Rust programming language. It provides the building blocks
  needed for writing network applications, and it is used in production by many companies.</p>
  <p>The multi-threaded scheduler uses   work stealing: an idle worker takes tasks from the queues of busy
  workers, which keeps every core busy without a central queue. Each worker has a local run queue
  with a fixed capacity.</p>
  <p>A global injection queue receives tasks spawned from outside the runtime, and workers check it
  periodically so that no task waits forever. When a task wakes up, it is pushed to the queue of the worker
  that woke it, which keeps related tasks on the same core and their data in the same cache.</p>
  <p>Blocking work does not belong on these workers: it goes to a separate pool of threads, sized on
  demand, so that a slow file read never stalls the tasks that are ready to run.</p>
</article>
<aside class="sidebar related">
  <h3>Related articles</h3>
  <ul>
    <li><a href="/go">Work stealing in the Go scheduler, and why Tokio copied it</a></li>
    <li><a href="/rayon">Rayon's work stealing scheduler for data parallelism</a></li>
  </ul>
</aside>
<section class="comments" id="comments">
  <h3>Comments</h3>
  <div class="comment"><p>Great post! Does the Tokio scheduler use work stealing on a single thread too?</p></div>
</section>
</main>
<footer class="site-footer"><p>Copyright 2024 Example Engineering Blog. Tokio scheduler posts every week.</p></footer>
</body>
</html>"#;

/// Words that appear only in the page's furniture, never in the article.
pub const FURNITURE: &[&str] = &[
    "Tokio scheduler tutorial",
    "five minutes",
    "newsletter",
    "Accept all cookies",
    "Related articles",
    "Go scheduler",
    "Rayon",
    "Great post",
    "Copyright",
];

/// A streamed HTML page of almost `total` bytes: the article first, then filler paragraphs.
pub fn huge_page(total: usize) -> Response<Body> {
    let head = Bytes::from(
        ARTICLE
            .replace("</main>", "")
            .replace("</body>\n</html>", ""),
    );
    let filler = Bytes::from(
        "<p>Filler paragraph of a very long page, nothing to do with the subject at all.</p>\n"
            .repeat(800),
    );
    // At most `total` bytes in all: a 3 MiB page is not cut by a 3 MiB cap.
    let n = (total - head.len()) / filler.len();
    let chunks = std::iter::once(head).chain(std::iter::repeat_n(filler, n));
    Response::builder()
        .header("content-type", "text/html")
        .body(Body::from_stream(futures::stream::iter(
            chunks.map(Ok::<_, std::io::Error>),
        )))
        .unwrap()
}
