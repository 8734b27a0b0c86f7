//! The sync engine: login, the one-round-trip document sync (repeated only
//! while the server says `more`), reference data, and the photo upload queue
//! with resume and backoff. Every step is safe to retry after a cut: changes
//! are acknowledged only after the server's answer is stored, and the server
//! ignores changes it already has. Each sync reports its live progress
//! ([`crate::progress`]) for the sync bar.

use std::time::Duration;

use bilan_shared::doc::now_ms;
use bilan_shared::ids::PhotoHash;
use bilan_shared::protocol::{
    self, ApiErrorBody, ErrorCode, LoginRequest, LoginResponse, PROTOCOL_VERSION,
    ReferenceResponse, SYNC_CONTENT_TYPE, SyncRequest, SyncResponse, UPLOAD_OFFSET_HEADER,
};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};

use crate::error::{MobileError, Result};
use crate::progress::{Progress, Stage, Tracker};
use crate::store::{DeviceStore, OutboxPage, PendingPhoto};

/// Largest decompressed sync response accepted.
const MAX_RESPONSE_BYTES: u64 = 512 << 20;
/// Documents per sync request: well under the server's default limit (5,000).
const OUTBOX_PAGE_DOCS: usize = 2000;
/// Raw change bytes per sync request; compressed, they stay well under the
/// server's default body limit (64 MiB) and decompressed limit (256 MiB).
const OUTBOX_PAGE_BYTES: u64 = 48 << 20;
/// A photo's body goes to the network in pieces of this size, each counted
/// as it leaves: an eighth of a second at 1 Mbit/s, so the bar moves.
const PROGRESS_PIECE: usize = 16 << 10;
/// While a request waits, the progress's speed and time left are brought
/// up to date this often: the bar has news at least once a second.
const PROGRESS_TICK: Duration = Duration::from_millis(400);

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncReport {
    pub round_trips: u32,
    /// Pulls sent before the previous answer was stored (pipelining), and
    /// used.
    pub pulls_ahead: u32,
    pub sent_changes: u64,
    pub accepted: u64,
    pub received_changes: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub photos_uploaded: u32,
    pub photo_bytes_sent: u64,
    /// Time spent waiting for the server's answers (network and server
    /// work), apart from preparing requests and storing answers.
    pub waited: Duration,
    /// This device's changes the server refused to merge (other than for
    /// missing history, which is resent at once).
    pub rejected: Vec<bilan_shared::protocol::Rejection>,
}

/// A pull sent before the previous answer was stored: the cursor it asked
/// from and its answer. Dropped unused, it is cancelled.
struct Ahead {
    cursor: u64,
    answer: tokio::task::JoinHandle<Result<Vec<u8>>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.answer.abort();
    }
}

/// Tries of one photo upload within a sync (each asks the server's offset first).
const UPLOAD_ATTEMPTS: usize = 5;

/// Device setting (`"1"`) that lets a lab use a plain `http://` server off
/// this machine; `bilan-app` sets it from `BILAN_ALLOW_HTTP=1`.
pub const ALLOW_HTTP_SETTING: &str = "allow_http";

/// Refuses a server address over which the bearer token would cross a
/// network in clear: `https://` always passes, `http://` only to this
/// machine (loopback) or with the lab setting.
pub fn check_server_address(server_url: &str, allow_http: bool) -> Result<()> {
    let insecure = || MobileError::InsecureServer(server_url.to_string());
    let url = reqwest::Url::parse(server_url.trim()).map_err(|_| {
        MobileError::Invalid(format!(
            "adresse du serveur invalide : « {server_url} » (exemple : https://bilan.mon-cs.qc.ca)"
        ))
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        "http" => {
            let host = url.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback { Ok(()) } else { Err(insecure()) }
        }
        _ => Err(insecure()),
    }
}

/// Talks to the server on behalf of one device store.
pub struct SyncEngine<'a> {
    store: &'a DeviceStore,
    http: reqwest::Client,
    progress: Tracker,
}

impl<'a> SyncEngine<'a> {
    pub fn new(store: &'a DeviceStore) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap_or_else(|e| {
                // Only a broken TLS setup gets here: go on without the timeouts, said in the log.
                tracing::warn!(error = %e, "HTTP client with timeouts not built; default client used");
                reqwest::Client::new()
            });
        Self {
            store,
            http,
            progress: Tracker::unwatched(),
        }
    }

    /// Awaits `request`, ticking the progress meanwhile (see
    /// [`PROGRESS_TICK`]).
    async fn ticking<T>(&self, request: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(request);
        let mut tick = tokio::time::interval(PROGRESS_TICK);
        tick.tick().await;
        loop {
            tokio::select! {
                out = &mut request => return out,
                _ = tick.tick() => self.progress.tick(),
            }
        }
    }

    /// The latest progress this engine reported.
    pub fn progress(&self) -> Progress {
        self.progress.current()
    }

    /// Reports this engine's progress to `tx` (the sync bar's channel).
    pub fn with_progress(mut self, tx: tokio::sync::watch::Sender<Progress>) -> Self {
        self.progress = Tracker::new(tx);
        self
    }

    fn server(&self) -> Result<(String, String)> {
        let url = self
            .store
            .setting("server_url")?
            .ok_or(MobileError::NotLoggedIn)?;
        let token = self
            .store
            .setting("token")?
            .ok_or(MobileError::NotLoggedIn)?;
        Ok((url, token))
    }

    /// A request to the API (`path` after `/api/v1`) with the session's token.
    fn authorized(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder> {
        let (url, token) = self.server()?;
        Ok(self
            .http
            .request(method, format!("{url}/api/v1{path}"))
            .header(AUTHORIZATION, format!("Bearer {token}")))
    }

    async fn error_of(resp: reqwest::Response) -> MobileError {
        let status = resp.status().as_u16();
        match resp.json::<ApiErrorBody>().await {
            Ok(b) => MobileError::Server {
                status,
                code: b.code,
                message: b.message,
            },
            Err(_) => MobileError::Server {
                status,
                code: ErrorCode::Internal,
                message: format!("le serveur a répondu {status} : réessayez plus tard"),
            },
        }
    }

    /// Logs in and remembers the session; later work needs no network to start.
    pub async fn login(
        &self,
        server_url: &str,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse> {
        let allow_http = self.store.setting(ALLOW_HTTP_SETTING)?.as_deref() == Some("1");
        check_server_address(server_url, allow_http)?;
        let url = format!("{}/api/v1/login", server_url.trim_end_matches('/'));
        let req = LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
            device_id: Some(self.store.device_id()?),
        };
        let resp = self.http.post(url).json(&req).send().await?;
        if !resp.status().is_success() {
            return Err(Self::error_of(resp).await);
        }
        let login: LoginResponse = resp.json().await.map_err(MobileError::protocol)?;
        self.store
            .save_login(server_url, &login.token, &login.user)?;
        Ok(login)
    }

    /// Ends the session: refused while a change or a photo is only on this
    /// device (sync first); otherwise the server revokes the token and the
    /// device forgets the session and the territory's data.
    pub async fn logout(&self) -> Result<()> {
        let status = self.store.status()?;
        if status.pending_changes > 0 || status.pending_photos > 0 {
            return Err(MobileError::PendingBeforeLogout {
                changes: status.pending_changes,
                photos: status.pending_photos,
            });
        }
        let resp = self
            .authorized(reqwest::Method::POST, "/logout")?
            .send()
            .await?;
        // 401: the token was already revoked or expired; nothing to undo.
        if !resp.status().is_success() && resp.status() != StatusCode::UNAUTHORIZED {
            return Err(Self::error_of(resp).await);
        }
        self.store.logout()
    }

    /// Fetches reference data changed since the last call.
    pub async fn refresh_reference(&self) -> Result<ReferenceResponse> {
        let since: u64 = self
            .store
            .setting("ref_revision")?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let resp = self
            .authorized(reqwest::Method::GET, &format!("/reference?since={since}"))?
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(Self::error_of(resp).await);
        }
        let r: ReferenceResponse = resp.json().await.map_err(MobileError::protocol)?;
        self.store.apply_reference(&r)?;
        Ok(r)
    }

    /// One request: send a page of the outbox, receive what is new, store it.
    /// `more` in the answer is set while either side has more to send.
    pub async fn sync_round(&self, report: &mut SyncReport) -> Result<SyncResponse> {
        self.round(report, None).await
    }

    /// The sync request as a task of its own (it owns everything it needs),
    /// so it can run while the previous answer is being stored.
    fn post_sync(
        &self,
        url: &str,
        token: &str,
        body: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>>> + Send + 'static {
        let request = self
            .http
            .post(format!("{url}/api/v1/sync"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, SYNC_CONTENT_TYPE)
            .body(body);
        async move {
            let resp = request.send().await?;
            if !resp.status().is_success() {
                return Err(Self::error_of(resp).await);
            }
            Ok(resp.bytes().await?.to_vec())
        }
    }

    /// A round of [`Self::sync_round`]; with `ahead`, an answer that says
    /// `more` while the device has nothing left to send starts the next pull
    /// once its chunks have parsed (before they are written), so the server
    /// prepares the next page while this one is stored: a cold pull of many
    /// pages waits for the network once, not once per page. The pull sent
    /// ahead is used only if the round that follows would have sent the same
    /// request (nothing to send, the same cursor); otherwise it is dropped.
    async fn round(
        &self,
        report: &mut SyncReport,
        mut ahead: Option<&mut Option<Ahead>>,
    ) -> Result<SyncResponse> {
        let (url, token) = self.server()?;
        let started = std::time::Instant::now();
        let OutboxPage {
            docs,
            ids,
            more: more_to_send,
        } = self
            .store
            .outbox_page(OUTBOX_PAGE_DOCS, OUTBOX_PAGE_BYTES)?;
        let device_id = self.store.device_id()?;
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            device_id,
            cursor: self.store.cursor()?,
            docs,
        };
        report.sent_changes += ids.len() as u64;
        self.progress.stage(if req.docs.is_empty() {
            Stage::Receiving {
                page: report.round_trips + 1,
            }
        } else {
            Stage::Sending {
                round: report.round_trips + 1,
            }
        });
        let sent_ahead = ahead
            .as_deref_mut()
            .and_then(Option::take)
            .filter(|a| req.docs.is_empty() && a.cursor == req.cursor);
        let (prepared, answer) = match sent_ahead {
            Some(mut a) => {
                report.pulls_ahead += 1;
                (
                    started.elapsed(),
                    self.ticking(&mut a.answer)
                        .await
                        .map_err(|e| MobileError::Network(e.to_string()))
                        .and_then(|r| r),
                )
            }
            None => {
                let body = protocol::encode(&req).map_err(MobileError::protocol)?;
                report.bytes_up += body.len() as u64;
                self.progress.transferred(body.len() as u64);
                (
                    started.elapsed(),
                    self.ticking(self.post_sync(&url, &token, body)).await,
                )
            }
        };
        let bytes = match answer {
            Ok(bytes) => bytes,
            Err(err) => {
                if let MobileError::Server {
                    code: ErrorCode::MissingDependencies,
                    ..
                } = &err
                {
                    for d in &req.docs {
                        self.store.resend_all(d.doc_id)?;
                    }
                }
                return Err(err);
            }
        };
        let answered = started.elapsed();
        report.bytes_down += bytes.len() as u64;
        self.progress.transferred(bytes.len() as u64);
        report.round_trips += 1;
        let mut r: SyncResponse =
            protocol::decode(&bytes, MAX_RESPONSE_BYTES).map_err(MobileError::protocol)?;
        drop(bytes);
        // The next pull, sent once this answer's chunks have parsed.
        let mut next = None;
        if let Some(slot) = ahead
            && r.more
            && !more_to_send
        {
            let req = SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id,
                cursor: r.cursor,
                docs: Vec::new(),
            };
            let body = protocol::encode(&req).map_err(MobileError::protocol)?;
            report.bytes_up += body.len() as u64;
            next = Some((slot, self.post_sync(&url, &token, body)));
        }
        let cursor = r.cursor;
        let send_next = || {
            if let Some((slot, request)) = next {
                *slot = Some(Ahead {
                    cursor,
                    answer: tokio::spawn(request),
                });
            }
        };
        report.accepted += u64::from(r.accepted);
        // The chunks are stored, not handed back: the caller needs the rest.
        let chunks = std::mem::take(&mut r.changes);
        report.received_changes += self
            .store
            .apply_sync_then(&ids, chunks, r.cursor, send_next)?;
        report.waited += answered - prepared;
        for rejection in std::mem::take(&mut r.rejected) {
            tracing::warn!(doc = %rejection.doc_id, code = ?rejection.code, message = %rejection.message, "changes refused by the server");
            if rejection.code == ErrorCode::MissingDependencies {
                self.store.resend_all(rejection.doc_id)?;
                r.more = true;
            } else {
                report.rejected.push(rejection);
            }
        }
        tracing::debug!(
            prepare_ms = prepared.as_secs_f64() * 1000.0,
            wait_ms = (answered - prepared).as_secs_f64() * 1000.0,
            apply_ms = (started.elapsed() - answered).as_secs_f64() * 1000.0,
            "sync round"
        );
        r.more |= more_to_send;
        Ok(r)
    }

    /// Syncs documents until the server has nothing more, then uploads photos.
    /// Records the outcome (last sync time or the French error) for the sync bar.
    pub async fn sync(&self) -> Result<SyncReport> {
        let result = self.sync_inner().await;
        self.progress.stage(if result.is_ok() {
            Stage::Done
        } else {
            Stage::Idle
        });
        match &result {
            Ok(report) => {
                self.store
                    .set_setting("last_sync_ms", &now_ms().to_string())?;
                match report.rejected.last() {
                    Some(r) => self.store.set_setting(
                        "last_error",
                        &MobileError::Rejected {
                            doc: r.doc_id.to_string(),
                            message: r.message.clone(),
                        }
                        .to_string(),
                    )?,
                    None => self.store.clear_setting("last_error")?,
                }
            }
            Err(e) => self.store.set_setting("last_error", &e.to_string())?,
        }
        result
    }

    async fn sync_inner(&self) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut ahead = None;
        loop {
            let r = self.round(&mut report, Some(&mut ahead)).await?;
            if !r.more {
                break;
            }
        }
        self.upload_photos(&mut report).await?;
        Ok(report)
    }

    /// Uploads every due photo; one failing photo does not stop the others.
    pub async fn upload_photos(&self, report: &mut SyncReport) -> Result<()> {
        self.upload_photos_due_at(now_ms(), report).await
    }

    /// Uploads every photo not yet on the server, even those waiting out a
    /// back-off after failures (the inspector asked to retry now).
    pub async fn retry_photos_now(&self, report: &mut SyncReport) -> Result<()> {
        self.upload_photos_due_at(i64::MAX, report).await
    }

    async fn upload_photos_due_at(&self, now: i64, report: &mut SyncReport) -> Result<()> {
        let mut first_error = None;
        let queue = self.store.photos_to_upload(now)?;
        self.progress.queue(queue.iter().map(|p| p.size).sum());
        let count = queue.len();
        for (i, p) in queue.into_iter().enumerate() {
            match self.upload_photo_of(&p, report, (i + 1, count)).await {
                Ok(()) => {
                    self.store.photo_outcome(&p.hash, Ok(()))?;
                    report.photos_uploaded += 1;
                }
                Err(e) => {
                    self.store.photo_outcome(&p.hash, Err(e.to_string()))?;
                    let link_down = matches!(e, MobileError::Network(_));
                    first_error.get_or_insert(e);
                    // The link is gone: the other photos wait for the next
                    // sync instead of each timing out in turn.
                    if link_down {
                        break;
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Bytes of a photo the server already holds (0 for none).
    pub async fn photo_offset(&self, hash: &PhotoHash) -> Result<(u64, bool)> {
        let resp = self
            .ticking(
                self.authorized(reqwest::Method::HEAD, &format!("/photos/{hash}"))?
                    .send(),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(Self::error_of(resp).await);
        }
        let offset = resp
            .headers()
            .get(UPLOAD_OFFSET_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((offset, resp.status() == StatusCode::OK))
    }

    /// Uploads one photo from wherever the server's copy ends.
    pub async fn upload_photo(&self, p: &PendingPhoto, report: &mut SyncReport) -> Result<()> {
        self.upload_photo_of(p, report, (1, 1)).await
    }

    /// [`Self::upload_photo`] as photo `index` of `count` of the queue,
    /// its bytes reported as they leave.
    async fn upload_photo_of(
        &self,
        p: &PendingPhoto,
        report: &mut SyncReport,
        (index, count): (usize, usize),
    ) -> Result<()> {
        let bytes = std::fs::read(&p.path)?;
        if PhotoHash::of(&bytes) != p.hash {
            return Err(MobileError::Invalid(format!(
                "la photo {} est altérée sur l'appareil",
                p.hash
            )));
        }
        let mut last_cut = None;
        let mut started = false;
        // A cut can cost up to three of these: the cut PUT itself, a HEAD on
        // a pooled connection that died with it, and a stale offset refused
        // with 409 before the server had taken in the cut bytes.
        for _ in 0..UPLOAD_ATTEMPTS {
            let (offset, complete) = match self.photo_offset(&p.hash).await {
                Ok(v) => v,
                // A connection that died with the cut: ask again on a new one.
                Err(e @ MobileError::Network(_)) => {
                    last_cut = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let total = bytes.len() as u64;
            if started {
                self.progress.photo_rewound(offset);
            } else {
                self.progress.photo(index, count, total, offset);
                started = true;
            }
            if complete {
                return Ok(());
            }
            let rest = &bytes[offset.min(total) as usize..];
            report.photo_bytes_sent += rest.len() as u64;
            let len = rest.len();
            let pieces: Vec<bytes::Bytes> = rest
                .chunks(PROGRESS_PIECE)
                .map(bytes::Bytes::copy_from_slice)
                .collect();
            let progress = self.progress.clone();
            let body = futures_util::stream::iter(pieces.into_iter().map(move |piece| {
                progress.photo_sent(piece.len() as u64);
                Ok::<_, std::io::Error>(piece)
            }));
            let put = self
                .authorized(reqwest::Method::PUT, &format!("/photos/{}", p.hash))?
                .header(CONTENT_TYPE, &p.mime)
                .header(CONTENT_LENGTH, len)
                .header(
                    CONTENT_RANGE,
                    format!("bytes {offset}-{}/{total}", total - 1),
                )
                .body(reqwest::Body::wrap_stream(body))
                .send();
            let sent = self.ticking(put).await;
            let resp = match sent {
                Ok(r) => r,
                // Cut mid-body: the server kept what arrived; resume from there at once.
                Err(e) => {
                    last_cut = Some(MobileError::from(e));
                    continue;
                }
            };
            match resp.status() {
                StatusCode::OK | StatusCode::CREATED => return Ok(()),
                // Offset moved (a concurrent upload) or the body was cut: ask again.
                StatusCode::CONFLICT | StatusCode::ACCEPTED => continue,
                _ => return Err(Self::error_of(resp).await),
            }
        }
        Err(last_cut.unwrap_or_else(|| {
            MobileError::Network("envoi de photo interrompu à plusieurs reprises".into())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token must never cross a network in clear: `http://` is refused
    /// but on loopback or with the lab setting; the refusal is French and
    /// says what to use instead.
    #[test]
    fn plain_http_is_refused_off_this_machine_unless_the_lab_setting_is_on() {
        for ok in [
            "https://bilan.cs-mauricie.qc.ca",
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
        ] {
            assert!(check_server_address(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://bilan.cs-mauricie.qc.ca",
            "http://192.168.1.20:8080",
            "ftp://x",
        ] {
            let e = check_server_address(bad, false).expect_err(bad);
            assert!(matches!(e, MobileError::InsecureServer(_)), "{bad}: {e}");
            assert!(e.to_string().contains("https://"), "{e}");
        }
        assert!(check_server_address("http://192.168.1.20:8080", true).is_ok());
        assert!(matches!(
            check_server_address("pas une adresse", false),
            Err(MobileError::Invalid(_))
        ));
    }
}
