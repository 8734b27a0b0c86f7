//! The demo territory's history, so that every page and the app show real
//! content on the first run: approved BSIs spread over the last five years
//! (and two older, out of the cycle) with ratings, findings, recommended
//! work, site visits and conditions from A to E; inspections in progress
//! that start from the last approved one; one returned with a comment; one
//! with a conflict between the two inspectors; budget envelopes. Written
//! through the service as devices and the manager would (a sync per
//! inspection, review decisions), so nothing here bypasses a rule.

use bilan_shared::calendar;
use bilan_shared::doc::{Finding, PhotoRef, Recommendation, SiteVisit};
use bilan_shared::domain::{InspectionStatus, Rating, Severity, Urgency, WorkStatus};
use bilan_shared::ids::*;
use bilan_shared::protocol::{DocChanges, PROTOCOL_VERSION, SyncRequest, UserInfo};
use bilan_shared::{Author, Catalogue, Inspection, InspectionDoc, NewInspection};

use crate::StoreError;
use crate::admin::DEMO_PASSWORD;
use crate::service::{Service, SyncLimits};

/// What the history seed wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub approved: usize,
    pub in_progress: usize,
    pub returned: usize,
    pub conflicts: usize,
    pub budgets: usize,
    /// Complexes planned for an inspector.
    pub planned: usize,
    /// The photos the findings name, to put in the photo store
    /// ([`store_photos`]), and their territory.
    pub photos: Vec<(PhotoHash, Vec<u8>)>,
    pub territory: Option<TerritoryId>,
}

/// The demo's photo of a roof finding (small: 640 × 480).
fn roof_photo(seed: usize) -> Vec<u8> {
    crate::demo_photos::photo(seed as u64, 640, 480, 80)
}

/// Puts the history's photos in the photo store (with their thumbnails)
/// and records them as the territory's, as an upload would.
pub async fn store_photos(state: &crate::AppState, h: &History) -> Result<(), StoreError> {
    let Some(territory) = h.territory else {
        return Ok(());
    };
    for (hash, bytes) in &h.photos {
        let thumb = bilan_shared::thumbnail::thumbnail_jpeg(bytes, crate::photos::THUMB_SIZE)
            .map_err(|e| StoreError::Backend(format!("vignette de démonstration : {e}")))?;
        state
            .0
            .photos
            .put_checked(hash, bytes.clone().into(), Some(thumb.into()))
            .await?;
        state
            .service()
            .photo_received(hash, bytes.len() as u64, "image/jpeg", territory)?;
    }
    Ok(())
}

/// A year, in milliseconds (for dating the BSIs in the past).
const YEAR_MS: i64 = 31_557_600_000;
const LIMITS: SyncLimits = SyncLimits {
    max_docs: 100,
    page_bytes: 1 << 20,
};

/// The IVP each approved BSI lands near, by complex: every condition band.
const TARGET_IVP: [f64; 8] = [0.01, 0.03, 0.07, 0.09, 0.12, 0.14, 0.22, 0.4];

/// A person in the field, with the device they sync from.
struct Field {
    user: UserInfo,
    author: Author,
}

impl Field {
    fn login(service: &Service, username: &str) -> Result<Self, StoreError> {
        let (_, user) = service.login(username, DEMO_PASSWORD, None)?;
        let author = Author::device(DeviceId::new(), user.id, &user.display_name);
        Ok(Self { user, author })
    }

    /// Sends the whole inspection, as the device's sync would.
    fn sync(&self, service: &Service, insp: &Inspection) -> Result<InspectionId, StoreError> {
        let id = insp.read()?.inspection_id;
        service.sync(
            &self.user,
            SyncRequest {
                protocol: PROTOCOL_VERSION,
                device_id: self.author.info.device_id,
                cursor: 0,
                docs: vec![DocChanges::whole(id, insp)],
            },
            LIMITS,
        )?;
        Ok(id)
    }
}

/// Seeds the history of the demo territory whose complexes `julie` (an
/// inspector) sees; `now` is the seed's "today".
pub fn seed_history(service: &Service, now: i64) -> Result<History, StoreError> {
    let julie = Field::login(service, "inspecteur1")?;
    let marc = Field::login(service, "inspecteur2")?;
    let (_, manager) = service.login("responsable", DEMO_PASSWORD, None)?;
    let reference = service.reference(&julie.user, 0)?;
    let tz = reference.settings.zone();
    let mut complexes = reference.complexes;
    complexes.sort_by(|a, b| a.code.cmp(&b.code));
    let mut h = History::default();
    for (i, c) in complexes.iter().enumerate() {
        let who = if i % 2 == 0 { &julie } else { &marc };
        let new = NewInspection {
            inspection_id: InspectionId::new(),
            territory_id: c.territory_id,
            office_id: c.office_id,
            complex_id: c.id,
        };
        if !matches!(i, 16 | 17) {
            // Every inspection of the complex shows this photo of its roof.
            let bytes = roof_photo(i);
            h.photos.push((PhotoHash::of(&bytes), bytes));
            h.territory = Some(c.territory_id);
        }
        match i {
            // Never inspected: due.
            16 | 17 => {}
            // Returned by the CS with a comment.
            18 => {
                let mut insp = fresh(
                    who,
                    new,
                    now - 20 * 86_400_000,
                    0.10,
                    c.replacement_value,
                    i,
                    &tz,
                )?;
                insp.edit(&who.author, |d| {
                    d.status = InspectionStatus::Submitted;
                    Ok(())
                })?;
                let id = who.sync(service, &insp)?;
                service.review(
                    &manager,
                    id,
                    Some(InspectionStatus::Returned),
                    Some(
                        "Ajoutez une photo de la toiture et la cote du revêtement extérieur."
                            .into(),
                    ),
                )?;
                h.returned += 1;
            }
            // Two inspectors rated the roof differently: a conflict to resolve.
            19 => {
                let base = fresh(
                    &julie,
                    new,
                    now - 6 * 86_400_000,
                    0.05,
                    c.replacement_value,
                    i,
                    &tz,
                )?;
                julie.sync(service, &base)?;
                // Both differ from the base's D (an unchanged value writes nothing).
                for (field, rating) in [(&julie, Rating::C), (&marc, Rating::E)] {
                    let mut fork = base.clone();
                    fork.edit(&field.author, |d| d.rate("B3010", rating))?;
                    field.sync(service, &fork)?;
                }
                h.conflicts += 1;
            }
            _ => {
                // An approved BSI, 0 to 4 years old (6 for the last two:
                // out of the cycle, overdue).
                let next = matches!(i, 0 | 3 | 7);
                let years = match i {
                    14.. => 6,
                    _ if next => 1 + (i % 4) as i64,
                    _ => (i % 5) as i64,
                };
                let at = now - years * YEAR_MS - (i as i64 * 37 % 300) * 86_400_000;
                let target = TARGET_IVP[i % TARGET_IVP.len()];
                // Three complexes also have the previous cycle's BSI,
                // approved five years before: their pages show a trend.
                if matches!(i, 1 | 2 | 4) {
                    let older = NewInspection {
                        inspection_id: InspectionId::new(),
                        ..new
                    };
                    let before_at = at - 5 * YEAR_MS;
                    let insp = fresh(
                        who,
                        older,
                        before_at,
                        target * 0.5,
                        c.replacement_value,
                        i,
                        &tz,
                    )?;
                    let id = who.sync(service, &insp)?;
                    service.review(&manager, id, Some(InspectionStatus::Approved), None)?;
                    h.approved += 1;
                }
                let insp = fresh(who, new, at, target, c.replacement_value, i, &tz)?;
                let id = who.sync(service, &insp)?;
                service.review(&manager, id, Some(InspectionStatus::Approved), None)?;
                h.approved += 1;
                // Three complexes have their next BSI under way, started
                // from this one.
                if next {
                    let before = insp.read()?;
                    following(service, who, &before, now - (i as i64 + 2) * 86_400_000)?;
                    h.in_progress += 1;
                }
            }
        }
    }
    h.budgets = service
        .set_budgets(&manager, &budgets_csv(service, &manager, now, &tz)?)
        .map_err(|e| StoreError::Backend(format!("enveloppes de démonstration : {e}")))?;
    h.planned = plan_visits(service, &manager, &[&julie, &marc], now, &tz)?;
    Ok(h)
}

/// The assignment plan: every complex not up to date (overdue, due this
/// year, under way) given in turn to each inspector, a month apart from
/// this month on (the first left without a month, to be set).
fn plan_visits(
    service: &Service,
    manager: &UserInfo,
    field: &[&Field],
    now: i64,
    tz: &calendar::TimeZone,
) -> Result<usize, StoreError> {
    use bilan_shared::planning::{CycleState, Month};
    let view = service.planning(manager, &Default::default())?;
    let open: Vec<ComplexId> = view
        .lines
        .iter()
        .filter(|l| !matches!(l.state, CycleState::UpToDate | CycleState::Done))
        .map(|l| l.complex_id)
        .collect();
    let this_month = Month::of_ms(now, tz);
    for (i, c) in open.iter().enumerate() {
        let who = field[i % field.len()];
        let month = (i > 0).then(|| this_month.plus(i as u32 / 2));
        service.plan_visits(manager, &[*c], Some(who.user.id), month)?;
    }
    Ok(open.len())
}

/// A new inspection started at `at`: every component rated (the elevator
/// absent in small buildings), findings whose work due within five years
/// comes to about `target` of the replacement value, and one site visit.
fn fresh(
    who: &Field,
    new: NewInspection,
    at: i64,
    target: f64,
    replacement_value: f64,
    seed: usize,
    tz: &calendar::TimeZone,
) -> Result<Inspection, StoreError> {
    let (mut insp, _) = Inspection::create(&who.author, new, Catalogue::current())?;
    let worst = if target > 0.15 { Rating::E } else { Rating::D };
    insp.edit(&who.author, |d| {
        d.created_at = at;
        let codes: Vec<String> = d.components.keys().cloned().collect();
        for (k, code) in codes.iter().enumerate() {
            let rating = match (k + seed) % 7 {
                0 | 1 => Rating::A,
                2 | 3 => Rating::B,
                4 | 5 => Rating::C,
                _ => Rating::D,
            };
            d.rate(
                code,
                if code == "D1010" && seed.is_multiple_of(3) {
                    Rating::NotApplicable
                } else {
                    rating
                },
            )?;
        }
        d.rate("B3010", worst)?;
        d.rate("B2010", Rating::C)?;
        let works = [
            (
                "B3010",
                "Infiltration à la membrane",
                "Réfection de la toiture",
                Urgency::WithinYear,
                0.5,
            ),
            (
                "B2010",
                "Fissures du parement de brique",
                "Rejointoiement de la brique",
                Urgency::OneToTwo,
                0.3,
            ),
            (
                "D3020",
                "Chaudière en fin de vie",
                "Remplacement de la chaudière",
                Urgency::ThreeToFive,
                0.2,
            ),
            (
                "G2030",
                "Trottoir soulevé",
                "Réfection des trottoirs",
                Urgency::OverFive,
                0.1,
            ),
        ];
        let count = 1 + seed % 4;
        for (code, title, work, urgency, share) in works.into_iter().take(count) {
            let cost = (target * replacement_value * share).round();
            d.findings.push(Finding {
                id: FindingId::new(),
                component: code.into(),
                title: title.into(),
                location: "Voir plan du site".into(),
                severity: if urgency == Urgency::WithinYear {
                    Severity::Major
                } else {
                    Severity::Moderate
                },
                description: String::new(),
                photos: if code == "B3010" {
                    let bytes = roof_photo(seed);
                    vec![PhotoRef {
                        hash: PhotoHash::of(&bytes),
                        size: bytes.len() as u64,
                        mime: "image/jpeg".into(),
                        caption: "Membrane de la toiture".into(),
                        taken_at: at,
                        annotations: vec![],
                    }]
                } else {
                    vec![]
                },
                recommendations: vec![Recommendation {
                    id: RecommendationId::new(),
                    work: work.into(),
                    urgency,
                    quantity: 1.0,
                    unit: "forfait".into(),
                    unit_cost: cost,
                    planned_year: None,
                }],
                created_by: who.user.id,
                created_at: at,
            });
        }
        d.visits.push(SiteVisit {
            id: VisitId::new(),
            date: calendar::iso_date(at, tz),
            inspector: who.user.id,
            hours_on_site: 3.0 + (seed % 4) as f64 * 0.5,
            travel_hours: 1.0 + (seed % 3) as f64 * 0.5,
            km: 30.0 + (seed * 17 % 120) as f64,
            expenses: 15.0 + (seed % 5) as f64 * 10.0,
        });
        Ok(())
    })?;
    Ok(insp)
}

/// The next inspection of a complex, started from its approved `before`:
/// a few components rated again, the roof work reported postponed.
fn following(
    service: &Service,
    who: &Field,
    before: &InspectionDoc,
    at: i64,
) -> Result<(), StoreError> {
    let new = NewInspection {
        inspection_id: InspectionId::new(),
        territory_id: before.territory_id,
        office_id: before.office_id,
        complex_id: before.complex_id,
    };
    let (mut insp, _) =
        Inspection::create_following(&who.author, new, Catalogue::current(), Some(before))?;
    insp.edit(&who.author, |d| {
        d.created_at = at;
        for code in ["A1010", "A1020", "B1010"] {
            let kept = d
                .previous
                .as_ref()
                .and_then(|p| p.components.get(code))
                .and_then(|p| p.rating)
                .unwrap_or(Rating::B);
            d.rate(code, kept)?;
        }
        if let Some(w) = d.previous.as_mut().and_then(|p| p.works.first_mut()) {
            w.status = Some(WorkStatus::Postponed);
        }
        Ok(())
    })?;
    who.sync(service, &insp)?;
    Ok(())
}

/// Each office's envelope for this year and the next four, from the works
/// plan as seeded: above the year's work most years, below it in some (the
/// works plan marks those).
fn budgets_csv(
    service: &Service,
    manager: &UserInfo,
    now: i64,
    tz: &calendar::TimeZone,
) -> Result<String, StoreError> {
    let territory = manager
        .territory_id
        .ok_or_else(|| StoreError::Forbidden("aucun territoire".into()))?;
    let year = calendar::year(now, tz);
    let plan = service.works_plan(manager)?;
    let mut csv = String::from("organisme;annee;montant\n");
    for (k, office) in service.offices(territory)?.iter().enumerate() {
        for y in year..year + 5 {
            let work: f64 = plan
                .iter()
                .filter(|l| l.office == office.name && l.year == y)
                .map(|l| l.cost)
                .sum();
            let factor = if (k as i64 + y) % 3 == 0 { 0.8 } else { 1.25 };
            let amount = ((work * factor).max(50_000.0) / 1_000.0).round() * 1_000.0;
            csv.push_str(&format!("{};{y};{amount}\n", office.code));
        }
    }
    Ok(csv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bilan_shared::doc::now_ms;

    /// The seed gives every page something to show: approved BSIs in every
    /// condition band, in progress ones carrying the previous BSI, one
    /// returned, one with a conflict, visits, budgets.
    #[test]
    fn the_demo_history_fills_every_page() {
        let service = crate::in_memory_service().unwrap();
        crate::admin::seed_demo(&service).unwrap();
        let h = seed_history(&service, now_ms()).unwrap();
        assert_eq!(
            (
                h.approved,
                h.in_progress,
                h.returned,
                h.conflicts,
                h.budgets
            ),
            (19, 3, 1, 1, 15)
        );
        assert!(
            h.planned >= 6,
            "overdue, due and under way planned: {}",
            h.planned
        );
        let (_, manager) = service.login("responsable", DEMO_PASSWORD, None).unwrap();
        let overview = service.overview(&manager).unwrap();
        let conditions = overview.iter().fold([0; 5], |mut all, o| {
            for (a, c) in all.iter_mut().zip(o.conditions) {
                *a += c;
            }
            all
        });
        assert_eq!(
            conditions.iter().sum::<u32>(),
            16,
            "one per complex with an approved BSI"
        );
        assert!(
            conditions.iter().filter(|n| **n > 0).count() >= 4,
            "{conditions:?}"
        );
        let summaries = service.summaries(&manager).unwrap();
        assert_eq!(
            summaries.len(),
            24,
            "19 approved, 3 in progress, 1 returned, 1 conflict"
        );
        assert_eq!(summaries.iter().filter(|s| s.conflicts > 0).count(), 1);
        let carrying = summaries
            .iter()
            .filter(|s| s.status == InspectionStatus::InProgress)
            .filter(|s| {
                service
                    .inspection(&manager, s.inspection_id)
                    .and_then(|i| Ok(i.read()?))
                    .is_ok_and(|d| d.previous.is_some())
            })
            .count();
        assert_eq!(carrying, 3);
        assert!(!service.works_plan(&manager).unwrap().is_empty());
        let year = calendar::year(now_ms(), &calendar::default_zone());
        let (activity, _) = service
            .activity(
                &manager,
                &format!("{}-01-01", year - 10),
                &format!("{year}-12-31"),
            )
            .unwrap();
        // A visit per inspection but the three just started.
        assert_eq!(activity.iter().map(|l| l.visits).sum::<u32>(), 21);
    }
}
