//! A loopback TCP proxy that breaks connections at random, seeded: it
//! refuses some, delays others, cuts requests or responses after a random
//! number of bytes, and resets some (RST instead of FIN). Each fault is
//! counted, so a test can say what it injected. With several upstreams it
//! is also the load balancer: connections go to each in turn. With a
//! [`Link`], it is also a slow network: every byte each way waits half the
//! round trip and goes out at the link's rate.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::workload::Seq;

/// What happens to one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Closed as soon as accepted.
    Refuse,
    /// Every chunk each way waits this long.
    Delay(Duration),
    /// The request stream ends after this many bytes (both ways closed).
    CutRequest(u64),
    /// The response stream ends after this many bytes.
    CutResponse(u64),
    /// The connection is reset (RST) after this many response bytes.
    Reset(u64),
}

/// A slow network: a rate each way and a round-trip time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    pub bits_per_sec: u64,
    pub round_trip: Duration,
}

impl Link {
    /// One bar of rural LTE, or a basement at 3G speed: 1 Mbit/s, 300 ms.
    pub const RURAL: Link = Link {
        bits_per_sec: 1_000_000,
        round_trip: Duration::from_millis(300),
    };

    /// How long `bytes` take to go out at this rate.
    fn serialize(&self, bytes: usize) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 8.0 / self.bits_per_sec as f64)
    }
}

/// Faults injected so far, per kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub delayed: AtomicU64,
    pub cut_requests: AtomicU64,
    pub cut_responses: AtomicU64,
    pub resets: AtomicU64,
}

impl FaultCounts {
    /// `(connections, refused, delayed, cut requests, cut responses, resets)`.
    pub fn snapshot(&self) -> [u64; 6] {
        [
            &self.connections,
            &self.refused,
            &self.delayed,
            &self.cut_requests,
            &self.cut_responses,
            &self.resets,
        ]
        .map(|c| c.load(Ordering::SeqCst))
    }
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub counts: Arc<FaultCounts>,
    /// Percentage of connections that get a fault (0 to 100).
    rate: Arc<AtomicU32>,
    /// Where connections go, in turn.
    upstreams: Arc<Mutex<Vec<SocketAddr>>>,
    /// The network new connections cross (none: loopback as it is).
    link: Arc<Mutex<Option<Link>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream`, with faults drawn from `seed`, none
    /// until [`FaultProxy::set_rate`] is called.
    pub async fn start(upstream: SocketAddr, seed: u64) -> Self {
        Self::start_many(vec![upstream], seed).await
    }

    /// The same in front of several servers, each connection to the next
    /// one in turn (a load balancer without health checks: a connection to
    /// a server that is down fails, and the client retries).
    pub async fn start_many(upstreams: Vec<SocketAddr>, seed: u64) -> Self {
        assert!(!upstreams.is_empty(), "at least one upstream");
        // A small receive buffer, as a phone's radio link has: a sender's
        // bytes wait on its side instead of megabytes vanishing into
        // loopback buffers at once (a progress bar would run ahead).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(128).unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(FaultCounts::default());
        let rate = Arc::new(AtomicU32::new(0));
        let upstreams = Arc::new(Mutex::new(upstreams));
        let seq = Arc::new(Mutex::new(Seq::new(seed)));
        let link = Arc::new(Mutex::new(None));
        let (c, r, u, l) = (
            counts.clone(),
            rate.clone(),
            upstreams.clone(),
            link.clone(),
        );
        let task = tokio::spawn(async move {
            let mut turn = 0usize;
            while let Ok((client, _)) = listener.accept().await {
                let fault = draw(&mut seq.lock().unwrap(), r.load(Ordering::SeqCst));
                let upstream = {
                    let all = u.lock().unwrap();
                    turn = turn.wrapping_add(1);
                    all[turn % all.len()]
                };
                c.connections.fetch_add(1, Ordering::SeqCst);
                let counter = match fault {
                    Fault::Pass => None,
                    Fault::Refuse => Some(&c.refused),
                    Fault::Delay(_) => Some(&c.delayed),
                    Fault::CutRequest(_) => Some(&c.cut_requests),
                    Fault::CutResponse(_) => Some(&c.cut_responses),
                    Fault::Reset(_) => Some(&c.resets),
                };
                if let Some(counter) = counter {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let link = *l.lock().unwrap();
                tokio::spawn(async move {
                    let _ = faulty_pipe(client, upstream, fault, link).await;
                });
            }
        });
        Self {
            addr,
            counts,
            rate,
            upstreams,
            link,
            task,
        }
    }

    /// The network new connections cross from now on.
    pub fn set_link(&self, link: Option<Link>) {
        *self.link.lock().unwrap() = link;
    }

    /// Points the `i`-th upstream at a new address (a restarted server).
    pub fn set_upstream(&self, i: usize, addr: SocketAddr) {
        self.upstreams.lock().unwrap()[i] = addr;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Percentage of new connections that get a fault.
    pub fn set_rate(&self, percent: u32) {
        self.rate.store(percent.min(100), Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn draw(seq: &mut Seq, rate: u32) -> Fault {
    if seq.next_u64() % 100 >= u64::from(rate) {
        return Fault::Pass;
    }
    let n = seq.next_u64();
    match seq.next_u64() % 5 {
        0 => Fault::Refuse,
        1 => Fault::Delay(Duration::from_millis(1 + n % 30)),
        // Anywhere in a small sync body or well into a photo.
        2 => Fault::CutRequest(n % 200_000),
        3 => Fault::CutResponse(n % 2_000),
        _ => Fault::Reset(n % 2_000),
    }
}

async fn faulty_pipe(
    client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    link: Option<Link>,
) -> std::io::Result<()> {
    if fault == Fault::Refuse {
        return Ok(());
    }
    if matches!(fault, Fault::Reset(_)) {
        // Closing with a zero linger sends RST (and does not block: there is
        // nothing to wait for with a zero timeout).
        #[expect(
            deprecated,
            reason = "a zero linger is the way to send RST, and never blocks"
        )]
        client.set_linger(Some(Duration::ZERO))?;
    }
    let server = TcpStream::connect(upstream).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let delay = match fault {
        Fault::Delay(d) => Some(d),
        _ => None,
    };
    let upload = async move {
        let limit = match fault {
            Fault::CutRequest(n) => n,
            _ => u64::MAX,
        };
        match link {
            Some(link) => shaped_copy(&mut cr, &mut sw, limit, link).await,
            None => copy(&mut cr, &mut sw, limit, delay).await,
        }
    };
    let download = async move {
        let limit = match fault {
            Fault::CutResponse(n) | Fault::Reset(n) => n,
            _ => u64::MAX,
        };
        match link {
            Some(link) => shaped_copy(&mut sr, &mut cw, limit, link).await,
            None => copy(&mut sr, &mut cw, limit, delay).await,
        }
    };
    // Either direction ending (a cut, or the peer closing) ends both.
    tokio::select! {
        r = upload => r,
        r = download => r,
    }
}

/// Copies until EOF or `limit` bytes; returns an error at the limit so the
/// connection closes.
async fn copy(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    limit: u64,
    delay: Option<Duration>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let take = (n as u64).min(limit - sent) as usize;
        to.write_all(&buf[..take]).await?;
        sent += take as u64;
        if sent >= limit {
            return Err(std::io::Error::other("cut by the fault proxy"));
        }
    }
}

/// [`copy`] across a [`Link`]: each chunk read is delivered half a round
/// trip later, and chunks go out no faster than the link's rate (a queue
/// of a few chunks between, as in a modem).
async fn shaped_copy(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    limit: u64,
    link: Link,
) -> std::io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(4);
    let reader = async move {
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            let due = tokio::time::Instant::now() + link.round_trip / 2;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async move {
        let mut sent = 0u64;
        let mut free_at = tokio::time::Instant::now();
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let start = free_at.max(tokio::time::Instant::now());
            free_at = start + link.serialize(bytes.len());
            tokio::time::sleep_until(free_at).await;
            let take = (bytes.len() as u64).min(limit - sent) as usize;
            to.write_all(&bytes[..take]).await?;
            sent += take as u64;
            if sent >= limit {
                return Err(std::io::Error::other("cut by the fault proxy"));
            }
        }
        let _ = to.shutdown().await;
        Ok(())
    };
    tokio::pin!(writer);
    tokio::select! {
        // Drained after the end of the stream, or cut.
        written = &mut writer => written,
        // The stream ended: what is on the way still arrives.
        read = reader => {
            read?;
            writer.await
        }
    }
}
