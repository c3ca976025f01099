//! The fallback file: a report that could not go into the document is saved as a file and opened.

use std::path::PathBuf;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{MessageType, ShowDocumentParams, Uri};

use super::State;
use super::prepare::Prepared;

/// The report could not go into the document: save it as a file, open it, and say so.
pub(super) async fn fallback(
    state: &State,
    client: &Client,
    p: &Prepared,
    research: &crate::research::Research,
    reason: &str,
) -> Option<PathBuf> {
    let dir = crate::config::cache_dir(&state.env)
        .unwrap_or_else(std::env::temp_dir)
        .join("reports");
    let path = dir.join(fallback_name(&p.topic, &p.spec.id));
    let md = crate::render::markdown(
        research,
        &crate::render::RenderOptions {
            style: p.spec.style,
            heading_level: 1,
            marker_id: Some(p.spec.id.clone()),
            cited_only: p.spec.cited_only,
            mark_dead: p.spec.mark_dead,
        },
    );
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&path, format!("{md}\n")).await
    }
    .await;
    if let Err(e) = written {
        client
            .show_message(
                MessageType::ERROR,
                format!("Conductor could not insert the report ({reason}) nor save it: {e}"),
            )
            .await;
        return None;
    }
    if state.caps().show_document
        && let Some(file_uri) = Uri::from_file_path(&path)
    {
        let shown = tokio::time::timeout(
            state.opts.client_timeout,
            client.show_document(ShowDocumentParams {
                uri: file_uri,
                external: None,
                take_focus: Some(true),
                selection: None,
            }),
        )
        .await;
        if !matches!(shown, Ok(Ok(true))) {
            tracing::info!("the editor did not open the saved report");
        }
    }
    client
        .show_message(
            MessageType::WARNING,
            format!(
                "Conductor could not insert the report ({reason}). It was saved to {}",
                path.display()
            ),
        )
        .await;
    Some(path)
}

/// Longest file name written, in bytes: file systems allow 255, some (eCryptfs, encrypted home folders)
/// about 143.
const MAX_NAME_BYTES: usize = 140;

/// The fallback file's name: a slug of the topic (up to 8 words), cut on a char boundary so that the
/// whole name, id and `.md` included, stays within [`MAX_NAME_BYTES`] bytes.
fn fallback_name(topic: &str, id: &str) -> String {
    let slug = topic
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    let room = MAX_NAME_BYTES.saturating_sub(id.len() + ".md".len() + 1);
    let mut cut = slug.len().min(room);
    while !slug.is_char_boundary(cut) {
        cut -= 1;
    }
    let slug = slug[..cut].trim_end_matches('-');
    if slug.is_empty() {
        format!("report-{id}.md")
    } else {
        format!("{slug}-{id}.md")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_names_fit_every_file_system() {
        let id = "0123456789abcdef";
        for topic in [
            "漢".repeat(104),
            "é".repeat(300),
            "a".repeat(1000),
            "🦀 ".repeat(80),
            "---".into(),
            String::new(),
        ] {
            let name = fallback_name(&topic, id);
            assert!(name.len() <= MAX_NAME_BYTES, "{} bytes: {name}", name.len());
            assert!(name.ends_with(&format!("{id}.md")), "{name}");
            assert!(!name.contains('/'), "{name}");
        }
        assert_eq!(
            fallback_name("Rust async", id),
            format!("rust-async-{id}.md")
        );
    }
}
