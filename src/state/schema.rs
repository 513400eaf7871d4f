//! Connection settings and schema migrations, tracked with `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::StateError;

/// Migrations in order; the database's `user_version` is the number applied so far.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_init.sql")];

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the file with WAL, foreign keys and a busy timeout.
pub(super) fn connect(path: &Path) -> Result<Connection, StateError> {
    let open_error = |source| StateError::Open {
        path: path.to_owned(),
        source,
    };
    let connection = Connection::open(path).map_err(open_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(open_error)?;
    Ok(connection)
}

/// The schema version this build knows.
pub(super) fn latest_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).expect("fewer than 2^32 migrations")
}

/// Applies every pending migration, each in its own immediate transaction.
///
/// The version is read again inside the transaction, so two processes opening a fresh file at
/// once apply each migration exactly once.
pub(super) fn migrate(connection: &mut Connection) -> Result<(), StateError> {
    let known = latest_version();
    for (version, sql) in (1..=known).zip(MIGRATIONS) {
        let migration_error = |source| StateError::Migration { version, source };
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migration_error)?;
        let current = user_version(&transaction).map_err(migration_error)?;
        if current > known {
            return Err(StateError::TooNew {
                found: current,
                known,
            });
        }
        if current >= version {
            continue;
        }
        transaction.execute_batch(sql).map_err(migration_error)?;
        transaction
            .pragma_update(None, "user_version", version)
            .map_err(migration_error)?;
        transaction.commit().map_err(migration_error)?;
        tracing::debug!(version, "applied state migration");
    }
    Ok(())
}

fn user_version(connection: &Connection) -> rusqlite::Result<u32> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_on_an_empty_database_and_are_idempotent() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        let mut connection = connect(&path).unwrap();
        assert_eq!(user_version(&connection).unwrap(), 0);
        migrate(&mut connection).unwrap();
        assert_eq!(user_version(&connection).unwrap(), latest_version());
        drop(connection);

        let mut connection = connect(&path).unwrap();
        migrate(&mut connection).unwrap();
        assert_eq!(user_version(&connection).unwrap(), latest_version());
        let tables: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'executions'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
        let mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let foreign_keys: i64 = connection
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .unwrap();
        assert_eq!(foreign_keys, 1);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("state.db");
        let mut connection = connect(&path).unwrap();
        connection
            .pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let error = migrate(&mut connection).unwrap_err();
        assert!(matches!(error, StateError::TooNew { .. }), "{error:?}");
    }

    #[test]
    fn no_column_can_hold_a_secret() {
        let directory = tempfile::tempdir().unwrap();
        let mut connection = connect(&directory.path().join("state.db")).unwrap();
        migrate(&mut connection).unwrap();
        let mut statement = connection
            .prepare(
                "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p \
                 WHERE m.type = 'table'",
            )
            .unwrap();
        let columns: Vec<(String, String)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(columns.len() > 20, "{columns:?}");
        let forbidden = ["env", "secret", "password", "token", "credential", "key"];
        for (table, column) in &columns {
            for word in forbidden {
                assert!(
                    !table.contains(word) && !column.contains(word),
                    "{table}.{column} looks like it could hold a secret"
                );
            }
        }
    }
}
