//! The HTTP API (`/api/v1/...`): login, reference data, the one-round-trip
//! sync, review actions and resumable photo uploads. Handlers decode
//! requests, call the service layer (every rule is there) on the blocking
//! pool, and answer errors as [`ApiError`] JSON with stable codes. What must
//! not be here: a role check, SQL, or any rule.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bilan_shared::domain::InspectionStatus;
use bilan_shared::ids::{InspectionId, PhotoHash};
use bilan_shared::protocol::{
    self, ErrorCode, LoginRequest, LoginResponse, PROTOCOL_VERSION, ReviewRequest,
    SYNC_CONTENT_TYPE, SyncRequest, UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER, UserInfo,
};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::photos::{ChunkOutcome, parse_content_range};
use crate::service::SyncLimits;

/// The caller, authenticated by `Authorization: Bearer <token>`.
#[derive(Clone, Debug)]
pub struct AuthUser(pub UserInfo);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        AuthUser::of(&parts.headers, state).await
    }
}

impl AuthUser {
    /// The caller of a request with these headers.
    async fn of(headers: &HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(headers).ok_or_else(ApiError::unauthorized)?;
        let user = blocking(state, move |s| s.service.user_for_token(&token)).await?;
        user.map(AuthUser).ok_or_else(ApiError::unauthorized)
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ")?.trim();
    (!t.is_empty() && t.len() <= 128).then(|| t.to_string())
}

/// Runs storage work on the blocking pool.
pub async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&crate::Inner) -> Result<T, crate::error::StoreError> + Send + 'static,
{
    off_runtime(state, move |s| f(s).map_err(ApiError::from)).await
}

/// Runs CPU or storage work on the blocking pool, so that the runtime's
/// threads (one per core) keep reading and writing other connections.
async fn off_runtime<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&crate::Inner) -> Result<T, ApiError> + Send + 'static,
{
    let inner = Arc::clone(&state.0);
    match tokio::task::spawn_blocking(move || f(&inner)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "storage task panicked");
            Err(ApiError::internal())
        }
    }
}

/// Reads a whole body, refusing more than `limit` bytes with a JSON error.
async fn read_body(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit as usize).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("Requête trop volumineuse (limite {limit} octets) : synchronisez en plusieurs fois."),
        )
    })
}

/// The `/api/v1` routes.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/reference", get(reference))
        .route("/sync", post(sync))
        .route("/inspections", get(list_inspections))
        .route("/inspections/{id}", get(get_inspection))
        .route("/inspections/{id}/review", post(review))
        .route("/assignments", post(assign))
        .route("/inspections/{id}/resolve", post(resolve))
        .route(
            "/photos/{hash}",
            get(get_photo).head(head_photo).put(put_photo),
        )
        .route("/photos/{hash}/thumb", get(get_thumb))
}

/// A JSON body whose rejection is one of our errors (400 `malformed_body`).
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A query string whose rejection is one of our errors.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Where a request comes from: the peer address, or with `behind_proxy` the
/// address the reverse proxy appended last to `X-Forwarded-For`. `None` when
/// the router is driven without a socket (tests).
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .0
            .config
            .behind_proxy
            .then(|| {
                let v = parts.headers.get("x-forwarded-for")?.to_str().ok()?;
                let last = v.rsplit(',').next()?.trim();
                last.parse::<std::net::IpAddr>().ok()
            })
            .flatten();
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientAddr(forwarded.or(peer).map(|a| a.to_string())))
    }
}

/// Logs in, counting failures per name (in the store) and per client
/// address; shared by the API and the review pages.
pub async fn login_checked(
    state: &AppState,
    addr: ClientAddr,
    username: String,
    password: String,
    device: Option<bilan_shared::ids::DeviceId>,
) -> Result<(String, UserInfo), ApiError> {
    blocking(state, move |s| {
        s.service
            .login_from(addr.0.as_deref(), &username, &password, device)
    })
    .await
}

async fn login(
    State(state): State<AppState>,
    addr: ClientAddr,
    body: Body,
) -> Result<Json<LoginResponse>, ApiError> {
    let bytes = read_body(body, 64 * 1024).await?;
    let req: LoginRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedBody,
            format!("JSON invalide : {e}"),
        )
    })?;
    let (token, user) =
        login_checked(&state, addr, req.username, req.password, req.device_id).await?;
    tracing::info!(user = %user.username, "login");
    Ok(Json(LoginResponse { token, user }))
}

async fn logout(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer(&headers).ok_or_else(ApiError::unauthorized)?;
    blocking(&state, move |s| s.service.revoke_token(&token)).await?;
    tracing::info!(user = %user.username, "logout");
    Ok(StatusCode::NO_CONTENT)
}

async fn me(AuthUser(user): AuthUser) -> Json<UserInfo> {
    Json(user)
}

#[derive(Deserialize)]
struct SinceQuery {
    #[serde(default)]
    since: u64,
}

async fn reference(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<SinceQuery>,
) -> Result<Json<protocol::ReferenceResponse>, ApiError> {
    Ok(Json(
        blocking(&state, move |s| s.service.reference(&user, q.since)).await?,
    ))
}

async fn sync(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: Body,
) -> Result<Response, ApiError> {
    let cfg = state.0.config.clone();
    let bytes = read_body(body, cfg.max_body_bytes).await?;
    // Decoding a request and compressing its answer are milliseconds of CPU
    // each: off the runtime, with the sync itself.
    let body = off_runtime(&state, move |s| sync_body(s, &cfg, user, &bytes)).await?;
    Ok(([(header::CONTENT_TYPE, SYNC_CONTENT_TYPE)], body).into_response())
}

/// A sync from its request body to its answer's body.
fn sync_body(
    s: &crate::Inner,
    cfg: &crate::config::Config,
    user: UserInfo,
    bytes: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let started = std::time::Instant::now();
    let req: SyncRequest =
        protocol::decode(bytes, cfg.max_decompressed_bytes).map_err(|e| match e {
            protocol::CodecError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                e.to_string(),
            ),
            other => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedBody,
                other.to_string(),
            ),
        })?;
    if req.protocol != PROTOCOL_VERSION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedProtocol,
            format!(
                "Protocole {} non pris en charge (le serveur parle {PROTOCOL_VERSION}) : mettez l'application à jour.",
                req.protocol
            ),
        ));
    }
    let limits = SyncLimits {
        max_docs: cfg.max_docs_per_request,
        page_bytes: cfg.response_page_bytes,
    };
    let decode_ms = started.elapsed().as_secs_f64() * 1000.0;
    let resp = s.service.sync(&user, req, limits)?;
    let encode_started = std::time::Instant::now();
    let body = protocol::encode(&resp).map_err(|e| {
        tracing::error!(error = %e, "encode sync response");
        ApiError::internal()
    })?;
    tracing::debug!(
        up = bytes.len(),
        decode_ms,
        encode_ms = encode_started.elapsed().as_secs_f64() * 1000.0,
        down = body.len(),
        accepted = resp.accepted,
        cursor = resp.cursor,
        "sync"
    );
    Ok(body)
}

async fn list_inspections(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<crate::storage::InspectionSummary>>, ApiError> {
    Ok(Json(
        blocking(&state, move |s| s.service.summaries(&user)).await?,
    ))
}

pub fn parse_inspection_id(id: &str) -> Result<InspectionId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("Identifiant d'inspection invalide."))
}

async fn get_inspection(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_inspection_id(&id)?;
    let value = blocking(&state, move |s| {
        let insp = s.service.inspection(&user, id)?;
        let doc = insp.read()?;
        let conflicts = bilan_shared::conflicts::list(&insp)?;
        Ok(serde_json::json!({ "inspection": doc, "conflicts": conflicts }))
    })
    .await?;
    Ok(Json(value))
}

async fn review(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> Result<StatusCode, ApiError> {
    let id = parse_inspection_id(&id)?;
    review_inspection(&state, user, id, req.status, req.comment).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Plans complexes for an inspector and a month (CS manager).
async fn assign(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(req): ApiJson<bilan_shared::protocol::AssignRequest>,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |s| {
        s.service
            .plan_visits(&user, &req.complexes, req.inspector, req.planned)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Approves or returns an inspection and/or adds a CS comment: written into the
/// document by the server's actor so it reaches devices at their next sync.
/// Shared by the API and the review pages.
pub async fn review_inspection(
    state: &AppState,
    user: UserInfo,
    id: InspectionId,
    status: Option<InspectionStatus>,
    comment: Option<String>,
) -> Result<(), ApiError> {
    blocking(state, move |s| s.service.review(&user, id, status, comment)).await
}

/// Resolves a conflict on the server (CS manager); shared by the API and the pages.
pub async fn resolve_conflict(
    state: &AppState,
    user: UserInfo,
    id: InspectionId,
    path: Vec<String>,
    value_id: String,
) -> Result<(), ApiError> {
    blocking(state, move |s| {
        s.service.resolve(&user, id, &path, &value_id)
    })
    .await
}

#[derive(Deserialize)]
struct ResolveRequest {
    path: Vec<String>,
    value_id: String,
}

async fn resolve(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<StatusCode, ApiError> {
    let id = parse_inspection_id(&id)?;
    resolve_conflict(&state, user, id, req.path, req.value_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn parse_hash(h: &str) -> Result<PhotoHash, ApiError> {
    h.parse().map_err(|_| {
        ApiError::bad_request("Empreinte de photo invalide (SHA-256 en hexadécimal attendu).")
    })
}

/// How long `HEAD` waits for an upload of the same photo to settle.
const UPLOAD_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);
/// A photo upload that sends nothing for this long is treated as cut.
const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

async fn head_photo(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let photos = state.0.photos.clone();
    // An upload of this photo still draining what reached the server before a
    // cut would make the offset stale: wait for it (bounded), so the device
    // resumes from the last byte really kept.
    let settled = if photos.is_complete(&hash).await? {
        None
    } else {
        tokio::time::timeout(UPLOAD_SETTLE, photos.lock_upload(&hash))
            .await
            .ok()
    };
    if photos.is_complete(&hash).await? {
        let h2 = hash.clone();
        let meta = blocking(&state, move |s| s.service.photo_meta(&user, &h2)).await?;
        // Held for another territory only: this one must send the bytes (see
        // `put_photo`), and is not told that someone else has them.
        let Some((size, _)) = meta else {
            return Ok((StatusCode::NO_CONTENT, [(UPLOAD_OFFSET_HEADER, "0")]).into_response());
        };
        return Ok((
            StatusCode::OK,
            [
                (UPLOAD_OFFSET_HEADER, size.to_string()),
                (UPLOAD_LENGTH_HEADER, size.to_string()),
            ],
        )
            .into_response());
    }
    let received = photos.received(&hash).await?;
    drop(settled);
    Ok((
        StatusCode::NO_CONTENT,
        [(UPLOAD_OFFSET_HEADER, received.to_string())],
    )
        .into_response())
}

async fn put_photo(
    State(state): State<AppState>,
    Path(hash): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let photos = state.0.photos.clone();
    // The upload lock is the first thing awaited, before the caller's token
    // is even looked up: a `HEAD` sent after this upload was cut then waits
    // for it to keep what reached the server, instead of answering a stale
    // offset that makes the device send those bytes again.
    let _upload = photos.lock_upload(&hash).await;
    let AuthUser(user) = AuthUser::of(&headers, &state).await?;
    let territory = state.service().photo_uploader(&user)?;
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|m| m.starts_with("image/"))
        .unwrap_or("image/jpeg")
        .to_string();
    let offset_header = |n: u64| [(UPLOAD_OFFSET_HEADER, n.to_string())];
    let content_length: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (start, end, total) = match headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => parse_content_range(v)
            .or_else(|| crate::photos::parse_finishing_range(v))
            .ok_or_else(|| ApiError::bad_request("En-tête Content-Range invalide."))?,
        None => {
            let len = content_length
                .ok_or_else(|| ApiError::bad_request("Content-Length ou Content-Range requis."))?;
            if len == 0 {
                return Err(ApiError::bad_request("Photo vide."));
            }
            (0, len - 1, len)
        }
    };
    let max = state.0.config.max_photo_bytes;
    if total > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("Photo trop volumineuse ({total} octets, limite {max})."),
        ));
    }
    if photos.is_complete(&hash).await? {
        let (u2, h2) = (user.clone(), hash.clone());
        if let Some((size, _)) = blocking(&state, move |s| s.service.photo_meta(&u2, &h2)).await? {
            // Already this territory's: nothing to send.
            return Ok((StatusCode::OK, offset_header(size)).into_response());
        }
        // Stored for another territory: knowing a photo's hash is not having
        // it, so access is granted only to whoever sends the whole photo.
        if start != 0 || end + 1 != total {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::OffsetMismatch,
                "Le serveur détient 0 octet : reprenez l'envoi à partir de là.",
            ));
        }
        let body = read_body(body, max).await?;
        if body.len() as u64 != total || PhotoHash::of(&body) != hash {
            return Err(hash_mismatch());
        }
        let h2 = hash.clone();
        blocking(&state, move |s| {
            s.service.photo_received(&h2, total, &mime, territory)
        })
        .await?;
        return Ok((StatusCode::CREATED, offset_header(total)).into_response());
    }
    let held = photos.received(&hash).await?;
    if start != held {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::OffsetMismatch,
            format!("Le serveur détient {held} octets : reprenez l'envoi à partir de là."),
        ));
    }
    // Bytes are kept as parts of at most PART_BYTES in the photo store
    // (seen by every instance); what arrived before a cut is written too.
    let mut written = held;
    let mut part_start = held;
    let mut part = bytes::BytesMut::new();
    let mut stream = body.into_data_stream();
    loop {
        let chunk = match tokio::time::timeout(UPLOAD_IDLE, stream.next()).await {
            Ok(Some(Ok(c))) => c,
            Ok(None) => break,
            // Connection cut or stalled: what was received stays for the resume.
            Ok(Some(Err(_))) | Err(_) => break,
        };
        if written + chunk.len() as u64 > end + 1 {
            return Err(ApiError::bad_request(
                "Plus d'octets que la plage annoncée.",
            ));
        }
        part.extend_from_slice(&chunk);
        written += chunk.len() as u64;
        if part.len() >= crate::photos::PART_BYTES {
            photos
                .write_part(&hash, part_start, part.split().freeze())
                .await?;
            part_start = written;
        }
    }
    photos.write_part(&hash, part_start, part.freeze()).await?;
    if written < total {
        return Ok((StatusCode::ACCEPTED, offset_header(written)).into_response());
    }
    match photos.finish(&hash, total).await? {
        ChunkOutcome::Complete => {
            let h2 = hash.clone();
            blocking(&state, move |s| {
                s.service.photo_received(&h2, total, &mime, territory)
            })
            .await?;
            Ok((StatusCode::CREATED, offset_header(total)).into_response())
        }
        ChunkOutcome::HashMismatch => Err(hash_mismatch()),
        ChunkOutcome::Partial(n) => Ok((StatusCode::ACCEPTED, offset_header(n)).into_response()),
    }
}

fn hash_mismatch() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::HashMismatch,
        "Les octets reçus ne correspondent pas à l'empreinte de la photo : elle a été refusée, renvoyez-la.",
    )
}

pub async fn serve_photo(
    state: AppState,
    user: UserInfo,
    hash: String,
    thumb: bool,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let h2 = hash.clone();
    let meta = blocking(&state, move |s| s.service.photo_meta(&user, &h2)).await?;
    let (_, mime) =
        meta.ok_or_else(|| ApiError::not_found("Photo introuvable ou pas encore reçue."))?;
    let (bytes, mime) = if thumb {
        (
            state.0.photos.thumbnail(&hash).await?,
            "image/jpeg".to_string(),
        )
    } else {
        (state.0.photos.photo(&hash).await?, mime)
    };
    let bytes = bytes.ok_or_else(|| ApiError::not_found("Fichier de photo absent."))?;
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("image/jpeg")),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(resp)
}

async fn get_photo(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    serve_photo(state, user, hash, false).await
}

async fn get_thumb(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    serve_photo(state, user, hash, true).await
}
