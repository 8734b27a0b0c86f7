//! `bilan-device`: a thin command line over the device library, for tests,
//! benchmarks and support.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BILAN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    Ok(bilan_mobile::cli::main(bilan_mobile::cli::Cli::parse()).await?)
}
