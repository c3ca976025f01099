//! The one registry of providers (`src/providers/registry.rs`) and what derives from it: settings
//! validation, availability, the default choice, `conductor-lsp providers` (text and JSON), the CLI
//! help, the secrets scrubbed from output, and the README's providers table. The editors check their
//! lists against `providers --format json` in their own suites (editors/vscode/test/unit,
//! editors/nvim/test/conductor_test.lua).

mod common;

use common::run_cli;
use conductor::config::{Env, ProviderName};
use conductor::providers::registry::{DefaultUse, Needs, PROVIDERS};
use serde_json::Value;

async fn providers_json(env: &[(&str, String)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(&["providers", "--format", "json"], env, dir.path()).await;
    assert_eq!(run.status, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", run.stdout))
}

fn row<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

fn used(v: &Value) -> Vec<String> {
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["used"] == true)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_json_is_the_registry_with_each_providers_status() {
    let brave_key = "BSAregistryTestKey0123456789".to_string();
    let v = providers_json(&[("BRAVE_SEARCH_API_KEY", brave_key.clone())]).await;
    let rows = v["providers"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let registry: Vec<&str> = PROVIDERS.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, registry);
    for (p, r) in PROVIDERS.iter().zip(rows) {
        assert_eq!(r["env"], serde_json::json!(p.env), "{}", p.name);
        assert_eq!(r["aliases"], serde_json::json!(p.aliases), "{}", p.name);
        assert_eq!(r["keyed"], p.keyed, "{}", p.name);
        assert_eq!(r["endpoint"], serde_json::json!(p.endpoint), "{}", p.name);
        assert_eq!(r["price_usd"], serde_json::json!(p.price_usd), "{}", p.name);
        assert_eq!(r["description"], p.description, "{}", p.name);
        for field in [
            "needs",
            "default",
            "price_note",
            "configured",
            "used",
            "detail",
        ] {
            assert!(!r[field].is_null(), "{}: {field} missing", p.name);
        }
    }
    assert_eq!(row(&v, "tavily")["needs"], "key");
    assert_eq!(row(&v, "searxng")["needs"], "url");
    assert_eq!(row(&v, "searxng")["aliases"], serde_json::json!(["searx"]));
    assert_eq!(row(&v, "wikipedia")["needs"], "nothing");
    assert_eq!(row(&v, "notes")["default"], "if_named");
    assert_eq!(row(&v, "notes")["base_url_env"], Value::Null);
    assert_eq!(
        row(&v, "hackernews")["base_url_env"],
        "CONDUCTOR_HACKERNEWS_BASE_URL"
    );
    assert_eq!(row(&v, "tavily")["configured"], false);
    assert_eq!(row(&v, "tavily")["detail"], "set TAVILY_API_KEY");
    assert_eq!(row(&v, "brave")["configured"], true);
    assert_eq!(used(&v), ["brave"]);
    assert_eq!(v["llm"]["configured"], false);
    assert!(v["config_file"]["path"].is_string());
    assert!(!v.to_string().contains(&brave_key), "the key was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_names_the_variable_a_key_was_read_from() {
    // The alias, not the documented name, holds the key: the listing says so.
    let v = providers_json(&[("BRAVE_SEARCH_API_KEY", "BSAaliasKey0123456789".into())]).await;
    assert_eq!(row(&v, "brave")["detail"], "key from BRAVE_SEARCH_API_KEY");
    let v = providers_json(&[("BRAVE_API_KEY", "BSAmainKey0123456789".into())]).await;
    assert_eq!(row(&v, "brave")["detail"], "key from BRAVE_API_KEY");
    let dir = tempfile::tempdir().unwrap();
    let run = run_cli(
        &["providers"],
        &[("SEARX_URL", "http://127.0.0.1:9/".into())],
        dir.path(),
    )
    .await;
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("searxng"))
        .unwrap();
    assert!(
        line.contains("configured") && !line.contains("not configured"),
        "{line}"
    );
    assert!(line.contains("yes"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_choice_is_the_configured_keyed_providers_else_the_free_ones() {
    let fallback: Vec<&str> = PROVIDERS
        .iter()
        .filter(|p| p.default == DefaultUse::IfNoneConfigured)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(fallback, ["wikipedia", "hackernews", "arxiv"]);
    assert_eq!(used(&providers_json(&[]).await), fallback);
    let v = providers_json(&[
        ("SEARXNG_URL", "http://127.0.0.1:9/".into()),
        ("EXA_API_KEY", "exa-key-0123456789".into()),
    ])
    .await;
    assert_eq!(used(&v), ["exa", "searxng"]);
    // Named providers win over the default choice; notes only runs when named.
    let v = providers_json(&[("CONDUCTOR_PROVIDERS", "notes,searx".into())]).await;
    assert_eq!(used(&v), ["notes"]);
    assert_eq!(row(&v, "notes")["configured"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_names_in_help_and_errors_come_from_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let names = conductor::providers::registry::names();
    let run = run_cli(&["research", "--help"], &[], dir.path()).await;
    assert_eq!(run.status, 0);
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains(&names), "{help}");
    assert!(help.contains("else wikipedia, hackernews, arxiv"), "{help}");
    let run = run_cli(&["research", "x", "--providers", "bing"], &[], dir.path()).await;
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains(&format!("unknown provider 'bing' (known: {names})")),
        "{}",
        run.stderr
    );
    // Every name and alias of the table is accepted, in any case.
    for p in &PROVIDERS {
        for n in std::iter::once(p.name.as_str()).chain(p.aliases.iter().copied()) {
            let list = conductor::config::parse_provider_list(&n.to_uppercase()).unwrap();
            assert_eq!(list, [p.name]);
        }
    }
    let run = run_cli(&["providers", "--format", "yaml"], &[], dir.path()).await;
    assert_eq!(run.status, 2, "{}", run.stderr);
}

#[test]
fn every_key_of_the_registry_is_a_secret_kept_out_of_output() {
    for p in PROVIDERS.iter().filter(|p| p.needs == Needs::Key) {
        for var in p.env {
            let value = format!("{var}-value-0123456789");
            let env = Env::from_pairs([(*var, value.as_str())]);
            assert!(env.secrets().contains(&value), "{var} is not scrubbed");
        }
    }
}

#[test]
fn the_readme_providers_table_matches_the_registry() {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Providers\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Providers section");
    for p in &PROVIDERS {
        let line = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", p.name)))
            .unwrap_or_else(|| panic!("README's providers table has no row for {}", p.name));
        for var in p.env {
            assert!(line.contains(&format!("`{var}`")), "{}: {var}", p.name);
        }
        let price = line.rsplit('|').nth(1).unwrap().trim();
        match p.price_usd {
            Some(usd) if usd > 0.0 => assert!(price.starts_with(&format!("${usd} ")), "{line}"),
            Some(_) => assert!(price == "free" || price == "local", "{line}"),
            None => assert!(price.starts_with("unknown"), "{line}"),
        }
    }
    let rows = section.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(rows, ProviderName::all().count());
}
