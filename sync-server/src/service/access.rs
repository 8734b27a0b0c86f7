//! Who may do what: roles, territory and office scoping, request limits.
//! Pure functions of the account (and of where an inspection is), so every
//! entry and every backend applies the same rules.

use bilan_shared::domain::Role;
use bilan_shared::ids::{InspectionId, OfficeId, TerritoryId};
use bilan_shared::protocol::UserInfo;

use super::core::Result;
use crate::error::StoreError;
use crate::storage::Scope;

/// Settings, administration, review decisions, the audit log: the CS's
/// manager only.
pub fn require_manager(user: &UserInfo) -> Result<()> {
    if user.role == Role::Manager {
        Ok(())
    } else {
        Err(StoreError::Forbidden("réservé au responsable du CS".into()))
    }
}

/// The account's territory; an account without one reads nothing.
pub fn territory_of(user: &UserInfo) -> Result<TerritoryId> {
    user.territory_id
        .ok_or_else(|| StoreError::Forbidden("ce compte n'est rattaché à aucun territoire".into()))
}

/// What the account may read: its territory, and for an office reader only
/// its office.
pub fn scope_of(user: &UserInfo) -> Result<Scope> {
    let territory = territory_of(user)?;
    let office = match user.role {
        Role::OfficeReader => Some(
            user.office_id
                .ok_or_else(|| StoreError::Forbidden("aucun organisme".into()))?,
        ),
        _ => None,
    };
    Ok(Scope { territory, office })
}

/// Only inspectors and managers sync (and send photos): readers and the
/// administrator read.
pub fn require_field_role(user: &UserInfo) -> Result<TerritoryId> {
    if !matches!(user.role, Role::Inspector | Role::Manager) {
        return Err(StoreError::Forbidden(
            "seuls les inspecteurs et responsables du CS synchronisent".into(),
        ));
    }
    territory_of(user)
}

/// Whether `user` may read the inspection `id` found at `place`
/// (territory, office): `NotFound` when it is nowhere.
pub fn check_reader(
    user: &UserInfo,
    id: InspectionId,
    place: Option<(TerritoryId, OfficeId)>,
) -> Result<TerritoryId> {
    let scope = scope_of(user)?;
    let Some((territory, office)) = place else {
        return Err(StoreError::NotFound(format!("inspection {id}")));
    };
    if territory != scope.territory {
        return Err(StoreError::Forbidden(
            "cette inspection appartient à un autre territoire".into(),
        ));
    }
    if scope.office.is_some_and(|o| o != office) {
        return Err(StoreError::Forbidden(
            "cette inspection concerne un autre organisme".into(),
        ));
    }
    Ok(territory)
}

/// At most `limit` documents in one sync request (a device pages its
/// outbox well below the server's limit).
pub fn check_document_count(count: usize, limit: usize) -> Result<()> {
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
    fn an_office_reader_sees_only_its_office_and_others_their_territory() {
        let t = TerritoryId::new();
        let (o1, o2) = (OfficeId::new(), OfficeId::new());
        let reader = UserInfo {
            territory_id: Some(t),
            office_id: Some(o1),
            ..user(Role::OfficeReader)
        };
        let id = InspectionId::new();
        assert!(check_reader(&reader, id, Some((t, o1))).is_ok());
        assert!(matches!(
            check_reader(&reader, id, Some((t, o2))),
            Err(StoreError::Forbidden(_))
        ));
        let inspector = UserInfo {
            territory_id: Some(t),
            ..user(Role::Inspector)
        };
        assert!(check_reader(&inspector, id, Some((t, o2))).is_ok());
        assert!(matches!(
            check_reader(&inspector, id, Some((TerritoryId::new(), o2))),
            Err(StoreError::Forbidden(_))
        ));
        assert!(matches!(
            check_reader(&inspector, id, None),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            scope_of(&user(Role::Manager)),
            Err(StoreError::Forbidden(_))
        ));
        let lost_reader = UserInfo {
            territory_id: Some(t),
            ..user(Role::OfficeReader)
        };
        assert!(
            scope_of(&lost_reader).is_err(),
            "a reader without office reads nothing"
        );
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
