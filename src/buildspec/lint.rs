//! STUB until the linter lands.
use super::*;
/// lint
pub fn lint(_b: &Buildspec) -> Vec<Warning> {
    vec![]
}
