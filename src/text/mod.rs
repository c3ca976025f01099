//! Text utilities shared by the notes provider and the reading stage.

pub mod bm25;
