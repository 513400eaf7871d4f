//! Requests between processes, as small files in the data directory: approval answers, cancel
//! requests and disabled transitions.
//!
//! `runner approve`, `runner cancel`, `runner transition` and the `runner serve` API write them;
//! the process running the execution polls for them. Files keep the writer and the execution
//! independent of each other's lifetime. Writes are atomic (temp file, then rename).

use std::path::{Path, PathBuf};

/// The request directory of one execution.
fn requests_dir(data_dir: &Path, execution: &str) -> PathBuf {
    data_dir.join("requests").join(execution)
}

/// The answer file of approval action `stage/action` of `execution`: `approved`, or
/// `rejected: <reason>`.
pub fn approval_file(data_dir: &Path, execution: &str, stage: &str, action: &str) -> PathBuf {
    requests_dir(data_dir, execution).join(format!("approve.{stage}.{action}"))
}

/// The cancel request file of an execution.
pub fn cancel_file(data_dir: &Path, execution: &str) -> PathBuf {
    requests_dir(data_dir, execution).join("cancel")
}

/// The marker file of a disabled transition into `stage` of `pipeline` (P18).
pub fn transition_file(data_dir: &Path, pipeline: &str, stage: &str) -> PathBuf {
    data_dir
        .join("transitions")
        .join(pipeline)
        .join(format!("{stage}.disabled"))
}

/// The directory where executions waiting in front of a disabled transition into `stage`
/// register, one empty file each named `<arrival nanoseconds, 20 digits>-<execution>`, so the
/// newest can be told apart across processes (P18, P20).
pub fn transition_waiting_dir(data_dir: &Path, pipeline: &str, stage: &str) -> PathBuf {
    data_dir
        .join("transitions")
        .join(pipeline)
        .join(format!("{stage}.waiting"))
}

/// The text of an approval answer.
pub fn approval_answer(reject: Option<&str>) -> String {
    match reject {
        Some(reason) => format!("rejected: {reason}"),
        None => "approved".to_owned(),
    }
}

/// Writes `content` to `path` atomically, creating its directory.
pub fn write(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    fs_err::write(&temp, content)?;
    fs_err::rename(&temp, path)
}

/// Whether a request name is safe as one path component (no `/`, `..` or empty names).
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_atomically_where_the_execution_looks() {
        let dir = tempfile::tempdir().unwrap();
        let path = approval_file(dir.path(), "e1", "gate", "approve");
        write(&path, &approval_answer(Some("no"))).unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "rejected: no");
        assert!(path.starts_with(dir.path().join("requests/e1")));
        assert!(!is_safe_name("../x") && !is_safe_name("") && is_safe_name("build-lambdas"));
    }
}
