//! `bilan-server`: parses settings and runs a command (serve, or an admin task).
//! Settings: defaults, then the TOML file, then `BILAN_*` environment
//! variables, then flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bilan_server::admin;
use bilan_server::audit::{AuditAction, AuditEntry};
use bilan_server::store::NewUser;
use bilan_server::{AppState, Config};
use bilan_shared::domain::Role;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bilan-server",
    version,
    about = "Serveur de synchronisation Bilan (BSI) d'un centre de services"
)]
struct Cli {
    /// TOML settings file (keys: listen, data_dir, max_body_bytes, max_decompressed_bytes,
    /// max_docs_per_request, max_photo_bytes, response_page_bytes, compact_every_s,
    /// token_ttl_days, behind_proxy, log_retention_days).
    #[arg(long, env = "BILAN_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Folder of the SQLite database and photo store [default: bilan-data].
    #[arg(long, env = "BILAN_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "BILAN_LISTEN", global = true)]
    listen: Option<SocketAddr>,
    /// Largest request body in bytes, compressed [default: 67108864].
    #[arg(long, env = "BILAN_MAX_BODY_BYTES", global = true)]
    max_body_bytes: Option<u64>,
    /// Largest sync body once decompressed, in bytes [default: 268435456].
    #[arg(long, env = "BILAN_MAX_DECOMPRESSED_BYTES", global = true)]
    max_decompressed_bytes: Option<u64>,
    /// Most documents in one sync request [default: 5000].
    #[arg(long, env = "BILAN_MAX_DOCS_PER_REQUEST", global = true)]
    max_docs_per_request: Option<usize>,
    /// Largest photo in bytes [default: 20000000].
    #[arg(long, env = "BILAN_MAX_PHOTO_BYTES", global = true)]
    max_photo_bytes: Option<u64>,
    /// Change bytes per sync response page [default: 8388608].
    #[arg(long, env = "BILAN_RESPONSE_PAGE_BYTES", global = true)]
    response_page_bytes: Option<u64>,
    /// Seconds between two log compactions while serving, 0 for never [default: 3600].
    #[arg(long, env = "BILAN_COMPACT_EVERY_S", global = true)]
    compact_every_s: Option<u64>,
    /// Days a login stays valid [default: 90].
    #[arg(long, env = "BILAN_TOKEN_TTL_DAYS", global = true)]
    token_ttl_days: Option<u64>,
    /// Days log compaction keeps change bundles beside snapshots [default: 30].
    #[arg(long, env = "BILAN_LOG_RETENTION_DAYS", global = true)]
    log_retention_days: Option<u64>,
    /// Behind a reverse proxy on this host: count failed logins under the
    /// last X-Forwarded-For address [default: off].
    #[arg(long, env = "BILAN_BEHIND_PROXY", global = true)]
    behind_proxy: Option<bool>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the API until Ctrl-C or SIGTERM.
    Serve,
    /// Create the database and photo folder.
    Init,
    /// Create a territory (CS).
    CreateTerritory { name: String },
    /// Import offices (`code,nom`) or complexes (`code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement`) from CSV.
    ImportCsv {
        /// Territory name.
        #[arg(long)]
        territory: String,
        #[arg(long, value_parser = ["organismes", "ensembles"])]
        kind: String,
        file: PathBuf,
    },
    /// Create a user.
    CreateUser {
        username: String,
        #[arg(long)]
        name: String,
        /// inspecteur, responsable, lecteur_organisme or administrateur.
        #[arg(long)]
        role: String,
        #[arg(long)]
        territory: Option<String>,
        /// Office code, for office readers.
        #[arg(long)]
        office: Option<String>,
        #[arg(long, env = "BILAN_NEW_PASSWORD")]
        password: String,
    },
    /// Set a new password.
    ResetPassword {
        username: String,
        #[arg(long, env = "BILAN_NEW_PASSWORD")]
        password: String,
    },
    /// Revoke every token of a user (their devices must log in again).
    RevokeTokens { username: String },
    /// Fold every inspection's log into its snapshot (reclaims space; safe
    /// while the server runs; the server also does it every `compact_every_s`).
    Compact,
    /// Copy the database and the photos into a new folder (safe while the
    /// server runs).
    Backup { dest: PathBuf },
    /// Restore a backup into the data folder, which must hold no database
    /// (stop the server first; everything is checked before anything is written).
    Restore { src: PathBuf },
    /// Print the audit log (review decisions and administrative actions), newest first.
    Journal {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Seed the demo territory (3 offices, 20 complexes, 2 inspectors, 1 manager, 1 office reader).
    Demo {
        /// Serve right after seeding.
        #[arg(long)]
        serve: bool,
    },
}

fn settings(cli: &Cli) -> anyhow::Result<Config> {
    let mut c = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("lecture de {}", path.display()))?;
            Config::from_toml(&text)
                .with_context(|| format!("fichier de configuration {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(v) = &cli.data_dir {
        c.data_dir = v.clone();
    }
    if let Some(v) = cli.listen {
        c.listen = v;
    }
    if let Some(v) = cli.max_body_bytes {
        c.max_body_bytes = v;
    }
    if let Some(v) = cli.max_decompressed_bytes {
        c.max_decompressed_bytes = v;
    }
    if let Some(v) = cli.max_docs_per_request {
        c.max_docs_per_request = v;
    }
    if let Some(v) = cli.max_photo_bytes {
        c.max_photo_bytes = v;
    }
    if let Some(v) = cli.response_page_bytes {
        c.response_page_bytes = v;
    }
    if let Some(v) = cli.compact_every_s {
        c.compact_every_s = v;
    }
    if let Some(v) = cli.token_ttl_days {
        c.token_ttl_days = v;
    }
    if let Some(v) = cli.behind_proxy {
        c.behind_proxy = v;
    }
    if let Some(v) = cli.log_retention_days {
        c.log_retention_days = v;
    }
    Ok(c)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn serve(state: AppState) -> anyhow::Result<()> {
    let addr = state.0.config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("écoute sur {addr}"))?;
    println!(
        "Serveur Bilan à l'écoute sur http://{}",
        listener.local_addr()?
    );
    bilan_server::launch(listener, state, shutdown_signal()).await?;
    Ok(())
}

fn territory_id(state: &AppState, name: &str) -> anyhow::Result<bilan_shared::TerritoryId> {
    match state.store().territory_by_name(name)? {
        Some(t) => Ok(t.id),
        None => bail!("territoire « {name} » introuvable : créez-le avec create-territory"),
    }
}

/// Records a console command in the audit log.
fn audit(
    state: &AppState,
    territory: Option<bilan_shared::TerritoryId>,
    action: AuditAction,
    target: &str,
    detail: &str,
) -> anyhow::Result<()> {
    let entry = AuditEntry::console(territory, action, target).with_detail(detail);
    state.store().audit(&entry)?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BILAN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    // A panic (automerge on hostile bytes, for one, caught and refused with
    // a 4xx) is one log line, not a backtrace on stderr.
    std::panic::set_hook(Box::new(|info| tracing::error!(%info, "panic")));
    let cli = Cli::parse();
    if let Command::Restore { src } = &cli.command {
        // Before opening the store, which would create an empty database.
        let config = settings(&cli)?;
        let m = bilan_server::backup::restore(src, &config)?;
        println!(
            "Sauvegarde restaurée dans {} : {} photo(s), base au schéma {}.",
            config.data_dir.display(),
            m.photos,
            m.db_schema
        );
        return Ok(());
    }
    let state = AppState::open(settings(&cli)?).context("ouverture du stockage")?;
    match cli.command {
        Command::Serve => serve(state).await?,
        Command::Init => println!("Base prête : {}", state.0.config.db_path().display()),
        Command::CreateTerritory { name } => {
            let id = state.store().create_territory(&name)?;
            audit(&state, Some(id), AuditAction::CreateTerritory, &name, "")?;
            println!("Territoire « {name} » créé : {id}");
        }
        Command::ImportCsv {
            territory,
            kind,
            file,
        } => {
            let t = territory_id(&state, &territory)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("lecture de {}", file.display()))?;
            let (n, action) = match kind.as_str() {
                "organismes" => (
                    admin::import_offices(state.store(), t, &text)?,
                    AuditAction::ImportOffices,
                ),
                _ => (
                    admin::import_complexes(state.store(), t, &text)?,
                    AuditAction::ImportComplexes,
                ),
            };
            let file = file.display().to_string();
            audit(&state, Some(t), action, &file, &format!("{n} ligne(s)"))?;
            println!("{n} ligne(s) importée(s).");
        }
        Command::CreateUser {
            username,
            name,
            role,
            territory,
            office,
            password,
        } => {
            let role = Role::from_code(&role).with_context(|| {
                format!("rôle « {role} » inconnu : inspecteur, responsable, lecteur_organisme ou administrateur")
            })?;
            let territory_id = territory
                .as_deref()
                .map(|t| territory_id(&state, t))
                .transpose()?;
            let office_id = match (office, territory_id) {
                (Some(code), Some(t)) => Some(
                    state
                        .store()
                        .offices(t)?
                        .into_iter()
                        .find(|o| o.code == code)
                        .with_context(|| format!("organisme « {code} » introuvable"))?
                        .id,
                ),
                (Some(_), None) => bail!("--office demande --territory"),
                _ => None,
            };
            let id = state.store().create_user(&NewUser {
                username: username.clone(),
                display_name: name,
                role,
                territory_id,
                office_id,
                password,
            })?;
            let r = role.label_fr();
            audit(&state, territory_id, AuditAction::CreateUser, &username, r)?;
            println!("Utilisateur créé : {id}");
        }
        Command::ResetPassword { username, password } => {
            state.store().set_password(&username, &password)?;
            audit(&state, None, AuditAction::ResetPassword, &username, "")?;
            println!("Mot de passe changé.");
        }
        Command::Backup { dest } => {
            let m = bilan_server::backup::backup(&state.0.config, &dest)?;
            let d = dest.display().to_string();
            let detail = format!("{} photo(s)", m.photos);
            audit(&state, None, AuditAction::Backup, &d, &detail)?;
            println!(
                "Sauvegarde écrite dans {} : base de {} octets, {} photo(s) ({} octets).",
                dest.display(),
                m.db_bytes,
                m.photos,
                m.photo_bytes
            );
        }
        Command::Restore { .. } => unreachable!("handled before the store opens"),
        Command::Compact => {
            let r = state.store().compact()?;
            let detail = format!("{} inspection(s)", r.documents);
            audit(&state, None, AuditAction::Compact, "journal", &detail)?;
            println!(
                "Compactage terminé : {} inspection(s) réécrite(s), {} entrée(s) du journal allégée(s).",
                r.documents, r.rows_cleared
            );
        }
        Command::RevokeTokens { username } => {
            let n = state.store().revoke_user_tokens(&username)?;
            let detail = format!("{n} jeton(s)");
            audit(
                &state,
                None,
                AuditAction::RevokeSessions,
                &username,
                &detail,
            )?;
            println!("{n} jeton(s) révoqué(s).");
        }
        Command::Journal { limit } => {
            // Every territory's entries: Quebec time, with its offset.
            let tz = bilan_shared::calendar::default_zone();
            for e in state.store().audit_log(None, limit)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    bilan_shared::calendar::iso_datetime_offset(e.at, &tz),
                    e.actor,
                    e.action.label_fr(),
                    e.target,
                    e.detail
                );
            }
        }
        Command::Demo { serve: then_serve } => {
            admin::seed_demo(state.store())?;
            println!(
                "Territoire de démonstration prêt : « {} ». Comptes : inspecteur1, inspecteur2, responsable, lecteur-tr — mot de passe « {} ».",
                admin::DEMO_TERRITORY,
                admin::DEMO_PASSWORD
            );
            if then_serve {
                serve(state).await?;
            }
        }
    }
    Ok(())
}
