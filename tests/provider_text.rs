//! Provider text first (issue 11): each provider is asked for the text it can give, in the request field
//! its API documents, and the reading stage reads a source from that text instead of fetching the page.
//!
//! Each test runs the real binary (`research --format json`, reading on) against a loopback stand-in
//! answering in the provider's documented format, and gives the new text only when the request asks for
//! it, as the real API does. Result URLs that a link can point anywhere point at a canary on loopback that
//! `CONDUCTOR_FETCH_ALLOW` does not allow, and every test asserts the canary was never reached: reading from
//! provider text never connects. (Wikipedia's links always name en.wikipedia.org and a Hacker News text
//! post cites its discussion: their texts are long enough to be read, so nothing is fetched.)

mod common;

use common::*;
use conductor::providers::wikipedia::SNIPPET_CHARS;
use serde_json::{Value, json};

const TOPIC: &str = "tokio work stealing scheduler";

/// The sentence a passage must quote: it matches the topic best.
const KEY_SENTENCE: &str = "The Tokio scheduler uses work stealing: an idle worker steals tasks from a busy worker's queue.";

/// A page's text of well over 300 characters (the least provider text read instead of the page), about
/// the topic, with [`KEY_SENTENCE`] in the middle.
fn long_text(subject: &str) -> String {
    format!(
        "{subject} is discussed here at some length, so that the text is long enough to be read. \
         Runtimes for asynchronous Rust differ in how they share work between threads. {KEY_SENTENCE} \
         This keeps every core busy without a global lock on one shared queue. Other runtimes make \
         different choices, and the trade-offs are described in their documentation."
    )
}

/// A stand-in that only counts what reaches it: no test may ever connect to it.
async fn canary() -> Loopback {
    Loopback::start(|_, _| ok(json!({}))).await
}

/// `research TOPIC --format json` reading the top `read` sources, with only `env` (no fetch allowed to
/// loopback), as parsed JSON.
async fn research_json(read: usize, env: &[(&str, String)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut env = env.to_vec();
    env.push(("CONDUCTOR_READ", read.to_string()));
    let run = run_cli(
        &["research", TOPIC, "--format", "json", "--timeout", "20"],
        &env,
        dir.path(),
    )
    .await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn sources(v: &Value) -> &Vec<Value> {
    v["sources"].as_array().unwrap_or_else(|| panic!("{v}"))
}

/// The source was read from its provider's text, and its first passage quotes `quote`.
fn assert_read_from_provider(source: &Value, quote: &str) {
    assert_eq!(
        source["read"],
        json!({"status": "read", "via": "provider"}),
        "{source}"
    );
    let passage = source["passages"][0]["text"].as_str().unwrap_or_default();
    assert!(passage.contains(quote), "{source}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tavily_is_asked_for_raw_text_and_the_page_is_read_from_it() {
    let canary = canary().await;
    let page = format!("{}/tokio-scheduler", canary.url());
    let p = page.clone();
    let tavily = Loopback::start(move |seen, _| {
        // `raw_content` is null unless `include_raw_content` asks for it.
        let raw = match seen.json()["include_raw_content"].as_str() {
            Some("text") | Some("markdown") => json!(long_text("Tokio's scheduler")),
            _ => Value::Null,
        };
        ok(json!({
            "query": TOPIC, "follow_up_questions": null, "answer": null, "images": [],
            "results": [{"title": "How Tokio schedules tasks", "url": p,
                         "content": "Tokio's scheduler steals work.", "score": 0.9,
                         "raw_content": raw}],
            "response_time": 0.5, "usage": {"credits": 1}, "request_id": "r1"
        }))
    })
    .await;
    let v = research_json(
        1,
        &[
            ("TAVILY_API_KEY", "tvly-test-secret".into()),
            ("CONDUCTOR_PROVIDERS", "tavily".into()),
            ("CONDUCTOR_TAVILY_BASE_URL", tavily.url()),
        ],
    )
    .await;
    let body = tavily.requests()[0].json();
    assert_eq!(body["include_raw_content"], "text", "{body}");
    assert_eq!(body["search_depth"], "basic", "1 credit: {body}");
    let s = &sources(&v)[0];
    assert_eq!(s["url"], page.as_str());
    assert_read_from_provider(s, KEY_SENTENCE);
    assert_eq!(canary.count(), 0, "the page was fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brave_is_asked_for_extra_snippets_and_the_page_is_read_from_them() {
    let canary = canary().await;
    let page = format!("{}/tokio-scheduler", canary.url());
    let p = page.clone();
    let brave = Loopback::start(move |seen, _| {
        let mut result = json!({
            "title": "How Tokio schedules tasks", "url": p, "type": "search_result",
            "description": "Runtimes for asynchronous Rust share work between threads.",
            "page_age": "2025-04-12T14:22:41",
            "meta_url": {"scheme": "http", "netloc": "127.0.0.1", "hostname": "127.0.0.1", "path": "/"}
        });
        // `extra_snippets` come only when asked for.
        if seen.param("extra_snippets") == Some("true") {
            result["extra_snippets"] = json!([
                "Tokio's scheduler is discussed here at some length, so that the text is long enough.",
                KEY_SENTENCE,
                "This keeps every core busy without a global lock on one shared queue of tasks.",
                "Other runtimes make different choices, described in their documentation pages."
            ]);
        }
        ok(json!({
            "type": "search",
            "query": {"original": TOPIC, "more_results_available": false},
            "web": {"type": "search", "family_friendly": true, "results": [result]}
        }))
    })
    .await;
    let v = research_json(
        1,
        &[
            ("BRAVE_API_KEY", "brave-test-secret".into()),
            ("CONDUCTOR_PROVIDERS", "brave".into()),
            ("CONDUCTOR_BRAVE_BASE_URL", brave.url()),
        ],
    )
    .await;
    let req = &brave.requests()[0];
    assert_eq!(req.param("extra_snippets"), Some("true"));
    let s = &sources(&v)[0];
    assert_eq!(s["url"], page.as_str());
    // The description stays the snippet; the text is the description and the excerpts.
    assert_eq!(
        s["snippet"],
        "Runtimes for asynchronous Rust share work between threads."
    );
    assert_read_from_provider(s, KEY_SENTENCE);
    assert_eq!(canary.count(), 0, "the page was fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hacker_news_text_post_is_read_from_its_story_text() {
    let canary = canary().await;
    let link = format!("{}/linked-article", canary.url());
    // Algolia's story_text is HTML: paragraphs, entities, links.
    let story = format!(
        "I&#x27;ve been comparing runtimes for a while.<p>{}<p>See <a href=\"https:&#x2F;&#x2F;tokio.rs\">the docs</a>.",
        long_text("Tokio&#x27;s scheduler")
    );
    let l = link.clone();
    let hn = Loopback::start(move |_, _| {
        ok(json!({
            "hits": [
                {"objectID": "4242", "title": "Ask HN: How does Tokio's work stealing scheduler work?",
                 "url": null, "author": "a", "points": 42, "num_comments": 7, "story_text": story,
                 "created_at": "2024-01-01T00:00:00Z", "created_at_i": 1704067200,
                 "_tags": ["story", "ask_hn"]},
                // A link post's text is the submitter's, not the linked page's: the page is fetched.
                {"objectID": "4243", "title": "Tokio work stealing scheduler deep dive", "url": l,
                 "author": "b", "points": 10, "num_comments": 1,
                 "story_text": long_text("The scheduler deep dive"),
                 "created_at": "2024-01-02T00:00:00Z", "created_at_i": 1704153600, "_tags": ["story"]}
            ],
            "nbHits": 2, "page": 0, "nbPages": 1, "hitsPerPage": 20, "query": TOPIC,
            "params": "", "processingTimeMS": 1, "exhaustiveNbHits": true
        }))
    })
    .await;
    let v = research_json(
        2,
        &[
            ("CONDUCTOR_PROVIDERS", "hackernews".into()),
            ("CONDUCTOR_HACKERNEWS_BASE_URL", hn.url()),
        ],
    )
    .await;
    let srcs = sources(&v);
    let ask = srcs
        .iter()
        .find(|s| s["url"] == "https://news.ycombinator.com/item?id=4242")
        .unwrap_or_else(|| panic!("{v}"));
    // Cleaned the way snippets are: tags gone, entities decoded.
    assert_read_from_provider(ask, KEY_SENTENCE);
    let all: String = ask["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect();
    assert!(!all.contains('<') && !all.contains("&#x27;"), "{all}");
    let linked = srcs
        .iter()
        .find(|s| s["url"] == link.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(linked["read"]["via"], "page", "{linked}");
    assert_eq!(linked["read"]["status"], "blocked", "{linked}");
    // One comment is "1 comment".
    assert!(
        linked["snippet"]
            .as_str()
            .unwrap()
            .starts_with("10 points, 1 comment on Hacker News"),
        "{linked}"
    );
    assert_eq!(canary.count(), 0, "a page was fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wikipedia_gives_titles_and_intros_in_one_request_in_search_rank_order() {
    let wiki = Loopback::start(|seen, _| {
        let asked = |k: &str, v: &str| seen.param(k) == Some(v);
        if !(asked("action", "query")
            && asked("generator", "search")
            && seen.param("gsrsearch").is_some()
            && asked("prop", "extracts|info")
            && asked("exintro", "1")
            && asked("explaintext", "1"))
        {
            // What the real API says to a request it cannot serve: an error, with HTTP 200.
            return ok(json!({"error": {"code": "badparams", "info": "not what this stand-in serves"},
                             "servedby": "loopback"}));
        }
        // Listed as page ids go: the rank is `index`.
        ok(json!({"batchcomplete": true, "query": {"pages": [
            {"pageid": 10, "ns": 0, "title": "Green threads", "index": 2,
             "touched": "2024-03-01T00:00:00Z", "fullurl": "https://en.wikipedia.org/wiki/Green_threads",
             "extract": long_text("Green threading")},
            {"pageid": 20, "ns": 0, "title": "Tokio (software)", "index": 1,
             "touched": "2024-02-01T10:00:00Z",
             "fullurl": "https://en.wikipedia.org/wiki/Tokio_(software)",
             "extract": format!("Tokio is a runtime for asynchronous Rust.\n{}", long_text("Its scheduler"))},
            {"pageid": 30, "ns": 0, "title": "Work stealing", "index": 3,
             "touched": "2024-01-01T00:00:00Z", "fullurl": "https://en.wikipedia.org/wiki/Work_stealing",
             "extract": long_text("Work stealing")}
        ]}}))
    })
    .await;
    let v = research_json(
        3,
        &[
            ("CONDUCTOR_PROVIDERS", "wikipedia".into()),
            ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ],
    )
    .await;
    let reqs = wiki.requests();
    assert_eq!(reqs.len(), 1, "one request");
    let r = &reqs[0];
    for (k, want) in [
        ("action", "query"),
        ("generator", "search"),
        ("gsrsearch", TOPIC),
        ("prop", "extracts|info"),
        ("exintro", "1"),
        ("explaintext", "1"),
        ("exlimit", "max"),
        ("inprop", "url"),
        ("format", "json"),
        ("formatversion", "2"),
    ] {
        assert_eq!(r.param(k), Some(want), "{k}");
    }
    let limit: usize = r.param("gsrlimit").unwrap().parse().unwrap();
    assert!((1..=20).contains(&limit), "intro extracts come 20 at most");
    let srcs = sources(&v);
    let urls: Vec<&str> = srcs.iter().map(|s| s["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        [
            "https://en.wikipedia.org/wiki/Tokio_(software)",
            "https://en.wikipedia.org/wiki/Green_threads",
            "https://en.wikipedia.org/wiki/Work_stealing"
        ],
        "search rank order"
    );
    let tokio = &srcs[0];
    // The snippet is the intro's first sentences, about 300 characters at most; the text is the whole
    // intro.
    let snippet = tokio["snippet"].as_str().unwrap();
    assert!(
        snippet.starts_with("Tokio is a runtime for asynchronous Rust. Its scheduler is discussed"),
        "{snippet}"
    );
    assert!(snippet.chars().count() <= SNIPPET_CHARS, "{snippet}");
    assert!(!snippet.contains("global lock"), "{snippet}");
    assert_eq!(tokio["published"], "2024-02-01T10:00:00Z");
    for s in srcs {
        assert_read_from_provider(s, KEY_SENTENCE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wikipedia_rate_limit_error_arriving_with_http_200_is_a_rate_limit() {
    let wiki = Loopback::start(|_, _| {
        ok(
            json!({"error": {"code": "ratelimited", "info": "You've exceeded your rate limit."},
                  "servedby": "loopback"}),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(
        &["research", TOPIC, "--format", "json"],
        &[
            ("CONDUCTOR_PROVIDERS", "wikipedia".into()),
            ("CONDUCTOR_WIKIPEDIA_BASE_URL", wiki.url()),
        ],
        dir.path(),
    )
    .await;
    assert_ne!(run.status, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("wikipedia: rate limited"),
        "{}",
        run.stderr
    );
}
