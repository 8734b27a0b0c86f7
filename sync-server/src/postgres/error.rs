//! PostgreSQL's failures as the backend-neutral [`StoreError`]: what the
//! client should retry later (the database unreachable, full, read-only,
//! shutting down, a serialization conflict) is "unavailable"; the rest is
//! "backend", with the engine's words for the log.

use tokio_postgres::error::SqlState;

use crate::error::StoreError;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let retry = match e.code() {
            None => e.is_closed() || e.to_string().contains("connect"),
            Some(c) => [
                SqlState::DISK_FULL,
                SqlState::READ_ONLY_SQL_TRANSACTION,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::OUT_OF_MEMORY,
            ]
            .contains(c),
        };
        let message = format!("base PostgreSQL : {e}");
        if retry {
            StoreError::Unavailable(message)
        } else {
            StoreError::Backend(message)
        }
    }
}
