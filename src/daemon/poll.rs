//! Polling a remote for new heads: what changed since the last look, and how long to wait.
//!
//! [`Poller`] is pure bookkeeping: the caller lists the remote's refs (cheaply, with git2's
//! `ls_remote`) and reports the result; the poller says whether the watched branch moved, and
//! backs off after errors, asking to log an error once when it starts, not on every poll.

use std::time::Duration;

/// The longest wait between polls after repeated errors.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// The watched ref points at a new commit (`previous` is `None` on the first look).
    Moved {
        /// The ref, e.g. `refs/heads/master`.
        git_ref: String,
        /// The commit it pointed at before.
        previous: Option<String>,
        /// The commit it points at now.
        current: String,
    },
    /// Nothing changed.
    Unchanged,
    /// The ref does not exist on the remote.
    Missing {
        /// The ref.
        git_ref: String,
    },
    /// Listing failed; `log` is true only for the first failure of a run of failures.
    Failed {
        /// Whether to log it (the first error after a success).
        log: bool,
        /// How many polls in a row have failed.
        consecutive: u32,
    },
    /// Listing works again after failures.
    Recovered {
        /// How many polls had failed.
        after: u32,
    },
}

/// Tracks one watched ref of one remote.
#[derive(Debug, Clone)]
pub struct Poller {
    git_ref: String,
    interval: Duration,
    last: Option<String>,
    failures: u32,
}

impl Poller {
    /// Watches `refs/heads/<branch>`, polling every `interval`.
    pub fn new(branch: &str, interval: Duration) -> Self {
        Self {
            git_ref: format!("refs/heads/{branch}"),
            interval,
            last: None,
            failures: 0,
        }
    }

    /// Starts from a commit already built (so a restart does not rebuild it).
    #[must_use]
    pub fn with_last(mut self, commit: Option<String>) -> Self {
        self.last = commit;
        self
    }

    /// The watched ref.
    pub fn git_ref(&self) -> &str {
        &self.git_ref
    }

    /// The last commit seen.
    pub fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Records the result of listing the remote's refs.
    pub fn observe(&mut self, listing: Result<&[(String, String)], ()>) -> PollOutcome {
        let Ok(refs) = listing else {
            self.failures += 1;
            return PollOutcome::Failed {
                log: self.failures == 1,
                consecutive: self.failures,
            };
        };
        if self.failures > 0 {
            let after = std::mem::take(&mut self.failures);
            // Report the recovery; the ref itself is looked at on the next poll.
            return PollOutcome::Recovered { after };
        }
        let Some((_, current)) = refs.iter().find(|(name, _)| *name == self.git_ref) else {
            return PollOutcome::Missing {
                git_ref: self.git_ref.clone(),
            };
        };
        if self.last.as_deref() == Some(current.as_str()) {
            return PollOutcome::Unchanged;
        }
        let previous = self.last.replace(current.clone());
        PollOutcome::Moved {
            git_ref: self.git_ref.clone(),
            previous,
            current: current.clone(),
        }
    }

    /// How long to wait before the next poll: the interval, doubled per consecutive failure up
    /// to `MAX_BACKOFF` (never shorter than the interval).
    pub fn next_delay(&self) -> Duration {
        if self.failures == 0 {
            return self.interval;
        }
        let factor = 1u32 << self.failures.min(8);
        (self.interval * factor).min(MAX_BACKOFF.max(self.interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(sha: &str) -> Vec<(String, String)> {
        vec![
            ("refs/heads/master".to_owned(), sha.to_owned()),
            ("refs/heads/other".to_owned(), "f".repeat(40)),
        ]
    }

    #[test]
    fn first_look_and_each_move_are_reported_once() {
        let mut poller = Poller::new("master", Duration::from_secs(30));
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        assert_eq!(
            poller.observe(Ok(&refs(&a))),
            PollOutcome::Moved {
                git_ref: "refs/heads/master".into(),
                previous: None,
                current: a.clone()
            }
        );
        assert_eq!(poller.observe(Ok(&refs(&a))), PollOutcome::Unchanged);
        assert_eq!(
            poller.observe(Ok(&refs(&b))),
            PollOutcome::Moved {
                git_ref: "refs/heads/master".into(),
                previous: Some(a),
                current: b
            }
        );
    }

    #[test]
    fn a_restart_does_not_rebuild_the_last_commit() {
        let a = "a".repeat(40);
        let mut poller = Poller::new("master", Duration::from_secs(30)).with_last(Some(a.clone()));
        assert_eq!(poller.observe(Ok(&refs(&a))), PollOutcome::Unchanged);
    }

    #[test]
    fn errors_are_logged_once_and_back_off() {
        let mut poller = Poller::new("master", Duration::from_secs(10));
        assert_eq!(
            poller.observe(Err(())),
            PollOutcome::Failed {
                log: true,
                consecutive: 1
            }
        );
        assert_eq!(poller.next_delay(), Duration::from_secs(20));
        assert_eq!(
            poller.observe(Err(())),
            PollOutcome::Failed {
                log: false,
                consecutive: 2
            }
        );
        assert_eq!(poller.next_delay(), Duration::from_secs(40));
        for _ in 0..10 {
            let _ = poller.observe(Err(()));
        }
        assert_eq!(poller.next_delay(), MAX_BACKOFF);
        assert_eq!(
            poller.observe(Ok(&refs("a"))),
            PollOutcome::Recovered { after: 12 }
        );
        assert_eq!(poller.next_delay(), Duration::from_secs(10));
    }

    #[test]
    fn a_missing_branch_is_reported() {
        let mut poller = Poller::new("main", Duration::from_secs(1));
        assert_eq!(
            poller.observe(Ok(&refs("a"))),
            PollOutcome::Missing {
                git_ref: "refs/heads/main".into()
            }
        );
    }
}
