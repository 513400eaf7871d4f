//! Statuses and other closed sets, stored as TEXT in the spellings users know.

use std::fmt;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

/// A stored text value that names no known variant.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
struct UnknownValue {
    kind: &'static str,
    value: String,
}

/// An enum stored as TEXT in the spelling users know.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// The spelling stored in the database and shown to users.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Parses the stored spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                Self::parse(text).ok_or_else(|| {
                    FromSqlError::Other(Box::new(UnknownValue {
                        kind: stringify!($name),
                        value: text.to_owned(),
                    }))
                })
            }
        }
    };
}

text_enum! {
    /// Status of a pipeline execution (P12, plus `Abandoned` for a runner that died).
    ExecutionStatus {
        /// Running.
        InProgress = "InProgress",
        /// A stop was asked for; running actions are finishing (P19).
        Stopping = "Stopping",
        /// Stopped by a user.
        Stopped = "Stopped",
        /// Every stage succeeded.
        Succeeded = "Succeeded",
        /// A newer execution replaced it while it waited between stages (P20).
        Superseded = "Superseded",
        /// A stage failed.
        Failed = "Failed",
        /// Cancelled before it ran.
        Cancelled = "Cancelled",
        /// The runner driving it died.
        Abandoned = "Abandoned",
    }
}

text_enum! {
    /// Status of one stage attempt (P12, plus `Abandoned`).
    StageStatus {
        /// Running.
        InProgress = "InProgress",
        /// Stopping: running actions are finishing.
        Stopping = "Stopping",
        /// Stopped by a user.
        Stopped = "Stopped",
        /// Every action succeeded.
        Succeeded = "Succeeded",
        /// An action failed.
        Failed = "Failed",
        /// Cancelled.
        Cancelled = "Cancelled",
        /// Skipped by an entry condition (P42).
        Skipped = "Skipped",
        /// The runner driving it died.
        Abandoned = "Abandoned",
    }
}

text_enum! {
    /// Status of one action attempt (P12, plus `Stopped`).
    ActionStatus {
        /// Running.
        InProgress = "InProgress",
        /// Given up: stop-and-abandon (P19) or the runner died.
        Abandoned = "Abandoned",
        /// Succeeded.
        Succeeded = "Succeeded",
        /// Failed.
        Failed = "Failed",
        /// Stopped by a user.
        Stopped = "Stopped",
    }
}

text_enum! {
    /// Status of one build phase (B33).
    PhaseStatus {
        /// Finished without error.
        Succeeded = "SUCCEEDED",
        /// A command or step failed.
        Failed = "FAILED",
        /// The runner itself failed.
        Fault = "FAULT",
        /// The timeout expired.
        TimedOut = "TIMED_OUT",
        /// Stopped by a user.
        Stopped = "STOPPED",
        /// Still running.
        InProgress = "IN_PROGRESS",
    }
}

text_enum! {
    /// What a stage retry re-runs (P36).
    RetryMode {
        /// Only the actions that did not succeed.
        FailedActions = "FAILED_ACTIONS",
        /// The whole stage.
        AllActions = "ALL_ACTIONS",
    }
}

text_enum! {
    /// What started an execution, in CodePipeline's `triggerType` spelling.
    TriggerKind {
        /// `runner run` or the API (`StartPipelineExecution`).
        Manual = "StartPipelineExecution",
        /// A push or pull-request webhook.
        Webhook = "WebhookV2",
        /// Polling found a new revision.
        Poll = "PollForSourceChanges",
        /// A user rolled a stage back (P40).
        ManualRollback = "ManualRollback",
        /// A failure condition rolled a stage back (P41).
        AutomatedRollback = "AutomatedRollback",
    }
}

impl ExecutionStatus {
    /// Whether the execution has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::InProgress | Self::Stopping)
    }
}

impl StageStatus {
    /// Whether the attempt has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::InProgress | Self::Stopping)
    }
}
