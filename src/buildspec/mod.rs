//! Buildspec v0.2: load (parse + validate), lint, and render into container scripts.
mod error;
mod model;
mod parse;
pub mod lint;
pub mod script;
pub use error::*;
pub use model::*;
pub use parse::{Loaded, load, load_file};
