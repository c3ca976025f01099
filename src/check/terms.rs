//! What a sentence says, reduced to what the check compares: content-word stems, numbers, dates,
//! proper nouns and negation.
//!
//! - Words are lower-cased, stripped of possessives, and stemmed with Snowball English
//!   (`rust-stemmers`); stopwords (a short fixed list below) are not terms.
//! - Numbers are normalised: "1,000" = "1000", "10.0" = "10", "3.5 %" = "3.5 percent" = "3.5%",
//!   "2 million" = "2000000", number words from "two" up ("ninety-day" is 90; "one" is left alone, as it
//!   is as often a pronoun as a count). A number glued to a unit ("64KB", "100ms") is the number and the
//!   unit. Versions ("2.14.1", "v1.2") are kept as dotted components.
//! - Dates: "May 15, 2015", "15 May 2015", "May 2015", "2015-05-15", "2015-05", "Jan. 5" become
//!   (year?, month, day?).
//! - Proper nouns of a claim: capitalised words that do not open the sentence, and words with inner
//!   capitals or digits ("PostgreSQL", "macOS", "x86") anywhere.
//! - Negation: "not", "no", "never", "n't", "without", … anywhere in the text.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

/// A number as written, normalised.
#[derive(Clone, Debug, PartialEq)]
pub enum Num {
    /// A plain number; `percent` when written with `%`, "percent" or "per cent"; `decimal` when
    /// written with a decimal point ("9.8", "10.0", "3.12").
    Value {
        value: f64,
        percent: bool,
        decimal: bool,
    },
    /// Dotted components, for versions ("2.14.1") and decimals that may be versions ("1.75").
    Version(Vec<u64>),
}

/// What a number is, for telling a different number in the same slot (a conflict) from an absent one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumKind {
    Percent,
    Year,
    Version,
    /// Written with a decimal point ("9.8", "10.0", "3.11").
    Decimal,
    /// A whole number ("1000", "three").
    Integer,
}

impl Num {
    pub fn kind(&self) -> NumKind {
        match self {
            Num::Value { percent: true, .. } => NumKind::Percent,
            Num::Value { decimal: true, .. } => NumKind::Decimal,
            Num::Value { value, .. }
                if value.fract() == 0.0 && (1900.0..=2100.0).contains(value) =>
            {
                NumKind::Year
            }
            Num::Value { .. } => NumKind::Integer,
            Num::Version(_) => NumKind::Version,
        }
    }

    /// Whether a passage number `other` states this claim number.
    pub fn matches(&self, other: &Num) -> bool {
        match (self, other) {
            (
                Num::Value {
                    value: a,
                    percent: pa,
                    ..
                },
                Num::Value {
                    value: b,
                    percent: pb,
                    ..
                },
            ) => (a - b).abs() <= 1e-9 * a.abs().max(1.0) && (!pa || *pb),
            // "1.75" (read as a value) against the version "1.75.0": the components decide.
            (
                Num::Value {
                    value,
                    percent: false,
                    ..
                },
                Num::Version(v),
            ) => components_of(*value).is_some_and(|c| v.starts_with(&c)),
            (Num::Version(a), Num::Version(b)) => b.starts_with(a),
            (
                Num::Version(a),
                Num::Value {
                    value,
                    percent: false,
                    ..
                },
            ) => components_of(*value).is_some_and(|c| c == *a),
            _ => false,
        }
    }

    pub fn show(&self) -> String {
        match self {
            Num::Value { value, percent, .. } => {
                let mut s = if value.fract() == 0.0 && value.abs() < 1e15 {
                    format!("{}", *value as i64)
                } else {
                    format!("{value}")
                };
                if *percent {
                    s.push('%');
                }
                s
            }
            Num::Version(v) => v.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        }
    }
}

/// "1.75" → [1, 75]; whole numbers → [n].
fn components_of(value: f64) -> Option<Vec<u64>> {
    let s = format!("{value}");
    s.split('.').map(|p| p.parse().ok()).collect()
}

/// A calendar date with the parts the text gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date {
    pub year: Option<i32>,
    pub month: u8,
    pub day: Option<u8>,
}

impl Date {
    /// Whether a passage date `other` states this claim date: every part the claim gives is there.
    pub fn matches(&self, other: &Date) -> bool {
        self.month == other.month
            && self.year.is_none_or(|y| other.year == Some(y))
            && self.day.is_none_or(|d| other.day == Some(d))
    }

    pub fn show(&self) -> String {
        let month = MONTHS[self.month as usize - 1].0;
        let mut s = String::from(month);
        let mut m = s.remove(0).to_uppercase().to_string();
        m.push_str(&s);
        match (self.day, self.year) {
            (Some(d), Some(y)) => format!("{m} {d}, {y}"),
            (Some(d), None) => format!("{m} {d}"),
            (None, Some(y)) => format!("{m} {y}"),
            (None, None) => m,
        }
    }
}

/// What the check compares of one piece of text.
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// Stems of content words (proper nouns included).
    pub terms: BTreeSet<String>,
    /// Stems of proper nouns (claims: what must appear).
    pub names: BTreeSet<String>,
    /// Names as written, for messages, in the order of `names`' insertion.
    pub names_shown: Vec<(String, String)>,
    pub numbers: Vec<Num>,
    pub dates: Vec<Date>,
    /// The text contains a negation.
    pub negated: bool,
}

impl Features {
    /// Merges `other` into `self` (a passage of several units).
    pub fn absorb(&mut self, other: &Features) {
        self.terms.extend(other.terms.iter().cloned());
        self.names.extend(other.names.iter().cloned());
        self.numbers.extend(other.numbers.iter().cloned());
        self.dates.extend(other.dates.iter().copied());
        self.negated |= other.negated;
    }

    /// Whether this passage states the claim number `n` (a year may also be stated as a date's year).
    pub fn has_number(&self, n: &Num) -> bool {
        self.numbers.iter().any(|m| n.matches(m))
            || matches!(n, Num::Value { value, percent: false, .. }
                if value.fract() == 0.0
                    && self.dates.iter().any(|d| d.year.is_some_and(|y| f64::from(y) == *value)))
    }

    pub fn has_date(&self, d: &Date) -> bool {
        self.dates.iter().any(|p| d.matches(p))
    }

    /// Whether this passage holds a number of `kind` (years include dates' years).
    pub fn has_kind(&self, kind: NumKind) -> bool {
        self.numbers.iter().any(|n| n.kind() == kind)
            || (kind == NumKind::Year && self.dates.iter().any(|d| d.year.is_some()))
    }
}

/// The Snowball stemmer for English. `Stemmer` holds only a function pointer: creating it is free.
fn stemmer() -> Stemmer {
    Stemmer::create(Algorithm::English)
}

pub fn stem(word: &str) -> String {
    stemmer().stem(word).into_owned()
}

/// Common English function words. Hand-written: a fixed list of about 150 words is all the check
/// needs, and the stopword crates carry dozens of languages.
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "across", "after", "again", "against", "all", "almost", "also",
    "although", "always", "am", "among", "an", "and", "another", "any", "are", "around", "as",
    "at", "be", "became", "because", "been", "being", "both", "but", "by", "can", "could", "did",
    "do", "does", "doing", "done", "during", "each", "either", "else", "even", "ever", "every",
    "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "him", "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "least", "less", "let", "like", "made", "make", "makes", "many", "may", "me", "might", "more",
    "most", "much", "must", "my", "now", "of", "off", "often", "on", "once", "one", "only", "onto",
    "or", "other", "others", "our", "ours", "out", "over", "own", "per", "percent", "cent",
    "quite", "rather", "same", "several", "she", "should", "since", "so", "some", "such", "than",
    "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those",
    "though", "through", "thus", "to", "too", "under", "until", "up", "upon", "us", "very", "via",
    "was", "we", "were", "what", "when", "where", "whether", "which", "while", "who", "whom",
    "whose", "why", "will", "with", "within", "would", "yet", "you", "your", "yours", "million",
    "billion", "thousand", "trillion", "new", "well", "way", "ways", "use", "used", "uses",
    "using", "still", "already", "now", "later",
];

fn is_stopword(word: &str) -> bool {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
        .contains(word)
}

/// Words that negate. "n't" is recognised separately.
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nor", "neither", "cannot", "without", "nothing", "nobody",
    "nowhere", "longer",
];

/// Number words ("one" is left out: it is as often "one of the" as a count).
const NUMBER_WORDS: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
    ("hundred", 100.0),
    ("dozen", 12.0),
];

const SCALES: &[(&str, f64)] = &[
    ("thousand", 1e3),
    ("million", 1e6),
    ("billion", 1e9),
    ("trillion", 1e12),
];

/// Months (full name, abbreviation).
const MONTHS: [(&str, &str); 12] = [
    ("january", "jan"),
    ("february", "feb"),
    ("march", "mar"),
    ("april", "apr"),
    ("may", "may"),
    ("june", "jun"),
    ("july", "jul"),
    ("august", "aug"),
    ("september", "sep"),
    ("october", "oct"),
    ("november", "nov"),
    ("december", "dec"),
];

/// Units written in short and long forms, mapped to one word.
const UNITS: &[(&str, &str)] = &[
    ("kb", "kilobyte"),
    ("kilobytes", "kilobyte"),
    ("mb", "megabyte"),
    ("megabytes", "megabyte"),
    ("gb", "gigabyte"),
    ("gigabytes", "gigabyte"),
    ("tb", "terabyte"),
    ("terabytes", "terabyte"),
    ("ms", "millisecond"),
    ("msec", "millisecond"),
    ("milliseconds", "millisecond"),
    ("sec", "second"),
    ("secs", "second"),
    ("seconds", "second"),
    ("mins", "minute"),
    ("minutes", "minute"),
    ("hrs", "hour"),
    ("hours", "hour"),
    ("ghz", "gigahertz"),
    ("mhz", "megahertz"),
    ("kbps", "kilobit"),
    ("mbps", "megabit"),
    ("gbps", "gigabit"),
];

/// Antonyms whose swap turns a claim around (compared as stems). Prefix negations ("incompatible",
/// "asynchronous", "unsafe") are found by rule, not listed.
const ANTONYMS: &[(&str, &str)] = &[
    ("faster", "slower"),
    ("higher", "lower"),
    ("larger", "smaller"),
    ("bigger", "smaller"),
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("better", "worse"),
    ("easier", "harder"),
    ("before", "after"),
    ("earlier", "later"),
    ("maximum", "minimum"),
    ("enable", "disable"),
    ("enabled", "disabled"),
    ("add", "remove"),
    ("added", "removed"),
    ("accept", "reject"),
    ("true", "false"),
    ("success", "failure"),
    ("public", "private"),
    ("first", "last"),
    ("strong", "weak"),
    ("stronger", "weaker"),
];

const NEGATING_PREFIXES: &[&str] = &["in", "un", "non", "dis", "im", "ir", "il", "a"];

/// Whether the stems `a` and `b` say opposite things ("incompat"/"compat", "faster"/"slower").
pub fn opposite(a: &str, b: &str) -> bool {
    if a == b || a.len() < 3 || b.len() < 3 {
        return false;
    }
    let prefixed = |long: &str, short: &str| {
        NEGATING_PREFIXES
            .iter()
            .any(|p| long.strip_prefix(p) == Some(short) && short.len() >= 4)
    };
    if prefixed(a, b) || prefixed(b, a) {
        return true;
    }
    static STEMMED: OnceLock<Vec<(String, String)>> = OnceLock::new();
    STEMMED
        .get_or_init(|| ANTONYMS.iter().map(|(x, y)| (stem(x), stem(y))).collect())
        .iter()
        .any(|(x, y)| (a == x && b == y) || (a == y && b == x))
}

#[derive(Clone, Debug)]
enum Tok {
    Word {
        /// As written (possessive removed).
        text: String,
        lower: String,
        /// First word of the text.
        initial: bool,
    },
    Num(Num),
    Date(Date),
    /// A unit glued to a number ("KB" in "64KB"): a term, never a name.
    Unit(String),
}

/// The features of `text`. `claim` asks for proper nouns (only a claim's are needed).
pub fn features(text: &str, claim: bool) -> Features {
    let toks = dates(tokens(text));
    let stemmer = stemmer();
    let mut f = Features::default();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Num(n) => {
                let mut n = n.clone();
                // "3.5 percent", "2 million".
                if let (Num::Value { value, percent, .. }, Some(Tok::Word { lower, .. })) =
                    (&mut n, toks.get(i + 1))
                {
                    let per_cent = lower == "per"
                        && matches!(toks.get(i + 2), Some(Tok::Word { lower, .. }) if lower == "cent");
                    if lower == "percent" || per_cent {
                        *percent = true;
                    } else if let Some((_, scale)) = SCALES.iter().find(|(w, _)| w == lower) {
                        *value *= scale;
                    }
                }
                f.numbers.push(n);
            }
            Tok::Date(d) => f.dates.push(*d),
            Tok::Unit(u) => {
                f.terms.insert(stemmer.stem(u).into_owned());
            }
            Tok::Word {
                text: written,
                lower,
                initial,
            } => {
                if NEGATIONS.contains(&lower.as_str()) {
                    // "no longer" is one negation; "longer" alone is a comparison.
                    if lower != "longer"
                        || matches!(i.checked_sub(1).map(|j| &toks[j]), Some(Tok::Word { lower, .. }) if lower == "no")
                    {
                        f.negated = true;
                    }
                    if lower != "longer" {
                        i += 1;
                        continue;
                    }
                }
                if let Some((_, v)) = NUMBER_WORDS.iter().find(|(w, _)| w == lower) {
                    f.numbers.push(Num::Value {
                        value: *v,
                        percent: false,
                        decimal: false,
                    });
                    i += 1;
                    continue;
                }
                if is_stopword(lower) || lower.chars().count() < 2 {
                    i += 1;
                    continue;
                }
                let canonical = UNITS
                    .iter()
                    .find(|(w, _)| w == lower)
                    .map_or(lower.as_str(), |(_, c)| c);
                let stem = stemmer.stem(canonical).into_owned();
                let is_unit = canonical != lower.as_str();
                if claim && !is_unit && is_name(written, *initial) && f.names.insert(stem.clone()) {
                    f.names_shown.push((stem.clone(), written.clone()));
                }
                f.terms.insert(stem);
            }
        }
        i += 1;
    }
    f
}

/// A proper noun: capitalised and not the first word, or with inner capitals or digits.
fn is_name(word: &str, initial: bool) -> bool {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let rest: String = chars.collect();
    let inner_caps = rest.chars().any(char::is_uppercase);
    let has_digit = word.chars().any(|c| c.is_ascii_digit());
    let has_alpha = word.chars().any(char::is_alphabetic);
    (first.is_uppercase() && !initial) || inner_caps || (has_digit && has_alpha)
}

/// Splits text into words and numbers. Hand-written: the rules (numbers with separators and units,
/// versions, identifiers with underscores and dots, possessives, "n't") are specific to this check.
fn tokens(text: &str) -> Vec<Tok> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let mut out = Vec::new();
    let mut seen_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let prev_alnum = i > 0 && chars[i - 1].1.is_alphanumeric();
        // "v1.2.3": a version.
        let version_v =
            (c == 'v' || c == 'V') && !prev_alnum && at(i + 1).is_some_and(|c| c.is_ascii_digit());
        if c.is_ascii_digit() || version_v {
            if version_v {
                i += 1;
            }
            let (tok, next) = number(text, &chars, i);
            out.push(tok);
            // A unit or suffix glued to the number ("64KB", "100ms", "3rd", "10x").
            let mut j = next;
            while at(j).is_some_and(char::is_alphabetic) {
                j += 1;
            }
            if j > next {
                let suffix = slice(text, &chars, next, j).to_lowercase();
                if let Some((_, unit)) = UNITS.iter().find(|(w, _)| *w == suffix) {
                    out.push(Tok::Unit(unit.to_string()));
                }
            }
            i = j;
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            let mut j = i;
            loop {
                match at(j) {
                    Some(c) if c.is_alphanumeric() || c == '_' => j += 1,
                    // Inner dots of names ("Node.js", "ASP.NET") and apostrophes ("Let's", "don't").
                    Some('.') | Some('\'') | Some('’')
                        if at(j + 1).is_some_and(char::is_alphabetic)
                            && j > start
                            && at(j - 1).is_some_and(char::is_alphabetic) =>
                    {
                        j += 1
                    }
                    _ => break,
                }
            }
            let mut word = slice(text, &chars, start, j).replace('’', "'");
            let mut negation = false;
            if let Some(base) = word.strip_suffix("'s").or_else(|| word.strip_suffix("'S")) {
                word = base.to_string();
            } else if let Some(base) = word
                .strip_suffix("n't")
                .or_else(|| word.strip_suffix("N'T"))
            {
                word = base.to_string();
                negation = true;
            }
            let lower = word.to_lowercase();
            if !word.is_empty() {
                out.push(Tok::Word {
                    text: word,
                    lower,
                    initial: !seen_word,
                });
                seen_word = true;
            }
            if negation {
                out.push(Tok::Word {
                    text: "not".into(),
                    lower: "not".into(),
                    initial: false,
                });
            }
            i = j;
            continue;
        }
        if c == '%'
            && let Some(Tok::Num(Num::Value { percent, .. })) = out.last_mut()
        {
            *percent = true;
        }
        i += 1;
    }
    out
}

fn slice<'a>(text: &'a str, chars: &[(usize, char)], from: usize, to: usize) -> &'a str {
    let start = chars.get(from).map_or(text.len(), |c| c.0);
    let end = chars.get(to).map_or(text.len(), |c| c.0);
    &text[start..end]
}

/// Reads a number starting at char index `i`: digits, thousands groups, decimal and version parts, and
/// ISO dates. Returns the token and the char index after it.
fn number(text: &str, chars: &[(usize, char)], i: usize) -> (Tok, usize) {
    let at = |k: usize| chars.get(k).map(|&(_, c)| c);
    let digits_from = |k: usize| {
        (k..)
            .take_while(|&k| at(k).is_some_and(|c| c.is_ascii_digit()))
            .count()
    };
    let lead = digits_from(i);
    let mut j = i + lead;
    // ISO date: yyyy-mm(-dd).
    if lead == 4 && at(j) == Some('-') && digits_from(j + 1) == 2 {
        let year: i32 = slice(text, chars, i, j).parse().unwrap_or(0);
        let month: u8 = slice(text, chars, j + 1, j + 3).parse().unwrap_or(0);
        if (1000..=2999).contains(&year) && (1..=12).contains(&month) {
            let mut end = j + 3;
            let mut day = None;
            if at(end) == Some('-') && digits_from(end + 1) == 2 {
                let d: u8 = slice(text, chars, end + 1, end + 3).parse().unwrap_or(0);
                if (1..=31).contains(&d) {
                    day = Some(d);
                    end += 3;
                }
            }
            if at(end).is_none_or(|c| !c.is_ascii_digit()) {
                return (
                    Tok::Date(Date {
                        year: Some(year),
                        month,
                        day,
                    }),
                    end,
                );
            }
        }
    }
    let mut int = slice(text, chars, i, j).to_string();
    // Thousands groups: ",ddd" not followed by a fourth digit.
    if lead <= 3 {
        while at(j) == Some(',') && digits_from(j + 1) == 3 {
            int.push_str(slice(text, chars, j + 1, j + 4));
            j += 4;
        }
    }
    let mut parts = vec![int];
    while at(j) == Some('.') && digits_from(j + 1) > 0 {
        let n = digits_from(j + 1);
        parts.push(slice(text, chars, j + 1, j + 1 + n).to_string());
        j += 1 + n;
    }
    let tok = if parts.len() >= 3 {
        Tok::Num(Num::Version(
            parts
                .iter()
                .map(|p| p.parse().unwrap_or(u64::MAX))
                .collect(),
        ))
    } else {
        let value: f64 = parts.join(".").parse().unwrap_or(f64::NAN);
        Tok::Num(Num::Value {
            value,
            percent: false,
            decimal: parts.len() == 2,
        })
    };
    (tok, j)
}

fn month_of(word: &str) -> Option<u8> {
    MONTHS
        .iter()
        .position(|(full, short)| {
            word == *full || word == *short || (*short == "sep" && word == "sept")
        })
        .map(|i| i as u8 + 1)
}

/// Folds month names and the numbers beside them into dates.
fn dates(toks: Vec<Tok>) -> Vec<Tok> {
    let month = |t: &Tok| match t {
        Tok::Word { text, lower, .. } if text.chars().next().is_some_and(char::is_uppercase) => {
            month_of(lower)
        }
        _ => None,
    };
    let int = |t: Option<&Tok>| match t {
        Some(Tok::Num(Num::Value {
            value,
            percent: false,
            decimal: false,
        })) if value.fract() == 0.0 && *value >= 0.0 => Some(*value as i64),
        _ => None,
    };
    let day = |t: Option<&Tok>| int(t).filter(|d| (1..=31).contains(d)).map(|d| d as u8);
    let year = |t: Option<&Tok>| {
        int(t)
            .filter(|y| (1000..=2999).contains(y))
            .map(|y| y as i32)
    };
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if let Some(m) = month(&toks[i]) {
            // Month day[, year] | Month year
            if let Some(d) = day(toks.get(i + 1)) {
                let y = year(toks.get(i + 2));
                out.push(Tok::Date(Date {
                    year: y,
                    month: m,
                    day: Some(d),
                }));
                i += if y.is_some() { 3 } else { 2 };
                continue;
            }
            if let Some(y) = year(toks.get(i + 1)) {
                out.push(Tok::Date(Date {
                    year: Some(y),
                    month: m,
                    day: None,
                }));
                i += 2;
                continue;
            }
        }
        // day Month [year]
        if let Some(d) = day(Some(&toks[i]))
            && let Some(m) = toks.get(i + 1).and_then(month)
        {
            let y = year(toks.get(i + 2));
            out.push(Tok::Date(Date {
                year: y,
                month: m,
                day: Some(d),
            }));
            i += if y.is_some() { 3 } else { 2 };
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(value: f64) -> Num {
        Num::Value {
            value,
            percent: false,
            decimal: value.fract() != 0.0,
        }
    }

    fn dec(value: f64) -> Num {
        Num::Value {
            value,
            percent: false,
            decimal: true,
        }
    }

    fn pct(value: f64) -> Num {
        Num::Value {
            value,
            percent: true,
            decimal: value.fract() != 0.0,
        }
    }

    #[test]
    fn numbers_are_normalised() {
        let f = features(
            "It grew 3.5% to 1,000 users, then 3.5 percent, 2 million and 10.0 GB in ninety-day runs.",
            true,
        );
        assert_eq!(
            f.numbers,
            vec![pct(3.5), v(1000.0), pct(3.5), v(2e6), dec(10.0), v(90.0)]
        );
        assert!(f.terms.contains("gigabyt"));
        let f = features(
            "Versions 2.0-beta9 through 2.14.1 and v1.2 are affected; 64KB, 100ms.",
            true,
        );
        assert_eq!(
            f.numbers,
            vec![
                dec(2.0),
                Num::Version(vec![2, 14, 1]),
                v(1.2),
                v(64.0),
                v(100.0)
            ]
        );
        assert!(f.terms.contains("kilobyt") && f.terms.contains("millisecond"));
        assert!(v(1.75).matches(&Num::Version(vec![1, 75, 0])));
        assert!(v(1000.0).matches(&v(1000.0)));
        assert!(
            !pct(3.5).matches(&v(3.5)),
            "a claimed percentage needs a percentage"
        );
        assert!(v(3.5).matches(&pct(3.5)));
        assert!(!v(3.11).matches(&v(3.12)));
        assert_eq!(v(10.0).kind(), NumKind::Integer);
        assert_eq!(v(9.8).kind(), NumKind::Decimal);
        assert_eq!(v(2014.0).kind(), NumKind::Year);
    }

    #[test]
    fn dates_in_common_forms_are_one_date() {
        let d = |y, m, dd| Date {
            year: y,
            month: m,
            day: dd,
        };
        for (text, want) in [
            ("released on May 15, 2015 today", d(Some(2015), 5, Some(15))),
            ("released on 15 May 2015 today", d(Some(2015), 5, Some(15))),
            ("released 2015-05-15.", d(Some(2015), 5, Some(15))),
            ("released in May 2015.", d(Some(2015), 5, None)),
            ("since 2010-07.", d(Some(2010), 7, None)),
            ("on Jan. 5 it shipped", d(None, 1, Some(5))),
            ("by 7 April.", d(None, 4, Some(7))),
        ] {
            let f = features(text, true);
            assert_eq!(f.dates, vec![want], "{text}");
            assert!(
                f.numbers.is_empty(),
                "{text}: the date's numbers are the date's"
            );
        }
        // "may" the verb is no month; a CVE id is no date.
        let f = features("It may 5 times fail; CVE-2014-0160 is old.", true);
        assert!(f.dates.is_empty());
        assert_eq!(f.numbers, vec![v(5.0), v(2014.0), v(160.0)]);
        let claim = d(Some(2010), 7, None);
        assert!(claim.matches(&d(Some(2010), 7, Some(21))));
        assert!(!d(Some(2010), 7, Some(21)).matches(&claim));
    }

    #[test]
    fn names_negation_and_terms() {
        let f = features(
            "Tokio's scheduler doesn't run on macOS or x86 at Google's offices.",
            true,
        );
        let names: Vec<&str> = f.names_shown.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(names, vec!["macOS", "x86", "Google"]);
        assert!(f.negated);
        assert!(f.terms.contains("tokio") && f.terms.contains("schedul"));
        assert!(!f.terms.contains("the") && !f.terms.contains("not"));
        assert!(features("It will no longer ship.", false).negated);
        assert!(!features("It takes longer to ship.", false).negated);
        assert!(opposite(&stem("incompatible"), &stem("compatible")));
        assert!(opposite(&stem("slower"), &stem("faster")));
        assert!(!opposite(&stem("index"), &stem("dex")));
    }
}
