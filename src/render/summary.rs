//! The summary section of a report: the checked summary's blocks as markdown (text escaped, citations
//! as the report's style writes them) and the notes around it (uncited, cut off, removed, model and
//! tokens).

use super::{escape_line_start, escape_text};
use crate::report::{Block, BlockKind, Segment, Summary, Synthesis};

/// The body of the report's synthesis section: the summary's paragraphs and bullets with `[n]` markers
/// (all text escaped), an "Uncited summary" label when it cites nothing, a note when the token limit cut
/// it off, a note of what was removed, and a line with the model and tokens used. No heading: the caller
/// adds one at the level that fits.
pub fn render_summary_markdown(summary: &Summary) -> String {
    render_summary_markdown_styled(summary, &mut numbered)
}

/// As [`render_summary_markdown`], each citation written by `cite` (the footnotes citation style writes
/// footnote references).
pub fn render_summary_markdown_styled(
    summary: &Summary,
    cite: &mut dyn FnMut(usize) -> String,
) -> String {
    let mut out = String::new();
    let body = render_blocks(&summary.blocks, cite);
    if body.is_empty() {
        out.push_str("*The model returned no usable summary.*");
    } else {
        if summary.uncited {
            out.push_str("*Uncited summary: the model cited none of the sources; check it against them.*\n\n");
        }
        out.push_str(&body);
    }
    if summary.truncated {
        out.push_str("\n\n*(summary cut off at the token limit)*");
    }
    let mut removed = Vec::new();
    if !summary.removed_citations.is_empty() {
        let nums = summary
            .removed_citations
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        removed.push(format!(
            "citation{} of {nums} (no such source)",
            if summary.removed_citations.len() == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    if summary.removed_links > 0 {
        removed.push(format!(
            "{} link{} the model wrote",
            summary.removed_links,
            if summary.removed_links == 1 { "" } else { "s" }
        ));
    }
    if !removed.is_empty() {
        out.push_str(&format!("\n\n*Removed: {}.*", removed.join("; ")));
    }
    let u = &summary.usage;
    let mut line = format!(
        "*Written by {} {}: {}{} prompt + {} answer tokens",
        escape_text(&summary.backend),
        escape_text(&summary.model),
        if u.estimated { "about " } else { "" },
        u.prompt_tokens,
        u.completion_tokens
    );
    if let Some(cost) = u.cost_usd {
        line.push_str(&format!(", ${cost:.4}").replace('$', "\\$"));
    }
    line.push_str(".*");
    out.push_str("\n\n");
    out.push_str(&line);
    out
}

/// The synthesis section's body for any outcome: the summary, or a sentence saying why there is none.
pub fn render_synthesis_markdown(synthesis: &Synthesis) -> String {
    render_synthesis_markdown_styled(synthesis, &mut numbered)
}

/// [`render_synthesis_markdown`], each citation written by `cite`.
pub fn render_synthesis_markdown_styled(
    synthesis: &Synthesis,
    cite: &mut dyn FnMut(usize) -> String,
) -> String {
    match synthesis {
        Synthesis::Written(s) => render_summary_markdown_styled(s, cite),
        Synthesis::NoSources => "No sources were found, so there is no summary.".into(),
        Synthesis::Skipped { reason } => format!("*No summary: {}.*", escape_text(reason)),
        Synthesis::Failed { error, .. } => format!("*No summary: {}.*", escape_text(error)),
    }
}

/// The blocks as markdown: text escaped with [`escape_text`], each citation as `cite(n)` writes it (`[n]`,
/// or a footnote reference), paragraphs separated by blank lines, consecutive bullet items as one list.
/// Nothing in a block can open a link, heading, list, HTML, code or link definition.
pub fn render_blocks(blocks: &[Block], cite: &mut dyn FnMut(usize) -> String) -> String {
    let mut out = String::new();
    let mut prev: Option<BlockKind> = None;
    for b in blocks {
        let line = render_inline(&b.segments, cite);
        if line.is_empty() {
            continue;
        }
        if let Some(p) = prev {
            out.push_str(if p == BlockKind::Bullet && b.kind == BlockKind::Bullet {
                "\n"
            } else {
                "\n\n"
            });
        }
        if b.kind == BlockKind::Bullet {
            out.push_str("- ");
        }
        out.push_str(&line);
        prev = Some(b.kind);
    }
    out
}

/// A citation as the numbered style writes it: `[n]`.
pub fn numbered(n: usize) -> String {
    format!("[{n}]")
}

fn render_inline(segments: &[Segment], cite: &mut dyn FnMut(usize) -> String) -> String {
    let mut out = String::new();
    let mut after_cite = false;
    for s in segments {
        match s {
            Segment::Cite { n } => {
                out.push_str(&cite(*n));
                after_cite = true;
            }
            Segment::Text { text } => {
                let mut t = escape_text(text);
                // `[1](x)` would be a link and `[1]: x` a link definition: break them.
                if after_cite && (t.starts_with('(') || t.starts_with(':')) {
                    t.insert(0, '\\');
                }
                if out.is_empty() {
                    t = escape_line_start(&t);
                }
                out.push_str(&t);
                after_cite = false;
            }
        }
    }
    out
}
