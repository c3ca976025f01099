//! What a research costs, and `max_cost` (issue 13, "Cost, visible and capped"): the real binary against
//! loopback stand-ins of Tavily (reports credits), Exa (reports `costDollars`), Brave (priced from the
//! table) and an OpenAI-compatible model (reports tokens, or dollars). JSON `cost: {usd, estimated, by}`,
//! the report's line, the cap skipping the calls that would cross it (their stand-ins get no request),
//! and `[prices]` in config.toml.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

const TAVILY_KEY: &str = "tvly-test-secret-0001";
const BRAVE_KEY: &str = "brave-test-secret-0002";
const EXA_KEY: &str = "exa-test-secret-0003";
const OPENAI_KEY: &str = "sk-test-secret-llm-0001";

/// The three keyed stand-ins (and Wikipedia, free), each finding the same two pages.
struct Providers {
    tavily: Loopback,
    brave: Loopback,
    exa: Loopback,
    wikipedia: Loopback,
}

const PAGES: [(&str, &str, &str); 2] = [
    (
        "Tokio",
        "https://tokio.rs/",
        "Tokio is an asynchronous runtime for Rust.",
    ),
    (
        "Async Book",
        "https://rust-lang.github.io/async-book/",
        "Asynchronous programming in Rust.",
    ),
];

impl Providers {
    async fn start() -> Providers {
        let with_title: Vec<(Option<&str>, &str, &str)> =
            PAGES.iter().map(|(t, u, c)| (Some(*t), *u, *c)).collect();
        let tavily_answer = {
            let mut v = tavily_response(&with_title);
            // Asked with `include_usage`, Tavily says what the search used.
            v["usage"] = json!({"credits": 1});
            v
        };
        let exa_answer = exa_response(&with_title); // "costDollars": {"total": 0.005}
        let brave_answer = brave_response(&PAGES);
        Providers {
            tavily: Loopback::start(move |_, _| ok(tavily_answer.clone())).await,
            brave: Loopback::start(move |_, _| ok(brave_answer.clone())).await,
            exa: Loopback::start(move |_, _| ok(exa_answer.clone())).await,
            wikipedia: Loopback::start(|_, _| {
                ok(wikipedia_response(&[(
                    "Tokio (software)",
                    "Tokio is an asynchronous runtime for Rust.",
                )]))
            })
            .await,
        }
    }

    fn env(&self, providers: &str) -> Vec<(&'static str, String)> {
        vec![
            ("TAVILY_API_KEY", TAVILY_KEY.into()),
            ("BRAVE_API_KEY", BRAVE_KEY.into()),
            ("EXA_API_KEY", EXA_KEY.into()),
            ("CONDUCTOR_PROVIDERS", providers.into()),
            ("CONDUCTOR_TAVILY_BASE_URL", self.tavily.url()),
            ("CONDUCTOR_BRAVE_BASE_URL", self.brave.url()),
            ("CONDUCTOR_EXA_BASE_URL", self.exa.url()),
            ("CONDUCTOR_WIKIPEDIA_BASE_URL", self.wikipedia.url()),
        ]
    }
}

/// An OpenAI-compatible model that streams a short cited answer and then its usage (`usage` as given:
/// tokens, and `cost` where the server reports dollars, as OpenRouter does).
async fn llm(usage: Value) -> Loopback {
    Loopback::start(move |_, _| {
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "Tokio is an asynchronous runtime for Rust [1]."},
                         "finish_reason": null}]});
        let mut body = format!("data: {chunk}\n\n");
        let last = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": usage.clone()});
        body.push_str(&format!(
            "data: {last}\n\ndata: {usage}\n\ndata: [DONE]\n\n"
        ));
        Reply::Raw {
            status: StatusCode::OK,
            headers: vec![("content-type", "text/event-stream".into())],
            body: body.into_bytes(),
        }
    })
    .await
}

fn llm_env(llm: &Loopback) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", OPENAI_KEY.into()),
        ("CONDUCTOR_OPENAI_BASE_URL", llm.url()),
        ("CONDUCTOR_LLM_MODEL", "test-model".into()),
    ]
}

/// Runs `conductor-lsp research` in a fresh folder whose config.toml is `config` (none when empty).
async fn research(args: &[&str], env: &[(&'static str, String)], config: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    if !config.is_empty() {
        let folder = dir.path().join("config").join("conductor");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("config.toml"), config).unwrap();
    }
    let mut full = vec!["research"];
    full.extend_from_slice(args);
    let run = run_cli(&full, env, dir.path()).await;
    for key in [TAVILY_KEY, BRAVE_KEY, EXA_KEY, OPENAI_KEY] {
        assert!(
            !run.stdout.contains(key) && !run.stderr.contains(key),
            "a key leaked"
        );
    }
    run
}

fn json_of(run: &Run) -> Value {
    assert_eq!(run.status, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// `by` as (name, dollars) pairs, for comparing with a tolerance.
fn by(cost: &Value) -> Vec<(String, f64)> {
    cost["by"]
        .as_object()
        .unwrap_or_else(|| panic!("no cost.by: {cost}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect()
}

fn assert_usd(got: &Value, want: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!((got - want).abs() < 1e-9, "{got} != {want}");
}

fn assert_by(cost: &Value, want: &[(&str, f64)]) {
    let got = by(cost);
    assert_eq!(
        got.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        want.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "{cost}"
    );
    for ((name, usd), (_, want)) in got.iter().zip(want) {
        assert!((usd - want).abs() < 1e-9, "{name}: {usd} != {want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_is_what_the_apis_report_and_the_table_estimates_the_rest() {
    let p = Providers::start().await;
    let model =
        llm(json!({"prompt_tokens": 420, "completion_tokens": 42, "total_tokens": 462})).await;
    let mut env = p.env("tavily,brave,exa");
    env.extend(llm_env(&model));
    let config = "[prices]\n\"openai:test-model\" = { input = 10, output = 20 }\n";
    let run = research(&["tokio", "--format", "json"], &env, config).await;
    let r = json_of(&run);
    let cost = &r["cost"];
    // Tavily: 1 credit reported × $0.008; Exa: $0.005 reported; Brave: $0.005 from the table (an
    // estimate); the model: 420 × $10 + 42 × $20 per million tokens (an estimate).
    assert_by(
        cost,
        &[
            ("brave", 0.005),
            ("exa", 0.005),
            ("llm", 0.00504),
            ("tavily", 0.008),
        ],
    );
    assert_usd(&cost["usd"], 0.02304);
    assert_eq!(cost["estimated"], true, "{cost}");
    assert!(cost.get("unpriced").is_none(), "{cost}");
    assert!(cost.get("max_cost").is_none(), "no cap set: {cost}");

    // The report says the total, labelled as an estimate.
    let run = research(&["tokio"], &env, config).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("*Researched "))
        .unwrap_or_else(|| panic!("no Researched line:\n{}", run.stdout));
    assert!(line.ends_with("; cost: \\$0.0230 (estimated).*"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_every_api_reported_is_not_an_estimate_and_an_unknown_price_is_named() {
    let p = Providers::start().await;
    // The model's server reports dollars (OpenRouter's `usage.cost`).
    let model = llm(json!({"prompt_tokens": 420, "completion_tokens": 42, "cost": 0.0021})).await;
    let mut env = p.env("tavily,exa,wikipedia");
    env.extend(llm_env(&model));
    let r = json_of(&research(&["tokio", "--format", "json"], &env, "").await);
    let cost = &r["cost"];
    assert_by(
        cost,
        &[
            ("exa", 0.005),
            ("llm", 0.0021),
            ("tavily", 0.008),
            ("wikipedia", 0.0),
        ],
    );
    assert_usd(&cost["usd"], 0.0151);
    assert_eq!(cost["estimated"], false, "{cost}");

    // A model that reports only tokens and has no price: not counted, named, and the total an estimate.
    let model = llm(json!({"prompt_tokens": 420, "completion_tokens": 42})).await;
    let mut env = p.env("tavily,exa");
    env.extend(llm_env(&model));
    let r = json_of(&research(&["tokio", "--format", "json"], &env, "").await);
    let cost = &r["cost"];
    assert_by(cost, &[("exa", 0.005), ("tavily", 0.008)]);
    assert_eq!(cost["unpriced"], json!(["llm"]), "{cost}");
    assert_eq!(cost["estimated"], true, "{cost}");
    let run = research(&["tokio"], &env, "").await;
    assert!(
        run.stdout
            .contains("; cost: \\$0.0130 (estimated; no price for llm).*"),
        "{}",
        run.stdout
    );

    // Free providers cost nothing, for sure, and the report says nothing of cost.
    let env = p.env("wikipedia");
    let r = json_of(&research(&["tokio", "--format", "json"], &env, "").await);
    assert_eq!(
        r["cost"],
        json!({"usd": 0.0, "estimated": false, "by": {"wikipedia": 0.0}})
    );
    let run = research(&["tokio"], &env, "").await;
    assert!(!run.stdout.contains("cost:"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_in_config_changes_the_estimate() {
    let p = Providers::start().await;
    let env = p.env("brave,exa");
    let r = json_of(&research(&["tokio", "--format", "json"], &env, "").await);
    assert_by(&r["cost"], &[("brave", 0.005), ("exa", 0.005)]);
    let r = json_of(
        &research(
            &["tokio", "--format", "json"],
            &env,
            "[prices]\nbrave = 0.002\nexa = 0.5\n",
        )
        .await,
    );
    // Brave's estimate follows the setting; Exa reported its cost, which stands.
    assert_by(&r["cost"], &[("brave", 0.002), ("exa", 0.005)]);
    assert_usd(&r["cost"]["usd"], 0.007);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_skips_the_searches_that_would_cross_it_and_says_which() {
    let p = Providers::start().await;
    let env = p.env("tavily,brave,exa,wikipedia");
    // Free first, then cheapest first: Wikipedia ($0), Brave ($0.005); Exa ($0.007) and Tavily ($0.008)
    // would each take the research past $0.01.
    let run = research(
        &["tokio", "--format", "json", "--max-cost", "0.01"],
        &env,
        "",
    )
    .await;
    let r = json_of(&run);
    assert_eq!(p.tavily.count(), 0, "Tavily was asked");
    assert_eq!(p.exa.count(), 0, "Exa was asked");
    assert_eq!((p.brave.count(), p.wikipedia.count()), (1, 1));
    let runs = r["providers"].as_array().unwrap();
    let not_asked: Vec<(&str, &str)> = runs
        .iter()
        .filter(|p| p["error_kind"] == "over_budget")
        .map(|p| (p["name"].as_str().unwrap(), p["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        not_asked,
        vec![
            (
                "tavily",
                "not asked: its $0.0080 search would cross max_cost $0.01 ($0.0050 planned before it)"
            ),
            (
                "exa",
                "not asked: its $0.0070 search would cross max_cost $0.01 ($0.0050 planned before it)"
            ),
        ]
    );
    for skipped in runs.iter().filter(|p| p["error_kind"] == "over_budget") {
        assert_eq!(skipped["status"], "failed");
    }
    assert_by(&r["cost"], &[("brave", 0.005), ("wikipedia", 0.0)]);
    assert_eq!(r["cost"]["max_cost"], 0.01);

    // The report names them once, as not asked (not as failed).
    let run = research(&["tokio", "--max-cost", "0.01"], &env, "").await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("\n*Not asked, to stay within max_cost \\$0.01: tavily, exa.*\n"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("Providers that failed"),
        "{}",
        run.stdout
    );
    assert_eq!((p.tavily.count(), p.exa.count()), (0, 0));

    // The setting does the same as the option.
    let run = research(&["tokio"], &env, "max_cost = 0.01\n").await;
    assert!(run.stdout.contains("Not asked, to stay within max_cost"));
    assert_eq!((p.tavily.count(), p.exa.count()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_that_leaves_no_provider_says_the_budget_stopped_the_research() {
    let p = Providers::start().await;
    let run = research(&["tokio", "--max-cost", "0.004"], &p.env("brave,exa"), "").await;
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!((p.brave.count(), p.exa.count()), (0, 0));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "research failed: no provider asked: each search would cross max_cost $0.004"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("  brave: not asked: its $0.0050 search would cross max_cost $0.004"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("every provider failed"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_is_not_asked_for_when_it_would_cross_max_cost() {
    let p = Providers::start().await;
    let model = llm(json!({"prompt_tokens": 420, "completion_tokens": 42})).await;
    let mut env = p.env("brave,wikipedia");
    env.extend(llm_env(&model));
    // $1 per million tokens each way: a prompt of some hundreds of tokens and up to 1,024 answer tokens
    // cost about $0.0015, which $0.005 for Brave leaves no room for under $0.006.
    let config = "[prices]\n\"openai:test-model\" = { input = 1, output = 1 }\n";
    let run = research(&["tokio", "--max-cost", "0.006"], &env, config).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(model.count(), 0, "the model was asked");
    assert!(
        run.stdout
            .contains("*No summary: it would cross max_cost \\$0.006: up to \\$0.00"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("for the summary after \\$0.0050 spent.*"),
        "{}",
        run.stdout
    );
    // With room for it, it is written and counted.
    let r = json_of(
        &research(
            &["tokio", "--format", "json", "--max-cost", "0.01"],
            &env,
            config,
        )
        .await,
    );
    assert_eq!(model.count(), 1);
    assert_eq!(r["synthesis"]["status"], "written", "{}", r["synthesis"]);
    assert_usd(&r["cost"]["by"]["llm"], 0.000462);

    // A model with no known price is not asked under a cap: it could cost anything.
    let run = research(&["tokio", "--max-cost", "1"], &env, "").await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(model.count(), 1, "the model was asked");
    assert!(
        run.stdout.contains(
            "*No summary: max_cost \\$1 is set and openai test-model has no known price (give it one under \\[prices\\] as \"openai:test-model\").*"
        ),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_prices_entry_is_a_clear_error() {
    let p = Providers::start().await;
    let env = p.env("brave");
    for (config, expected) in [
        (
            "[prices]\nbravee = 0.001\n",
            "prices.bravee: unknown provider; did you mean brave?",
        ),
        (
            "[prices]\nbrave = \"cheap\"\n",
            "prices.brave: expected a number of US dollars per search (0 to 10), got the string \"cheap\"",
        ),
        (
            "[prices]\nbrave = -1\n",
            "prices.brave: expected a number of US dollars per search (0 to 10), got the number -1",
        ),
        (
            "[prices]\n\"gpt:x\" = { input = 1, output = 2 }\n",
            "prices.\"gpt:x\": unknown LLM back end 'gpt'",
        ),
        (
            "[prices]\n\"openai:m\" = { input = 1 }\n",
            "prices.\"openai:m\": expected { input = <number>, output = <number> }, US dollars per million prompt and answer tokens",
        ),
        (
            "[prices]\n\"openai:m\" = { input = 1, output = 2, cached = 0.5 }\n",
            "\"cached\" is not one of them",
        ),
        ("prices = 3\n", "prices: expected a table, got the number 3"),
    ] {
        let run = research(&["tokio"], &env, config).await;
        assert_eq!(run.status, 2, "{config}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{config}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    assert_eq!(p.brave.count(), 0, "nothing is asked with bad settings");
}
