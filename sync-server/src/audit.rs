//! The audit log: who made which review decision or administrative change,
//! when, on what. Managers read their territory's entries on the
//! administration page; operators read everything with `bilan-server journal`.
//! Entries are only ever appended. Review decisions and conflict resolutions
//! are written in the same transaction as the edit they describe, so one is
//! never kept without the other.

use bilan_shared::ids::TerritoryId;
use bilan_shared::protocol::UserInfo;

/// The actor name of commands typed on the server's console.
pub const CONSOLE_ACTOR: &str = "console";

bilan_shared::vocabulary!(
    /// What was done. The codes are stored: do not rename them.
    AuditAction {
        Review => "review", "Révision d'une inspection";
        ResolveConflict => "resolve_conflict", "Conflit résolu";
        MoveWork => "move_work", "Travaux déplacés à une autre année";
        PlanVisits => "plan_visits", "Visites planifiées";
        CreateTerritory => "create_territory", "Territoire créé";
        CreateUser => "create_user", "Utilisateur créé";
        ResetPassword => "reset_password", "Mot de passe changé";
        RevokeSessions => "revoke_sessions", "Sessions révoquées";
        ImportOffices => "import_offices", "Import d'organismes";
        ImportComplexes => "import_complexes", "Import d'ensembles";
        ChangeSettings => "change_settings", "Paramètres modifiés";
        Compact => "compact", "Compactage du journal de synchronisation";
        Backup => "backup", "Sauvegarde";
        Migrate => "migrate", "Déploiement déplacé vers PostgreSQL";
        LoginLocked => "login_locked", "Connexion verrouillée après des échecs";
    }
);

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Milliseconds since the epoch; set by the store when written.
    pub at: i64,
    /// The territory concerned, when there is one (managers see theirs).
    pub territory_id: Option<TerritoryId>,
    /// The user name of who did it, or [`CONSOLE_ACTOR`].
    pub actor: String,
    pub action: AuditAction,
    /// What it was done to: an inspection id, a user name, a file...
    pub target: String,
    /// Free text: the decision, the count of lines, the new values...
    pub detail: String,
}

impl AuditEntry {
    /// An action of a signed-in user, in their territory.
    pub fn by(user: &UserInfo, action: AuditAction, target: impl Into<String>) -> Self {
        Self {
            at: 0,
            territory_id: user.territory_id,
            actor: user.username.clone(),
            action,
            target: target.into(),
            detail: String::new(),
        }
    }

    /// A command typed on the server's console.
    pub fn console(
        territory_id: Option<TerritoryId>,
        action: AuditAction,
        target: impl Into<String>,
    ) -> Self {
        Self {
            at: 0,
            territory_id,
            actor: CONSOLE_ACTOR.into(),
            action,
            target: target.into(),
            detail: String::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_code_reads_back_and_is_unique() {
        for &a in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(a.code()), Some(a));
            assert!(!a.label_fr().is_empty());
        }
        let mut codes: Vec<_> = AuditAction::ALL.iter().map(|a| a.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), AuditAction::ALL.len());
    }
}
