//! A server process for the end-to-end tests that kill it: seeds the demo in
//! the folder given as argument, listens on 127.0.0.1:0 and prints
//! `LISTENING <addr>` once it accepts connections.

use bilan_server::{AppState, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: e2e-server DATA_DIR"))?;
    let state = AppState::open(Config {
        data_dir: dir.into(),
        ..Config::default()
    })?;
    bilan_server::admin::seed_demo(state.store())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTENING {}", listener.local_addr()?);
    bilan_server::launch(listener, state, std::future::pending()).await?;
    Ok(())
}
