//! STUB until the parser lands.
use super::Location;
/// Problem kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemCode { /// yaml
 YamlFileError, /// other
 Invalid }
/// One problem.
#[derive(Debug, Clone)]
pub struct Problem { /// loc
 pub location: Location, /// field
 pub field: String, /// msg
 pub message: String, /// code
 pub code: ProblemCode }
/// Error.
#[derive(Debug, thiserror::Error)]
pub enum BuildspecError {
    /// invalid
    #[error("invalid buildspec {origin}")]
    Invalid { /// o
     origin: String, /// p
     problems: Vec<Problem> },
    /// io
    #[error("read {path}")]
    Io { /// p
     path: std::path::PathBuf, /// s
     #[source] source: std::io::Error },
}
