//! Runs a command (the end-to-end suite) with its servers on PostgreSQL:
//! starts a throwaway cluster, sets `BILAN_E2E_BACKEND=postgres` and
//! `BILAN_E2E_POSTGRES`, runs the command, stops and deletes the cluster,
//! and exits with the command's status.
//! Usage: `e2e-on-postgres cargo test -p bilan-e2e ...`

use bilan_e2e::backend::{BACKEND_VAR, CLUSTER_VAR};
use bilan_e2e::postgres::PgCluster;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let program = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage : e2e-on-postgres COMMANDE [ARGUMENTS...]"))?;
    let cluster = PgCluster::start();
    let status = std::process::Command::new(&program)
        .args(args)
        .env(BACKEND_VAR, "postgres")
        .env(CLUSTER_VAR, cluster.settings())
        .status();
    drop(cluster);
    let status = status.map_err(|e| anyhow::anyhow!("lancer {program} : {e}"))?;
    std::process::exit(status.code().unwrap_or(1));
}
