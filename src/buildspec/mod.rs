//! buildspec.yml v0.2: `load` turns YAML text into a checked [`Buildspec`] (spec Section A),
//! `lint` finds risky but valid constructs, and `script` renders the phases for the container.
//!
//! Everything past `load` sees only the validated model, never YAML.

mod error;
mod model;
mod parse;

pub mod lint;
pub mod script;

pub use error::*;
pub use model::*;
pub use parse::{Loaded, load, load_file};
