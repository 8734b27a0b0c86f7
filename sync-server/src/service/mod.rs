//! The service layer: every rule of the server, written once, whatever the
//! entry (the API, the review pages, the console) and whatever the storage
//! backend. [`Service`] is what `http`, `web` and the binary call; it
//! decides who may do what (roles, territory, office: [`access`]), checks
//! input, counts failed logins and issues tokens ([`accounts`]), runs a
//! sync ([`sync`]), the review and resolution use-cases ([`inspections`]),
//! the review pages' figures ([`reports`]), the cycle's planning
//! ([`planning`]) and administration ([`admin`]),
//! and writes the audit entries. Below it, storage only stores
//! ([`crate::storage`]).
//!
//! What must not be here: SQL, HTTP types or HTML.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod complexes;
mod core;
pub mod inspections;
pub mod planning;
pub mod reports;
pub mod sync;

pub use self::core::{Actor, DEFAULT_TOKEN_TTL, Result, Service};
pub use accounts::NewUser;
pub use reports::InspectionFilter;
pub use sync::SyncLimits;
