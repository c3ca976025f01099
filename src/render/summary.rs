//! The summary section of a report: the checked summary's blocks as markdown (text escaped, citations
//! as the report's style writes them) and the notes around it (uncited, cut off, removed, model and
//! tokens).

use super::{escape_line_start, escape_text};
use crate::check::CheckLine;
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
    let marks = claim_marks(summary);
    let body = render_blocks_marked(&summary.blocks, &marks, cite);
    if body.is_empty() {
        out.push_str("*The model returned no usable summary.*");
    } else {
        if summary.uncited {
            out.push_str("*Uncited summary: the model cited none of the sources; check it against them.*\n\n");
        }
        out.push_str(&body);
    }
    if let Some(counts) = &summary.check
        && !body.is_empty()
    {
        let line = CheckLine::from_counts(counts, summary.judge.clone());
        out.push_str("\n\n");
        out.push_str(&super::check_line(&line));
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
    render_blocks_marked(blocks, &vec![Vec::new(); blocks.len()], cite)
}

/// Where the claim check's marks go: for each block, (byte offset in the block's plain text, mark),
/// right after each sentence its sources do not back (after its citation markers). The claims were
/// graded on the summary's plain text; it is split again here (the split is deterministic, and the
/// numbers may have changed since), so the marks land after the same sentences.
fn claim_marks(summary: &Summary) -> Vec<Vec<(usize, &'static str)>> {
    let mut marks = vec![Vec::new(); summary.blocks.len()];
    if summary.claims.is_empty() {
        return marks;
    }
    let sentences = crate::check::claims::split(&summary.text);
    if sentences.len() != summary.claims.len() {
        tracing::debug!("the summary's sentences no longer match its claims: no marks");
        return marks;
    }
    // Each block's byte range in the plain text, as `report::plain_text` joins them.
    let mut ranges = Vec::with_capacity(summary.blocks.len());
    let mut cursor = 0;
    for b in &summary.blocks {
        let start = cursor + if b.kind == BlockKind::Bullet { 2 } else { 0 };
        let end = start + b.plain().len();
        ranges.push(start..end);
        cursor = end + 2;
    }
    for (sentence, claim) in sentences.iter().zip(&summary.claims) {
        let Some(mark) = super::claim_mark(claim.status) else {
            continue;
        };
        let at = sentence.span.end;
        if let Some(i) = ranges.iter().position(|r| r.start <= at && at <= r.end) {
            marks[i].push((at - ranges[i].start, mark));
        }
    }
    marks
}

/// [`render_blocks`] with the claim check's marks (see [`claim_marks`]).
fn render_blocks_marked(
    blocks: &[Block],
    marks: &[Vec<(usize, &'static str)>],
    cite: &mut dyn FnMut(usize) -> String,
) -> String {
    let mut out = String::new();
    let mut prev: Option<BlockKind> = None;
    for (i, b) in blocks.iter().enumerate() {
        let line = render_inline(&b.segments, marks.get(i).map_or(&[][..], |m| m), cite);
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

/// One block's segments as markdown; `marks` are (byte offset in the block's plain text, mark), written
/// at that offset (a text segment is split there).
fn render_inline(
    segments: &[Segment],
    marks: &[(usize, &'static str)],
    cite: &mut dyn FnMut(usize) -> String,
) -> String {
    let mut out = String::new();
    let mut after_cite = false;
    let mut pos = 0;
    let mut marks = marks.iter().peekable();
    let text_part = |out: &mut String, part: &str, after_cite: bool| {
        if part.is_empty() {
            return;
        }
        let mut t = escape_text(part);
        // `[1](x)` would be a link and `[1]: x` a link definition: break them.
        if after_cite && (t.starts_with('(') || t.starts_with(':')) {
            t.insert(0, '\\');
        }
        if out.is_empty() {
            t = escape_line_start(&t);
        }
        out.push_str(&t);
    };
    for s in segments {
        match s {
            Segment::Cite { n } => {
                out.push_str(&cite(*n));
                pos += format!("[{n}]").len();
                after_cite = true;
            }
            Segment::Text { text } => {
                let end = pos + text.len();
                let mut from = 0;
                while let Some(&&(at, mark)) = marks.peek() {
                    if at >= end || at < pos {
                        break;
                    }
                    let cut = at - pos;
                    if !text.is_char_boundary(cut) {
                        break;
                    }
                    text_part(&mut out, &text[from..cut], after_cite && from == 0);
                    out.push_str(mark);
                    after_cite = false;
                    from = cut;
                    marks.next();
                }
                text_part(&mut out, &text[from..], after_cite && from == 0);
                pos = end;
                after_cite = false;
            }
        }
        // Marks at the end of this segment (after a sentence's last citation).
        while let Some(&&(at, mark)) = marks.peek() {
            if at > pos {
                break;
            }
            out.push_str(mark);
            after_cite = false;
            marks.next();
        }
    }
    out
}
