//! Bilan's shared crate: what the device, the server and the review pages must
//! agree on. Domain vocabulary and typed ids, the component catalogue, the
//! automerge schema of an inspection (with conflict listing and resolution),
//! and the versioned sync protocol. No storage, HTTP or async runtime here.

#[macro_use]
mod vocabulary;

pub mod annotate;
pub mod calendar;
pub mod catalogue;
pub mod conflicts;
pub mod doc;
pub mod domain;
pub mod fmt;
pub mod fonts;
pub mod ids;
pub mod photo_size;
pub mod planning;
pub mod previous;
pub mod protocol;
pub mod thumbnail;

pub use catalogue::Catalogue;
pub use doc::{Author, Inspection, InspectionDoc, NewInspection};
pub use ids::*;

/// Errors of the document layer. Messages are French: they reach the inspector.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("document automerge invalide : {0}")]
    Automerge(Box<automerge::AutomergeError>),
    #[error("le document ne correspond pas au schéma d'inspection : {0}")]
    Hydrate(Box<autosurgeon::HydrateError>),
    #[error("écriture impossible dans le document : {0}")]
    Reconcile(Box<autosurgeon::ReconcileError>),
    #[error("ce document n'est pas une inspection BSI")]
    NotAnInspection,
    #[error(
        "inspection au schéma {found}, cette version de l'application connaît jusqu'au schéma {supported} : mettez l'application à jour"
    )]
    SchemaTooNew { found: u64, supported: u64 },
    #[error("composant inconnu du catalogue : {0}")]
    UnknownComponent(String),
    #[error("constat introuvable : {0}")]
    UnknownFinding(FindingId),
    #[error("aucun conflit à cet endroit : {0}")]
    NoSuchConflict(String),
    #[error("conflit sur un objet entier ({0}) : modifiez directement les champs")]
    ObjectConflict(String),
    #[error("la modification n'a produit aucun changement")]
    NoChange,
    #[error("empreinte de photo invalide (64 caractères hexadécimaux attendus) : {0}")]
    BadPhotoHash(String),
    #[error("données automerge invalides : {0}")]
    BadChunk(String),
    #[error("code {code} inconnu pour {kind}")]
    UnknownCode { kind: &'static str, code: String },
}

macro_rules! boxed_from {
    ($($variant:ident($t:ty)),+) => {$(
        impl From<$t> for SharedError {
            fn from(e: $t) -> Self {
                SharedError::$variant(Box::new(e))
            }
        }
    )+};
}
boxed_from!(
    Automerge(automerge::AutomergeError),
    Hydrate(autosurgeon::HydrateError),
    Reconcile(autosurgeon::ReconcileError)
);
