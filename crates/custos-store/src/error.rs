//! Store errors. Messages name what went wrong, never the values involved: callers log
//! them and send them to clients, and the values may be personal data or secrets.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An entry with the same identifier (or another unique key, such as a token hash)
    /// already exists; nothing was written.
    #[error("an entry with the same key already exists")]
    Conflict,
    /// An entry the operation refers to does not exist (for example a token for an
    /// unknown staff member, or a case for an unknown customer); nothing was written.
    #[error("a referenced entry does not exist")]
    NotFound,
    /// The database failed or refused the operation. Holds the driver's message with
    /// quoted text removed, never parameter values.
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached (no connection, a connection lost, a server
    /// shutting down or starting): nothing was written, and trying again later may
    /// succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The schema could not be brought up to date.
    #[error("migration failed: {0}")]
    Migration(String),
}

impl StoreError {
    /// Stable, machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Conflict => "conflict",
            StoreError::NotFound => "not_found",
            StoreError::Database(_) => "database",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Migration(_) => "migration",
        }
    }
}

/// Maps a driver error to a [`StoreError`] without carrying values along.
pub(crate) fn db_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return StoreError::Conflict;
            }
            if db.is_foreign_key_violation() {
                return StoreError::NotFound;
            }
            // PostgreSQL messages may quote the offending value (e.g. `invalid input
            // syntax for type bigint: "..."`); the constraint name is schema, not data.
            let mut message = redact_quoted(db.message());
            // Class 08 (connection exception) and 57P01–57P03 (the server shuts down,
            // crashed, or cannot take connections yet): PostgreSQL's SQLSTATE appendix.
            if let Some(code) = db.code()
                && (code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03"))
            {
                return StoreError::Unavailable(format!("{message} (code {code})"));
            }
            if let Some(code) = db.code() {
                message = format!("{message} (code {code})");
            }
            if let Some(constraint) = db.constraint() {
                message = format!("{message} (constraint {constraint})");
            }
            StoreError::Database(message)
        }
        // Configuration errors can echo the connection URL, which may hold a password.
        sqlx::Error::Configuration(_) => {
            StoreError::Database("invalid database configuration".into())
        }
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("i/o error: {}", io.kind())),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a connection".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("the store is closed".into()),
        sqlx::Error::Protocol(_) => StoreError::Unavailable("the connection broke".into()),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        // Decode and column errors name columns and types only, but redact to be sure.
        other => StoreError::Database(redact_quoted(&other.to_string())),
    }
}

/// Maps a migration error; the migration SQL is ours, so its messages hold no user data.
pub(crate) fn migrate_err(err: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    let describe = |e: sqlx::Error| match db_err(e) {
        StoreError::Database(m) => m,
        other => other.to_string(),
    };
    match err {
        MigrateError::Execute(e) => StoreError::Migration(describe(e)),
        MigrateError::ExecuteMigration(e, version) => {
            StoreError::Migration(format!("migration {version}: {}", describe(e)))
        }
        other => StoreError::Migration(redact_quoted(&other.to_string())),
    }
}

/// Replaces the contents of every double- or single-quoted span with `…`, because that is
/// where database messages put values.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for ch in message.chars() {
        match open {
            Some(q) if ch == q => {
                out.push('…');
                out.push(ch);
                open = None;
            }
            Some(_) => {}
            None => {
                if ch == '"' || ch == '\'' {
                    open = Some(ch);
                }
                out.push(ch);
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(StoreError::Conflict.code(), "conflict");
        assert_eq!(StoreError::NotFound.code(), "not_found");
        assert_eq!(StoreError::Database(String::new()).code(), "database");
        assert_eq!(StoreError::Migration(String::new()).code(), "migration");
        assert_eq!(StoreError::Unavailable(String::new()).code(), "unavailable");
    }

    #[test]
    fn quoted_values_are_redacted() {
        assert_eq!(
            redact_quoted(r#"invalid input syntax for type bigint: "13800138000""#),
            r#"invalid input syntax for type bigint: "…""#
        );
        assert_eq!(redact_quoted("unterminated 'secret"), "unterminated '…");
        assert_eq!(redact_quoted("no quotes here"), "no quotes here");
    }
}
