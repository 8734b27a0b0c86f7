//! The server's rules, each written once, whatever the entry (the API, the
//! review pages, the console) and whatever the storage: who may do what,
//! and the limits of a request. The HTTP layers and the storage call these
//! instead of writing their own.
//!
//! This is where the service layer grows: territory and office scoping,
//! login lockouts, token expiry, the audit entries and the review use-cases
//! still live in the SQLite store and move here next.

use bilan_shared::domain::Role;
use bilan_shared::protocol::UserInfo;

use crate::error::StoreError;

/// Settings, administration, review decisions, the audit log: the CS's
/// manager only.
pub fn require_manager(user: &UserInfo) -> Result<(), StoreError> {
    if user.role == Role::Manager {
        Ok(())
    } else {
        Err(StoreError::Forbidden("réservé au responsable du CS".into()))
    }
}

/// At most `limit` documents in one sync request (a device pages its
/// outbox well below the server's limit).
pub fn check_document_count(count: usize, limit: usize) -> Result<(), StoreError> {
    if count > limit {
        Err(StoreError::TooManyDocuments { count, limit })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bilan_shared::ids::UserId;

    fn user(role: Role) -> UserInfo {
        UserInfo {
            id: UserId::new(),
            username: "x".into(),
            display_name: "X".into(),
            role,
            territory_id: None,
            office_id: None,
        }
    }

    #[test]
    fn only_the_manager_passes_the_manager_rule() {
        assert!(require_manager(&user(Role::Manager)).is_ok());
        for r in [Role::Inspector, Role::OfficeReader, Role::Admin] {
            let e = require_manager(&user(r)).unwrap_err();
            assert!(matches!(e, StoreError::Forbidden(_)), "{r:?}");
        }
    }

    #[test]
    fn the_document_limit_is_inclusive_and_says_both_numbers() {
        assert!(check_document_count(5000, 5000).is_ok());
        let e = check_document_count(5001, 5000).unwrap_err();
        assert!(
            e.to_string().contains("5001") && e.to_string().contains("5000"),
            "{e}"
        );
    }
}
