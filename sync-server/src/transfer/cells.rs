//! What both sides of the move to PostgreSQL share: the tables moved and
//! their order, a row as plain cells, the order-free digest the two sides
//! are compared by, the report and the errors. No I/O.

use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// One value of a row, as both engines can hold it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The tables moved, parents before children. Both backends' schemas hold
/// exactly these (checked: a table missing on either side stops the move).
pub const TABLES: &[&str] = &[
    "territories",
    "offices",
    "complexes",
    "users",
    "assignments",
    "tokens",
    "login_failures",
    "address_failures",
    "meta",
    "documents",
    "log",
    "photos",
    "photo_access",
    "inspection_summary",
    "component_ratings",
    "findings",
    "recommendations",
    "site_visits",
    "carried_works",
    "photo_refs",
    "audit",
];

/// Keys of SQLite's `meta` that PostgreSQL keeps elsewhere: the reference
/// revision counter is the `ref_rev` sequence there.
pub const SQLITE_ONLY_META: &[&str] = &["ref_rev"];

/// What was moved: each table's rows and digest, and the photos.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransferReport {
    pub tables: Vec<(String, u64, String)>,
    pub photos: u64,
    pub photo_bytes: u64,
}

/// Why a move stopped; nothing was written to the target.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(
        "la base PostgreSQL cible contient déjà des données ({0}) : donnez une base vide, rien n'a été écrit"
    )]
    TargetNotEmpty(String),
    #[error(
        "la base SQLite source est au schéma {found}, celui de cette version est {expected} : démarrez une fois le serveur de cette version sur le dossier source, puis relancez"
    )]
    SourceSchema { found: i64, expected: i64 },
    #[error("vérification échouée, rien n'a été écrit dans la cible : {0}")]
    Mismatch(String),
    #[error("base de données : {0}")]
    Store(#[from] StoreError),
    #[error("fichier : {0}")]
    Io(#[from] std::io::Error),
}

/// A table's rows in an order-free digest: each row encoded with its
/// cells' types, the encodings sorted, then hashed. Equal digests mean the
/// same rows, whatever order each engine returned them in.
pub fn digest(rows: &[Vec<Cell>]) -> String {
    let mut encoded: Vec<Vec<u8>> = rows.iter().map(|r| encode_row(r)).collect();
    encoded.sort_unstable();
    let mut h = Sha256::new();
    for e in &encoded {
        h.update((e.len() as u64).to_le_bytes());
        h.update(e);
    }
    hex::encode(h.finalize())
}

fn encode_row(row: &[Cell]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in row {
        match c {
            Cell::Null => out.push(0),
            Cell::Int(v) => {
                out.push(1);
                out.extend(v.to_le_bytes());
            }
            Cell::Real(v) => {
                out.push(2);
                out.extend(v.to_bits().to_le_bytes());
            }
            Cell::Text(s) => {
                out.push(3);
                out.extend((s.len() as u64).to_le_bytes());
                out.extend(s.as_bytes());
            }
            Cell::Blob(b) => {
                out.push(4);
                out.extend((b.len() as u64).to_le_bytes());
                out.extend(b);
            }
        }
    }
    out
}
