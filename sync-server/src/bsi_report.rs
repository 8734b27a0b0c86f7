//! The BSI report of one inspection (rapport BSI), for the office's board,
//! as a list of blocks that both the printable page and the PDF render:
//! the complex's facts, condition and IVP with the thresholds used, ratings
//! by component group, findings with their photos, recommended work with
//! urgency, year and cost, the comparison with the previous BSI, the CS's
//! approval. Pure: what to say, not how it looks.

use bilan_shared::calendar::{self, TimeZone, iso_date as date};
use bilan_shared::domain::{Complex, CsSettings, Rating};
use bilan_shared::fmt::{money, percent};
use bilan_shared::ids::PhotoHash;
use bilan_shared::{Catalogue, InspectionDoc};

use crate::reports::{due_year, ivp};

/// One piece of the report, in reading order.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Title(String),
    /// A section: a new page when printed.
    Section(String),
    Subheading(String),
    Text(String),
    /// Secondary text (thresholds, absences).
    Note(String),
    /// The building's condition (A to E) and what it means.
    Condition {
        code: String,
        text: String,
    },
    Table(Table),
    /// A finding's photos, by hash, with their captions.
    Photos(Vec<ReportPhoto>),
}

/// A photo of the report: the one to show (its latest annotated version,
/// if it has one) and, for an annotated one, the photo as taken.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportPhoto {
    pub shown: PhotoHash,
    /// The photo as taken, when `shown` is an annotated version of it.
    pub original: Option<PhotoHash>,
    pub caption: String,
}

impl ReportPhoto {
    pub fn of(p: &bilan_shared::doc::PhotoRef) -> Self {
        Self {
            shown: p.shown().clone(),
            original: (p.shown() != &p.hash).then(|| p.hash.clone()),
            caption: p.caption.clone(),
        }
    }
}

/// A table of the report: an id for the page, headers, rows, and which
/// columns hold numbers (right-aligned).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub id: &'static str,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub numeric: Vec<bool>,
}

/// What the report is made from.
pub struct Source<'a> {
    pub doc: &'a InspectionDoc,
    pub complex: Option<&'a Complex>,
    pub office: &'a str,
    pub settings: &'a CsSettings,
    pub tz: &'a TimeZone,
}

/// The report's name: "Rapport BSI — <complex>".
pub fn title(complex: Option<&Complex>) -> String {
    format!(
        "Rapport BSI — {}",
        complex.map_or("ensemble inconnu", |c| c.name.as_str())
    )
}

/// The report, block by block.
pub fn blocks(s: &Source<'_>) -> Vec<Block> {
    let (doc, tz) = (s.doc, s.tz);
    let mut out = vec![Block::Title(title(s.complex))];
    if let Some(c) = s.complex {
        out.push(Block::Text(format!(
            "{}, {} — {}",
            c.address, c.city, s.office
        )));
        out.push(Block::Text(format!(
            "{} logements — construit en {} — valeur de remplacement {}",
            c.dwellings,
            c.year_built,
            money(c.replacement_value)
        )));
    }
    out.push(Block::Text(format!(
        "Bilan de santé de l'immeuble du {} — inspecteur : {}",
        date(doc.created_at, tz),
        inspector_name(doc)
    )));
    out.push(Block::Text(match &doc.review.approval {
        Some(a) => format!("Approuvé par {} (CS) le {}.", a.by_name, date(a.at, tz)),
        None => format!(
            "Non approuvé : {}. L'état ci-dessous est provisoire.",
            doc.status.label_fr()
        ),
    }));

    let (total, five) = doc.costs();
    let value = s.complex.map_or(0.0, |c| c.replacement_value);
    let ivp = ivp(five, value);
    let condition = s.settings.thresholds.condition_for(ivp);
    let b = s.settings.thresholds.upper_bounds;
    out.push(Block::Section("État de l'immeuble".into()));
    let label = condition.label_fr();
    out.push(Block::Condition {
        code: condition.code().into(),
        text: label.split_once(" – ").map_or(label, |(_, l)| l).into(),
    });
    out.push(Block::Text(format!(
        "Indice de vétusté physique (IVP) : {} = travaux requis d'ici 5 ans ({}) ÷ valeur de remplacement ({}). Travaux recommandés en tout : {}.",
        percent(ivp),
        money(five),
        money(value),
        money(total)
    )));
    out.push(Block::Note(format!(
        "Seuils du CS : A jusqu'à {}, B jusqu'à {}, C jusqu'à {}, D jusqu'à {}, E au-delà.",
        percent(b[0]),
        percent(b[1]),
        percent(b[2]),
        percent(b[3])
    )));

    out.push(Block::Section("Cotes par groupe de composants".into()));
    out.extend(ratings(doc));

    out.push(Block::Section("Constats".into()));
    if doc.findings.is_empty() {
        out.push(Block::Note("Aucun constat.".into()));
    }
    for f in &doc.findings {
        out.push(Block::Subheading(format!(
            "{} — {} ({})",
            f.component,
            f.title,
            f.severity.label_fr()
        )));
        out.push(Block::Note(f.location.clone()));
        if !f.description.is_empty() {
            out.push(Block::Text(f.description.clone()));
        }
        if !f.photos.is_empty() {
            out.push(Block::Photos(
                f.photos.iter().map(ReportPhoto::of).collect(),
            ));
        }
    }

    out.push(Block::Section("Travaux recommandés".into()));
    out.push(Block::Table(works(doc, tz, total)));

    out.push(Block::Section("Comparaison avec le BSI précédent".into()));
    out.extend(comparison(doc, tz));
    out
}

/// The name of who started the inspection, from the document's actors.
fn inspector_name(doc: &InspectionDoc) -> String {
    doc.actors
        .values()
        .find(|a| a.user_id == doc.created_by)
        .map_or_else(|| doc.created_by.to_string(), |a| a.user_name.clone())
}

const SCALE: [Rating; 7] = [
    Rating::A,
    Rating::B,
    Rating::C,
    Rating::D,
    Rating::E,
    Rating::NotApplicable,
    Rating::NotInspected,
];

/// Per group: how many components got each rating; then the ones rated D
/// or E with their note.
fn ratings(doc: &InspectionDoc) -> Vec<Block> {
    let cat = Catalogue::current();
    let mut header = vec!["Groupe".to_string()];
    header.extend(SCALE.iter().map(|r| {
        r.code()
            .replace("sans_objet", "S/O")
            .replace("non_inspecte", "N/I")
    }));
    header.push("Non cotés".into());
    let rows = cat
        .groups
        .iter()
        .map(|g| {
            let of = |want: Option<Rating>| {
                g.components
                    .iter()
                    .filter(|c| doc.components.get(&c.code).and_then(|r| r.rating) == want)
                    .count()
                    .to_string()
            };
            let mut row = vec![format!("{} {}", g.code, g.label)];
            row.extend(SCALE.iter().map(|r| of(Some(*r))));
            row.push(of(None));
            row
        })
        .collect();
    let mut out = vec![Block::Table(Table {
        id: "cotes",
        numeric: (0..header.len()).map(|i| i > 0).collect(),
        header,
        rows,
    })];
    let poor: Vec<Vec<String>> = cat
        .components()
        .filter_map(|(_, c)| {
            let r = doc.components.get(&c.code)?;
            matches!(r.rating, Some(Rating::D | Rating::E)).then(|| {
                vec![
                    format!("{} {}", c.code, c.label),
                    r.rating.map_or("", |x| x.label_fr()).to_string(),
                    r.note.clone(),
                ]
            })
        })
        .collect();
    if !poor.is_empty() {
        out.push(Block::Subheading(
            "Composants en mauvais ou très mauvais état".into(),
        ));
        out.push(Block::Table(Table {
            id: "mauvais-etat",
            header: vec!["Composant".into(), "Cote".into(), "Note".into()],
            rows: poor,
            numeric: vec![false; 3],
        }));
    }
    out
}

/// The recommended work: this inspection's and the previous BSI's still
/// open, each in the year it is due (or the year the CS moved it to).
fn works(doc: &InspectionDoc, tz: &TimeZone, total: f64) -> Table {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for f in &doc.findings {
        for r in &f.recommendations {
            let year = r
                .planned_year
                .unwrap_or_else(|| due_year(doc.created_at, Some(r.urgency), tz));
            rows.push(vec![
                r.work.clone(),
                f.component.clone(),
                r.urgency.label_fr().into(),
                year.to_string(),
                money(r.estimated_cost()),
            ]);
        }
    }
    let this_year = calendar::year(doc.created_at, tz);
    for w in doc.previous.iter().flat_map(|p| p.open_works()) {
        let year = w
            .planned_year
            .unwrap_or_else(|| due_year(w.recommended_at, Some(w.urgency), tz).max(this_year));
        rows.push(vec![
            format!(
                "{} (dernier BSI, {})",
                w.work,
                w.status.map_or("statut à préciser", |s| s.label_fr())
            ),
            w.component.clone(),
            w.urgency.label_fr().into(),
            year.to_string(),
            money(w.cost),
        ]);
    }
    rows.push(vec![
        "Total".into(),
        String::new(),
        String::new(),
        String::new(),
        money(total),
    ]);
    Table {
        id: "recommandations",
        header: ["Travaux", "Composant", "Urgence", "Année", "Coût estimé"]
            .map(String::from)
            .to_vec(),
        rows,
        numeric: vec![false, false, false, true, true],
    }
}

/// What changed since the previous BSI: each component whose rating
/// differs, and what became of the work it recommended.
fn comparison(doc: &InspectionDoc, tz: &TimeZone) -> Vec<Block> {
    let Some(p) = &doc.previous else {
        return vec![Block::Note(
            "Premier BSI de cet ensemble dans Bilan.".into(),
        )];
    };
    let label = |r: Option<Rating>| r.map_or("non coté", |r| r.label_fr()).to_string();
    let changed: Vec<Vec<String>> = Catalogue::current()
        .components()
        .filter_map(|(_, c)| {
            let before = p.components.get(&c.code).and_then(|x| x.rating);
            let now = doc.components.get(&c.code).and_then(|x| x.rating);
            (before.is_some() && before != now)
                .then(|| vec![format!("{} {}", c.code, c.label), label(before), label(now)])
        })
        .collect();
    let mut out = vec![
        Block::Text(format!("BSI précédent du {}.", date(p.date, tz))),
        Block::Table(Table {
            id: "comparaison",
            header: ["Composant", "Cote au BSI précédent", "Cote à ce BSI"]
                .map(String::from)
                .to_vec(),
            rows: changed,
            numeric: vec![false; 3],
        }),
    ];
    if !p.works.is_empty() {
        out.push(Block::Subheading(
            "Travaux recommandés au BSI précédent".into(),
        ));
        out.push(Block::Table(Table {
            id: "travaux-precedents",
            header: ["Travaux", "Statut", "Année réalisée", "Coût réel"]
                .map(String::from)
                .to_vec(),
            rows: p
                .works
                .iter()
                .map(|w| {
                    vec![
                        w.work.clone(),
                        w.status
                            .map_or("statut à préciser", |s| s.label_fr())
                            .to_string(),
                        w.done_year.map(|y| y.to_string()).unwrap_or_default(),
                        w.done_cost.map(money).unwrap_or_default(),
                    ]
                })
                .collect(),
            numeric: vec![false, false, true, true],
        }));
    }
    out
}
