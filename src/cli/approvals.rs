//! Manual approvals and cancel requests between processes, as small files in the data dir.
//!
//! `runner approve` / `runner cancel` write `<data>/requests/<execution>/<name>`; the running
//! execution polls for them. Files keep the two processes independent of each other's lifetime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::engine::{Approval, ApprovalGate, RunId, Transition};
use crate::pipeline::ExecutionMode;
use crate::state::requests::{self, transition_waiting_dir};

/// How often a waiting execution looks for an answer.
const POLL: Duration = Duration::from_millis(300);

pub(crate) use crate::state::requests::{approval_file, cancel_file, transition_file};

/// Approvals answered by `runner approve`, and transitions disabled by `runner transition`.
pub(crate) struct FileApprovals {
    /// The data directory.
    data_dir: PathBuf,
    /// This execution's entries in front of disabled transitions, by waiting directory.
    waiting: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl ApprovalGate for FileApprovals {
    fn wait(
        &self,
        run: &RunId,
        stage: &str,
        action: &str,
        timeout: Duration,
    ) -> BoxFuture<'static, Approval> {
        let path = approval_file(&self.data_dir, &run.0, stage, action);
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                if let Ok(answer) = fs_err::tokio::read_to_string(&path).await {
                    return match answer.trim().strip_prefix("rejected") {
                        Some(reason) => {
                            Approval::Rejected(reason.trim_start_matches(':').trim().to_owned())
                        }
                        None => Approval::Approved,
                    };
                }
                if tokio::time::Instant::now() >= deadline {
                    return Approval::Rejected("the approval timed out".into());
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }

    fn transition(
        &self,
        run: &RunId,
        pipeline: &str,
        mode: ExecutionMode,
        stage: &str,
    ) -> BoxFuture<'static, Transition> {
        let marker = transition_file(&self.data_dir, pipeline, stage);
        if !marker.exists() {
            return Box::pin(std::future::ready(Transition::Continue));
        }
        let waiting = transition_waiting_dir(&self.data_dir, pipeline, stage);
        let entry = match self.register(&waiting, &run.0) {
            Ok(entry) => entry,
            Err(error) => {
                let reason = format!("register as waiting in {}: {error}", waiting.display());
                return Box::pin(std::future::ready(Transition::Superseded(reason)));
            }
        };
        let stage = stage.to_owned();
        Box::pin(async move {
            let mut disabled_at = None;
            let mut said = false;
            loop {
                if mode == ExecutionMode::Superseded && newer_waiting(&waiting, &entry) {
                    return Transition::Superseded(format!(
                        "a newer execution is waiting in front of stage {stage} (P20)"
                    ));
                }
                match fs_err::metadata(&marker) {
                    Ok(meta) => disabled_at = meta.modified().ok().or(disabled_at),
                    Err(_) if disabled_too_long(disabled_at) => {
                        return Transition::Superseded(format!(
                            "the transition into stage {stage} was disabled for more than 30 days; nothing resumes (P18)"
                        ));
                    }
                    Err(_) => return Transition::Continue,
                }
                if !said {
                    tracing::warn!(path = %marker.display(), "waiting: the transition into this stage is disabled");
                    said = true;
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }
}

impl FileApprovals {
    /// Approvals and transitions of one execution under `data_dir`.
    pub(crate) fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// The execution's entry in `waiting`, created on the first call: every action of a stage
    /// shares it, so they never supersede each other.
    fn register(&self, waiting: &Path, run: &str) -> std::io::Result<PathBuf> {
        let mut entries = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = entries.get(waiting) {
            return Ok(entry.clone());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let entry = waiting.join(format!("{nanos:020}-{run}"));
        requests::write(&entry, "")?;
        entries.insert(waiting.to_owned(), entry.clone());
        Ok(entry)
    }

    /// Removes the execution's waiting entries; called when it ends.
    pub(crate) fn forget(&self) {
        let entries = std::mem::take(
            &mut *self
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for entry in entries.values() {
            let _ = fs_err::remove_file(entry);
        }
    }
}

/// Whether another execution registered in `waiting` after `entry` (names sort by arrival).
fn newer_waiting(waiting: &Path, entry: &Path) -> bool {
    let Some(mine) = entry.file_name() else {
        return false;
    };
    let Ok(listing) = fs_err::read_dir(waiting) else {
        return false;
    };
    listing
        .filter_map(Result::ok)
        .map(|found| found.file_name())
        .any(|name| name.as_os_str() > mine && !name.to_string_lossy().starts_with('.'))
}

/// P18: a transition that was disabled for more than 30 days resumes nothing.
fn disabled_too_long(disabled_at: Option<SystemTime>) -> bool {
    disabled_at
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|elapsed| elapsed > Duration::from_secs(30 * 24 * 3600))
}

/// Cancels `token` when `runner cancel` asks for this execution.
pub(crate) fn watch_cancel_requests(data_dir: PathBuf, run: String, token: CancellationToken) {
    tokio::spawn(async move {
        let path = cancel_file(&data_dir, &run);
        loop {
            if path.exists() {
                tracing::warn!(execution = run, "cancel requested");
                token.cancel();
                return;
            }
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    });
}
