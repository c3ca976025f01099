//! The claim check in a report: the check line under the summary and the marks after sentences that
//! their sources do not back.

use super::escape_text;
use crate::check::{CheckLine, Status};

/// The check line under a summary, as one italic markdown line: "*Checked: 5 of 6 cited sentences
/// backed by their sources; 1 unsupported; 1 uncited.*" (the judge's model name and errors escaped).
pub fn check_line(line: &CheckLine) -> String {
    format!("*{}*", escape_text(&line.sentence()))
}

/// The visible mark written right after a sentence (after its citation markers) that its sources do
/// not back: plain markdown, readable in any renderer. `None` for a supported sentence.
pub fn claim_mark(status: Status) -> Option<&'static str> {
    match status {
        Status::Supported => None,
        Status::Partial => Some(" *(partly backed)*"),
        Status::Unsupported => Some(" **(unsupported)**"),
        Status::Uncited => Some(" *(uncited)*"),
    }
}
