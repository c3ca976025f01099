//! Conductor: turns a topic into a researched, cited markdown report.
//!
//! The core (`config`, `net`, `providers`, `research`, `evidence`, `text`, `sanitize`, `render`, `synth`, `check`,
//! `store`)
//! knows nothing of LSP; the `cli` and the language server (`lsp`) are thin layers over it. See
//! ARCHITECTURE.md.

pub mod check;
pub mod cli;
pub mod config;
pub mod cost;
pub mod evidence;
pub mod lsp;
pub mod net;
pub mod pipeline;
pub mod providers;
pub mod registry;
pub mod render;
pub mod report;
pub mod research;
pub mod sanitize;
pub mod store;
pub mod synth;
pub mod text;
