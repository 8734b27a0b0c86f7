//! Errors: [`StoreError`] for the storage layer, [`ApiError`] for the HTTP
//! boundary. Every API error has a stable code ([`ErrorCode`]); 5xx bodies are
//! generic (details go to the log only).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bilan_shared::protocol::{ApiErrorBody, ErrorCode};

/// Errors of the storage layer. The message says what the operator or user
/// can do. Failures of the storage engine are classified where they happen
/// (see the `From` conversions), so nothing above the storage knows which
/// engine it is: [`StoreError::Unavailable`] (retry later, 503) or
/// [`StoreError::Backend`] (a failure to log, generic 500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage cannot write for reasons outside the request (disk full,
    /// read-only, busy): the client retries later.
    #[error("stockage indisponible : {0}")]
    Unavailable(String),
    /// A sync request with more documents than the server takes at once.
    #[error(
        "trop de documents dans une requête ({count}, limite {limit}) : mettez l'application à jour, elle envoie moins de documents à la fois"
    )]
    TooManyDocuments { count: usize, limit: usize },
    /// The storage engine failed; the detail is for the log.
    #[error("stockage : {0}")]
    Backend(String),
    #[error("{0}")]
    Document(Box<bilan_shared::SharedError>),
    #[error("changement automerge illisible pour l'inspection {doc}: {reason}")]
    MalformedChange { doc: String, reason: String },
    #[error(
        "l'inspection {0} dépend de changements que le serveur n'a jamais reçus : renvoyez tout l'historique"
    )]
    MissingDependencies(String),
    #[error("l'inspection {doc} n'est pas valide pour ce territoire : {reason}")]
    InvalidDocument { doc: String, reason: String },
    #[error("accès refusé : {0}")]
    Forbidden(String),
    #[error("introuvable : {0}")]
    NotFound(String),
    #[error("existe déjà : {0}")]
    AlreadyExists(String),
    #[error("requête invalide : {0}")]
    BadRequest(String),
    #[error("Nom d'utilisateur ou mot de passe incorrect : vérifiez-les et réessayez.")]
    InvalidCredentials,
    #[error(
        "Trop de tentatives de connexion pour ce compte : réessayez dans {minutes} minute(s), ou demandez à l'administrateur de réinitialiser le mot de passe."
    )]
    TooManyAttempts { minutes: i64 },
    #[error(
        "base de données au schéma {found}, ce serveur connaît jusqu'au schéma {supported} : installez la version du serveur qui l'a écrite ou une plus récente"
    )]
    DatabaseTooNew { found: i64, supported: i64 },
    #[error("hachage du mot de passe : {0}")]
    Password(String),
    /// A stored value that does not decode: the database was damaged or
    /// written by a buggy version. Answered as a generic 500.
    #[error(
        "donnée enregistrée illisible ({0}) : restaurez la dernière sauvegarde (bilan-server restore) ou avertissez l'administrateur"
    )]
    Corrupt(String),
}

/// Refuses text holding a NUL character (U+0000): PostgreSQL's text type
/// cannot keep one, so every backend refuses it the same way, before
/// anything is written, with the field's name. Nobody types one; it comes
/// from a bad paste or a hostile client.
pub fn refuse_nul(what: &str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::BadRequest(nul_message(what)));
    }
    Ok(())
}

/// The message of [`refuse_nul`].
pub fn nul_message(what: &str) -> String {
    format!("{what} : le caractère nul (U+0000) n'est pas accepté, retirez-le")
}

impl StoreError {
    /// The code of an error in what a device sent (its changes or the
    /// document they make), as opposed to a failure of the server: the
    /// merger refuses such changes instead of retrying them.
    pub fn content_code(&self) -> Option<ErrorCode> {
        match self {
            StoreError::MalformedChange { .. } => Some(ErrorCode::MalformedChange),
            StoreError::MissingDependencies(_) => Some(ErrorCode::MissingDependencies),
            StoreError::Document(d)
                if matches!(**d, bilan_shared::SharedError::SchemaTooNew { .. }) =>
            {
                Some(ErrorCode::SchemaVersion)
            }
            StoreError::InvalidDocument { .. } | StoreError::Document(_) => {
                Some(ErrorCode::InvalidDocument)
            }
            _ => None,
        }
    }

    /// The same failure for another waiter (group commit answers every push
    /// of a failed commit): "unavailable" stays 503, anything else is a 500.
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            other => StoreError::Backend(other.to_string()),
        }
    }

    /// True when the storage cannot write for reasons outside the request (disk
    /// full, read-only database): the client should retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// File failures (photos, backups), classified like the database's.
impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::Unavailable(format!("fichier : {e}"))
            }
            _ => StoreError::Backend(format!("fichier : {e}")),
        }
    }
}

/// The one error type of the HTTP API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "Session absente, expirée ou révoquée : reconnectez-vous.",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Erreur interne du serveur. Réessayez plus tard; si elle persiste, avertissez l'administrateur.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            ref e if e.is_unavailable() => {
                tracing::error!(error = %e, "storage unavailable");
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "Le serveur ne peut pas enregistrer pour le moment (stockage plein ou en lecture seule). Vos données restent sur l'appareil : réessayez plus tard.",
                )
            }
            StoreError::MalformedChange { .. } => {
                ApiError::new(S::BAD_REQUEST, ErrorCode::MalformedChange, msg)
            }
            StoreError::MissingDependencies(_) => {
                ApiError::new(S::CONFLICT, ErrorCode::MissingDependencies, msg)
            }
            StoreError::Document(ref d)
                if matches!(**d, bilan_shared::SharedError::SchemaTooNew { .. }) =>
            {
                ApiError::new(S::UNPROCESSABLE_ENTITY, ErrorCode::SchemaVersion, msg)
            }
            StoreError::InvalidDocument { .. } | StoreError::Document(_) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, ErrorCode::InvalidDocument, msg)
            }
            StoreError::Forbidden(_) => ApiError::forbidden(msg),
            StoreError::NotFound(_) => ApiError::not_found(msg),
            StoreError::AlreadyExists(_) => {
                ApiError::new(S::CONFLICT, ErrorCode::AlreadyExists, msg)
            }
            StoreError::BadRequest(_) => ApiError::bad_request(msg),
            StoreError::TooManyDocuments { .. } => {
                ApiError::new(S::PAYLOAD_TOO_LARGE, ErrorCode::TooManyDocuments, msg)
            }
            StoreError::InvalidCredentials => {
                ApiError::new(S::UNAUTHORIZED, ErrorCode::InvalidCredentials, msg)
            }
            StoreError::TooManyAttempts { .. } => {
                ApiError::new(S::TOO_MANY_REQUESTS, ErrorCode::TooManyAttempts, msg)
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::internal()
            }
        }
    }
}

/// Request bodies and query strings that do not parse: 400 `malformed_body`
/// with what was wrong, instead of axum's English plain text.
macro_rules! malformed_input {
    ($($rejection:ty => $what:literal),+ $(,)?) => {$(
        impl From<$rejection> for ApiError {
            fn from(e: $rejection) -> Self {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedBody,
                    format!(concat!($what, " : {}"), e.body_text()),
                )
            }
        }
    )+};
}

malformed_input! {
    axum::extract::rejection::JsonRejection => "JSON invalide",
    axum::extract::rejection::FormRejection => "Formulaire invalide",
    axum::extract::rejection::QueryRejection => "Paramètres de l'adresse invalides",
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            code: self.code,
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<bilan_shared::SharedError> for StoreError {
    fn from(e: bilan_shared::SharedError) -> Self {
        StoreError::Document(Box::new(e))
    }
}
