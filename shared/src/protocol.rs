//! Sync protocol between devices and the territory server, version
//! [`PROTOCOL_VERSION`]. Wire format: MessagePack (named fields) compressed
//! with zstd, content type [`SYNC_CONTENT_TYPE`]. These structs are the wire
//! format: add only optional fields within a version; anything else needs a new
//! protocol version, which the server refuses with `unsupported_protocol`.
//!
//! One round trip (`POST /api/v1/sync`): the device sends every change the
//! server has not acknowledged plus its territory cursor; the server stores
//! them durably, then answers with every change after the cursor (the device's
//! own left out) and the new cursor. Retrying the same request is harmless:
//! changes are identified by hash.
//!
//! Version 2: an item of [`DocChanges::changes`] is an automerge chunk
//! sequence: one change, several changes concatenated (the server sends one
//! bundle per document per push it received), or a saved document (after log
//! compaction). Read it with `bilan_shared::doc::changes_of_chunks`.

use std::io::Read;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::ByteBuf;

use crate::domain::{Complex, Office, Role, Territory};
use crate::ids::{DeviceId, InspectionId, OfficeId, TerritoryId, UserId};

/// Version of the sync protocol spoken by this build.
pub const PROTOCOL_VERSION: u32 = 2;
/// Content type of sync bodies.
pub const SYNC_CONTENT_TYPE: &str = "application/vnd.bilan.sync+msgpack+zstd";
/// Header with the number of bytes of a photo the server holds (resumable uploads).
pub const UPLOAD_OFFSET_HEADER: &str = "upload-offset";
/// Header with a photo's total size on `HEAD`.
pub const UPLOAD_LENGTH_HEADER: &str = "upload-length";

/// Changes of one document. Wire format v2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocChanges {
    pub doc_id: InspectionId,
    /// Automerge chunks: each item one change (`Change::raw_bytes`), a
    /// bundle of changes (`doc::bundle`) or a saved document.
    pub changes: Vec<ByteBuf>,
}

impl DocChanges {
    /// Every change of `doc` as one bundle: what a device sends for an
    /// inspection the server has never seen.
    pub fn whole(doc_id: InspectionId, doc: &crate::doc::Inspection) -> Self {
        Self {
            doc_id,
            changes: vec![serde_bytes::ByteBuf::from(crate::doc::bundle(
                &doc.changes_since(&[]),
            ))],
        }
    }
}

/// Device → server. Wire format v2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u32,
    pub device_id: DeviceId,
    /// Highest territory log sequence the device has applied (0: none).
    pub cursor: u64,
    pub docs: Vec<DocChanges>,
}

/// Server → device. Wire format v2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub protocol: u32,
    /// New cursor: store it only once `changes` are stored.
    pub cursor: u64,
    /// More changes wait after `cursor`: sync again at once.
    pub more: bool,
    /// How many automerge chunks of the request (changes, or saved
    /// documents) the server stored; those it already had are dropped when
    /// it merges them.
    pub accepted: u32,
    pub changes: Vec<DocChanges>,
    /// This device's changes the server refused when merging them (since
    /// the request's cursor): tell the user, or resend the whole history
    /// for `missing_dependencies`. Absent from older servers.
    #[serde(default)]
    pub rejected: Vec<Rejection>,
}

/// Changes of one document that the server accepted, then refused to merge.
/// Wire format (protocol 2): do not rename fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub doc_id: InspectionId,
    pub code: ErrorCode,
    /// French, for the person using the app.
    pub message: String,
}

/// `POST /api/v1/login` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub device_id: Option<DeviceId>,
}

/// Who is logged in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub territory_id: Option<TerritoryId>,
    pub office_id: Option<OfficeId>,
}

/// `POST /api/v1/login` answer: an opaque bearer token (only its hash is stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub user: UserInfo,
}

/// `GET /api/v1/reference?since=N`: reference data changed after revision `since`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceResponse {
    pub territory: Territory,
    pub offices: Vec<Office>,
    pub complexes: Vec<Complex>,
    /// Pass it back as `since` next time.
    pub revision: u64,
    pub catalogue_version: String,
    /// The CS's settings (condition thresholds, rates, time zone), sent
    /// whole every time, so the app grades and dates as the review pages
    /// do. Absent from older servers: the defaults.
    #[serde(default)]
    pub settings: crate::domain::CsSettings,
    /// Visits planned by the CS changed after `since` (one withdrawn has no
    /// inspector). Absent from older servers: none.
    #[serde(default)]
    pub assignments: Vec<crate::planning::Assignment>,
}

/// `POST /api/v1/assignments` body (CS manager): plans `complexes` for
/// `inspector` in `planned`; no inspector withdraws them from the plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AssignRequest {
    pub complexes: Vec<crate::ids::ComplexId>,
    pub inspector: Option<crate::ids::UserId>,
    #[serde(default)]
    pub planned: Option<crate::planning::Month>,
}

/// `POST /api/v1/inspections/{id}/review` body (CS manager).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReviewRequest {
    /// `approuvee` or `retournee`; absent to comment only.
    pub status: Option<crate::domain::InspectionStatus>,
    pub comment: Option<String>,
}

/// Stable machine-readable error codes of the HTTP API. Never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, MessagePack or zstd.
    MalformedBody,
    /// A change's bytes are not a valid automerge change.
    MalformedChange,
    /// Changes depend on changes the server never received: resend from the start.
    MissingDependencies,
    /// After merging, the document is not a valid inspection of this territory.
    InvalidDocument,
    /// The document's schema version is newer than this server knows.
    SchemaVersion,
    /// The client speaks a protocol version this server does not.
    UnsupportedProtocol,
    /// The body (or its decompressed size) exceeds the limit.
    PayloadTooLarge,
    /// More documents in one request than allowed.
    TooManyDocuments,
    /// Missing or invalid parameter.
    BadRequest,
    /// Wrong user name or password.
    InvalidCredentials,
    /// Too many failed logins for this account: wait, then retry.
    TooManyAttempts,
    /// No token, unknown token or revoked token.
    Unauthorized,
    /// The role or territory does not allow this.
    Forbidden,
    NotFound,
    UnknownTerritory,
    /// The photo's bytes do not hash to its name.
    HashMismatch,
    /// A resumed upload does not start where the server's copy ends.
    OffsetMismatch,
    /// The resource already exists (user name, code).
    AlreadyExists,
    /// Storage unavailable (disk full, read-only): retry later.
    Unavailable,
    /// Anything else; details are in the server log only.
    Internal,
}

/// JSON error body of every failed API call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub code: ErrorCode,
    /// French, for the person using the app.
    pub message: String,
}

/// Why a sync body could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("corps compressé invalide : {0}")]
    Compression(std::io::Error),
    #[error("corps trop volumineux une fois décompressé (plus de {0} octets)")]
    TooLarge(u64),
    #[error("contenu MessagePack invalide : {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("encodage impossible : {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Encodes a wire struct: MessagePack with field names, then zstd.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let raw = rmp_serde::to_vec_named(value)?;
    zstd::bulk::compress(&raw, 3).map_err(CodecError::Compression)
}

/// Decodes a wire struct, refusing to inflate more than `max_decompressed` bytes
/// (a small zstd body can expand to gigabytes).
pub fn decode<T: DeserializeOwned>(body: &[u8], max_decompressed: u64) -> Result<T, CodecError> {
    let decoder = zstd::stream::read::Decoder::new(body).map_err(CodecError::Compression)?;
    let mut raw = Vec::new();
    decoder
        .take(max_decompressed + 1)
        .read_to_end(&mut raw)
        .map_err(CodecError::Compression)?;
    if raw.len() as u64 > max_decompressed {
        return Err(CodecError::TooLarge(max_decompressed));
    }
    Ok(rmp_serde::from_slice(&raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_request_round_trips_through_the_codec() {
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id: DeviceId::new(),
            cursor: 42,
            docs: vec![DocChanges {
                doc_id: InspectionId::new(),
                changes: vec![ByteBuf::from(vec![1, 2, 3])],
            }],
        };
        let bytes = encode(&req).unwrap();
        assert_eq!(decode::<SyncRequest>(&bytes, 1 << 20).unwrap(), req);
    }

    #[test]
    fn decompression_bomb_is_refused() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = zstd::bulk::compress(&zeros, 19).unwrap();
        assert!(bomb.len() < 10_000);
        assert!(matches!(
            decode::<SyncRequest>(&bomb, 1 << 20),
            Err(CodecError::TooLarge(_))
        ));
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(decode::<SyncRequest>(b"not zstd at all", 1 << 20).is_err());
        let not_msgpack = zstd::bulk::compress(b"\xc1\xc1\xc1", 1).unwrap();
        assert!(decode::<SyncRequest>(&not_msgpack, 1 << 20).is_err());
    }

    #[test]
    fn error_codes_are_stable_snake_case() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::MissingDependencies).unwrap(),
            "\"missing_dependencies\""
        );
        assert_eq!(
            serde_json::to_string(&ErrorCode::HashMismatch).unwrap(),
            "\"hash_mismatch\""
        );
    }
}
