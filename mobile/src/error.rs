//! Errors of the device library. Messages are French and say what to do:
//! the app shows them as they are.

use bilan_shared::protocol::ErrorCode;

/// Everything that can go wrong on the device.
#[derive(Debug, thiserror::Error)]
pub enum MobileError {
    #[error(
        "le stockage de l'appareil a refusé l'opération (SQLite {}) : fermez puis rouvrez l'application ; si cela revient, signalez-le au responsable du CS",
        sqlite_code(.0)
    )]
    Sqlite(rusqlite::Error),
    #[error(
        "fichier de l'appareil inaccessible ({}) : vérifiez l'espace et les autorisations de l'application, puis recommencez",
        io_kind(.0)
    )]
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
    /// The detail (serde's or reqwest's English) goes to the log, not to
    /// the person: see [`MobileError::protocol`].
    #[error(
        "réponse illisible du serveur : réessayez ; si cela revient, mettez l'application à jour"
    )]
    Protocol(String),
    #[error("connectez-vous d'abord (adresse du serveur, utilisateur et mot de passe)")]
    NotLoggedIn,
    /// A logout would lose work that only this device holds.
    #[error(
        "synchronisez d'abord : {changes} modification(s) et {photos} photo(s) ne sont pas encore sur le serveur. Rien n'a été effacé"
    )]
    PendingBeforeLogout { changes: u64, photos: u64 },
    /// A plain-HTTP server address off this machine: the token would cross
    /// the network in clear.
    #[error(
        "adresse refusée : « {0} » n'est pas chiffrée. Utilisez l'adresse en https:// que le CS vous a donnée (http:// n'est accepté que sur cette machine ou avec le réglage de laboratoire BILAN_ALLOW_HTTP=1)"
    )]
    InsecureServer(String),
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
    /// An answer or a request that does not encode or decode; the detail is logged.
    pub fn protocol(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(%detail, "sync message not understood");
        MobileError::Protocol(detail.to_string())
    }

    /// True when retrying later may succeed (network, server busy or full).
    pub fn is_transient(&self) -> bool {
        match self {
            MobileError::Network(_) => true,
            MobileError::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// What an I/O error was, in French (std's text is English).
fn io_kind(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "fichier introuvable",
        K::PermissionDenied => "accès refusé",
        K::ReadOnlyFilesystem => "stockage en lecture seule",
        K::AlreadyExists => "fichier déjà présent",
        _ => "erreur de lecture ou d'écriture",
    }
}

/// SQLite's numeric result code, which says what failed without English text.
fn sqlite_code(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => f.extended_code.to_string(),
        _ => "interne".to_string(),
    }
}

impl From<rusqlite::Error> for MobileError {
    fn from(e: rusqlite::Error) -> Self {
        tracing::warn!(error = %e, "device storage error");
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
        tracing::warn!(error = %e, "device file error");
        if e.kind() == std::io::ErrorKind::StorageFull {
            MobileError::StorageFull
        } else {
            MobileError::Io(e)
        }
    }
}

impl From<reqwest::Error> for MobileError {
    /// reqwest's own text is English and technical: the person reads what
    /// happened in French, the log keeps the detail.
    fn from(e: reqwest::Error) -> Self {
        tracing::warn!(error = %e, "network error");
        let what = if e.is_timeout() {
            "délai dépassé"
        } else if e.is_connect() {
            "connexion impossible"
        } else if e.is_body() || e.is_decode() {
            "échange interrompu"
        } else if e.is_builder() {
            "adresse du serveur invalide"
        } else {
            "échange impossible"
        };
        MobileError::Network(what.to_string())
    }
}

pub type Result<T> = std::result::Result<T, MobileError>;

impl From<bilan_shared::SharedError> for MobileError {
    fn from(e: bilan_shared::SharedError) -> Self {
        MobileError::Document(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connection reads as French, with none of reqwest's English.
    #[tokio::test]
    async fn a_network_failure_is_told_in_french_without_reqwests_text() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .expect_err("nothing listens there");
        let shown = MobileError::from(e).to_string();
        assert!(
            shown.starts_with("serveur injoignable (connexion impossible)"),
            "{shown}"
        );
        for english in ["error", "request", "connect", "refused"] {
            assert!(!shown.contains(english), "{english} in: {shown}");
        }
    }
}
