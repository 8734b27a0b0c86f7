//! The previous BSI carried into a new inspection (step 1 of the method,
//! "collecte de renseignements"): what the last approved inspection of the
//! complex said of each component, and the work it recommended, copied into
//! the new document when it starts. The device thus needs nothing else
//! offline, and the review pages read the comparison from the document.
//!
//! Rule: the previous rating is shown beside each component, never copied
//! as the new rating: the component stays "non évalué" until the inspector
//! confirms or changes it. The inventory (present / sans objet) is carried
//! over as it was. Recommended work keeps a status the inspector sets
//! (réalisés with year and cost, en cours, reportés, abandonnés); work still
//! open at the previous BSI (no status, en cours, reportés) is carried on.

use std::collections::BTreeMap;

use autosurgeon::{Hydrate, Reconcile};

use crate::doc::InspectionDoc;
use crate::domain::{Rating, Urgency, WorkStatus};
use crate::ids::{InspectionId, RecommendationId};

/// The last approved BSI of the complex, as carried into a new inspection.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct PreviousBsi {
    pub inspection_id: InspectionId,
    /// When that inspection started: the BSI's date.
    pub date: i64,
    /// Keyed by catalogue component code; only components it said
    /// something of.
    pub components: BTreeMap<String, PreviousComponent>,
    /// Its recommended work, and the work still open before it.
    pub works: Vec<CarriedWork>,
}

/// What the previous BSI said of one component.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct PreviousComponent {
    pub present: Option<bool>,
    pub rating: Option<Rating>,
    pub note: String,
}

/// Work recommended at a previous BSI and what became of it.
#[derive(Clone, Debug, PartialEq, Reconcile, Hydrate, serde::Serialize, serde::Deserialize)]
pub struct CarriedWork {
    #[key]
    pub id: RecommendationId,
    pub component: String,
    /// The finding it answered (its title).
    pub finding: String,
    pub work: String,
    pub urgency: Urgency,
    /// Its estimated cost at that BSI.
    pub cost: f64,
    /// When it was recommended (that BSI's date).
    pub recommended_at: i64,
    /// `None` until the inspector says.
    pub status: Option<WorkStatus>,
    /// For work done: the year and what it cost.
    pub done_year: Option<i64>,
    pub done_cost: Option<f64>,
    /// The year the CS moved it to in its works plan (a review edit).
    #[autosurgeon(missing = "Option::default")]
    pub planned_year: Option<i64>,
}

/// A year, in milliseconds, for counting whole years between two instants
/// (365.25 days: the same for every time zone).
const YEAR_MS: i64 = 31_557_600_000;

impl CarriedWork {
    /// Still to do (no status, en cours, reportés).
    pub fn is_open(&self) -> bool {
        WorkStatus::is_open(self.status)
    }

    /// Whole years from `at` until it is due: its urgency's delay counted
    /// from when it was recommended, never below zero (overdue work is due
    /// now).
    pub fn years_until_due(&self, at: i64) -> u32 {
        let elapsed = (at - self.recommended_at).max(0) / YEAR_MS;
        (i64::from(self.urgency.years_until_due()) - elapsed).max(0) as u32
    }
}

impl PreviousBsi {
    /// The carried work still to do: in the works plan and the IVP.
    pub fn open_works(&self) -> impl Iterator<Item = &CarriedWork> {
        self.works.iter().filter(|w| w.is_open())
    }

    /// What a new inspection carries of `doc`, the complex's last approved
    /// inspection.
    pub fn of(doc: &InspectionDoc) -> Self {
        let components = doc
            .components
            .iter()
            .filter(|(_, c)| c.present.is_some() || c.rating.is_some() || !c.note.is_empty())
            .map(|(code, c)| {
                (
                    code.clone(),
                    PreviousComponent {
                        present: c.present,
                        rating: c.rating,
                        note: c.note.clone(),
                    },
                )
            })
            .collect();
        let recommended = doc.findings.iter().flat_map(|f| {
            f.recommendations.iter().map(move |r| CarriedWork {
                id: r.id,
                component: f.component.clone(),
                finding: f.title.clone(),
                work: r.work.clone(),
                urgency: r.urgency,
                cost: r.estimated_cost(),
                recommended_at: doc.created_at,
                status: None,
                done_year: None,
                done_cost: None,
                planned_year: r.planned_year,
            })
        });
        let still_open = doc
            .previous
            .iter()
            .flat_map(|p| p.works.iter())
            .filter(|w| WorkStatus::is_open(w.status))
            .map(|w| CarriedWork {
                status: None,
                done_year: None,
                done_cost: None,
                ..w.clone()
            });
        Self {
            inspection_id: doc.inspection_id,
            date: doc.created_at,
            components,
            works: still_open.chain(recommended).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{Finding, Recommendation};
    use crate::domain::{InspectionStatus, Severity};
    use crate::ids::*;
    use crate::{Author, Catalogue, Inspection, NewInspection};

    fn new_of(complex: ComplexId) -> NewInspection {
        NewInspection {
            inspection_id: InspectionId::new(),
            territory_id: TerritoryId::new(),
            office_id: OfficeId::new(),
            complex_id: complex,
        }
    }

    /// An approved BSI: roof rated D with a note, the elevator "sans objet"
    /// (absent), one finding on the roof with one recommended work.
    fn approved(author: &Author, complex: ComplexId) -> Inspection {
        let (mut insp, _) =
            Inspection::create(author, new_of(complex), Catalogue::current()).unwrap();
        insp.edit(author, |d| {
            let roof = d.components.get_mut("B3010").unwrap();
            roof.present = Some(true);
            roof.rating = Some(Rating::D);
            roof.note = "Membrane fissurée".into();
            d.components.get_mut("D1010").unwrap().present = Some(false);
            d.findings.push(Finding {
                id: FindingId::new(),
                component: "B3010".into(),
                title: "Infiltration".into(),
                location: "Toit".into(),
                severity: Severity::Major,
                description: String::new(),
                photos: vec![],
                recommendations: vec![Recommendation {
                    id: RecommendationId::new(),
                    work: "Réfection de la toiture".into(),
                    urgency: Urgency::WithinYear,
                    quantity: 1.0,
                    unit: "forfait".into(),
                    unit_cost: 15_000.0,
                    planned_year: None,
                }],
                created_by: author.info.user_id,
                created_at: 0,
            });
            d.status = InspectionStatus::Approved;
            Ok(())
        })
        .unwrap();
        insp
    }

    #[test]
    fn a_new_inspection_carries_the_inventory_but_never_the_ratings() {
        let a = Author::device(DeviceId::new(), UserId::new(), "Julie");
        let complex = ComplexId::new();
        let before = approved(&a, complex).read().unwrap();
        let (next, _) =
            Inspection::create_following(&a, new_of(complex), Catalogue::current(), Some(&before))
                .unwrap();
        let d = next.read().unwrap();
        assert_eq!(d.components["B3010"].present, Some(true));
        assert_eq!(
            d.components["D1010"].present,
            Some(false),
            "sans objet carried"
        );
        assert_eq!(
            d.components["B3010"].rating, None,
            "the previous rating is not the new one"
        );
        assert!(d.components.values().all(|c| c.rating.is_none()));
        let p = d.previous.as_ref().expect("the previous BSI");
        assert_eq!(p.inspection_id, before.inspection_id);
        assert_eq!(p.date, before.created_at);
        let roof = &p.components["B3010"];
        assert_eq!(
            (roof.rating, roof.note.as_str()),
            (Some(Rating::D), "Membrane fissurée")
        );
        assert_eq!(p.works.len(), 1);
        let w = &p.works[0];
        assert_eq!(
            (w.work.as_str(), w.finding.as_str(), w.cost, w.status),
            ("Réfection de la toiture", "Infiltration", 15_000.0, None)
        );
        assert_eq!(d.progress().0, 0, "nothing rated yet");
    }

    /// Work still open at a BSI (postponed, or with no status) is carried to
    /// the next one; work done or abandoned is not.
    #[test]
    fn open_work_is_carried_from_bsi_to_bsi_and_closed_work_is_not() {
        let a = Author::device(DeviceId::new(), UserId::new(), "Julie");
        let complex = ComplexId::new();
        let first = approved(&a, complex).read().unwrap();
        let (mut second, _) =
            Inspection::create_following(&a, new_of(complex), Catalogue::current(), Some(&first))
                .unwrap();
        second
            .edit(&a, |d| {
                let p = d.previous.as_mut().unwrap();
                let mut done = p.works[0].clone();
                done.id = RecommendationId::new();
                done.status = Some(WorkStatus::Done);
                done.done_year = Some(2026);
                done.done_cost = Some(14_200.0);
                p.works[0].status = Some(WorkStatus::Postponed);
                p.works.push(done);
                d.status = InspectionStatus::Approved;
                Ok(())
            })
            .unwrap();
        let second = second.read().unwrap();
        let (third, _) =
            Inspection::create_following(&a, new_of(complex), Catalogue::current(), Some(&second))
                .unwrap();
        let works = third.read().unwrap().previous.unwrap().works;
        assert_eq!(works.len(), 1, "{works:?}");
        assert_eq!(works[0].work, "Réfection de la toiture");
        assert_eq!(works[0].status, None, "a status to set again");
        assert_eq!(works[0].recommended_at, first.created_at);
    }

    /// Open carried work counts in the IVP of the inspection carrying it
    /// (due within five years of it, counted from its recommendation);
    /// work done or abandoned does not.
    #[test]
    fn open_carried_work_counts_in_the_costs_and_closed_work_does_not() {
        let a = Author::device(DeviceId::new(), UserId::new(), "Julie");
        let complex = ComplexId::new();
        let first = approved(&a, complex).read().unwrap();
        let (mut next, _) =
            Inspection::create_following(&a, new_of(complex), Catalogue::current(), Some(&first))
                .unwrap();
        assert_eq!(next.read().unwrap().costs(), (15_000.0, 15_000.0));
        next.edit(&a, |d| {
            d.previous.as_mut().unwrap().works[0].status = Some(WorkStatus::Done);
            Ok(())
        })
        .unwrap();
        assert_eq!(next.read().unwrap().costs(), (0.0, 0.0));
        let mut w = first_work(&first);
        w.urgency = Urgency::OverFive;
        assert_eq!(w.years_until_due(w.recommended_at), 6);
        assert_eq!(w.years_until_due(w.recommended_at + 2 * YEAR_MS), 4);
        assert_eq!(
            w.years_until_due(w.recommended_at + 9 * YEAR_MS),
            0,
            "overdue: due now"
        );
    }

    fn first_work(doc: &InspectionDoc) -> CarriedWork {
        PreviousBsi::of(doc).works[0].clone()
    }

    /// A document of schema 1 (no `previous`) still reads, with none.
    #[test]
    fn a_schema_1_document_reads_without_a_previous_bsi() {
        use automerge::transaction::Transactable;
        let a = Author::device(DeviceId::new(), UserId::new(), "Julie");
        let (insp, _) =
            Inspection::create(&a, new_of(ComplexId::new()), Catalogue::current()).unwrap();
        let mut doc = insp.automerge().clone();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "schema_version", 1_u64).unwrap();
        tx.delete(automerge::ROOT, "previous").unwrap();
        tx.commit();
        let d = Inspection::from_automerge(doc).read().unwrap();
        assert_eq!((d.schema_version, d.previous), (1, None));
    }
}
