//! The one table of search providers: each provider's name, the environment variables that enable it,
//! its official endpoint, whether it needs a key, its price per request where known, and what it is.
//!
//! Everything that lists providers derives from [`PROVIDERS`]: settings validation
//! ([`ProviderName::from_str`]), [`super::availability`], the default choice ([`DefaultUse`],
//! [`super::default_choice`]), the secrets scrubbed from output (`Env::secrets`), `conductor-lsp
//! providers` (text and `--format json`) and the CLI's help. The editors' lists are checked against
//! `conductor-lsp providers --format json` in their own test suites.
//!
//! A leaf module: it names nothing else of the crate, so `config` (the lowest layer) can use it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Every search provider Conductor knows, in the order of [`PROVIDERS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderName {
    Tavily,
    Brave,
    Exa,
    Searxng,
    Wikipedia,
    Hackernews,
    Arxiv,
    Notes,
}

/// What a provider needs before it can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Needs {
    /// An API key, in one of its `env` variables.
    Key,
    /// The URL of an instance, in one of its `env` variables.
    Url,
    /// Nothing: a free public API.
    Nothing,
    /// A folder to search (the workspace folders, or the current directory in the CLI).
    Folder,
}

/// When a provider is asked if the user names none (no `--providers`, `providers` setting or
/// `CONDUCTOR_PROVIDERS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultUse {
    /// Whenever it is configured.
    IfConfigured,
    /// When no `IfConfigured` provider is configured: a fresh machine works with no setup.
    IfNoneConfigured,
    /// Only when named.
    IfNamed,
}

/// One row of the table. Serialized as it is in `conductor-lsp providers --format json`.
#[derive(Debug, Serialize)]
pub struct ProviderInfo {
    pub name: ProviderName,
    /// Other names accepted for it in settings and `--providers`.
    pub aliases: &'static [&'static str],
    pub needs: Needs,
    /// True when it needs an API key.
    pub keyed: bool,
    /// The variables that enable it, first wins; the first is the documented one, the others aliases.
    pub env: &'static [&'static str],
    /// `NAME` in `CONDUCTOR_<NAME>_BASE_URL`, which replaces scheme, host and port of the endpoint
    /// (`None`: nothing remote to point elsewhere).
    #[serde(skip)]
    pub base_url_name: Option<&'static str>,
    /// The official endpoint (`None` for SearXNG, whose endpoint is the user's instance, and notes).
    pub endpoint: Option<&'static str>,
    pub default: DefaultUse,
    /// US dollars per search request as Conductor makes it, where known (0: free).
    pub price_usd: Option<f64>,
    /// What the price is based on.
    pub price_note: &'static str,
    /// One line saying what it searches.
    pub description: &'static str,
    /// What to set, for a provider that needs a URL (completes "set SEARXNG_URL to ...").
    #[serde(skip)]
    pub url_hint: &'static str,
}

/// The table. Its order is the order of listings and of the default key-less choice. Prices are
/// snapshots from shared/reference/provider-apis.md (vendor pricing pages, 2026).
pub const PROVIDERS: [ProviderInfo; 8] = [
    ProviderInfo {
        name: ProviderName::Tavily,
        aliases: &[],
        needs: Needs::Key,
        keyed: true,
        env: &["TAVILY_API_KEY"],
        base_url_name: Some("TAVILY"),
        endpoint: Some("https://api.tavily.com/search"),
        default: DefaultUse::IfConfigured,
        // provider-apis.md §1: basic search = 1 credit; pay-as-you-go $0.008 per credit.
        price_usd: Some(0.008),
        price_note: "1 credit per basic search at $0.008 pay-as-you-go; 1,000 free credits a month (Tavily, 2026)",
        description: "Tavily Search: web search for LLM agents, with page text in each result",
        url_hint: "",
    },
    ProviderInfo {
        name: ProviderName::Brave,
        aliases: &[],
        needs: Needs::Key,
        keyed: true,
        env: &["BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY"],
        base_url_name: Some("BRAVE"),
        endpoint: Some("https://api.search.brave.com/res/v1/web/search"),
        default: DefaultUse::IfConfigured,
        // provider-apis.md §2 and the 2026-12 update: Search plan $5 per 1,000 requests.
        price_usd: Some(0.005),
        price_note: "Search plan: $5 per 1,000 requests, $5 free credit a month (Brave, 2026)",
        description: "Brave Web Search: results from Brave's own web index",
        url_hint: "",
    },
    ProviderInfo {
        name: ProviderName::Exa,
        aliases: &[],
        needs: Needs::Key,
        keyed: true,
        env: &["EXA_API_KEY"],
        base_url_name: Some("EXA"),
        endpoint: Some("https://api.exa.ai/search"),
        default: DefaultUse::IfConfigured,
        // provider-apis.md §3: search $7 per 1,000 requests, text and highlights for 10 results included
        // (Conductor asks for at most 10). Every answer also reports its own cost.
        price_usd: Some(0.007),
        price_note: "$7 per 1,000 searches with text and highlights for up to 10 results (Exa, 2026); each answer reports its cost",
        description: "Exa: neural web search, with page text and highlights",
        url_hint: "",
    },
    ProviderInfo {
        name: ProviderName::Searxng,
        aliases: &["searx"],
        needs: Needs::Url,
        keyed: false,
        env: &["SEARXNG_URL", "SEARX_URL"],
        base_url_name: Some("SEARXNG"),
        endpoint: None,
        default: DefaultUse::IfConfigured,
        price_usd: Some(0.0),
        price_note: "free: an instance you run or choose",
        description: "SearXNG: the JSON API of a metasearch instance you run or choose",
        url_hint: "a SearXNG instance with the JSON format enabled",
    },
    ProviderInfo {
        name: ProviderName::Wikipedia,
        aliases: &[],
        needs: Needs::Nothing,
        keyed: false,
        env: &[],
        base_url_name: Some("WIKIPEDIA"),
        endpoint: Some("https://en.wikipedia.org/w/api.php"),
        default: DefaultUse::IfNoneConfigured,
        price_usd: Some(0.0),
        price_note: "free public API, no account",
        description: "English Wikipedia articles, through the MediaWiki Action API search",
        url_hint: "",
    },
    ProviderInfo {
        name: ProviderName::Hackernews,
        aliases: &[],
        needs: Needs::Nothing,
        keyed: false,
        env: &[],
        base_url_name: Some("HACKERNEWS"),
        endpoint: Some("https://hn.algolia.com/api/v1/search"),
        default: DefaultUse::IfNoneConfigured,
        price_usd: Some(0.0),
        price_note: "free public API, no account",
        description: "Hacker News stories, through Algolia's Hacker News search API",
        url_hint: "",
    },
    ProviderInfo {
        name: ProviderName::Arxiv,
        aliases: &[],
        needs: Needs::Nothing,
        keyed: false,
        env: &[],
        base_url_name: Some("ARXIV"),
        endpoint: Some("https://export.arxiv.org/api/query"),
        default: DefaultUse::IfNoneConfigured,
        price_usd: Some(0.0),
        price_note: "free public API, no account",
        description: "arXiv papers (titles and abstracts), through the arXiv export API (Atom)",
        url_hint: "",
    },
    ProviderInfo {
        name: ProviderName::Notes,
        aliases: &[],
        needs: Needs::Folder,
        keyed: false,
        env: &[],
        base_url_name: None,
        endpoint: None,
        default: DefaultUse::IfNamed,
        price_usd: Some(0.0),
        price_note: "local: nothing leaves the machine",
        description: "your own markdown and text files (workspace folders, or the current directory), BM25 full-text search, cited as file: links",
        url_hint: "",
    },
];

// The table is indexed by the enum: row i describes the provider whose discriminant is i.
const _: () = {
    let mut i = 0;
    while i < PROVIDERS.len() {
        assert!(
            PROVIDERS[i].name as usize == i,
            "PROVIDERS is out of enum order"
        );
        i += 1;
    }
};

impl ProviderName {
    /// Every provider, in table order.
    pub fn all() -> impl Iterator<Item = ProviderName> {
        PROVIDERS.iter().map(|p| p.name)
    }

    /// Its row of the table.
    pub fn info(self) -> &'static ProviderInfo {
        let table: &'static [ProviderInfo] = &PROVIDERS;
        &table[self as usize]
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderName::Tavily => "tavily",
            ProviderName::Brave => "brave",
            ProviderName::Exa => "exa",
            ProviderName::Searxng => "searxng",
            ProviderName::Wikipedia => "wikipedia",
            ProviderName::Hackernews => "hackernews",
            ProviderName::Arxiv => "arxiv",
            ProviderName::Notes => "notes",
        }
    }
}

/// Every provider name, comma-separated, in table order: `tavily, brave, ...`.
pub fn names() -> String {
    ProviderName::all()
        .map(ProviderName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The help of `--providers`, from the table.
pub fn providers_help() -> String {
    let fallback: Vec<&str> = PROVIDERS
        .iter()
        .filter(|p| p.default == DefaultUse::IfNoneConfigured)
        .map(|p| p.name.as_str())
        .collect();
    format!(
        "Comma list of providers: {}. Default: every configured provider that needs a key or URL, else {}",
        names(),
        fallback.join(", ")
    )
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why a provider name was not recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProvider {
    /// The name as given (trimmed, lowercase).
    pub given: String,
}

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown provider '{}' (known: {})", self.given, names())
    }
}

impl FromStr for ProviderName {
    type Err = UnknownProvider;
    /// A name or alias of the table, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        PROVIDERS
            .iter()
            .find(|p| p.name.as_str() == s || p.aliases.contains(&s.as_str()))
            .map(|p| p.name)
            .ok_or(UnknownProvider { given: s })
    }
}

impl Serialize for ProviderName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ProviderName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_alias_parses_to_its_row() {
        for p in &PROVIDERS {
            assert_eq!(p.name.info().name, p.name);
            assert_eq!(p.name.as_str().parse::<ProviderName>(), Ok(p.name));
            assert_eq!(
                format!(" {} ", p.name.as_str().to_uppercase()).parse::<ProviderName>(),
                Ok(p.name)
            );
            for a in p.aliases {
                assert_eq!(a.parse::<ProviderName>(), Ok(p.name));
            }
            let json = serde_json::to_string(&p.name).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name.as_str()));
            assert_eq!(serde_json::from_str::<ProviderName>(&json).unwrap(), p.name);
        }
        assert_eq!(
            "bing".parse::<ProviderName>().unwrap_err().to_string(),
            "unknown provider 'bing' (known: tavily, brave, exa, searxng, wikipedia, hackernews, arxiv, notes)"
        );
    }

    #[test]
    fn keyed_rows_name_their_keys_and_free_rows_none() {
        for p in &PROVIDERS {
            assert_eq!(p.keyed, p.needs == Needs::Key, "{}", p.name);
            match p.needs {
                Needs::Key | Needs::Url => assert!(!p.env.is_empty(), "{}", p.name),
                Needs::Nothing | Needs::Folder => assert!(p.env.is_empty(), "{}", p.name),
            }
            assert_eq!(p.needs == Needs::Url, !p.url_hint.is_empty(), "{}", p.name);
            if let Some(e) = p.endpoint {
                assert!(e.starts_with("https://"), "{e}");
            }
            assert!(p.price_usd.is_none_or(|usd| (0.0..1.0).contains(&usd)));
            assert!(!p.description.is_empty() && !p.description.contains('\n'));
        }
    }
}
