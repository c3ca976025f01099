//! One entry per work: the mirrors of one paper (arXiv's abstract, PDF and HTML pages and their
//! versions; a DOI at doi.org and at the publisher) fold into one source, cited at its best URL.
//!
//! Hand-written: the identifiers are a few documented URL shapes (arXiv's identifier scheme, DOI's
//! `10.<registrant>/<suffix>`), and no crate maps URLs to works without asking a remote service.

/// A paper a URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work {
    /// What every mirror of the work shares (`arxiv:2401.01234`, `doi:10.1145/3597503`).
    pub key: String,
    /// The URL to cite for this mirror: arXiv's abstract page, or the URL as found.
    pub url: url::Url,
    /// How good `url` is to cite: the abstract page or the publisher's page (2) over a DOI resolver (1).
    pub quality: u8,
}

/// The work `url` is a mirror of, if it is one of the known shapes.
pub fn identify(url: &url::Url) -> Option<Work> {
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let path = url.path();
    if matches!(host, "arxiv.org" | "export.arxiv.org") {
        let id = path
            .strip_prefix("/abs/")
            .or_else(|| path.strip_prefix("/pdf/"))
            .or_else(|| path.strip_prefix("/html/"))?;
        return arxiv(id.trim_end_matches('/').trim_end_matches(".pdf"));
    }
    let doi = if matches!(host, "doi.org" | "dx.doi.org") {
        path.strip_prefix('/')
    } else {
        path.find("/doi/").map(|at| &path[at + "/doi/".len()..])
    }?;
    // A publisher's `/doi/abs/10.…`, `/doi/full/10.…`, `/doi/pdf/10.…` name the same DOI.
    let doi = ["abs/", "full/", "pdf/", "epdf/", "book/"]
        .iter()
        .find_map(|p| doi.strip_prefix(p))
        .unwrap_or(doi);
    let doi = percent_encoding::percent_decode_str(doi.trim_end_matches('/')).decode_utf8_lossy();
    let (prefix, suffix) = doi.split_once('/')?;
    let registrant = prefix.strip_prefix("10.")?;
    if registrant.is_empty()
        || !registrant.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || suffix.is_empty()
    {
        return None;
    }
    // arXiv's own DOIs (10.48550/arXiv.2401.01234) name the arXiv paper.
    if registrant == "48550"
        && let Some(id) = suffix.to_ascii_lowercase().strip_prefix("arxiv.")
    {
        return arxiv(id);
    }
    let resolver = matches!(host, "doi.org" | "dx.doi.org");
    Some(Work {
        key: format!("doi:{}", doi.to_ascii_lowercase()),
        url: url.clone(),
        quality: if resolver { 1 } else { 2 },
    })
}

/// An arXiv identifier without its version: `2401.01234` (new style) or `hep-th/9901001` (old style).
fn arxiv(id: &str) -> Option<Work> {
    let base = match id.rfind('v') {
        Some(at)
            if at > 0 && id[at + 1..].bytes().all(|b| b.is_ascii_digit()) && at + 1 < id.len() =>
        {
            &id[..at]
        }
        _ => id,
    };
    let new_style = base.split_once('.').is_some_and(|(a, b)| {
        a.len() == 4
            && a.bytes().all(|c| c.is_ascii_digit())
            && (4..=5).contains(&b.len())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    let old_style = base.split_once('/').is_some_and(|(archive, n)| {
        !archive.is_empty()
            && archive
                .bytes()
                .all(|c| c.is_ascii_alphabetic() || c == b'-' || c == b'.')
            && n.len() == 7
            && n.bytes().all(|c| c.is_ascii_digit())
    });
    if !new_style && !old_style {
        return None;
    }
    Some(Work {
        key: format!("arxiv:{}", base.to_ascii_lowercase()),
        url: url::Url::parse(&format!("https://arxiv.org/abs/{base}")).ok()?,
        quality: 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(u: &str) -> Option<String> {
        identify(&url::Url::parse(u).unwrap()).map(|w| w.key)
    }

    #[test]
    fn arxiv_pages_and_versions_are_one_work() {
        for u in [
            "https://arxiv.org/abs/2401.01234",
            "http://arxiv.org/abs/2401.01234v3",
            "https://arxiv.org/pdf/2401.01234v2",
            "https://arxiv.org/pdf/2401.01234.pdf",
            "https://arxiv.org/html/2401.01234v1/",
            "https://export.arxiv.org/abs/2401.01234",
            "https://doi.org/10.48550/arXiv.2401.01234",
        ] {
            assert_eq!(key(u).as_deref(), Some("arxiv:2401.01234"), "{u}");
            let w = identify(&url::Url::parse(u).unwrap()).unwrap();
            assert_eq!(w.url.as_str(), "https://arxiv.org/abs/2401.01234", "{u}");
        }
        assert_eq!(
            key("https://arxiv.org/abs/hep-th/9901001v2").as_deref(),
            Some("arxiv:hep-th/9901001")
        );
        assert_eq!(key("https://arxiv.org/list/cs.AI/recent"), None);
        assert_eq!(key("https://arxiv.org/abs/notanid"), None);
    }

    #[test]
    fn a_doi_at_the_resolver_and_the_publisher_is_one_work() {
        let at_resolver =
            identify(&url::Url::parse("https://doi.org/10.1145/3597503.3639187").unwrap()).unwrap();
        let at_publisher = identify(
            &url::Url::parse("https://dl.acm.org/doi/abs/10.1145/3597503.3639187").unwrap(),
        )
        .unwrap();
        assert_eq!(at_resolver.key, "doi:10.1145/3597503.3639187");
        assert_eq!(at_resolver.key, at_publisher.key);
        assert!(
            at_publisher.quality > at_resolver.quality,
            "the publisher's page is cited"
        );
        assert_eq!(
            key("https://onlinelibrary.wiley.com/doi/full/10.1002/ANIE.202301234").as_deref(),
            Some("doi:10.1002/anie.202301234")
        );
        assert_eq!(key("https://example.com/doi/not-a-doi"), None);
        assert_eq!(key("https://example.com/blog/post"), None);
    }
}
