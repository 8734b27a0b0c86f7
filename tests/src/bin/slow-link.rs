//! A rural link in front of a server, for the desktop end-to-end test:
//! forwards `127.0.0.1:0` to the address given as argument at 1 Mbit/s
//! each way with a 300 ms round trip ([`bilan_e2e::fault_proxy::Link::RURAL`]),
//! no faults, and prints `LISTENING <url>` once it accepts connections.

use bilan_e2e::fault_proxy::{FaultProxy, Link};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let upstream = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: slow-link HOST:PORT"))?
        .trim_start_matches("http://")
        .parse()?;
    let proxy = FaultProxy::start(upstream, 1).await;
    proxy.set_link(Some(Link::RURAL));
    println!("LISTENING {}", proxy.url());
    std::future::pending::<()>().await;
    Ok(())
}
