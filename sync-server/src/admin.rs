//! Administrative operations shared by the server binary and tests: CSV
//! import of offices and complexes (French headers, every line checked before
//! anything is written), and the demo territory.

use bilan_shared::domain::{Complex, Role};
use bilan_shared::ids::{ComplexId, OfficeId, TerritoryId};

use crate::StoreError;
use crate::store::{NewUser, Storage};

/// Headers of the offices CSV.
pub const OFFICE_HEADERS: [&str; 2] = ["code", "nom"];
/// Headers of the complexes CSV.
pub const COMPLEX_HEADERS: [&str; 8] = [
    "code",
    "nom",
    "organisme",
    "adresse",
    "ville",
    "logements",
    "annee_construction",
    "valeur_remplacement",
];

/// One rejected CSV line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub message: String,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("en-têtes attendus : {expected} (reçus : {found})")]
    Headers { expected: String, found: String },
    #[error("{} ligne(s) en erreur, rien n'a été importé :\n{}", .0.len(), .0.iter().map(|e| format!("  ligne {} : {}", e.line, e.message)).collect::<Vec<_>>().join("\n"))]
    Lines(Vec<LineError>),
    #[error("CSV illisible : {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check_headers(rdr: &mut csv::Reader<&[u8]>, expected: &[&str]) -> Result<(), ImportError> {
    let found: Vec<String> = rdr
        .headers()?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    if found != expected {
        return Err(ImportError::Headers {
            expected: expected.join(","),
            found: found.join(","),
        });
    }
    Ok(())
}

/// Imports offices (`code,nom`); existing codes are renamed. Returns how many lines.
pub fn import_offices(
    store: &dyn Storage,
    territory: TerritoryId,
    csv_text: &str,
) -> Result<usize, ImportError> {
    let rows = parse_offices(csv_text)?;
    for (code, name) in &rows {
        store.create_office(territory, code, name)?;
    }
    Ok(rows.len())
}

/// Checks an offices CSV without writing anything (the import preview).
pub fn parse_offices(csv_text: &str) -> Result<Vec<(String, String)>, ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    check_headers(&mut rdr, &OFFICE_HEADERS)?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        match rec {
            Ok(r) if r.get(0).unwrap_or("").is_empty() || r.get(1).unwrap_or("").is_empty() => {
                errors.push(LineError {
                    line,
                    message: "code et nom sont obligatoires".into(),
                })
            }
            Ok(r) => rows.push((r[0].to_string(), r[1].to_string())),
            Err(e) => errors.push(LineError {
                line,
                message: e.to_string(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Lines(errors));
    }
    Ok(rows)
}

/// Imports complexes; `organisme` is an office code of the territory.
pub fn import_complexes(
    store: &dyn Storage,
    territory: TerritoryId,
    csv_text: &str,
) -> Result<usize, ImportError> {
    let rows = parse_complexes(store, territory, csv_text)?;
    for c in &rows {
        store.upsert_complex(c)?;
    }
    Ok(rows.len())
}

/// Checks a complexes CSV against the territory's offices without writing
/// anything (the import preview).
pub fn parse_complexes(
    store: &dyn Storage,
    territory: TerritoryId,
    csv_text: &str,
) -> Result<Vec<Complex>, ImportError> {
    let offices = store.offices(territory)?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    check_headers(&mut rdr, &COMPLEX_HEADERS)?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let r = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(LineError {
                    line,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let mut problems = Vec::new();
        let field = |n: usize| r.get(n).unwrap_or("").to_string();
        for (n, h) in COMPLEX_HEADERS.iter().enumerate().take(5) {
            if field(n).is_empty() {
                problems.push(format!("« {h} » est obligatoire"));
            }
        }
        let office = offices.iter().find(|o| o.code == field(2));
        if office.is_none() && !field(2).is_empty() {
            problems.push(format!(
                "organisme « {} » inconnu dans ce territoire",
                field(2)
            ));
        }
        let dwellings = field(5)
            .parse::<u32>()
            .map_err(|_| problems.push("« logements » doit être un entier".into()))
            .ok();
        let year = field(6)
            .parse::<u32>()
            .ok()
            .filter(|y| (1800..=2100).contains(y))
            .or_else(|| {
                problems.push("« annee_construction » doit être une année (ex. 1975)".into());
                None
            });
        let value = field(7)
            .replace([' ', '\u{a0}', '$'], "")
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0)
            .or_else(|| {
                problems.push("« valeur_remplacement » doit être un montant positif".into());
                None
            });
        if !problems.is_empty() {
            errors.push(LineError {
                line,
                message: problems.join("; "),
            });
            continue;
        }
        if let (Some(o), Some(d), Some(y), Some(v)) = (office, dwellings, year, value) {
            rows.push(Complex {
                id: ComplexId::new(),
                territory_id: territory,
                office_id: o.id,
                code: field(0),
                name: field(1),
                address: field(3),
                city: field(4),
                dwellings: d,
                year_built: y,
                replacement_value: v,
            });
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Lines(errors));
    }
    Ok(rows)
}

/// Password of every demo account (printed by the `demo` command).
pub const DEMO_PASSWORD: &str = "bilan-demo";
/// Name of the demo territory.
pub const DEMO_TERRITORY: &str = "CS de la Mauricie (démo)";

/// What the demo seed made.
#[derive(Debug, Clone)]
pub struct Demo {
    pub territory: TerritoryId,
    pub offices: Vec<OfficeId>,
}

/// Seeds one territory, 3 offices, 20 complexes, 2 inspectors, 1 manager and
/// one office reader. Does nothing (and returns the existing one) if present.
pub fn seed_demo(store: &dyn Storage) -> Result<Demo, StoreError> {
    if let Some(t) = store.territory_by_name(DEMO_TERRITORY)? {
        let offices = store.offices(t.id)?.into_iter().map(|o| o.id).collect();
        return Ok(Demo {
            territory: t.id,
            offices,
        });
    }
    let territory = store.create_territory(DEMO_TERRITORY)?;
    let offices = [
        (
            "OH-TR",
            "Office d'habitation de Trois-Rivières",
            "Trois-Rivières",
        ),
        (
            "OMH-SH",
            "Office municipal d'habitation de Shawinigan",
            "Shawinigan",
        ),
        (
            "OMH-LT",
            "Office municipal d'habitation de La Tuque",
            "La Tuque",
        ),
    ];
    let streets = [
        "rue des Forges",
        "boulevard des Récollets",
        "rue Saint-Maurice",
        "avenue de la Paix",
        "rue Laviolette",
        "chemin du Lac",
        "rue Notre-Dame",
    ];
    let mut ids = Vec::new();
    let mut n = 0u32;
    for (oi, (code, name, city)) in offices.iter().enumerate() {
        let office = store.create_office(territory, code, name)?;
        ids.push(office);
        let count = [8, 7, 5][oi];
        for k in 0..count {
            n += 1;
            let dwellings = 12 + (n * 7) % 60;
            store.upsert_complex(&Complex {
                id: ComplexId::new(),
                territory_id: territory,
                office_id: office,
                code: format!("{code}-{:03}", k + 1),
                name: format!(
                    "Habitations {} {}",
                    [
                        "Les Érables",
                        "Le Boisé",
                        "La Rivière",
                        "Les Pins",
                        "Le Carrefour"
                    ][(n % 5) as usize],
                    k + 1
                ),
                address: format!("{} {}", 100 + n * 37, streets[(n as usize) % streets.len()]),
                city: city.to_string(),
                dwellings,
                year_built: 1962 + (n * 3) % 40,
                replacement_value: f64::from(dwellings) * 185_000.0,
            })?;
        }
    }
    let users = [
        ("inspecteur1", "Julie Tremblay", Role::Inspector, None),
        ("inspecteur2", "Marc Gagnon", Role::Inspector, None),
        ("responsable", "Sophie Bergeron", Role::Manager, None),
        (
            "lecteur-tr",
            "Conseil de l'OH de Trois-Rivières",
            Role::OfficeReader,
            Some(ids[0]),
        ),
    ];
    for (username, display, role, office) in users {
        store.create_user(&NewUser {
            username: username.into(),
            display_name: display.into(),
            role,
            territory_id: Some(territory),
            office_id: office,
            password: DEMO_PASSWORD.into(),
        })?;
    }
    Ok(Demo {
        territory,
        offices: ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[test]
    fn demo_seeds_twenty_complexes_in_three_offices_once() {
        let store = SqliteStore::in_memory().unwrap();
        let demo = seed_demo(&store).unwrap();
        let again = seed_demo(&store).unwrap();
        assert_eq!(demo.territory, again.territory);
        let (_, user) = store.login("inspecteur1", DEMO_PASSWORD, None).unwrap();
        let r = store.reference(&user, 0).unwrap();
        assert_eq!(r.offices.len(), 3);
        assert_eq!(r.complexes.len(), 20);
        assert!(
            store
                .reference(&user, r.revision)
                .unwrap()
                .complexes
                .is_empty()
        );
    }

    #[test]
    fn csv_import_reports_every_bad_line_and_writes_nothing() {
        let store = SqliteStore::in_memory().unwrap();
        let t = store.create_territory("T").unwrap();
        assert_eq!(
            import_offices(&store, t, "code,nom\nOH1,Office un\n").unwrap(),
            1
        );
        let bad = "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
                   C1,Un,OH1,1 rue A,Ville,12,1975,2000000\n\
                   C2,Deux,OHX,2 rue B,Ville,douze,1975,2000000\n\
                   C3,Trois,OH1,3 rue C,Ville,12,75,-5\n";
        match import_complexes(&store, t, bad) {
            Err(ImportError::Lines(errs)) => {
                assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4]);
                assert!(errs[0].message.contains("OHX") && errs[0].message.contains("logements"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store
                .with_conn(|c| Ok(
                    c.query_row("SELECT COUNT(*) FROM complexes", [], |r| r.get::<_, i64>(0))?
                ))
                .unwrap(),
            0
        );
        let good = "code,nom,organisme,adresse,ville,logements,annee_construction,valeur_remplacement\n\
                    C1,Un,OH1,1 rue A,Ville,12,1975,\"2 000 000,50\"\n";
        assert_eq!(import_complexes(&store, t, good).unwrap(), 1);
        assert!(matches!(
            import_offices(&store, t, "id,name\n"),
            Err(ImportError::Headers { .. })
        ));
    }
}
