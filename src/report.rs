//! The report's data: what every stage produces and every later stage reads. A leaf module: it names
//! only `config` (provider names), so any stage can use these types without depending on another stage.
//! Serialised with serde: the CLI's JSON output and the store's rows are these types.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

use crate::config::ProviderName;

/// One merged, cleaned source. Text fields are plain (not yet markdown-escaped).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Source {
    /// 1-based rank after fusion; the citation number.
    #[serde(rename = "rank")]
    pub n: usize,
    pub url: String,
    pub title: String,
    pub snippet: String,
    /// Every provider that found it, in the order they were asked.
    pub providers: Vec<ProviderName>,
    pub published: Option<String>,
    /// Reciprocal-rank-fusion score.
    pub score: f64,
    /// Longer page text for synthesis; not part of the report.
    #[serde(skip)]
    pub content: Option<String>,
    /// What the reading stage made of it (absent in reports made before reading existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<ReadInfo>,
    /// Quotes from its readable text, best first: verbatim, only whitespace normalised.
    #[serde(default)]
    pub passages: Vec<Passage>,
}

impl Source {
    /// The reading stage found it dead (and `dead_links` kept or marked it).
    pub fn is_dead(&self) -> bool {
        self.read
            .as_ref()
            .is_some_and(|r| r.status == ReadStatus::Dead)
    }
}

/// A source dropped as a dead link: JSON `dropped: [{"url", "title", "providers", "detail"?}]`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DroppedSource {
    pub url: String,
    pub title: String,
    pub providers: Vec<ProviderName>,
    /// Why it is dead: "HTTP 404", "host not found", ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Failed,
}

/// What one provider did in one research.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ProviderRun {
    pub name: ProviderName,
    pub status: RunStatus,
    /// Results it returned (before merging).
    pub results: usize,
    pub elapsed_ms: u64,
    /// Dollars the call cost, where the API reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Provider credits the call used, where the API reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<f64>,
    /// Why it failed, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it failed, for programs (`rate_limited`, `timed_out`, `key_rejected`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The answer came from the cache, stored this long ago (JSON `cached: {"age_s": N}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<Cached>,
}

/// How old a cached answer or page is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Cached {
    pub age_s: u64,
}

impl ProviderRun {
    /// `error_kind` of a provider that `max_cost` kept from being asked.
    pub const OVER_BUDGET: &'static str = "over_budget";

    /// A provider that was not asked because its call would have crossed `max_cost`: a failed run with
    /// `error_kind: "over_budget"` and `why` as its error.
    pub fn over_budget(name: ProviderName, why: &str) -> ProviderRun {
        ProviderRun {
            name,
            status: RunStatus::Failed,
            results: 0,
            elapsed_ms: 0,
            cost_usd: None,
            credits: None,
            error: Some(why.to_string()),
            error_kind: Some(Self::OVER_BUDGET.to_string()),
            cached: None,
        }
    }

    /// `max_cost` kept it from being asked.
    pub fn is_over_budget(&self) -> bool {
        self.error_kind.as_deref() == Some(Self::OVER_BUDGET)
    }
}

/// What one research cost (JSON `cost`): reported by the APIs where they say, else estimated from the
/// price table (`cost::prices`, overridable under `[prices]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Cost {
    /// US dollars, the sum of `by`.
    pub usd: f64,
    /// True when any part is an estimate (a table price, not a figure the API reported), or a part has
    /// no known price (`unpriced`), so `usd` is a lower bound.
    pub estimated: bool,
    /// Dollars per provider asked (by name) and for the summary (`llm`).
    pub by: BTreeMap<String, f64>,
    /// Parts asked whose price is unknown (not in `by`, not in `usd`): `llm` for a model with no price.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
    /// The cap in effect (`max_cost`), when one was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
}

/// The outcome of one research: the report's data.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Research {
    pub topic: String,
    /// RFC 3339, when the research finished.
    pub date: String,
    pub elapsed_ms: u64,
    pub providers: Vec<ProviderRun>,
    pub sources: Vec<Source>,
    /// Sources the reading stage found dead and `dead_links = "drop"` removed (named in the report).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<DroppedSource>,
    /// The LLM step, when a back end is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthesis: Option<Synthesis>,
    /// What it cost (every research the pipeline makes has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

impl Research {
    /// True when at least one provider answered (even with no results).
    pub fn any_answered(&self) -> bool {
        self.providers.iter().any(|p| p.status == RunStatus::Ok)
    }

    pub fn failures(&self) -> impl Iterator<Item = &ProviderRun> {
        self.providers
            .iter()
            .filter(|p| p.status == RunStatus::Failed)
    }

    pub fn provider_names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.name.as_str()).collect()
    }
}

// ---- Reading ------------------------------------------------------------------------------------------

/// How reading one source ended (JSON `read.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadStatus {
    /// Read: its passages (if any matched the topic) are quoted.
    Read,
    /// 404 or 410, or the host does not exist: subject to `dead_links`.
    Dead,
    /// A bot check, login wall or paywall, or an address the guard refuses: nothing is quoted.
    Blocked,
    /// Tried and failed: 401/403/429/5xx, a timeout, a network error, no readable text. Never dead.
    Failed,
    /// Not tried: beyond the `read` count, reading off, not a text page (PDF, image), the deadline.
    Skipped,
}

impl ReadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadStatus::Read => "read",
            ReadStatus::Dead => "dead",
            ReadStatus::Blocked => "blocked",
            ReadStatus::Failed => "failed",
            ReadStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for ReadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where the text came from (JSON `read.via`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Provider,
    Page,
}

/// JSON `read: {"status", "detail"?, "via"}` of a source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReadInfo {
    pub status: ReadStatus,
    /// Why it was not read ("HTTP 404", "bot check", "timed out", "PDF", ...), or a note on a read page
    /// ("only the first 3 MiB"). Plain text, no URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub via: Via,
    /// Read from the cache: the page as it was read this long ago (JSON `cached: {"age_s": N}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<Cached>,
}

/// A quote: verbatim from the source's readable text (only whitespace normalised), at most about
/// `evidence::passages::MAX_CHARS` characters, cut at sentence boundaries. JSON `{"text", "score"}`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Passage {
    pub text: String,
    /// BM25 against the topic; comparable across the sources of one `evidence::read_sources` call.
    pub score: f64,
}

// ---- Claim check ----------------------------------------------------------------------------------------

/// How well a sentence is backed by the sources it cites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Supported,
    Partial,
    Unsupported,
    /// The sentence cites no source.
    Uncited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Supported => "supported",
            Status::Partial => "partial",
            Status::Unsupported => "unsupported",
            Status::Uncited => "uncited",
        }
    }
}

/// The judge model's verdict on a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Yes,
    No,
}

/// A passage of a source that backs a claim: verbatim text of that source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Evidence {
    pub source: usize,
    pub passage: String,
}

/// One sentence of the summary, graded.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Claim {
    /// The sentence without its citation markers.
    pub text: String,
    /// The sources it cites, in order of first mention.
    pub citations: Vec<usize>,
    pub status: Status,
    /// The passages that back it (supported and partial claims; empty otherwise).
    pub evidence: Vec<Evidence>,
    /// The judge's verdict, when a judge was asked about this claim and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<Verdict>,
    /// Why the check did not mark it supported, in words (the editor's diagnostic says it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Byte range of the sentence and its markers in the summary text given to `check::check` (not part of
    /// the JSON).
    #[serde(skip)]
    pub span: Range<usize>,
}

/// Counts over all sentences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// All sentences.
    pub sentences: usize,
    /// Sentences with at least one citation (= supported + partial + unsupported).
    pub cited: usize,
    pub supported: usize,
    pub partial: usize,
    pub unsupported: usize,
    pub uncited: usize,
}

/// What the judge added to the line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct JudgeLine {
    /// The judge model, e.g. "ollama bespoke-minicheck".
    pub model: String,
    /// Claims it was asked about, and its answers.
    pub asked: usize,
    pub yes: usize,
    pub no: usize,
    /// Why it gave no (or not every) verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

// ---- Synthesis -----------------------------------------------------------------------------------------

/// Tokens (and dollars, where the API reports them) one synthesis used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// True when the server reported no usage and these are estimates (characters / 4).
    pub estimated: bool,
    /// Only when the API reports it (OpenRouter's `usage.cost`, for example).
    pub cost_usd: Option<f64>,
}

impl Usage {
    pub fn total_tokens(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// The checked summary.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Paragraphs and bullet items of plain text and citations.
    pub blocks: Vec<Block>,
    /// The same as plain text, `[n]` markers inline, blocks separated by blank lines (bullets by `- `).
    pub text: String,
    /// Source numbers cited, ascending, each once. Every one is a source that was sent.
    pub cited: Vec<usize>,
    /// Nothing is cited: the summary must be labelled as such.
    pub uncited: bool,
    /// The answer was cut off by the token limit.
    pub truncated: bool,
    /// Numbers the model cited that name no source (removed).
    pub removed_citations: Vec<usize>,
    /// Links and URLs the model wrote (removed).
    pub removed_links: usize,
    /// How many sources went to the model (fewer than retrieved when the token budget is tight).
    pub sources_sent: usize,
    pub usage: Usage,
    /// `openai`, `anthropic` or `ollama`.
    pub backend: String,
    pub model: String,
    /// Each sentence graded against the sources it cites (JSON `synthesis.claims`); empty until checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
    /// The counts (JSON `synthesis.check`); absent until checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Counts>,
    /// What the judge model (`[verify]`) did, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeLine>,
}

/// What synthesis did.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
// One per research, moved a handful of times: boxing the summary would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
pub enum Synthesis {
    Written(Summary),
    /// There were no sources, so the model was not asked.
    NoSources,
    /// The model was not asked, for this reason (the token cap).
    Skipped {
        reason: String,
    },
    /// The LLM failed (or is misconfigured): the report goes on without a summary.
    Failed {
        error: String,
        kind: String,
    },
}

/// A piece of a paragraph: plain text (not markdown) or a citation of source `n`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Segment {
    Text { text: String },
    Cite { n: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    Paragraph,
    /// One item of a bullet list; consecutive items form one list.
    Bullet,
}

/// A paragraph or bullet item of the summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Block {
    pub kind: BlockKind,
    pub segments: Vec<Segment>,
}

impl Block {
    /// The block as plain text with `[n]` markers.
    pub fn plain(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Text { text } => out.push_str(text),
                Segment::Cite { n } => out.push_str(&format!("[{n}]")),
            }
        }
        out
    }
}

/// The blocks as plain text: `[n]` markers inline, blocks separated by blank lines, bullets by `- `.
pub fn plain_text(blocks: &[Block]) -> String {
    blocks
        .iter()
        .map(|b| match b.kind {
            BlockKind::Bullet => format!("- {}", b.plain()),
            BlockKind::Paragraph => b.plain(),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The check's reason names sources before its first ": " (`[2]: it does not mention 2019`, `[1], [3]:
/// no passage matches the sentence`); what follows may quote source text, left as it is.
fn renumber_why(why: &str, map: &dyn Fn(usize) -> usize) -> String {
    let Some(colon) = why.find(": ") else {
        return why.to_string();
    };
    let (head, tail) = why.split_at(colon);
    let mut out = String::with_capacity(why.len());
    let mut rest = head;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if after[..close].parse::<usize>().is_ok() => {
                let n: usize = after[..close].parse().unwrap_or_default();
                out.push_str(&format!("[{}]", map(n)));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.push_str(tail);
    out
}

impl Summary {
    /// Gives source `n` the number `map(n)` everywhere the summary names it (see
    /// `render::number_in_reading_order`).
    pub fn renumber(&mut self, map: &dyn Fn(usize) -> usize) {
        for b in &mut self.blocks {
            for s in &mut b.segments {
                if let Segment::Cite { n } = s {
                    *n = map(*n);
                }
            }
        }
        for n in &mut self.cited {
            *n = map(*n);
        }
        for c in &mut self.claims {
            for n in &mut c.citations {
                *n = map(*n);
            }
            for e in &mut c.evidence {
                e.source = map(e.source);
            }
            if let Some(why) = &mut c.why {
                *why = renumber_why(why, map);
            }
        }
        self.cited.sort_unstable();
        self.text = plain_text(&self.blocks);
    }
}
