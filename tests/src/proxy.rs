//! The counting proxy of the tests and benchmarks: a loopback TCP proxy
//! (round-robin in front of several servers) that counts bytes each way and
//! HTTP/1.1 requests, times the servers' answers as a load balancer sees
//! them, and can cut connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the proxy treats traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward everything.
    Pass,
    /// Forward the request, read the server's answer, then drop the
    /// connection without passing it on (once, then back to `Pass`).
    DropNextResponse,
    /// Forward only this many request bytes of the next connection, then cut it
    /// (once, then back to `Pass`).
    CutRequestAfter(u64),
}

/// A loopback TCP proxy that counts bytes each way and HTTP requests, and can
/// cut connections.
pub struct Proxy {
    pub addr: SocketAddr,
    pub up: Arc<AtomicU64>,
    pub down: Arc<AtomicU64>,
    pub connections: Arc<AtomicU64>,
    /// HTTP/1.1 requests seen from clients.
    pub requests: Arc<AtomicU64>,
    /// While set, every photo upload that starts from byte 0 is cut once its
    /// body is half sent.
    pub cut_uploads_at_half: Arc<AtomicBool>,
    /// Connections cut by `cut_uploads_at_half`.
    pub cuts: Arc<AtomicU64>,
    mode: Arc<std::sync::Mutex<ProxyMode>>,
    answers: Arc<std::sync::Mutex<Vec<Answer>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Counters and switches shared by the proxy's connections.
#[derive(Clone)]
struct Wire {
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    cut_uploads_at_half: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
    /// Photo paths already cut once.
    cut_paths: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    answers: Arc<std::sync::Mutex<Vec<Answer>>>,
}

/// A server's answer to one request, as a load balancer sees it.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    /// Bytes of the request's body.
    pub request_bytes: u64,
    /// From the request's last byte received from the client to the
    /// answer's first byte received from the server (the servers send
    /// nothing before their answer is ready): the server's time, without
    /// the client's own delays in sending or reading.
    pub waited: Duration,
}

/// A connection's request waiting for its answer: when its last byte came
/// and its body's length. HTTP/1.1 clients send the next request on a
/// connection only once they have the answer, so there is one at a time.
type AnswerDue = Arc<std::sync::Mutex<Option<(Instant, u64)>>>;

/// Follows the HTTP/1.1 requests in a client's byte stream (heads, then
/// `Content-Length` bodies) to count them and to find the middle of a photo
/// upload's body.
#[derive(Default)]
struct RequestTracker {
    head: Vec<u8>,
    body_left: u64,
    /// The current request's body length.
    len: u64,
    answer_due: AnswerDue,
    /// Cut when this many body bytes are left.
    cut_when_left: Option<u64>,
    /// A body of unknown length (chunked): stop following.
    lost: bool,
}

impl RequestTracker {
    /// Reads `data`; returns how many of its bytes to forward before cutting, if a cut is due.
    fn feed(&mut self, data: &[u8], wire: &Wire) -> Option<usize> {
        let mut i = 0;
        while i < data.len() && !self.lost {
            if self.body_left > 0 {
                let take = self.body_left.min((data.len() - i) as u64);
                if let Some(c) = self.cut_when_left
                    && self.body_left - take <= c
                {
                    return Some(i + (self.body_left - c) as usize);
                }
                self.body_left -= take;
                i += take as usize;
                if self.body_left == 0 {
                    self.complete();
                }
                continue;
            }
            self.head.push(data[i]);
            i += 1;
            if self.head.ends_with(b"\r\n\r\n") {
                self.start_request(wire);
            }
        }
        None
    }

    /// The request is all in: its answer is due from now.
    fn complete(&mut self) {
        *self.answer_due.lock().unwrap() = Some((Instant::now(), self.len));
    }

    fn start_request(&mut self, wire: &Wire) {
        wire.requests.fetch_add(1, Ordering::SeqCst);
        let head = String::from_utf8_lossy(&self.head).to_ascii_lowercase();
        self.head.clear();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if header("transfer-encoding:").is_some() {
            self.lost = true;
            return;
        }
        let len: u64 = header("content-length:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.body_left = len;
        self.len = len;
        if len == 0 {
            self.complete();
        }
        let from_zero = header("content-range:").is_some_and(|v| v.starts_with("bytes 0-"));
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        // Each photo is cut once: a retry that starts from zero again (the
        // device asked before the server had taken in the cut bytes) passes.
        self.cut_when_left = (wire.cut_uploads_at_half.load(Ordering::SeqCst)
            && head.starts_with("put /api/v1/photos/")
            && from_zero
            && len > 1
            && wire.cut_paths.lock().unwrap().insert(path))
        .then(|| len - len / 2);
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_many(vec![upstream]).await
    }

    /// The same in front of several servers: each new connection goes to
    /// the next one in turn (a round-robin load balancer).
    pub async fn start_many(upstreams: Vec<SocketAddr>) -> Self {
        assert!(!upstreams.is_empty(), "at least one upstream");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
        let cut_uploads_at_half = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let mode = Arc::new(std::sync::Mutex::new(ProxyMode::Pass));
        let wire = Wire {
            up: up.clone(),
            down: down.clone(),
            requests: requests.clone(),
            cut_uploads_at_half: cut_uploads_at_half.clone(),
            cuts: cuts.clone(),
            cut_paths: Default::default(),
            answers: answers.clone(),
        };
        let (c, m) = (connections.clone(), mode.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let upstream = upstreams[n as usize % upstreams.len()];
                let this_mode = {
                    let mut g = m.lock().unwrap();
                    let cur = *g;
                    *g = ProxyMode::Pass;
                    cur
                };
                let wire = wire.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = pipe(client, server, this_mode, wire).await;
                });
            }
        });
        Self {
            addr,
            up,
            down,
            connections,
            requests,
            cut_uploads_at_half,
            cuts,
            mode,
            answers,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Mode of the next connection.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Bytes counted (client to server, server to client) and resets them.
    pub fn take_counts(&self) -> (u64, u64) {
        (
            self.up.swap(0, Ordering::SeqCst),
            self.down.swap(0, Ordering::SeqCst),
        )
    }

    /// The servers' answers timed since the last call, in the order they came.
    pub fn take_answers(&self) -> Vec<Answer> {
        std::mem::take(&mut *self.answers.lock().unwrap())
    }

    /// Bytes up, bytes down and HTTP requests since the last call, and resets them.
    pub fn take_traffic(&self) -> (u64, u64, u64) {
        let (up, down) = self.take_counts();
        (up, down, self.requests.swap(0, Ordering::SeqCst))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    mode: ProxyMode,
    wire: Wire,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (up, down) = (wire.up.clone(), wire.down.clone());
    let answer_due = AnswerDue::default();
    let (due_up, answers) = (answer_due.clone(), wire.answers.clone());
    let upload = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        let mut tracker = RequestTracker {
            answer_due: due_up,
            ..Default::default()
        };
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                let _ = sw.shutdown().await;
                return Ok::<_, std::io::Error>(());
            }
            if let Some(k) = tracker.feed(&buf[..n], &wire) {
                sw.write_all(&buf[..k]).await?;
                sw.flush().await?;
                up.fetch_add(k as u64, Ordering::SeqCst);
                wire.cuts.fetch_add(1, Ordering::SeqCst);
                return Err(std::io::Error::other("upload cut at half"));
            }
            let mut n = n as u64;
            if let ProxyMode::CutRequestAfter(limit) = mode
                && sent + n >= limit
            {
                n = limit - sent;
                sw.write_all(&buf[..n as usize]).await?;
                up.fetch_add(n, Ordering::SeqCst);
                // Cut: both directions end here.
                return Err(std::io::Error::other("cut"));
            }
            sw.write_all(&buf[..n as usize]).await?;
            sent += n;
            up.fetch_add(n, Ordering::SeqCst);
        }
    };
    let download = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if mode == ProxyMode::DropNextResponse {
                // The server answered (and committed): the client never hears of it.
                return Err(std::io::Error::other("dropped"));
            }
            if let Some((at, request_bytes)) = answer_due.lock().unwrap().take() {
                answers.lock().unwrap().push(Answer {
                    request_bytes,
                    waited: at.elapsed(),
                });
            }
            cw.write_all(&buf[..n]).await?;
            down.fetch_add(n as u64, Ordering::SeqCst);
        }
    };
    tokio::select! {
        r = upload => r,
        r = download => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that reads one request head (and its `Content-Length`
    /// body), then waits for `go` before answering; twice on one
    /// connection.
    async fn held_server(mut go: tokio::sync::mpsc::Receiver<()>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for _ in 0..2 {
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                go.recv().await.unwrap();
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn each_request_gets_one_answer_timed_at_least_as_long_as_the_server_held_it() {
        let (go, held) = tokio::sync::mpsc::channel(2);
        let proxy = Proxy::start(held_server(held).await).await;
        let mut c = TcpStream::connect(proxy.addr).await.unwrap();
        let read_answer = async |c: &mut TcpStream| {
            let mut buf = [0u8; 64];
            let mut got = Vec::new();
            while !got.ends_with(b"ok") {
                let n = c.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
        };
        // A body sent in two parts, held by the server once all in.
        c.write_all(b"POST /a HTTP/1.1\r\ncontent-length: 5\r\n\r\nab")
            .await
            .unwrap();
        c.write_all(b"cde").await.unwrap();
        let held_for = Duration::from_millis(30);
        tokio::time::sleep(held_for).await;
        go.send(()).await.unwrap();
        read_answer(&mut c).await;
        c.write_all(b"GET /b HTTP/1.1\r\n\r\n").await.unwrap();
        go.send(()).await.unwrap();
        read_answer(&mut c).await;
        let answers = proxy.take_answers();
        let sizes: Vec<u64> = answers.iter().map(|a| a.request_bytes).collect();
        assert_eq!(
            sizes,
            [5, 0],
            "one answer per request, with its body's size"
        );
        assert!(
            answers[0].waited >= held_for,
            "the first answer was held {held_for:?}, timed {:?}",
            answers[0].waited
        );
        assert!(proxy.take_answers().is_empty(), "taken once");
    }
}
