//! A loopback TCP proxy that breaks connections at random, seeded: it
//! refuses some, delays others, cuts requests or responses after a random
//! number of bytes, and resets some (RST instead of FIN). Each fault is
//! counted, so a test can say what it injected. With several upstreams it
//! is also the load balancer: connections go to each in turn.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(FaultCounts::default());
        let rate = Arc::new(AtomicU32::new(0));
        let upstreams = Arc::new(Mutex::new(upstreams));
        let seq = Arc::new(Mutex::new(Seq::new(seed)));
        let (c, r, u) = (counts.clone(), rate.clone(), upstreams.clone());
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
                tokio::spawn(async move {
                    let _ = faulty_pipe(client, upstream, fault).await;
                });
            }
        });
        Self {
            addr,
            counts,
            rate,
            upstreams,
            task,
        }
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

async fn faulty_pipe(client: TcpStream, upstream: SocketAddr, fault: Fault) -> std::io::Result<()> {
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
        copy(&mut cr, &mut sw, limit, delay).await
    };
    let download = async move {
        let limit = match fault {
            Fault::CutResponse(n) | Fault::Reset(n) => n,
            _ => u64::MAX,
        };
        copy(&mut sr, &mut cw, limit, delay).await
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
