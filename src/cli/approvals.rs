//! Manual approvals and cancel requests between processes, as small files in the data dir.
//!
//! `runner approve` / `runner cancel` write `<data>/requests/<execution>/<name>`; the running
//! execution polls for them. Files keep the two processes independent of each other's lifetime.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::engine::{Approval, ApprovalGate, RunId};

/// How often a waiting execution looks for an answer.
const POLL: Duration = Duration::from_millis(300);

pub(crate) use crate::state::requests::{approval_file, cancel_file, transition_file};

/// Approvals answered by `runner approve`.
pub(crate) struct FileApprovals {
    /// The data directory.
    pub(crate) data_dir: PathBuf,
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

    fn transition(&self, pipeline: &str, stage: &str) -> BoxFuture<'static, ()> {
        let path = transition_file(&self.data_dir, pipeline, stage);
        Box::pin(async move {
            let mut said = false;
            while path.exists() {
                if !said {
                    tracing::warn!(path = %path.display(), "waiting: the transition into this stage is disabled");
                    said = true;
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }
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
