//! STUB until the parser lands.
use super::*;
/// Loaded.
pub struct Loaded { /// b
 pub buildspec: Buildspec, /// w
 pub warnings: Vec<Warning> }
/// load
pub fn load(origin: &str, _text: &str) -> Result<Loaded, BuildspecError> { Ok(Loaded { buildspec: Buildspec { origin: origin.into(), ..Buildspec::default() }, warnings: vec![] }) }
/// load file
pub fn load_file(path: &std::path::Path) -> Result<Loaded, BuildspecError> { let t = fs_err::read_to_string(path).map_err(|source| BuildspecError::Io { path: path.into(), source })?; load(&path.display().to_string(), &t) }
