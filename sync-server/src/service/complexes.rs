//! A complex's page: its facts, every BSI of it with its IVP and
//! condition (a condition only for approved ones: the others are
//! provisional), the work still open and the work reported done.

use bilan_shared::domain::{Complex, Condition, ConditionThresholds, InspectionStatus};
use bilan_shared::ids::ComplexId;
use bilan_shared::protocol::UserInfo;

use super::access;
use super::core::{Result, Service};
use crate::error::StoreError;
use crate::reports::{self, PlanLine};
use crate::storage::DoneWork;

/// What the complex page shows.
#[derive(Clone, Debug)]
pub struct ComplexPage {
    pub complex: Complex,
    pub office: String,
    /// Newest first.
    pub inspections: Vec<HistoryLine>,
    /// The latest inspection's recommended work and the open work it
    /// carries, in the year each is due.
    pub open_work: Vec<PlanLine>,
    pub done: Vec<DoneWork>,
    pub thresholds: ConditionThresholds,
}

/// One BSI of the complex.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryLine {
    pub doc_id: String,
    pub date: i64,
    pub status: Option<InspectionStatus>,
    pub inspector: String,
    pub findings: u32,
    pub cost_5y: f64,
    pub ivp: f64,
    pub condition: Condition,
}

impl HistoryLine {
    /// Only an approved BSI gives the building its condition.
    pub fn approved(&self) -> bool {
        self.status == Some(InspectionStatus::Approved)
    }
}

impl Service {
    /// A complex the user may read and its office's name; none when it is
    /// not there or not theirs (an office reader reads their office's only).
    pub fn complex(&self, user: &UserInfo, id: ComplexId) -> Result<Option<(Complex, String)>> {
        self.store.complex(&access::scope_of(user)?, id)
    }

    /// The page of a complex the user may read (an office reader: of their
    /// office only; another's is not found).
    pub fn complex_page(&self, user: &UserInfo, id: ComplexId) -> Result<ComplexPage> {
        let scope = access::scope_of(user)?;
        let (complex, office) = self
            .complex(user, id)?
            .ok_or_else(|| StoreError::NotFound(format!("ensemble immobilier {id}")))?;
        let settings = self.store.settings(scope.territory)?;
        let tz = settings.zone();
        let this_year = bilan_shared::calendar::year(bilan_shared::doc::now_ms(), &tz);
        let history = self.store.complex_history(scope.territory, id)?;
        let inspections = history
            .inspections
            .into_iter()
            .map(|h| {
                let ivp = reports::ivp(h.cost_5y, complex.replacement_value);
                HistoryLine {
                    status: InspectionStatus::from_code(&h.status),
                    doc_id: h.doc_id,
                    date: h.created_at,
                    inspector: h.inspector,
                    findings: h.findings,
                    cost_5y: h.cost_5y,
                    ivp,
                    condition: settings.thresholds.condition_for(ivp),
                }
            })
            .collect();
        let open_work = self
            .store
            .plan_rows(&scope, Some(id))?
            .into_iter()
            .map(|r| reports::plan_line(r, &tz, this_year))
            .collect();
        Ok(ComplexPage {
            complex,
            office,
            inspections,
            open_work,
            done: history.done,
            thresholds: settings.thresholds,
        })
    }
}
