//! Which runner processes are alive, so a new one abandons only the executions of dead ones.
//!
//! Each open [`Store`](super::Store) gets an owner id and holds an exclusive `SQLite` lock on a
//! small file `<database>.owners/<id>.lock` for as long as it lives. The operating system drops
//! the lock when the process dies, however it dies, so "can I take that lock?" answers "is the
//! owner dead?" with no heartbeat, no pid reuse and no clock. Executions record the owner that
//! last drove them.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use super::StateError;

/// The lock an open store holds; dropping it releases the lock and removes the file.
pub(super) struct OwnerLock {
    id: String,
    path: PathBuf,
    /// Held only to keep the lock; a `Mutex` because a `Connection` is not `Sync`.
    connection: Mutex<Option<Connection>>,
}

impl OwnerLock {
    /// Creates this process's lock file next to `database` and locks it.
    pub(super) fn acquire(database: &Path) -> Result<OwnerLock, StateError> {
        let directory = directory(database);
        fs_err::create_dir_all(&directory).map_err(StateError::Directory)?;
        let id = uuid::Uuid::new_v4().to_string();
        let path = lock_path(&directory, &id);
        let open_error = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let connection = Connection::open(&path).map_err(open_error)?;
        // Exclusive locking mode keeps the lock after the write until the connection closes.
        connection
            .execute_batch(
                "PRAGMA locking_mode = EXCLUSIVE;
                 BEGIN EXCLUSIVE;
                 CREATE TABLE IF NOT EXISTS owner (id TEXT);
                 COMMIT;",
            )
            .map_err(open_error)?;
        Ok(OwnerLock {
            id,
            path,
            connection: Mutex::new(Some(connection)),
        })
    }

    /// This store's owner id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Whether the process that owns `owner` is still alive (this process counts as alive).
    ///
    /// A missing lock file means the owner closed cleanly or was already found dead.
    pub(super) fn is_alive(&self, database: &Path, owner: &str) -> bool {
        if owner == self.id {
            return true;
        }
        let path = lock_path(&directory(database), owner);
        if !path.exists() {
            return false;
        }
        match lock_is_held(&path) {
            Ok(true) => true,
            Ok(false) => {
                // Best effort: a leftover file only costs one more check next time.
                let _ = fs_err::remove_file(&path);
                false
            }
            Err(error) => {
                // Leaving a live execution alone is safer than abandoning it.
                tracing::warn!(owner, error = %error, "cannot tell whether a runner is alive");
                true
            }
        }
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let connection = self
            .connection
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(connection);
        let _ = fs_err::remove_file(&self.path);
    }
}

fn directory(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_owned();
    name.push(".owners");
    database.with_file_name(name)
}

fn lock_path(directory: &Path, owner: &str) -> PathBuf {
    // Owner ids come from the database; keep anything odd from escaping the directory.
    let safe: String = owner
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '-' {
                character
            } else {
                '_'
            }
        })
        .collect();
    directory.join(format!("{safe}.lock"))
}

/// Tries the owner's lock without waiting.
fn lock_is_held(path: &Path) -> rusqlite::Result<bool> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::ZERO)?;
    match connection.execute_batch("BEGIN EXCLUSIVE; ROLLBACK;") {
        Ok(()) => Ok(false),
        Err(rusqlite::Error::SqliteFailure(error, _))
            if matches!(
                error.code,
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked
            ) =>
        {
            Ok(true)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_means_alive_and_a_released_one_means_dead() {
        let directory = tempfile::tempdir().unwrap();
        let database = directory.path().join("state.db");
        let observer = OwnerLock::acquire(&database).unwrap();
        let other = OwnerLock::acquire(&database).unwrap();
        let other_id = other.id().to_owned();
        assert!(observer.is_alive(&database, observer.id()));
        assert!(observer.is_alive(&database, &other_id));
        drop(other);
        assert!(!observer.is_alive(&database, &other_id));
        assert!(!observer.is_alive(&database, "never-existed"));
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_reads_as_dead_and_is_removed() {
        let directory = tempfile::tempdir().unwrap();
        let database = directory.path().join("state.db");
        let observer = OwnerLock::acquire(&database).unwrap();
        // What a killed process leaves: the file, with no lock on it.
        let leftover = lock_path(&super::directory(&database), "dead-owner");
        Connection::open(&leftover)
            .unwrap()
            .execute_batch("CREATE TABLE owner (id TEXT);")
            .unwrap();
        assert!(!observer.is_alive(&database, "dead-owner"));
        assert!(!leftover.exists());
    }
}
