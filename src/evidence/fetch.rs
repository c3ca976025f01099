//! Fetching web pages for the reading stage, safely.
//!
//! Page URLs come from search results, so they are hostile. [`Fetcher`] owns a reqwest client of its own
//! (not [`crate::net::Http`]: pages need no retries, are truncated rather than refused at the size cap,
//! and must never reach a private address), with:
//! - a resolver ([`GuardedResolver`]) that hands the connector only public addresses, so a name that
//!   resolves to loopback or a private network is never connected to, and `localhost` is never looked up;
//! - [`guard::check_url`] on the URL and on every redirect target (at most 5): http(s) only, no
//!   credentials, and IP literals (which reqwest connects to without resolving) public or listed in
//!   `CONDUCTOR_FETCH_ALLOW`;
//! - the address the response actually came from checked once more, as a last line;
//! - the same User-Agent as every other request, no proxy, connect and per-page timeouts bounded by the
//!   research deadline, at most 2 requests at a time per host, and a size cap enforced while streaming
//!   (a longer page is cut there and read as far as it got);
//! - only text/html, application/xhtml+xml, text/plain and markdown are read; the charset comes from the
//!   header, a byte-order mark or `<meta charset>`; gzip and brotli are decoded.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use encoding_rs::Encoding;
use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tokio::time::Instant;
use url::Url;

use super::guard::{self, Refusal};
use super::{NotRead, ReadStatus};
use crate::config::{self, ConfigError, Env};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
/// A page larger than this is cut here (and read as far as it got).
pub const DEFAULT_MAX_BODY: usize = 3 * 1024 * 1024;
/// How much of an error page (401/403/429/5xx) is read to tell a bot check from a plain refusal.
const ERROR_BODY_PEEK: usize = 64 * 1024;
/// Bytes of page bodies held at once in the whole process, while they download and until their text is
/// extracted. A body reserves its `Content-Length` (or the cap, when the length is unknown) before it is
/// read, so a reserved body can always finish: the budget bounds memory without ever deadlocking.
pub const BODY_BUDGET: usize = 12 * 1024 * 1024;
static BODIES: Semaphore = Semaphore::const_new(BODY_BUDGET / 1024);

/// The detail of a page whose host does not exist.
pub const HOST_NOT_FOUND: &str = "host not found";

/// How page fetching behaves. [`FetchConfig::from_env`] reads `CONDUCTOR_FETCH_ALLOW`.
#[derive(Clone)]
pub struct FetchConfig {
    /// Socket addresses that may be reached although they are loopback or private (tests only): an URL
    /// whose host is exactly this IP literal and whose port is this port.
    pub allow: Vec<SocketAddr>,
    pub max_body: usize,
    pub connect_timeout: Duration,
    /// Upper bound for one page, even when the deadline is further away.
    pub page_timeout: Duration,
    /// Requests at a time to one host.
    pub per_host: usize,
    /// How names are resolved; `None`: the system resolver. The guard filters whatever it answers.
    pub lookup: Option<Arc<dyn Lookup>>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            allow: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            connect_timeout: Duration::from_secs(5),
            page_timeout: Duration::from_secs(15),
            per_host: 2,
            lookup: None,
        }
    }
}

impl std::fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchConfig")
            .field("allow", &self.allow)
            .field("max_body", &self.max_body)
            .field("page_timeout", &self.page_timeout)
            .field("per_host", &self.per_host)
            .finish_non_exhaustive()
    }
}

impl FetchConfig {
    /// The defaults, with `CONDUCTOR_FETCH_ALLOW` from `env`.
    pub fn from_env(env: &Env) -> Result<FetchConfig, ConfigError> {
        Ok(FetchConfig {
            allow: config::fetch_allow(env)?,
            ..FetchConfig::default()
        })
    }
}

/// Why a name lookup gave no address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The name does not exist (NXDOMAIN, or no address for it): the link is dead.
    #[error("host not found")]
    NotFound,
    /// Anything else (no network, a resolver timeout): the page is not read, but not dead.
    #[error("DNS lookup failed: {0}")]
    Failed(String),
}

/// Name resolution, before the guard filters the answer. The system resolver by default; tests supply
/// their own so that no lookup leaves the machine.
pub trait Lookup: Send + Sync {
    fn lookup(&self, host: &str) -> BoxFuture<'static, Result<Vec<IpAddr>, LookupError>>;
}

/// `getaddrinfo`, on tokio's blocking pool.
struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> BoxFuture<'static, Result<Vec<IpAddr>, LookupError>> {
        let host = host.to_string();
        Box::pin(async move {
            match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
                Err(e) => Err(classify_lookup_error(&e)),
            }
        })
    }
}

/// std reports `getaddrinfo` failures only as text (`gai_strerror`): EAI_NONAME and EAI_NODATA mean the
/// name does not exist; anything else (EAI_AGAIN when offline, ...) is a failure, never a dead link.
fn classify_lookup_error(e: &std::io::Error) -> LookupError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if [
        "name or service not known",
        "no address associated with hostname",
        "nodename nor servname provided",
        "no such host",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        LookupError::NotFound
    } else {
        LookupError::Failed(msg)
    }
}

/// Why the resolver gave the connector nothing: carried through reqwest's error chain to [`fetch`].
#[derive(Debug, thiserror::Error)]
enum ResolveRefusal {
    #[error("{0}")]
    Lookup(LookupError),
    #[error("refused: the host resolves only to private or local addresses")]
    Private,
}

/// The resolver page fetching uses: looks the name up, then keeps only public addresses.
struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            if guard::is_local_name(&host) {
                return Err(Box::new(ResolveRefusal::Private) as _);
            }
            let ips = lookup.lookup(&host).await.map_err(ResolveRefusal::Lookup)?;
            let public: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| guard::is_public(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if public.is_empty() {
                return Err(Box::new(ResolveRefusal::Private) as _);
            }
            tracing::debug!(host, addrs = public.len(), "resolved");
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// What a page is, by its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Html,
    Plain,
    Markdown,
}

/// A page as fetched: decoded text, not yet extracted.
#[derive(Debug)]
pub struct Fetched {
    /// Where the last redirect led.
    pub final_url: Url,
    pub kind: Kind,
    pub body: String,
    /// The page was longer than the cap and was cut there.
    pub truncated: bool,
    /// This body's share of [`BODY_BUDGET`], given back when the page is dropped.
    _budget: SemaphorePermit<'static>,
}

/// Fetches pages through the guard. Cheap to share behind an `Arc`; one per process is enough.
pub struct Fetcher {
    client: reqwest::Client,
    config: FetchConfig,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    pub fn new(config: FetchConfig) -> Fetcher {
        // rustls needs a process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let allow = Arc::new(config.allow.clone());
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds the URLs already requested: the first one, then each redirect target.
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refusal::TooManyRedirects(MAX_REDIRECTS));
            }
            match guard::check_url(attempt.url(), &allow) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        let lookup = config
            .lookup
            .clone()
            .unwrap_or_else(|| Arc::new(SystemLookup));
        let client = reqwest::Client::builder()
            .user_agent(crate::net::USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .redirect(redirects)
            .dns_resolver(Arc::new(GuardedResolver { lookup }))
            .no_proxy()
            .build()
            .expect("the page client's fixed configuration is valid");
        Fetcher {
            client,
            config,
            hosts: Mutex::default(),
        }
    }

    /// The default configuration with `CONDUCTOR_FETCH_ALLOW` from `env`.
    pub fn from_env(env: &Env) -> Result<Fetcher, ConfigError> {
        Ok(Fetcher::new(FetchConfig::from_env(env)?))
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// A permit to send one request to `host`; at most `per_host` are out at a time.
    async fn host_permit(&self, host: &str) -> OwnedSemaphorePermit {
        let semaphore = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            // Forget hosts nobody is waiting on, so the map stays as small as the work in flight.
            hosts.retain(|_, s| Arc::strong_count(s) > 1);
            hosts
                .entry(host.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_host.max(1))))
                .clone()
        };
        semaphore
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Fetches `raw_url` and decodes it, or says why not. Never past `deadline`.
    ///
    /// The page holds its share of the process-wide [`BODY_BUDGET`] until it is dropped: extract it and
    /// let it go, rather than holding many pages while fetching more (they would wait for each other).
    pub async fn fetch(&self, raw_url: &str, deadline: Instant) -> Result<Fetched, NotRead> {
        let url = Url::parse(raw_url.trim())
            .map_err(|_| NotRead::new(ReadStatus::Skipped, "not a valid URL"))?;
        guard::check_url(&url, &self.config.allow).map_err(refused)?;
        let host = url.host_str().unwrap_or_default().to_string();
        let page_deadline = deadline.min(Instant::now() + self.config.page_timeout);
        let Ok(_permit) = tokio::time::timeout_at(page_deadline, self.host_permit(&host)).await
        else {
            return Err(NotRead::new(
                ReadStatus::Skipped,
                "deadline reached before the page could be requested",
            ));
        };
        match tokio::time::timeout_at(page_deadline, self.get(url)).await {
            Ok(result) => result,
            Err(_) => Err(NotRead::new(ReadStatus::Failed, "timed out")),
        }
    }

    async fn get(&self, url: Url) -> Result<Fetched, NotRead> {
        let resp = self
            .client
            .get(url)
            .header(
                ACCEPT,
                "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.1",
            )
            .send()
            .await
            .map_err(send_error)?;
        if let Some(addr) = resp.remote_addr()
            && !guard::is_public(addr.ip())
            && !self.config.allow.contains(&addr)
        {
            // Unreachable through the resolver and the URL checks; kept as the last line of defence.
            tracing::warn!("a page response came from a private address; discarded");
            return Err(refused(Refusal::PrivateAddress));
        }
        let final_url = resp.url().clone();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if matches!(status, 404 | 410) {
            return Err(NotRead::new(ReadStatus::Dead, format!("HTTP {status}")));
        }
        if resp.status().is_redirection() {
            // A redirect reqwest did not follow: its target is not an http(s) URL.
            return Err(NotRead::new(
                ReadStatus::Failed,
                format!("HTTP {status}: redirect not followed"),
            ));
        }
        if !resp.status().is_success() {
            // A bot check often answers 403 or 503: look at the page before calling it a plain refusal.
            let (peek, _) = read_capped(resp, ERROR_BODY_PEEK, 16 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&peek);
            if super::extract::is_challenge_page(&text) {
                return Err(NotRead::new(ReadStatus::Blocked, "bot check"));
            }
            return Err(NotRead::new(ReadStatus::Failed, format!("HTTP {status}")));
        }
        let media = media_type(&headers);
        let declared_kind = match media.as_deref() {
            Some("text/html" | "application/xhtml+xml") => Some(Kind::Html),
            Some("text/plain") => Some(Kind::Plain),
            Some("text/markdown" | "text/x-markdown") => Some(Kind::Markdown),
            Some("application/pdf") => {
                return Err(NotRead::new(ReadStatus::Skipped, "PDF"));
            }
            // No type at all: sniff the body below.
            None => None,
            Some(other) => {
                return Err(NotRead::new(
                    ReadStatus::Skipped,
                    format!(
                        "not a text page ({})",
                        crate::sanitize::clean_text(other, 60)
                    ),
                ));
            }
        };
        let cap = self.config.max_body.min(BODY_BUDGET);
        let reserve = resp.content_length().map_or(cap, |n| (n as usize).min(cap));
        let budget = BODIES
            .acquire_many(reserve.div_ceil(1024).max(1) as u32)
            .await
            .expect("the semaphore is never closed");
        let (body, truncated) = read_capped(resp, cap, reserve).await?;
        let kind = declared_kind.unwrap_or_else(|| sniff(&body));
        let body = decode(body, &headers, kind, truncated);
        Ok(Fetched {
            final_url,
            kind,
            body,
            truncated,
            _budget: budget,
        })
    }
}

fn refused(r: Refusal) -> NotRead {
    match r {
        Refusal::PrivateAddress | Refusal::Credentials => {
            NotRead::new(ReadStatus::Blocked, r.to_string())
        }
        Refusal::Scheme | Refusal::NoHost => NotRead::new(ReadStatus::Skipped, r.to_string()),
        Refusal::TooManyRedirects(_) => NotRead::new(ReadStatus::Failed, r.to_string()),
    }
}

/// Turns a reqwest error into the reason a person reads, finding our own refusals in its source chain.
/// Never includes the URL (where a key or token could hide).
fn send_error(e: reqwest::Error) -> NotRead {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<Refusal>() {
            return refused(r.clone());
        }
        if let Some(r) = err.downcast_ref::<ResolveRefusal>() {
            return match r {
                ResolveRefusal::Lookup(LookupError::NotFound) => {
                    NotRead::new(ReadStatus::Dead, HOST_NOT_FOUND)
                }
                ResolveRefusal::Lookup(l @ LookupError::Failed(_)) => {
                    NotRead::new(ReadStatus::Failed, l.to_string())
                }
                ResolveRefusal::Private => NotRead::new(ReadStatus::Blocked, r.to_string()),
            };
        }
        source = err.source();
    }
    let e = e.without_url();
    let detail = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_redirect() {
        "too many or unsafe redirects".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        format!("network error: {e}")
    };
    NotRead::new(ReadStatus::Failed, detail)
}

/// The media type of `Content-Type`, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = v.split(';').next()?.trim().to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}

/// Reads at most `cap` bytes of the body, chunk by chunk; a longer body is cut at `cap` and the rest is
/// never pulled (dropping the response closes the connection).
/// `expected` sizes the buffer once (its pages become resident only as they are written), so a body is
/// never copied while it grows.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
    expected: usize,
) -> Result<(Vec<u8>, bool), NotRead> {
    let mut body = Vec::with_capacity(expected.min(cap));
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok((body, false)),
            Err(e) => return Err(send_error(e)),
        };
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
}

/// A body without a media type: markup if it starts with `<`, else plain text.
fn sniff(body: &[u8]) -> Kind {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &body[i..]);
    let start = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(start);
    if start.first() == Some(&b'<') {
        Kind::Html
    } else {
        Kind::Plain
    }
}

/// The charset: a byte-order mark, else the header's `charset`, else (HTML) `<meta charset>` in the first
/// 1024 bytes, else UTF-8 when the bytes are valid UTF-8 and windows-1252 when not (the web's fallback).
fn decode(body: Vec<u8>, headers: &HeaderMap, kind: Kind, truncated: bool) -> String {
    let (encoding, skip) = match Encoding::for_bom(&body) {
        Some((enc, len)) => (Some(enc), len),
        None => (None, 0),
    };
    let encoding = encoding
        .or_else(|| header_charset(headers))
        .or_else(|| (kind == Kind::Html).then(|| meta_charset(&body)).flatten());
    match encoding {
        Some(enc) if enc != encoding_rs::UTF_8 => enc
            .decode_without_bom_handling(&body[skip..])
            .0
            .into_owned(),
        Some(_) => utf8(body, skip, truncated),
        None => match std::str::from_utf8(&body) {
            Ok(_) => utf8(body, 0, truncated),
            Err(e) if truncated && e.error_len().is_none() => utf8(body, 0, truncated),
            Err(_) => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(&body)
                .0
                .into_owned(),
        },
    }
}

/// UTF-8 without copying when valid; a character cut by the size cap is dropped, other bad bytes become
/// U+FFFD.
fn utf8(mut body: Vec<u8>, skip: usize, truncated: bool) -> String {
    if skip > 0 {
        body.drain(..skip);
    }
    if truncated
        && let Err(e) = std::str::from_utf8(&body)
        && e.error_len().is_none()
    {
        body.truncate(e.valid_up_to());
    }
    match String::from_utf8(body) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn header_charset(headers: &HeaderMap) -> Option<&'static Encoding> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    v.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| Encoding::for_label(v.trim().trim_matches(['"', '\'']).as_bytes()))
            .flatten()
    })
}

/// `<meta charset="...">` or `<meta http-equiv="Content-Type" content="...; charset=...">` in the first
/// 1024 bytes (the HTML spec's prescan length). A declared UTF-16 means UTF-8 here, as the spec says.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(1024)];
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = find(&lower[from..], b"<meta") {
        let tag_start = from + i;
        let tag_end = find(&lower[tag_start..], b">").map_or(lower.len(), |j| tag_start + j);
        let tag = &lower[tag_start..tag_end];
        if let Some(c) = find(tag, b"charset") {
            let rest = &tag[c + b"charset".len()..];
            let rest = rest.trim_ascii_start();
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest = rest.trim_ascii_start();
                let rest = rest
                    .strip_prefix(b"\"")
                    .or_else(|| rest.strip_prefix(b"'"))
                    .unwrap_or(rest);
                let end = rest
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || b"-_:.".contains(b)))
                    .unwrap_or(rest.len());
                if let Some(enc) = Encoding::for_label(&rest[..end]) {
                    return Some(
                        if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                            encoding_rs::UTF_8
                        } else {
                            enc
                        },
                    );
                }
            }
        }
        from = tag_end;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn charsets_from_header_meta_bom_and_fallback() {
        // "café – naïve" in windows-1252 (0x96 is the en dash).
        let cp1252 = b"caf\xe9 \x96 na\xefve".to_vec();
        assert_eq!(
            decode(
                cp1252.clone(),
                &headers("text/plain; charset=windows-1252"),
                Kind::Plain,
                false
            ),
            "café – naïve"
        );
        let mut html = b"<html><head><meta charset=\"windows-1252\"></head><body>".to_vec();
        html.extend_from_slice(&cp1252);
        assert!(decode(html, &headers("text/html"), Kind::Html, false).contains("café – naïve"));
        let mut html =
            b"<meta http-equiv='Content-Type' content='text/html; charset=ISO-8859-1'>".to_vec();
        html.extend_from_slice(&cp1252);
        assert!(decode(html, &HeaderMap::new(), Kind::Html, false).contains("café – naïve"));
        // Undeclared and not UTF-8: the web's fallback.
        assert_eq!(
            decode(cp1252, &HeaderMap::new(), Kind::Plain, false),
            "café – naïve"
        );
        // A BOM wins over a wrong header.
        let bom = b"\xEF\xBB\xBFcaf\xC3\xA9".to_vec();
        assert_eq!(
            decode(
                bom,
                &headers("text/plain; charset=latin1"),
                Kind::Plain,
                false
            ),
            "café"
        );
        // A character cut by the size cap is dropped, not turned into U+FFFD.
        let cut = b"caf\xC3".to_vec();
        assert_eq!(decode(cut, &HeaderMap::new(), Kind::Plain, true), "caf");
    }

    #[test]
    fn lookup_errors_tell_missing_names_from_failures() {
        let nx = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert_eq!(classify_lookup_error(&nx), LookupError::NotFound);
        let again = std::io::Error::other(
            "failed to lookup address information: Temporary failure in name resolution",
        );
        assert!(matches!(
            classify_lookup_error(&again),
            LookupError::Failed(_)
        ));
    }

    #[test]
    fn bodies_without_a_type_are_sniffed() {
        assert_eq!(sniff(b"  <!doctype html><p>x"), Kind::Html);
        assert_eq!(sniff(b"\xEF\xBB\xBF<html>"), Kind::Html);
        assert_eq!(sniff(b"plain words"), Kind::Plain);
    }
}
