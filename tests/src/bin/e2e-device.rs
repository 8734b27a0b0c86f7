//! The device CLI as its own process, for end-to-end tests that restart or
//! kill devices (same code as `bilan-device`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Ok(bilan_mobile::cli::main(bilan_mobile::cli::Cli::parse()).await?)
}
