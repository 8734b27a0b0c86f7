//! Errors of the device library. Messages are French and say what to do:
//! the app shows them as they are.

use bilan_shared::protocol::ErrorCode;

/// Everything that can go wrong on the device.
#[derive(Debug, thiserror::Error)]
pub enum MobileError {
    #[error("stockage local : {0}")]
    Sqlite(rusqlite::Error),
    #[error("fichier local : {0}")]
    Io(std::io::Error),
    /// The device's storage is full: the write was refused whole.
    #[error(
        "l'appareil n'a plus d'espace libre : la dernière saisie n'a pas été enregistrée. Libérez de l'espace (photos, applications) puis recommencez ; tout ce qui était déjà enregistré est conservé"
    )]
    StorageFull,
    #[error("{0}")]
    Document(Box<bilan_shared::SharedError>),
    #[error(
        "serveur injoignable ({0}) : vos données restent sur l'appareil, la synchronisation reprendra avec le réseau"
    )]
    Network(String),
    #[error("{message}")]
    Server {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server stored changes, then refused to merge them (see
    /// `SyncResponse::rejected`); they stay on this device.
    #[error(
        "le serveur a refusé des modifications de l'inspection {doc} : {message}. Elles restent sur cet appareil ; signalez-le au responsable du CS"
    )]
    Rejected { doc: String, message: String },
    #[error("réponse illisible du serveur : {0}")]
    Protocol(String),
    #[error("connectez-vous d'abord (adresse du serveur, utilisateur et mot de passe)")]
    NotLoggedIn,
    #[error("inspection introuvable sur cet appareil : {0}")]
    UnknownInspection(String),
    #[error(
        "ensemble immobilier inconnu sur cet appareil : {0} (synchronisez les données de référence)"
    )]
    UnknownComplex(String),
    #[error("{0}")]
    Invalid(String),
}

impl MobileError {
    /// True when retrying later may succeed (network, server busy or full).
    pub fn is_transient(&self) -> bool {
        match self {
            MobileError::Network(_) => true,
            MobileError::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for MobileError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
                MobileError::StorageFull
            }
            _ => MobileError::Sqlite(e),
        }
    }
}

impl From<std::io::Error> for MobileError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            MobileError::StorageFull
        } else {
            MobileError::Io(e)
        }
    }
}

impl From<reqwest::Error> for MobileError {
    fn from(e: reqwest::Error) -> Self {
        MobileError::Network(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, MobileError>;

impl From<bilan_shared::SharedError> for MobileError {
    fn from(e: bilan_shared::SharedError) -> Self {
        MobileError::Document(Box::new(e))
    }
}
