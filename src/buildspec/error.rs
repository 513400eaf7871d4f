//! `BuildspecError`: a buildspec that cannot be read, or every problem found in one that can.
//!
//! Each problem prints as `<origin>:<line>:<column>: <field>: <message>`, one per line, so an
//! editor can jump to it. Messages are lowercase, except the B3 text copied from `CodeBuild` so
//! that logs can be compared with real builds (B35).

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use super::model::Location;

/// The `CodeBuild` phase-context status code for every load failure. Real `CodeBuild` reports a
/// missing file, malformed YAML and a rejected buildspec alike as `YAML_FILE_ERROR` in
/// `DOWNLOAD_SOURCE`.
pub const STATUS_CODE: &str = "YAML_FILE_ERROR";

/// Why a buildspec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BuildspecError {
    /// The file could not be read; a missing file says so in the message itself, because
    /// callers often print only the top-level message.
    #[error("{} buildspec file {}", io_verb(source), path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid v0.2 buildspec.
    #[error("{}", render(origin, problems))]
    Invalid {
        /// Where the text came from (a path, or `<inline>`).
        origin: String,
        /// Every problem found, in document order.
        problems: Vec<Problem>,
    },
}

impl BuildspecError {
    /// The problems found; empty for `Io`.
    pub fn problems(&self) -> &[Problem] {
        match self {
            BuildspecError::Io { .. } => &[],
            BuildspecError::Invalid { problems, .. } => problems,
        }
    }
}

/// One thing wrong with a buildspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file.
    pub location: Location,
    /// The dotted path of the offending value, e.g. `phases.build.commands[2]`; empty for
    /// malformed YAML.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What kind of problem it is.
    pub code: ProblemCode,
}

impl Problem {
    /// Formats the problem as `<origin>:<line>:<column>: <field>: <message>`.
    pub fn display<'a>(&'a self, origin: &'a str) -> impl fmt::Display + 'a {
        ProblemDisplay {
            origin,
            problem: self,
        }
    }
}

/// What kind of problem a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemCode {
    /// Real `CodeBuild` fails here while decoding the YAML: malformed YAML, a duplicate key, or a
    /// command that is not a string (B3).
    YamlFileError,
    /// The buildspec breaks a rule of spec Section A.
    Invalid,
    /// Valid for `CodeBuild`, but this runner does not support it (batch builds, `RETRY`,
    /// Windows shells, version 0.1).
    Unsupported,
}

struct ProblemDisplay<'a> {
    origin: &'a str,
    problem: &'a Problem,
}

impl fmt::Display for ProblemDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Problem {
            location,
            field,
            message,
            ..
        } = self.problem;
        write!(f, "{}:{location}: ", self.origin)?;
        if !field.is_empty() {
            write!(f, "{field}: ")?;
        }
        f.write_str(message)
    }
}

fn io_verb(source: &std::io::Error) -> &'static str {
    if source.kind() == std::io::ErrorKind::NotFound {
        "find"
    } else {
        "read"
    }
}

fn render(origin: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (index, problem) in problems.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        write!(out, "{}", problem.display(origin)).expect("writing to a String cannot fail");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(line: usize, column: usize, field: &str, message: &str) -> Problem {
        Problem {
            location: Location { line, column },
            field: field.to_owned(),
            message: message.to_owned(),
            code: ProblemCode::Invalid,
        }
    }

    #[test]
    fn invalid_prints_one_problem_per_line() {
        let error = BuildspecError::Invalid {
            origin: "buildspec.yml".to_owned(),
            problems: vec![
                problem(1, 10, "version", "unsupported buildspec version `0.3`"),
                problem(7, 9, "phases.build.commands[2]", "expected a string"),
            ],
        };
        insta::assert_snapshot!(error.to_string(), @r"
        buildspec.yml:1:10: version: unsupported buildspec version `0.3`
        buildspec.yml:7:9: phases.build.commands[2]: expected a string
        ");
    }

    #[test]
    fn malformed_yaml_problem_has_no_field() {
        let error = BuildspecError::Invalid {
            origin: "<inline>".to_owned(),
            problems: vec![problem(
                3,
                5,
                "",
                "mapping values are not allowed in this context",
            )],
        };
        assert_eq!(
            error.to_string(),
            "<inline>:3:5: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn io_error_other_than_missing_says_read() {
        let error = BuildspecError::Io {
            path: PathBuf::from("/src"),
            source: std::io::Error::from(std::io::ErrorKind::IsADirectory),
        };
        assert_eq!(error.to_string(), "read buildspec file /src");
    }

    #[test]
    fn io_error_names_the_path() {
        let error = BuildspecError::Io {
            path: PathBuf::from("/src/buildspec.yml"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(error.to_string(), "find buildspec file /src/buildspec.yml");
        assert!(error.problems().is_empty());
    }
}
