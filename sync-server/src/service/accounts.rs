//! Accounts and sessions: user names and passwords (argon2), login with
//! its lockouts (per user name, and per client address against spraying),
//! tokens (random, stored hashed, expiring), revocation.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use bilan_shared::doc::now_ms;
use bilan_shared::domain::Role;
use bilan_shared::ids::{DeviceId, OfficeId, TerritoryId, UserId};
use bilan_shared::protocol::UserInfo;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::access;
use super::core::{Actor, Result, Service};
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{StoreError, refuse_nul};
use crate::storage::LockKey;

/// Failed logins in a row that lock a user name.
const MAX_LOGIN_FAILURES: i64 = 5;
/// How long a locked user name (or address) stays locked.
const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// Failed logins from one address, within [`ADDRESS_WINDOW_MS`], that lock it.
const MAX_ADDRESS_FAILURES: i64 = 20;
const ADDRESS_WINDOW_MS: i64 = 15 * 60 * 1000;

/// A user account to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub territory_id: Option<TerritoryId>,
    pub office_id: Option<OfficeId>,
    pub password: String,
}

/// User names are typed on phones and appear in URLs, logs and the audit
/// log: a small alphabet, no look-alikes, no markup.
fn is_valid_username(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn check_new_user(u: &NewUser) -> Result<()> {
    if !is_valid_username(&u.username) {
        return Err(StoreError::BadRequest(
            "nom d'utilisateur invalide : 2 à 64 caractères parmi a-z, 0-9, « . », « _ » et « - »"
                .into(),
        ));
    }
    refuse_nul("le nom affiché", &u.display_name)?;
    if u.password.len() < 8 || u.display_name.trim().is_empty() {
        return Err(StoreError::BadRequest(
            "nom affiché requis et mot de passe d'au moins 8 caractères".into(),
        ));
    }
    match u.role {
        Role::Admin => Ok(()),
        Role::OfficeReader if u.office_id.is_none() => Err(StoreError::BadRequest(
            "un lecteur d'organisme doit être rattaché à un organisme".into(),
        )),
        _ if u.territory_id.is_none() => Err(StoreError::BadRequest(
            "ce rôle doit être rattaché à un territoire".into(),
        )),
        _ => Ok(()),
    }
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J1Lp1Gm8qZ5KcTn2W9rYbA8m1l9PMvYV1v0e0gN2mS0";

fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Password(e.to_string()))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::Password(e.to_string()))?
        .to_string())
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Service {
    /// Creates an account once its name, password and attachments pass.
    pub fn create_user(&self, u: &NewUser) -> Result<UserId> {
        check_new_user(u)?;
        let hash = hash_password(&u.password)?;
        let info = UserInfo {
            id: UserId::new(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            territory_id: u.territory_id,
            office_id: u.office_id,
        };
        self.store.insert_user(&info, &hash)?;
        Ok(info.id)
    }

    /// Creates an account of `territory` (office given by its code) for
    /// `actor` (a manager in their own territory, or the console), with its
    /// audit entry. The administration page cannot create administrators.
    pub fn add_user(
        &self,
        actor: Actor<'_>,
        territory: Option<TerritoryId>,
        mut user: NewUser,
        office_code: Option<&str>,
    ) -> Result<UserId> {
        if let Actor::User(manager) = actor {
            access::require_manager(manager)?;
            if user.role == Role::Admin {
                return Err(StoreError::BadRequest("rôle inconnu".into()));
            }
        }
        let territory = match actor {
            Actor::User(manager) => Some(access::territory_of(manager)?),
            Actor::Console => territory,
        };
        user.territory_id = territory;
        user.office_id = match (office_code.filter(|c| !c.is_empty()), territory) {
            (Some(code), Some(t)) => Some(self.office_by_code(t, code)?),
            (Some(_), None) => {
                return Err(StoreError::BadRequest(
                    "un organisme demande un territoire".into(),
                ));
            }
            (None, _) => None,
        };
        let id = self.create_user(&user)?;
        let entry = actor.entry(territory, AuditAction::CreateUser, user.username.as_str());
        self.store
            .append_audit(&entry.with_detail(user.role.label_fr()))?;
        Ok(id)
    }

    /// Sets a new password (console), with its audit entry.
    pub fn set_password(&self, username: &str, password: &str) -> Result<()> {
        if password.len() < 8 {
            return Err(StoreError::BadRequest(
                "mot de passe d'au moins 8 caractères".into(),
            ));
        }
        let hash = hash_password(password)?;
        if !self.store.set_password_hash(username, &hash)? {
            return Err(StoreError::NotFound(format!("utilisateur {username}")));
        }
        self.store
            .append_audit(&Actor::Console.entry(None, AuditAction::ResetPassword, username))
    }

    /// `TooManyAttempts` while `key` is locked.
    fn refuse_if_locked(&self, key: LockKey<'_>) -> Result<()> {
        let now = now_ms();
        match self.store.locked_until(key)?.filter(|&u| u > now) {
            Some(u) => Err(StoreError::TooManyAttempts {
                minutes: (u - now + 59_999) / 60_000,
            }),
            None => Ok(()),
        }
    }

    /// Counts a failed login of `username`; the fifth in a row locks the
    /// name for 15 minutes, with an audit entry.
    fn login_failed(&self, username: &str, territory: Option<TerritoryId>) -> Result<StoreError> {
        let now = now_ms();
        let key = LockKey::User(username);
        if self.store.count_failure(key, now, i64::MAX)? >= MAX_LOGIN_FAILURES {
            self.store.lock_out(key, now, now + LOCKOUT_MS)?;
            tracing::warn!(username, "login locked after repeated failures");
            let entry = AuditEntry {
                territory_id: territory,
                actor: username.to_string(),
                ..AuditEntry::console(None, AuditAction::LoginLocked, username)
            };
            self.store.append_audit(&entry.with_detail(format!(
                "{MAX_LOGIN_FAILURES} échecs de suite : verrouillée {} minutes",
                LOCKOUT_MS / 60_000
            )))?;
        }
        Ok(StoreError::InvalidCredentials)
    }

    /// Counts a failed login from `address`; too many within the window
    /// lock the address, with an audit entry.
    fn address_failed(&self, address: &str) -> Result<()> {
        let now = now_ms();
        let key = LockKey::Address(address);
        if self.store.count_failure(key, now, ADDRESS_WINDOW_MS)? >= MAX_ADDRESS_FAILURES {
            self.store.lock_out(key, now, now + LOCKOUT_MS)?;
            tracing::warn!(
                address,
                "logins from this address locked after repeated failures"
            );
            let entry = AuditEntry {
                actor: address.to_string(),
                ..AuditEntry::console(None, AuditAction::LoginLocked, address)
            };
            self.store.append_audit(&entry.with_detail(format!(
                "{MAX_ADDRESS_FAILURES} échecs depuis cette adresse : bloquée {} minutes",
                LOCKOUT_MS / 60_000
            )))?;
        }
        Ok(())
    }

    /// Logs in: a new token for the account, unless the name is locked or
    /// the password is wrong (then counted).
    pub fn login(
        &self,
        username: &str,
        password: &str,
        device: Option<DeviceId>,
    ) -> Result<(String, UserInfo)> {
        // Verify even for unknown users so timing does not reveal which names exist.
        if !is_valid_username(username) {
            // No account can have this name (the rule is public): nothing to
            // look up or count under it, and no odd bytes reach the storage.
            let _ = verify_password(password, DUMMY_HASH);
            return Err(StoreError::InvalidCredentials);
        }
        self.refuse_if_locked(LockKey::User(username))?;
        let Some((user, stored)) = self.store.user_with_hash(username)? else {
            let _ = verify_password(password, DUMMY_HASH);
            return Err(self.login_failed(username, None)?);
        };
        if !verify_password(password, &stored) {
            return Err(self.login_failed(username, user.territory_id)?);
        }
        self.store.clear_failures(LockKey::User(username))?;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        self.store
            .insert_token(&hash_token(&token), user.id, device)?;
        Ok((token, user))
    }

    /// [`Self::login`] from a client address (when known): refused while
    /// the address is locked, and a failure counts against it too.
    pub fn login_from(
        &self,
        address: Option<&str>,
        username: &str,
        password: &str,
        device: Option<DeviceId>,
    ) -> Result<(String, UserInfo)> {
        if let Some(a) = address {
            self.refuse_if_locked(LockKey::Address(a))?;
        }
        let out = self.login(username, password, device);
        if let (Err(StoreError::InvalidCredentials), Some(a)) = (&out, address) {
            self.address_failed(a)?;
        }
        out
    }

    /// The account of a live token (not revoked, not expired).
    pub fn user_for_token(&self, token: &str) -> Result<Option<UserInfo>> {
        self.store
            .user_for_token(&hash_token(token), now_ms() - self.token_ttl_ms)
    }

    /// Ends a session (logout).
    pub fn revoke_token(&self, token: &str) -> Result<()> {
        self.store.revoke_token(&hash_token(token))
    }

    /// Revokes every session of an account, with its audit entry: a
    /// manager only for accounts of their territory.
    pub fn revoke_sessions(&self, actor: Actor<'_>, username: &str) -> Result<usize> {
        let territory = match actor {
            Actor::User(manager) => {
                access::require_manager(manager)?;
                let t = access::territory_of(manager)?;
                if !self
                    .store
                    .territory_users(t)?
                    .iter()
                    .any(|x| x.username == username)
                {
                    return Err(StoreError::Forbidden(
                        "cet utilisateur n'est pas de votre territoire".into(),
                    ));
                }
                Some(t)
            }
            Actor::Console => None,
        };
        let n = self.store.revoke_user_tokens(username)?;
        let entry = actor.entry(territory, AuditAction::RevokeSessions, username);
        let detail = match actor {
            Actor::User(_) => format!("{n} session(s)"),
            Actor::Console => format!("{n} jeton(s)"),
        };
        self.store.append_audit(&entry.with_detail(detail))?;
        Ok(n)
    }

    /// Revokes every token of an account (no audit entry: tests and tools).
    pub fn revoke_user_tokens(&self, username: &str) -> Result<usize> {
        self.store.revoke_user_tokens(username)
    }

    /// Accounts of the user's territory (administration page).
    pub fn territory_users(&self, user: &UserInfo) -> Result<Vec<UserInfo>> {
        self.store.territory_users(access::territory_of(user)?)
    }
}
