//! Point reads on the caller's own thread, for the SQLite store.
//!
//! sqlx runs each SQLite connection on a worker thread of its own: every query is two
//! thread hand-offs (the request to the worker, the rows back), and on a 2-core machine
//! under load those hand-offs cost more than the read itself. The reads made on every
//! request — the customer by id, the open cases of an agent and a customer when the hot
//! state has none (and an agent's open cases, at most a page), a caller's number through its blind index, an agent's call bindings —
//! are index seeks that take microseconds from SQLite's page cache, so they run here,
//! synchronously, on the task that asks: no hand-off. Scans and reads of many rows (a
//! trace, a listing) stay with sqlx, where blocking a runtime thread would cost more.
//!
//! **Why blocking the task is fine.** In WAL mode a reader never waits for the writer;
//! it reads the last committed snapshot. The connections are read-only, so nothing here
//! can write or hold a write lock. The busy timeout covers the one rare wait (a WAL
//! file being reset after a checkpoint) and is short, so a stuck file answers with an
//! error instead of holding a runtime thread.
//!
//! **Connections.** Idle connections wait in a stack: the last one returned is the next
//! one lent, so the busiest connection keeps its page cache warm. There are at most as
//! many as reads in flight at once, which is at most the runtime's thread count, since
//! a read never yields.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::StoreError;

/// How long a read may wait for the rare lock a reader needs (see the module docs).
const BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// Idle connections kept; more than the reads that can run at once is waste.
const MAX_IDLE: usize = 16;

/// A row the reader can make from a result row, its columns in the statement's order.
pub(crate) trait FromReadRow: Sized {
    /// The value of `row`.
    fn from_read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

impl FromReadRow for String {
    fn from_read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        row.get(0)
    }
}

impl FromReadRow for (String, String) {
    fn from_read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

/// Read-only connections to one SQLite file (see the module docs).
pub(crate) struct SyncReader {
    path: PathBuf,
    /// Idle connections, the most recently used last; `None` once the store is closed.
    idle: Mutex<Option<Vec<Connection>>>,
}

impl SyncReader {
    /// Readers of the database file at `path`, which must exist and be in WAL mode.
    pub(crate) fn new(path: &Path) -> SyncReader {
        SyncReader {
            path: path.to_owned(),
            idle: Mutex::new(Some(Vec::new())),
        }
    }

    /// Drops the idle connections and refuses reads from now on.
    pub(crate) fn close(&self) {
        self.lock().take();
    }

    /// The first row of `sql` (a statement of the store, `$1`, `$2`, … bound in order
    /// from `params`), if any.
    pub(crate) fn row<T: FromReadRow>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(sql)?
                .query_row(params, T::from_read_row)
                .optional()
        })
    }

    /// Every row of `sql`, bound as for [`SyncReader::row`].
    pub(crate) fn rows<T: FromReadRow>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(sql)?
                .query_map(params, T::from_read_row)?
                .collect()
        })
    }

    // A poisoned lock means a reader panicked while pushing or popping a connection;
    // the stack is still a well-formed list of connections.
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Connection>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `read` on an idle connection (or a new one) and puts the connection back.
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let lent = match self.lock().as_mut() {
            None => return Err(StoreError::Database("the store is closed".into())),
            Some(idle) => idle.pop(),
        };
        let conn = match lent {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = read(&conn).map_err(read_err);
        if let Some(idle) = self.lock().as_mut()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
        result
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        // No create flag: the store opened (and migrated) the file before any read.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(read_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(read_err)?;
        Ok(conn)
    }
}

/// Maps a driver error without values: SQLite's messages for a read name the failure
/// (a busy file, a corrupt page), and the query's parameters are never part of them.
fn read_err(err: rusqlite::Error) -> StoreError {
    match err {
        rusqlite::Error::SqliteFailure(e, _) => {
            StoreError::Database(format!("sqlite error: {:?}", e.code))
        }
        rusqlite::Error::FromSqlConversionFailure(column, ..)
        | rusqlite::Error::InvalidColumnType(column, ..) => {
            StoreError::Database(format!("unexpected value in column {column}"))
        }
        _ => StoreError::Database("sqlite read failed".into()),
    }
}
