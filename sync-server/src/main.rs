//! `bilan-server`: parses settings and runs a command (serve, or an admin task).
//! Settings: see [`bilan_server::config`].

use std::path::PathBuf;

use anyhow::Context;
use bilan_server::admin;
use bilan_server::audit::{AuditAction, AuditEntry};
use bilan_server::config::Layers;
use bilan_server::service::{Actor, NewUser};
use bilan_server::{AppState, Config};
use bilan_shared::domain::Role;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bilan-server",
    version,
    about = "Serveur de synchronisation Bilan (BSI) d'un centre de services",
    after_help = SETTINGS_HELP
)]
struct Cli {
    /// TOML settings file (any setting below, `name = value`).
    #[arg(long, env = "BILAN_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Folder of the SQLite database and photo store [default: bilan-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Any setting, as `name=value` (repeatable); over the file and the environment.
    #[arg(long = "set", value_name = "NOM=VALEUR", global = true)]
    set: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

/// The settings' names, for `--help`.
const SETTINGS_HELP: &str = "Réglages (fichier --config, variable BILAN_<NOM> ou --set nom=valeur) : \
listen, data_dir, database_url (PostgreSQL; vide : SQLite), photo_store (local, s3), s3_bucket, s3_endpoint, s3_region, s3_access_key_id, s3_secret_access_key, max_body_bytes, max_decompressed_bytes, max_docs_per_request, \
max_photo_bytes, response_page_bytes, compact_every_s, token_ttl_days, behind_proxy, log_retention_days.";

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
    /// Move a SQLite deployment to PostgreSQL: every table of the data
    /// folder FROM (a consistent copy; the server may still run) into the
    /// empty database TO, and its photos into the photo store the settings
    /// name (photo_store, s3_*). Checked by counts and hashes; nothing is
    /// written to the target if a check fails.
    MigrateToPostgres {
        /// The SQLite deployment's data folder.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (`postgres://...` or `host=... dbname=...`).
        #[arg(long)]
        to: String,
    },
    /// Print the audit log (review decisions and administrative actions), newest first.
    Journal {
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Seed the demo territory (3 offices, 20 complexes, 2 inspectors, 1 manager, 1 office reader)
    /// with five years of history: approved BSIs, inspections in progress, budgets.
    Demo {
        /// Serve right after seeding.
        #[arg(long)]
        serve: bool,
        /// The territory and its accounts only, no inspection (for tests).
        #[arg(long)]
        vide: bool,
    },
}

/// The settings: defaults, file, environment, then the command line.
fn settings(cli: &Cli) -> anyhow::Result<Config> {
    let mut layers = Layers::defaults();
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("lecture de {}", path.display()))?;
        layers = layers
            .file(&text)
            .with_context(|| format!("fichier de configuration {}", path.display()))?;
    }
    layers = layers.env(|k| std::env::var(k).ok())?;
    if let Some(v) = &cli.data_dir {
        layers = layers.set("data_dir", &v.to_string_lossy(), "ligne de commande")?;
    }
    if let Some(v) = &cli.listen {
        layers = layers.set("listen", v, "ligne de commande")?;
    }
    Ok(layers.pairs(&cli.set)?.build()?)
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

/// mimalloc: merging a cold push is allocation-heavy (automerge rebuilds
/// every change of a saved document to hash it); the merge went from 115 to
/// 100 ms per batch of 64 inspections with it (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        let m = bilan_server::backup::restore(src, &config).await?;
        let into = if config.database_url.0.trim().is_empty() {
            config.data_dir.display().to_string()
        } else {
            "la base PostgreSQL".to_string()
        };
        println!(
            "Sauvegarde restaurée dans {into} : {} photo(s), base au schéma {}.",
            m.photos, m.db_schema
        );
        return Ok(());
    }
    if let Command::MigrateToPostgres { from, to } = &cli.command {
        migrate_to_postgres(&settings(&cli)?, from, to).await?;
        return Ok(());
    }
    let state = AppState::open(settings(&cli)?).context("ouverture du stockage")?;
    let service = state.service().clone();
    match cli.command {
        Command::Serve => serve(state).await?,
        Command::Init => println!("Base prête : {}", state.0.config.db_path().display()),
        Command::CreateTerritory { name } => {
            let id = service.console_create_territory(&name)?;
            println!("Territoire « {name} » créé : {id}");
        }
        Command::ImportCsv {
            territory,
            kind,
            file,
        } => {
            let t = service.territory_named(&territory)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("lecture de {}", file.display()))?;
            let source = file.display().to_string();
            let n = match kind.as_str() {
                "organismes" => service.import_offices(Actor::Console, t, &source, &text)?,
                _ => service.import_complexes(Actor::Console, t, &source, &text)?,
            };
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
                .map(|t| service.territory_named(t))
                .transpose()?;
            let user = NewUser {
                username,
                display_name: name,
                role,
                territory_id,
                office_id: None,
                password,
            };
            let id = service.add_user(Actor::Console, territory_id, user, office.as_deref())?;
            println!("Utilisateur créé : {id}");
        }
        Command::ResetPassword { username, password } => {
            service.set_password(&username, &password)?;
            println!("Mot de passe changé.");
        }
        Command::Backup { dest } => {
            let m = bilan_server::backup::backup(&state.0.config, &state.0.photos, &dest).await?;
            let entry = AuditEntry::console(None, AuditAction::Backup, dest.display().to_string());
            service.audit(&entry.with_detail(format!("{} photo(s)", m.photos)))?;
            println!(
                "Sauvegarde écrite dans {} : base de {} octets, {} photo(s) ({} octets).",
                dest.display(),
                m.db_bytes,
                m.photos,
                m.photo_bytes
            );
        }
        Command::Restore { .. } | Command::MigrateToPostgres { .. } => {
            unreachable!("handled before the store opens")
        }
        Command::Compact => {
            let r = service.compact()?;
            let entry = AuditEntry::console(None, AuditAction::Compact, "journal");
            service.audit(&entry.with_detail(format!("{} inspection(s)", r.documents)))?;
            println!(
                "Compactage terminé : {} inspection(s) réécrite(s), {} entrée(s) du journal allégée(s).",
                r.documents, r.rows_cleared
            );
        }
        Command::RevokeTokens { username } => {
            let n = service.revoke_sessions(Actor::Console, &username)?;
            println!("{n} jeton(s) révoqué(s).");
        }
        Command::Journal { limit } => {
            // Every territory's entries: Quebec time, with its offset.
            let tz = bilan_shared::calendar::default_zone();
            for e in service.audit_log(None, limit)? {
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
        Command::Demo {
            serve: then_serve,
            vide,
        } => {
            let demo = admin::seed_demo(&service)?;
            if demo.created && !vide {
                let h = bilan_server::demo_history::seed_history(
                    &service,
                    bilan_shared::doc::now_ms(),
                )?;
                bilan_server::demo_history::store_photos(&state, &h).await?;
                println!(
                    "Historique : {} BSI approuvés, {} en cours, {} retourné, {} en conflit, {} enveloppes budgétaires, {} visites planifiées, {} photos.",
                    h.approved,
                    h.in_progress,
                    h.returned,
                    h.conflicts,
                    h.budgets,
                    h.planned,
                    h.photos.len()
                );
            }
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

/// `migrate-to-postgres`: the move, then an audit entry in the new database.
async fn migrate_to_postgres(
    config: &Config,
    from: &std::path::Path,
    to: &str,
) -> anyhow::Result<()> {
    let source = Config {
        data_dir: from.to_path_buf(),
        ..Config::default()
    };
    anyhow::ensure!(
        source.db_path().is_file(),
        "aucune base SQLite dans {} : donnez le dossier de données du serveur à déplacer",
        from.display()
    );
    let report = bilan_server::transfer::migrate_to_postgres(
        &source.db_path(),
        &source.photo_backend(),
        to,
        &config.photo_backend(),
        from,
    )
    .await?;
    let rows: u64 = report.tables.iter().map(|t| t.1).sum();
    for (table, n, digest) in &report.tables {
        println!("{table:<20} {n:>9} ligne(s)  {}", &digest[..16]);
    }
    let target = AppState::open(Config {
        database_url: bilan_server::config::Secret(to.to_string()),
        ..config.clone()
    })
    .context("ouverture de la base PostgreSQL")?;
    let entry = AuditEntry::console(None, AuditAction::Migrate, from.display().to_string());
    target
        .service()
        .audit(&entry.with_detail(format!("{rows} ligne(s), {} photo(s)", report.photos)))?;
    println!(
        "Déploiement déplacé vers PostgreSQL : {rows} ligne(s) dans {} tables, {} photo(s) ({} octets), vérifiés.",
        report.tables.len(),
        report.photos,
        report.photo_bytes
    );
    Ok(())
}
