//! A server process for the end-to-end tests that kill it: seeds the demo in
//! the folder given as argument, listens on 127.0.0.1:0 and prints
//! `LISTENING <addr>` once it accepts connections.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: e2e-server DATA_DIR"))?;
    bilan_e2e::serve_demo_announced(std::path::Path::new(&dir)).await
}
