//! What a research costs, and what `max_cost` lets it ask (README "Cost").
//!
//! Prices: each provider's price per search is its row of the registry (`registry::PROVIDERS`,
//! `price_usd`, taken from shared/reference/provider-apis.md, snapshot [`PRICES_AS_OF`]), unless
//! `[prices]` names it. An LLM's price per million tokens comes only from `[prices]` (`"backend:model"`),
//! except Ollama, which runs on the user's machine and costs nothing: the reference the provider prices
//! come from lists no LLM prices, and an unknown price is said to be unknown rather than guessed.
//!
//! A part of the cost is what the API reported where it reports it (Exa's `costDollars`, Tavily's
//! credits at the table's price per credit, an LLM's `usage.cost`), else the table price (estimated).
//!
//! A leaf after `report`: it names only `config`, `registry` (through `config`) and `report`.

use std::collections::BTreeMap;

use crate::config::{Prices, ProviderName, TokenPrice};
use crate::report::{Cost, ProviderRun, Research, RunStatus, Synthesis};

/// When the built-in provider prices were taken (shared/reference/provider-apis.md, "Update 2026-12").
pub const PRICES_AS_OF: &str = "2026-12";

/// The key of the summary in [`Cost::by`].
pub const LLM: &str = "llm";

/// Sums that differ by less than this are equal (float noise in sums of prices).
const EPSILON: f64 = 1e-9;

/// US dollars per search of `name`: `[prices]`, else the registry's price (None: unknown). For Tavily it is
/// also the price of a credit (a basic search is 1 credit).
pub fn search_price(name: ProviderName, prices: &Prices) -> Option<f64> {
    prices
        .providers
        .get(&name)
        .copied()
        .or(name.info().price_usd)
}

/// US dollars per million tokens of `model` on `backend` (`openai`, `anthropic`, `ollama`): `[prices]`
/// (`"backend:model"`), else nothing for Ollama (local), else unknown.
pub fn token_price(backend: &str, model: &str, prices: &Prices) -> Option<TokenPrice> {
    let backend = backend.to_ascii_lowercase();
    prices
        .llm
        .get(&format!("{backend}:{}", model.trim()))
        .copied()
        .or_else(|| {
            (backend == "ollama").then_some(TokenPrice {
                input: 0.0,
                output: 0.0,
            })
        })
}

/// Dollars for `prompt` and `answer` tokens at `price`.
pub fn tokens_usd(price: TokenPrice, prompt: u32, answer: u32) -> f64 {
    (f64::from(prompt) * price.input + f64::from(answer) * price.output) / 1e6
}

/// One part of a research's cost. `usd: None`: asked, but its price is unknown.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Part {
    usd: Option<f64>,
    estimated: bool,
}

impl Part {
    fn exact(usd: f64) -> Part {
        Part {
            usd: Some(usd),
            estimated: false,
        }
    }

    /// A table price: an estimate unless it is nothing (a free API costs exactly nothing).
    fn table(usd: Option<f64>) -> Part {
        Part {
            usd,
            estimated: usd.is_none_or(|u| u > 0.0),
        }
    }
}

/// What one provider's run cost, or None when it was not asked (not configured, or over budget).
///
/// An answer costs what the API reported (dollars, or credits at the price per credit), else the table
/// price. A failure costs nothing when the API refused the request (429, 401/403, 402, another HTTP
/// error, a network error) or answered what no API answers (an HTML page: a proxy's or a portal's, most
/// likely): APIs bill searches they ran, and none was run. A call that may have been served (timed out
/// waiting for the answer, or an answer over the size cap) counts at the table price, estimated.
fn provider_part(run: &ProviderRun, prices: &Prices) -> Option<Part> {
    let price = search_price(run.name, prices);
    match run.status {
        // Answered from the cache: no call was made this time.
        RunStatus::Ok if run.cached.is_some() => Some(Part::exact(0.0)),
        RunStatus::Ok => Some(match (run.cost_usd, run.credits) {
            (Some(usd), _) => Part::exact(usd),
            (None, Some(credits)) => Part {
                usd: price.map(|p| credits * p),
                estimated: price.is_none(),
            },
            (None, None) => Part::table(price),
        }),
        RunStatus::Failed => match run.error_kind.as_deref() {
            Some("not_configured" | ProviderRun::OVER_BUDGET | "cancelled") => None,
            Some("timed_out" | "too_large") => Some(Part::table(price)),
            _ => Some(Part::exact(0.0)),
        },
    }
}

/// What the summary cost, or None when the model was not asked. A failed call counts nothing (an answer
/// cut off mid-stream may have been billed: not known here). The claim judge (`[verify]`) is not counted.
fn llm_part(synthesis: Option<&Synthesis>, prices: &Prices) -> Option<Part> {
    match synthesis? {
        Synthesis::Written(s) => Some(match s.usage.cost_usd {
            Some(usd) => Part::exact(usd),
            None => Part::table(
                token_price(&s.backend, &s.model, prices)
                    .map(|p| tokens_usd(p, s.usage.prompt_tokens, s.usage.completion_tokens)),
            ),
        }),
        Synthesis::Failed { .. } => Some(Part::exact(0.0)),
        Synthesis::NoSources | Synthesis::Skipped { .. } => None,
    }
}

/// Rounded to a millionth of a dollar, so sums of prices print as the prices do (0.013, not
/// 0.013000000000000001).
fn round(usd: f64) -> f64 {
    (usd * 1e6).round() / 1e6
}

/// What `research` cost: each provider asked and the summary, reported or estimated.
pub fn of(research: &Research, prices: &Prices, max_cost: Option<f64>) -> Cost {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    let mut unpriced = Vec::new();
    let mut estimated = false;
    let parts = research
        .providers
        .iter()
        .filter_map(|run| Some((run.name.as_str(), provider_part(run, prices)?)))
        .chain(llm_part(research.synthesis.as_ref(), prices).map(|p| (LLM, p)));
    for (name, part) in parts {
        estimated |= part.estimated;
        match part.usd {
            Some(usd) => *by.entry(name.to_string()).or_default() += usd,
            None => unpriced.push(name.to_string()),
        }
    }
    for usd in by.values_mut() {
        *usd = round(*usd);
    }
    Cost {
        usd: round(by.values().sum()),
        estimated,
        by,
        unpriced,
        max_cost,
    }
}

/// `$0.0130`: four decimals, as costs are shown.
pub fn dollars(usd: f64) -> String {
    format!("${usd:.4}")
}

/// `$0.01`: a cap as the user wrote it.
pub fn cap(usd: f64) -> String {
    format!("${usd}")
}

/// The providers `max_cost` keeps from being asked, each with why, in the order given. The others are
/// asked. Providers whose search is free are always asked; then the priced ones, cheapest first (ties
/// in the order given), each while the sum of the prices planned stays within `max_cost`; a provider
/// whose price is unknown is not asked (it could cross the cap).
pub fn over_budget(
    providers: &[ProviderName],
    prices: &Prices,
    max_cost: f64,
) -> Vec<(ProviderName, String)> {
    let mut priced: Vec<(usize, Option<f64>)> = providers
        .iter()
        .enumerate()
        .map(|(i, n)| (i, search_price(*n, prices)))
        .filter(|(_, p)| *p != Some(0.0))
        .collect();
    // Unknown prices sort last; `sort_by` is stable, so equal prices keep their order.
    priced.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let mut planned = 0.0;
    let mut skipped: Vec<(usize, String)> = Vec::new();
    for (i, price) in priced {
        match price {
            None => skipped.push((
                i,
                format!(
                    "not asked: its price is unknown and max_cost {} is set (give it one under [prices])",
                    cap(max_cost)
                ),
            )),
            Some(p) if planned + p > max_cost + EPSILON => {
                let before = if planned > 0.0 {
                    format!(" ({} planned before it)", dollars(planned))
                } else {
                    String::new()
                };
                skipped.push((
                    i,
                    format!(
                        "not asked: its {} search would cross max_cost {}{before}",
                        dollars(p),
                        cap(max_cost)
                    ),
                ));
            }
            Some(p) => planned += p,
        }
    }
    skipped.sort_by_key(|(i, _)| *i);
    skipped
        .into_iter()
        .map(|(i, why)| (providers[i], why))
        .collect()
}

/// Why the summary must not be asked for under `max_cost`, if it must not: `spent` is what the research
/// has cost so far, the call's estimate is `prompt_tokens` at the input price plus `max_tokens` (the most
/// it may answer) at the output price.
pub fn summary_over_budget(
    spent: f64,
    price: Option<TokenPrice>,
    prompt_tokens: u32,
    max_tokens: u32,
    backend: &str,
    model: &str,
    max_cost: f64,
) -> Option<String> {
    let Some(price) = price else {
        return Some(format!(
            "max_cost {} is set and {backend} {model} has no known price (give it one under [prices] as \"{backend}:{model}\")",
            cap(max_cost)
        ));
    };
    let estimate = tokens_usd(price, prompt_tokens, max_tokens);
    (spent + estimate > max_cost + EPSILON).then(|| {
        format!(
            "it would cross max_cost {}: up to {} for the summary after {} spent",
            cap(max_cost),
            dollars(estimate),
            dollars(spent)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: ProviderName, status: RunStatus) -> ProviderRun {
        ProviderRun {
            name,
            status,
            results: 0,
            elapsed_ms: 0,
            cost_usd: None,
            credits: None,
            error: None,
            error_kind: None,
            cached: None,
        }
    }

    fn research(providers: Vec<ProviderRun>) -> Research {
        Research {
            topic: "t".into(),
            date: "2026-01-01T00:00:00Z".into(),
            elapsed_ms: 0,
            providers,
            sources: Vec::new(),
            dropped: Vec::new(),
            synthesis: None,
            cost: None,
        }
    }

    #[test]
    fn an_answer_from_the_cache_costs_nothing() {
        let mut brave = run(ProviderName::Brave, RunStatus::Ok);
        brave.cached = Some(crate::report::Cached { age_s: 60 });
        let c = of(&research(vec![brave.clone()]), &Prices::default(), None);
        assert_eq!((c.usd, c.estimated), (0.0, false));
        brave.cached = None;
        let c = of(&research(vec![brave]), &Prices::default(), None);
        assert!(c.usd > 0.0 && c.estimated, "{c:?}");
    }

    #[test]
    fn reported_figures_win_and_table_prices_are_estimates() {
        let mut tavily = run(ProviderName::Tavily, RunStatus::Ok);
        tavily.credits = Some(2.0);
        let mut exa = run(ProviderName::Exa, RunStatus::Ok);
        exa.cost_usd = Some(0.005);
        let brave = run(ProviderName::Brave, RunStatus::Ok);
        let wiki = run(ProviderName::Wikipedia, RunStatus::Ok);
        let r = research(vec![tavily.clone(), exa.clone(), wiki.clone()]);
        let c = of(&r, &Prices::default(), None);
        assert_eq!(c.usd, 0.021);
        assert!(!c.estimated, "credits and dollars reported, Wikipedia free");
        assert_eq!(c.by["tavily"], 0.016);
        assert_eq!(c.by["wikipedia"], 0.0);
        let r = research(vec![tavily, exa, brave, wiki]);
        let c = of(&r, &Prices::default(), Some(1.0));
        assert_eq!((c.usd, c.estimated, c.max_cost), (0.026, true, Some(1.0)));
    }

    #[test]
    fn refusals_cost_nothing_and_what_may_have_run_is_estimated() {
        let mut limited = run(ProviderName::Brave, RunStatus::Failed);
        limited.error_kind = Some("rate_limited".into());
        let mut slow = run(ProviderName::Exa, RunStatus::Failed);
        slow.error_kind = Some("timed_out".into());
        let skipped = ProviderRun::over_budget(ProviderName::Tavily, "not asked");
        let c = of(
            &research(vec![limited, slow, skipped]),
            &Prices::default(),
            None,
        );
        assert_eq!(c.by.get("brave"), Some(&0.0));
        assert_eq!(c.by.get("exa"), Some(&0.007));
        assert!(!c.by.contains_key("tavily"), "not asked, not counted");
        assert!(c.estimated);
    }

    #[test]
    fn free_first_then_cheapest_within_the_cap() {
        use ProviderName::*;
        let p = Prices::default();
        let names = [Tavily, Brave, Exa, Wikipedia];
        let skipped = over_budget(&names, &p, 0.01);
        assert_eq!(
            skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![Tavily, Exa]
        );
        assert_eq!(
            skipped[1].1,
            "not asked: its $0.0070 search would cross max_cost $0.01 ($0.0050 planned before it)"
        );
        assert_eq!(over_budget(&names, &p, 0.0).len(), 3);
        assert!(
            over_budget(&names, &p, 0.02).is_empty(),
            "0.005 + 0.007 + 0.008 = 0.02"
        );
        let mut cheap = Prices::default();
        cheap.providers.insert(Tavily, 0.001);
        assert_eq!(
            over_budget(&names, &cheap, 0.006)
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            vec![Exa]
        );
    }

    #[test]
    fn llm_prices_come_from_settings_and_ollama_is_free() {
        let mut p = Prices::default();
        assert_eq!(token_price("openai", "gpt-4o-mini", &p), None);
        assert_eq!(
            token_price("ollama", "llama3.2", &p),
            Some(TokenPrice {
                input: 0.0,
                output: 0.0
            })
        );
        p.llm.insert(
            "openai:m".into(),
            TokenPrice {
                input: 10.0,
                output: 20.0,
            },
        );
        let price = token_price("openai", "m", &p);
        assert_eq!(tokens_usd(price.unwrap(), 420, 42), 0.00504);
        assert!(summary_over_budget(0.0, price, 1000, 1000, "openai", "m", 0.03).is_none());
        assert_eq!(
            summary_over_budget(0.01, price, 1000, 1000, "openai", "m", 0.03).unwrap(),
            "it would cross max_cost $0.03: up to $0.0300 for the summary after $0.0100 spent"
        );
        assert!(
            summary_over_budget(0.0, None, 1, 1, "openai", "x", 1.0)
                .unwrap()
                .contains("\"openai:x\"")
        );
    }
}
