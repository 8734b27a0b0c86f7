//! The device command line: one command per call, each opening the store,
//! doing one thing and exiting. Shared by `bilan-device` and the end-to-end
//! tests, which run it as a real process.

use std::io::Write;
use std::path::PathBuf;

use crate::{DeviceStore, NewFinding, NewRecommendation, SyncEngine};
use bilan_shared::domain::{Rating, Severity, Urgency};
use bilan_shared::ids::{ComplexId, FindingId, InspectionId};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bilan-device",
    version,
    about = "Appareil d'inspection Bilan en ligne de commande"
)]
pub struct Cli {
    /// Folder of the device store.
    #[arg(long, env = "BILAN_DEVICE_DIR", default_value = "bilan-device")]
    pub data: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Log in (once; the device then works offline) and fetch reference data.
    Login {
        #[arg(long)]
        server: String,
        #[arg(long)]
        user: String,
        #[arg(long, env = "BILAN_PASSWORD")]
        password: String,
    },
    /// List the complexes of the territory.
    Complexes,
    /// Start an inspection; prints its id.
    Start { complex: ComplexId },
    /// Rate a component (A-E, sans_objet, non_inspecte).
    Rate {
        inspection: InspectionId,
        component: String,
        rating: String,
    },
    /// Add a finding; prints its id.
    Finding {
        inspection: InspectionId,
        #[arg(long)]
        component: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        location: String,
        /// mineure, moderee, majeure, critique.
        #[arg(long, default_value = "moderee")]
        severity: String,
    },
    /// Add a recommendation to a finding.
    Recommend {
        inspection: InspectionId,
        finding: FindingId,
        #[arg(long)]
        work: String,
        /// immediate, moins_1_an, 1_2_ans, 3_5_ans, plus_5_ans.
        #[arg(long)]
        urgency: String,
        #[arg(long)]
        quantity: f64,
        #[arg(long, default_value = "u")]
        unit: String,
        #[arg(long)]
        unit_cost: f64,
    },
    /// Attach a photo file to a finding.
    Photo {
        inspection: InspectionId,
        finding: FindingId,
        file: PathBuf,
        #[arg(long, default_value = "")]
        caption: String,
    },
    /// Type a component's observation as the app does, one durable save per
    /// keystroke; prints `enregistré N` once the first N characters are saved.
    Note {
        inspection: InspectionId,
        component: String,
        text: String,
    },
    /// Sync now.
    Sync,
    /// Show the sync status.
    Status,
    /// Show an inspection as JSON.
    Show { inspection: InspectionId },
    /// List an inspection's conflicts.
    Conflicts { inspection: InspectionId },
    /// Resolve a conflict: the path (a/b/c) and the chosen value id.
    Resolve {
        inspection: InspectionId,
        path: String,
        value_id: String,
    },
    /// List the inspections on this device.
    Inspections,
}

/// Writes a line to standard output; a closed output (`| head`) surfaces as
/// an `Io` error of kind `BrokenPipe`, which [`main`] ends quietly on.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(crate::MobileError::Io)?
    };
}

/// What both device binaries run: one command; a reader that stopped reading
/// (`bilan-device inspections | head`) ends it quietly instead of a panic.
pub async fn main(cli: Cli) -> crate::Result<()> {
    match run(cli).await {
        Err(crate::MobileError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs one CLI command (the `bilan-device` binary and the e2e tests' device process call this).
pub async fn run(cli: Cli) -> crate::Result<()> {
    let store = DeviceStore::open(&cli.data)?;
    let engine = SyncEngine::new(&store);
    match cli.command {
        Command::Login {
            server,
            user,
            password,
        } => {
            let l = engine.login(&server, &user, &password).await?;
            let r = engine.refresh_reference().await?;
            say!(
                "Connecté : {} — {} ({} ensembles)",
                l.user.display_name,
                r.territory.name,
                r.complexes.len()
            );
        }
        Command::Complexes => {
            for c in store.complexes()? {
                say!(
                    "{}\t{}\t{}\t{}, {}",
                    c.id,
                    c.code,
                    c.name,
                    c.address,
                    c.city
                );
            }
        }
        Command::Start { complex } => say!("{}", store.start_inspection(complex)?),
        Command::Rate {
            inspection,
            component,
            rating,
        } => {
            let r: Rating = rating.parse()?;
            store.rate(inspection, &component, r)?;
            say!("Enregistré : {component} = {}", r.label_fr());
        }
        Command::Finding {
            inspection,
            component,
            title,
            location,
            severity,
        } => {
            let severity: Severity = severity.parse()?;
            let id = store.add_finding(
                inspection,
                NewFinding {
                    component,
                    title,
                    location,
                    severity,
                    description: String::new(),
                },
            )?;
            say!("{id}");
        }
        Command::Recommend {
            inspection,
            finding,
            work,
            urgency,
            quantity,
            unit,
            unit_cost,
        } => {
            let urgency: Urgency = urgency.parse()?;
            say!(
                "{}",
                store.add_recommendation(
                    inspection,
                    finding,
                    NewRecommendation {
                        work,
                        urgency,
                        quantity,
                        unit,
                        unit_cost
                    }
                )?
            );
        }
        Command::Photo {
            inspection,
            finding,
            file,
            caption,
        } => {
            let bytes = std::fs::read(&file)?;
            let mime = match file
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_lowercase)
                .as_deref()
            {
                Some("png") => "image/png",
                Some("webp") => "image/webp",
                _ => "image/jpeg",
            };
            say!(
                "{}",
                store.attach_photo(inspection, finding, &bytes, mime, &caption)?
            );
        }
        Command::Note {
            inspection,
            component,
            text,
        } => {
            use std::io::Write;
            let mut typed = String::new();
            for (n, c) in text.chars().enumerate() {
                typed.push(c);
                store.set_component_note(inspection, &component, &typed)?;
                let mut out = std::io::stdout().lock();
                writeln!(out, "enregistré {}", n + 1)?;
                out.flush()?;
            }
        }
        Command::Sync => {
            let r = engine.sync().await?;
            say!(
                "Synchronisé : {} changement(s) envoyé(s), {} reçu(s), {} photo(s) envoyée(s), {} octets montants, {} descendants, {} aller-retour",
                r.sent_changes,
                r.received_changes,
                r.photos_uploaded,
                r.bytes_up,
                r.bytes_down,
                r.round_trips
            );
        }
        Command::Status => {
            let s = store.status()?;
            say!(
                "Modifications en attente : {}\nPhotos en attente : {} ({} octets)\nDernière synchro : {}\nDernière erreur : {}",
                s.pending_changes,
                s.pending_photos,
                s.pending_photo_bytes,
                s.last_sync_ms.map_or("jamais".into(), |t| t.to_string()),
                s.last_error.unwrap_or_else(|| "aucune".into())
            );
        }
        Command::Show { inspection } => {
            say!(
                "{}",
                serde_json::to_string_pretty(&store.inspection(inspection)?)
                    .map_err(|e| crate::MobileError::Invalid(e.to_string()))?
            );
        }
        Command::Conflicts { inspection } => {
            for c in store.conflicts(inspection)? {
                say!("{}\t{}", c.path_string(), c.label_fr());
                for v in c.values {
                    say!(
                        "  {}\t{}\t{}\t{}",
                        v.value_id,
                        v.value,
                        v.user_name,
                        v.at_ms
                    );
                }
            }
        }
        Command::Resolve {
            inspection,
            path,
            value_id,
        } => {
            let path: Vec<String> = path.split('/').map(str::to_string).collect();
            store.resolve(inspection, &path, &value_id)?;
            say!("Conflit résolu.");
        }
        Command::Inspections => {
            for id in store.inspection_ids()? {
                let d = store.inspection(id)?;
                let (rated, present) = d.progress();
                say!(
                    "{id}\t{}\t{rated}/{present}\t{}",
                    d.status.label_fr(),
                    d.complex_id
                );
            }
        }
    }
    Ok(())
}
