//! SQLite's failures as the backend-neutral [`StoreError`]: the HTTP
//! mapping and the service never see an engine error code.

use crate::error::StoreError;

/// SQLite's failures, classified: the engine's words stay in the message
/// for the log; what callers see is only "unavailable" or "backend".
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::ReadOnly
                        | rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::CannotOpen
                ) =>
            {
                StoreError::Unavailable(format!("base de données : {e}"))
            }
            _ => StoreError::Backend(format!("base de données : {e}")),
        }
    }
}
