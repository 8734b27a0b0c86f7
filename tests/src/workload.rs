//! The sync benchmark's workload: inspections of 60 components, each with a
//! rating, an 80-character observation, one finding with a costed
//! recommendation and one photo reference (the photo's bytes are not part of
//! the document). Each component is one edit (one automerge change), as when
//! an inspector fills a component's screen; deterministic for a given seed.
//! And a light inspection (five ratings, one costed finding), for tests and
//! benchmarks that need many inspections rather than big ones.

use bilan_shared::catalogue::Catalogue;
use bilan_shared::doc::{
    Author, Finding, Inspection, NewInspection, PhotoRef, Recommendation, now_ms,
};
use bilan_shared::domain::{Complex, Rating, Severity, Urgency};
use bilan_shared::ids::{FindingId, InspectionId, PhotoHash, RecommendationId, UserId};

/// Components filled in each inspection.
pub const COMPONENTS: usize = 60;

const WORDS: [&str; 24] = [
    "fissure",
    "infiltration",
    "joint",
    "détérioré",
    "rouille",
    "mousse",
    "côté",
    "nord",
    "sud",
    "mur",
    "membrane",
    "soulevée",
    "parement",
    "brique",
    "éclatée",
    "calfeutrage",
    "absent",
    "corrosion",
    "légère",
    "importante",
    "sous",
    "fenêtre",
    "toiture",
    "bassin",
];

/// A small deterministic generator (SplitMix64), so runs are comparable.
pub struct Seq(u64);

impl Seq {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// An inspector's observation of exactly 80 characters, made of field words.
pub fn observation(seq: &mut Seq) -> String {
    let mut s = String::new();
    while s.chars().count() < 80 {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(seq.pick(&WORDS));
    }
    s.chars().take(80).collect()
}

/// One inspection of `complex` made by `author`, one change per component.
pub fn inspection(
    author: &Author,
    user: UserId,
    complex: &Complex,
    seed: u64,
) -> Result<(InspectionId, Inspection), bilan_shared::SharedError> {
    let mut seq = Seq::new(seed);
    let id = InspectionId::new();
    let catalogue = Catalogue::current();
    let (mut insp, _) = Inspection::create(
        author,
        NewInspection {
            inspection_id: id,
            territory_id: complex.territory_id,
            office_id: complex.office_id,
            complex_id: complex.id,
        },
        catalogue,
    )?;
    let codes: Vec<String> = catalogue
        .components()
        .take(COMPONENTS)
        .map(|(_, c)| c.code.clone())
        .collect();
    for code in codes {
        let note = observation(&mut seq);
        let rating = seq.pick(&[Rating::A, Rating::B, Rating::C, Rating::D, Rating::E]);
        let urgency = seq.pick(&[
            Urgency::WithinYear,
            Urgency::OneToTwo,
            Urgency::ThreeToFive,
            Urgency::OverFive,
        ]);
        let severity = seq.pick(&[Severity::Minor, Severity::Moderate, Severity::Major]);
        let photo = PhotoHash::of(&seq.next_u64().to_le_bytes());
        let quantity = (seq.next_u64() % 200 + 1) as f64;
        let unit_cost = (seq.next_u64() % 500 + 20) as f64;
        insp.edit(author, |d| {
            let c = d.components.entry(code.clone()).or_default();
            c.present = Some(true);
            c.rating = Some(rating);
            c.note = note;
            d.findings.push(Finding {
                id: FindingId::new(),
                component: code.clone(),
                title: format!("Désordre {code}"),
                location: "Façade nord".into(),
                severity,
                description: String::new(),
                photos: vec![PhotoRef {
                    hash: photo,
                    size: 2_000_000,
                    mime: "image/jpeg".into(),
                    caption: String::new(),
                    taken_at: now_ms(),
                    annotations: vec![],
                }],
                recommendations: vec![Recommendation {
                    id: RecommendationId::new(),
                    work: format!("Réparer {code}"),
                    urgency,
                    quantity,
                    unit: "m²".into(),
                    unit_cost,
                    planned_year: None,
                }],
                created_by: user,
                created_at: now_ms(),
            });
            Ok(())
        })?;
    }
    Ok((id, insp))
}

/// The `i`-th light inspection of `complex`: five ratings, one roof finding
/// with one recommendation whose urgency and cost vary with `i`; one change.
pub fn light_inspection(
    author: &Author,
    user: UserId,
    complex: &Complex,
    i: usize,
) -> Result<(InspectionId, Inspection), bilan_shared::SharedError> {
    let id = InspectionId::new();
    let new = NewInspection {
        inspection_id: id,
        territory_id: complex.territory_id,
        office_id: complex.office_id,
        complex_id: complex.id,
    };
    let (mut insp, _) = Inspection::create(author, new, Catalogue::current())?;
    insp.edit(author, |d| {
        for (k, code) in ["A1010", "B2020", "B3010", "D2021", "G2010"]
            .iter()
            .enumerate()
        {
            d.rate(code, [Rating::B, Rating::C, Rating::D][(i + k) % 3])?;
        }
        d.findings.push(Finding {
            id: FindingId::new(),
            component: "B3010".into(),
            title: "Membrane usée".into(),
            location: "Toit".into(),
            severity: Severity::Moderate,
            description: String::new(),
            photos: vec![],
            recommendations: vec![Recommendation {
                id: RecommendationId::new(),
                work: "Réfection".into(),
                urgency: Urgency::ALL[i % 5],
                quantity: 100.0,
                unit: "m²".into(),
                unit_cost: 50.0 + (i % 200) as f64,
                planned_year: None,
            }],
            created_by: user,
            created_at: now_ms(),
        });
        Ok(())
    })?;
    Ok((id, insp))
}
