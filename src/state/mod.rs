//! The state of pipeline executions, in `SQLite`: every row and every line of SQL lives here.
//!
//! [`Store`] is the only door: typed async methods over one WAL-mode database file, with
//! migrations from `migrations/`. It records executions, stage and action attempts, phases,
//! artifacts (by digest and location, never contents) and output variables. It must never hold
//! secrets: there is no table for environment variables, and callers pass masked text only.
//! Blocking database calls run inside `spawn_blocking` here, out of sight of callers (B5).

mod executions;
mod outputs;
mod owner;
mod recovery;
pub mod requests;
mod runs;
mod schema;
mod status;
#[cfg(test)]
mod testing;
mod types;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

pub use self::executions::ActionDuration;
pub use self::outputs::Variables;
use self::owner::OwnerLock;
pub use self::status::{
    ActionStatus, ExecutionStatus, PhaseStatus, RetryMode, StageStatus, TriggerKind,
};
pub use self::types::{
    ActionAttempt, ActionOutcome, ActionRun, ActionRunId, Artifact, Execution, ExecutionDetail,
    ExecutionId, NewActionRun, NewArtifact, NewExecution, Phase, PhaseContext, SourceRevision,
    StageRun, Trigger,
};

/// Errors from the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database file could not be opened or configured.
    #[error("open the state database {}", path.display())]
    Open {
        /// Database file.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory for the database or the owner locks could not be created.
    #[error("prepare the state directory")]
    Directory(#[source] std::io::Error),
    /// A schema migration failed; the database stays at the previous version.
    #[error("apply state migration {version}")]
    Migration {
        /// The migration's number (`PRAGMA user_version` after it).
        version: u32,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer runner.
    #[error("read a state database at schema version {found} (this runner knows up to {known})")]
    TooNew {
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The newest migration this build carries.
        known: u32,
    },
    /// A stage attempt was asked for while the previous one is still running (P37).
    #[error(
        "start another attempt of stage `{stage}` of execution `{execution}` (attempt {attempt} is still running)"
    )]
    StageInProgress {
        /// Execution id.
        execution: String,
        /// Stage name.
        stage: String,
        /// The attempt still running.
        attempt: u32,
    },
    /// The row asked for does not exist.
    #[error("find {what} `{id}`")]
    NotFound {
        /// What was looked up (`execution`, `artifact`...).
        what: &'static str,
        /// Its id or name.
        id: String,
    },
    /// A statement failed.
    #[error("{operation} in the state database")]
    Database {
        /// What we were doing (`record artifact`...).
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be read back (an unknown status, a bad timestamp).
    #[error("{operation}: the state database holds a value this runner cannot read")]
    Corrupt {
        /// What we were doing.
        operation: &'static str,
        /// What was wrong with the value.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A path to record is not UTF-8 and cannot be stored as text.
    #[error("record the non-UTF-8 path {}", path.display())]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// The blocking task running a statement panicked or was cancelled.
    #[error("{operation}: the database task did not finish")]
    Task {
        /// What we were doing.
        operation: &'static str,
        /// Tokio's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Handle to the state database; cheap to clone, and every clone shares one connection.
///
/// All access is serialized through one connection, which keeps transactions simple; other
/// processes may open the same file (WAL mode, a busy timeout and `BEGIN IMMEDIATE` writes).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Mutex<Connection>,
    path: PathBuf,
    owner: OwnerLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("path", &self.inner.path)
            .field("owner", &self.inner.owner.id())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    ///
    /// The store also takes an owner lock that tells other runner processes this one is alive,
    /// so that [`Store::mark_abandoned_on_startup`] elsewhere leaves its executions alone.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Store, StateError> {
        let path = path.into();
        let operation = "open the state database";
        tokio::task::spawn_blocking(move || Store::open_blocking(path))
            .await
            .map_err(|source| StateError::Task { operation, source })?
    }

    fn open_blocking(path: PathBuf) -> Result<Store, StateError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            fs_err::create_dir_all(parent).map_err(StateError::Directory)?;
        }
        let mut connection = schema::connect(&path)?;
        schema::migrate(&mut connection)?;
        let owner = OwnerLock::acquire(&path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                path,
                owner,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` on the connection inside `spawn_blocking`.
    async fn call<T, F>(&self, operation: &'static str, work: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> Result<T, StateError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let span = tracing::debug_span!("state", operation);
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            // A panic mid-call cannot leave a half-written change: open transactions roll back
            // when dropped, so the connection is still sound after poisoning.
            let mut connection = inner
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            work(&mut connection, &inner)
        })
        .await
        .map_err(|source| StateError::Task { operation, source })?
    }
}

/// Attaches an operation to rusqlite errors, and maps missing rows to [`StateError::NotFound`].
trait Context<T> {
    /// Names the operation that failed.
    fn during(self, operation: &'static str) -> Result<T, StateError>;
    /// Like [`Context::during`], but a missing row becomes `NotFound { what, id }`.
    fn or_not_found(
        self,
        operation: &'static str,
        what: &'static str,
        id: &str,
    ) -> Result<T, StateError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn during(self, operation: &'static str) -> Result<T, StateError> {
        self.map_err(|source| database_error(operation, source))
    }

    fn or_not_found(
        self,
        operation: &'static str,
        what: &'static str,
        id: &str,
    ) -> Result<T, StateError> {
        self.map_err(|source| match source {
            rusqlite::Error::QueryReturnedNoRows => StateError::NotFound {
                what,
                id: id.to_owned(),
            },
            source => database_error(operation, source),
        })
    }
}

fn database_error(operation: &'static str, source: rusqlite::Error) -> StateError {
    match source {
        rusqlite::Error::FromSqlConversionFailure(_, _, source) => {
            StateError::Corrupt { operation, source }
        }
        source => StateError::Database { operation, source },
    }
}

/// Stores a path as text, refusing paths that are not UTF-8.
fn path_text(path: Option<&Path>) -> Result<Option<String>, StateError> {
    path.map(|path| {
        path.to_str()
            .map(str::to_owned)
            .ok_or_else(|| StateError::NonUtf8Path {
                path: path.to_owned(),
            })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opening_creates_the_directory_and_reopening_keeps_the_data() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory
            .path()
            .join("nested")
            .join("runner")
            .join("state.db");
        let store = Store::open(&path).await.unwrap();
        let id = testing::start_execution(&store, "app").await;
        let version: u32 = store
            .call("read version", |connection, _| {
                connection
                    .pragma_query_value(None, "user_version", |row| row.get(0))
                    .during("read version")
            })
            .await
            .unwrap();
        assert_eq!(version, schema::latest_version());
        drop(store);

        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.get_execution(&id).await.unwrap().execution.id, id);
        assert!(format!("{store:?}").contains("state.db"));
    }

    #[tokio::test]
    async fn a_non_utf8_log_path_is_refused() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let (_directory, store) = testing::temp_store().await;
            let execution = testing::start_execution(&store, "app").await;
            let stage = store
                .start_stage_attempt(&execution, "build", None, testing::at(0))
                .await
                .unwrap();
            let error = store
                .start_action_attempt(NewActionRun {
                    execution_id: execution,
                    stage: "build".to_owned(),
                    stage_attempt: stage,
                    action: "Compile".to_owned(),
                    build_id: None,
                    build_number: None,
                    log_path: Some(std::ffi::OsStr::from_bytes(b"/logs/\xff.log").into()),
                    started_at: testing::at(0),
                })
                .await
                .unwrap_err();
            assert!(matches!(error, StateError::NonUtf8Path { .. }), "{error:?}");
        }
    }
}
