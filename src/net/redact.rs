//! Redaction: what a remote server says about a failure becomes an error message only through
//! [`Secrets::message`], which removes every configured secret and the user info of any URL, makes the
//! text one clean line, and caps its length.
//!
//! A provider or an LLM may echo the key it was sent ("Invalid API key sk-…"), a proxy may echo the
//! `Authorization` header, and a SearXNG instance behind Basic auth may echo its credentials. Error
//! messages travel far (stderr, the report, JSON, the editor's log and answers, the inserted document, the
//! store), so they are scrubbed where they are made: [`Http`](super::Http) scrubs every failure it returns,
//! the research engine every provider's, and synthesis every LLM's.

use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::config::Env;

/// What a secret becomes.
pub use crate::sanitize::{REDACTED, strip_userinfo};

/// Longest error message (in characters) that remote text may make.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Remote text longer than this (bytes) is cut before it is cleaned: an error message needs no more.
const MAX_MESSAGE_INPUT: usize = 16 * 1024;

/// The secrets of one configuration, in every form a server might echo them. Cheap to clone.
#[derive(Clone, Default)]
pub struct Secrets {
    /// The secrets as configured (the encoded forms are derived from these).
    plain: Vec<String>,
    /// Every form of every secret.
    needles: Vec<String>,
    matcher: Option<AhoCorasick>,
    /// Bytes of the longest needle.
    longest: usize,
}

impl fmt::Debug for Secrets {
    // Never prints a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} redacted)", self.plain.len())
    }
}

impl Secrets {
    /// Secrets from a list of values; values shorter than 4 characters are ignored.
    pub fn new<I, S>(values: I) -> Secrets
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut plain: Vec<String> = values
            .into_iter()
            .map(|s| s.as_ref().trim().to_string())
            .filter(|s| s.chars().count() >= 4)
            .collect();
        plain.sort();
        plain.dedup();
        let mut needles: Vec<String> = plain.iter().flat_map(|s| forms(s)).collect();
        needles.sort();
        needles.dedup();
        let matcher = (!needles.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&needles)
                .expect("a few literal patterns always build")
        });
        let longest = needles.iter().map(String::len).max().unwrap_or(0);
        Secrets {
            plain,
            needles,
            matcher,
            longest,
        }
    }

    /// Every secret the environment configures ([`Env::secrets`]): API keys, and user info in URL settings.
    pub fn from_env(env: &Env) -> Secrets {
        Secrets::new(env.secrets())
    }

    /// These secrets and `extra` (a key held elsewhere, such as the LLM's).
    pub fn including(&self, extra: Option<&str>) -> Secrets {
        match extra {
            Some(e) if !self.plain.iter().any(|p| p == e.trim()) => {
                Secrets::new(self.plain.iter().map(String::as_str).chain([e]))
            }
            _ => self.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }

    /// Whether `text` holds a secret in any of its forms.
    pub fn found_in(&self, text: &str) -> bool {
        self.matcher.as_ref().is_some_and(|m| m.is_match(text))
    }

    /// `text` with every secret (in any of its forms, ASCII case ignored) replaced by `[redacted]`.
    /// Nothing else changes: for text that is not an error message, such as a search result or a
    /// model's answer.
    pub fn scrub(&self, text: &str) -> String {
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                let mut out = String::with_capacity(text.len());
                m.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(REDACTED);
                    true
                });
                out
            }
            _ => text.to_string(),
        }
    }

    /// The part of `text` (still arriving: a streamed answer) that can be shown now, scrubbed: everything
    /// before a tail that could be the start of a secret, and before a secret that reaches into it.
    pub fn settled(&self, text: &str) -> String {
        self.settle(text).0
    }

    /// [`Secrets::settled`], with how many bytes of `text` the shown part covers (the rest must wait for
    /// more text).
    pub fn settle(&self, text: &str) -> (String, usize) {
        let Some(matcher) = &self.matcher else {
            return (text.to_string(), text.len());
        };
        let mut cut = text.len() - self.pending(text);
        if let Some(m) = matcher
            .find_iter(text)
            .find(|m| m.start() < cut && m.end() > cut)
        {
            cut = m.start();
        }
        (self.scrub(&text[..cut]), cut)
    }

    /// The length of the longest tail of `text` that is the beginning of a secret (ASCII case ignored).
    fn pending(&self, text: &str) -> usize {
        let mut from = text.len().saturating_sub(self.longest.saturating_sub(1));
        while !text.is_char_boundary(from) {
            from += 1;
        }
        // Earliest start first: the longest tail that could still become a secret.
        for (i, _) in text[from..].char_indices() {
            let tail = &text.as_bytes()[from + i..];
            if self.needles.iter().any(|n| {
                n.len() > tail.len() && n.as_bytes()[..tail.len()].eq_ignore_ascii_case(tail)
            }) {
                return tail.len();
            }
        }
        0
    }

    /// `text` with every secret and the user info of every URL replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        strip_userinfo(&self.scrub(text))
    }

    /// An error message from remote text: redacted, then made one clean line (tags, entities, control and
    /// invisible characters gone), redacted again (cleaning can reveal a secret hidden by entities or
    /// zero-width characters), and cut to [`MAX_MESSAGE_CHARS`].
    pub fn message(&self, text: &str) -> String {
        let first = self.redact(text);
        let bounded = cut_bytes(&first, MAX_MESSAGE_INPUT);
        let clean = crate::sanitize::clean_text(bounded, usize::MAX);
        crate::sanitize::truncate_chars(&self.redact(&clean), MAX_MESSAGE_CHARS)
    }
}

/// The forms a server may echo a secret in: as is, percent-decoded, percent-encoded (path and form
/// style), and base64 (standard and URL-safe, padded or not). Base64 covers HTTP Basic auth when the
/// secret is `user:pass`.
fn forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let decoded = percent_decode_str(secret).decode_utf8_lossy().into_owned();
    let mut out = Vec::new();
    for s in [secret.to_string(), decoded] {
        out.push(utf8_percent_encode(&s, NON_ALPHANUMERIC).to_string());
        out.push(url::form_urlencoded::byte_serialize(s.as_bytes()).collect());
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            out.push(engine.encode(&s));
        }
        out.push(s);
    }
    out.retain(|f| f.len() >= 4);
    out
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_redacted() {
        let s = Secrets::new(["tvly-SECRET-0001", "user:p@ss word"]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("user:p@ss word");
        for text in [
            "Invalid key tvly-SECRET-0001.",
            "key=tvly%2DSECRET%2D0001",
            "INVALID KEY TVLY-SECRET-0001",
            &format!("Authorization: Basic {b64}"),
            "creds user%3Ap%40ss%20word",
            "creds user%3Ap%40ss+word",
        ] {
            let out = s.redact(text);
            assert!(out.contains(REDACTED), "{text} -> {out}");
            assert!(!out.to_lowercase().contains("secret"), "{out}");
            assert!(
                !out.contains("ss word") && !out.contains("ss+word"),
                "{out}"
            );
        }
        assert_eq!(s.redact("nothing here"), "nothing here");
    }

    #[test]
    fn text_still_arriving_holds_back_only_what_could_be_a_secret() {
        let s = Secrets::new(["sk-live-123456", "searxuser:pass"]);
        assert_eq!(s.settled("Rust [1]"), "Rust [1]");
        assert_eq!(s.settled("key sk-li"), "key ");
        assert_eq!(s.settled("key SK-LIVE-123456 ok"), "key [redacted] ok");
        // A secret inside a longer one still arriving is not shown in part.
        assert_eq!(s.settled("as searxuser:pa"), "as ");
        assert_eq!(s.settled(""), "");
        assert_eq!(Secrets::default().settled("sk-li"), "sk-li");
    }

    #[test]
    fn user_info_in_any_url_is_removed() {
        let s = Secrets::default();
        assert_eq!(
            s.redact(
                "see https://bob:hunter2@search.example/x?q=1 and http://a@b, ftp://plain.example/"
            ),
            "see https://[redacted]@search.example/x?q=1 and http://[redacted]@b, ftp://plain.example/"
        );
    }

    #[test]
    fn messages_are_cleaned_after_redaction_and_capped() {
        let s = Secrets::new(["sk-abcdef"]);
        // Entities and zero-width characters hide the key until the text is cleaned.
        let m = s.message("bad key <b>sk&#45;abc\u{200B}def</b>\nline two");
        assert_eq!(m, "bad key [redacted] line two");
        let long = format!("{} sk-abcdef", "x ".repeat(100_000));
        let m = s.message(&long);
        assert!(m.chars().count() <= MAX_MESSAGE_CHARS);
        assert!(!m.contains("sk-abcdef"));
    }

    #[test]
    fn secrets_come_from_keys_and_url_user_info() {
        let env = Env::from_pairs([
            ("EXA_API_KEY", "exa-key-1234"),
            ("SEARXNG_URL", "https://searx:p%40ss@127.0.0.1:8888/"),
            (
                "CONDUCTOR_OPENAI_BASE_URL",
                "http://proxyuser:proxypass@127.0.0.1:1",
            ),
            ("OPENAI_BASE_URL", "http://x:1/v1"),
            ("TAVILY_API_KEY", "abc"),
        ]);
        let s = Secrets::from_env(&env);
        let basic = base64::engine::general_purpose::STANDARD.encode("searx:p@ss");
        let out = s.redact(&format!(
            "exa-key-1234 p@ss p%40ss {basic} proxypass proxyuser searx abc"
        ));
        assert_eq!(
            out,
            "[redacted] [redacted] [redacted] [redacted] [redacted] [redacted] [redacted] abc"
        );
        assert!(!format!("{s:?}").contains("exa-key"));
        let with_llm = s.including(Some("sk-llm-999"));
        assert_eq!(with_llm.redact("sk-llm-999"), REDACTED);
    }
}
