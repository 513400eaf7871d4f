//! Following an execution's build logs while the recorder appends to them
//! (`<data>/logs/<execution>/<stage>.<action>.<attempt>.log`): [`LogFollower`] reads the latest
//! attempt of each action from where it stopped last time, whole lines only.
//!
//! `runner logs [--follow]`, `GET /api/v1/executions/{id}/logs` and its SSE `/logs/stream` share
//! it. It only reads files named by the state database; it never polls or sleeps itself.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::state::ExecutionDetail;

/// What to do with a last line that has no newline yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialLine {
    /// Leave it for the next read: the build may still be writing it.
    Hold,
    /// Return it: the log is complete.
    Take,
}

/// One line of one action attempt's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The stage.
    pub stage: String,
    /// The action.
    pub action: String,
    /// The action's attempt.
    pub attempt: u32,
    /// The line, without its line ending (invalid UTF-8 replaced).
    pub text: String,
}

impl LogLine {
    /// `stage.action`, as `runner logs` prefixes lines.
    pub fn name(&self) -> String {
        format!("{}.{}", self.stage, self.action)
    }

    /// The phase a CodeBuild agent line enters (`[Container] <time> Entering phase BUILD`).
    pub fn entered_phase(&self) -> Option<&str> {
        let rest = self.text.strip_prefix("[Container] ")?;
        let (_, phase) = rest.split_once(" Entering phase ")?;
        phase.split_whitespace().next()
    }
}

/// Reads new lines of an execution's action logs, each line once.
#[derive(Debug, Default)]
pub struct LogFollower {
    /// `stage.action` or `action`; `None` follows every action.
    action: Option<String>,
    /// Bytes already returned, per log file.
    offsets: HashMap<PathBuf, u64>,
}

impl LogFollower {
    /// A follower of every action, or of the one `action` names (`stage.action` or `action`).
    pub fn new(action: Option<String>) -> Self {
        Self {
            action,
            offsets: HashMap::new(),
        }
    }

    /// Whether the filter names an action that has started in `detail` (always, without one).
    pub fn matches_any(&self, detail: &ExecutionDetail) -> bool {
        self.action.is_none()
            || detail
                .actions
                .iter()
                .any(|run| self.wanted(&run.stage, &run.action))
    }

    fn wanted(&self, stage: &str, action: &str) -> bool {
        self.action
            .as_deref()
            .is_none_or(|wanted| wanted == action || wanted == format!("{stage}.{action}"))
    }

    /// The lines written since the last call to the logs of the latest attempt of each action
    /// of `detail`, stage by stage. A log not written yet is skipped.
    pub async fn read_new(
        &mut self,
        detail: &ExecutionDetail,
        partial: PartialLine,
    ) -> std::io::Result<Vec<LogLine>> {
        let mut stages: Vec<&str> = Vec::new();
        for stage in &detail.stages {
            if !stages.contains(&stage.stage.as_str()) {
                stages.push(&stage.stage);
            }
        }
        let mut lines = Vec::new();
        for stage in stages {
            for run in detail.latest_actions(stage) {
                if !self.wanted(stage, &run.action) {
                    continue;
                }
                let Some(path) = &run.log_path else {
                    continue;
                };
                let offset = self.offsets.entry(path.clone()).or_default();
                let Some(bytes) = read_from(path, *offset).await? else {
                    continue;
                };
                let end = match partial {
                    PartialLine::Take => bytes.len(),
                    PartialLine::Hold => bytes
                        .iter()
                        .rposition(|byte| *byte == b'\n')
                        .map_or(0, |last| last + 1),
                };
                *offset += end as u64;
                let complete = &bytes[..end];
                let complete = complete.strip_suffix(b"\n").unwrap_or(complete);
                if end == 0 {
                    continue;
                }
                lines.extend(complete.split(|byte| *byte == b'\n').map(|line| {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    LogLine {
                        stage: stage.to_owned(),
                        action: run.action.clone(),
                        attempt: run.attempt,
                        text: String::from_utf8_lossy(line).into_owned(),
                    }
                }));
            }
        }
        Ok(lines)
    }
}

/// The bytes of `path` from `offset` on; `None` when the file does not exist (yet).
async fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut file = match fs_err::tokio::File::open(path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    file.seek(SeekFrom::Start(offset)).await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::handlers::executions::tests::record_execution;
    use crate::server::testing::{FakeLauncher, state};
    use crate::server::{AppState, PushReply};
    use crate::state::ExecutionId;

    async fn detail(state: &AppState, id: &str) -> ExecutionDetail {
        state
            .store
            .get_execution(&ExecutionId::from(id))
            .await
            .unwrap()
    }

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|line| line.text.as_str()).collect()
    }

    #[tokio::test]
    async fn lines_are_read_once_and_a_partial_line_waits_until_taken() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let detail = detail(&state, &id).await;
        let log = detail.actions[0].log_path.clone().unwrap();
        let mut follower = LogFollower::new(None);
        let lines = follower.read_new(&detail, PartialLine::Hold).await.unwrap();
        assert_eq!(texts(&lines), ["compiling", "done"]);
        assert_eq!(lines[0].name(), "build.compile");
        assert_eq!(lines[0].attempt, 1);
        assert!(
            follower
                .read_new(&detail, PartialLine::Hold)
                .await
                .unwrap()
                .is_empty()
        );
        let mut text = fs_err::read_to_string(&log).unwrap();
        text.push_str("[Container] 2024/01/02 03:04:05.678901 Entering phase BUILD\r\nhalf");
        fs_err::write(&log, text).unwrap();
        let lines = follower.read_new(&detail, PartialLine::Hold).await.unwrap();
        assert_eq!(
            texts(&lines),
            ["[Container] 2024/01/02 03:04:05.678901 Entering phase BUILD"]
        );
        assert_eq!(lines[0].entered_phase(), Some("BUILD"));
        let lines = follower.read_new(&detail, PartialLine::Take).await.unwrap();
        assert_eq!(texts(&lines), ["half"]);
        assert_eq!(lines[0].entered_phase(), None);
    }

    #[tokio::test]
    async fn a_filter_follows_one_action_and_missing_logs_are_skipped() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let detail = detail(&state, &id).await;
        for name in ["compile", "build.compile"] {
            let follower = LogFollower::new(Some(name.to_owned()));
            assert!(follower.matches_any(&detail), "{name}");
        }
        let mut other = LogFollower::new(Some("deploy.compile".to_owned()));
        assert!(!other.matches_any(&detail));
        let lines = other.read_new(&detail, PartialLine::Take).await.unwrap();
        assert!(lines.is_empty());
        fs_err::remove_file(detail.actions[0].log_path.as_ref().unwrap()).unwrap();
        let mut all = LogFollower::new(None);
        assert!(
            all.read_new(&detail, PartialLine::Take)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
