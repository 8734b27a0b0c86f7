//! The previous BSI on the device: which approved inspection a new one
//! starts from (the complex's latest approved one the device holds: devices
//! pull their territory's inspections, so it is there offline), and the
//! statuses the inspector gives the work it recommended.

use bilan_shared::InspectionDoc;
use bilan_shared::domain::{InspectionStatus, WorkStatus};
use bilan_shared::ids::{ComplexId, InspectionId, RecommendationId};

use super::DeviceStore;
use crate::error::{MobileError, Result};

/// What the inspector says became of a recommended work.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkUpdate {
    pub status: Option<WorkStatus>,
    /// For work done: the year it was done and what it cost.
    pub done_year: Option<i64>,
    pub done_cost: Option<f64>,
}

impl WorkUpdate {
    /// Work done, from what the inspector typed: a year and a cost, each
    /// optional; text that is not one is refused, never dropped.
    pub fn done(year: &str, cost: &str) -> Result<Self> {
        let done_year = match year.trim() {
            "" => None,
            y => Some(y.parse().map_err(|_| {
                MobileError::Invalid(format!(
                    "année des travaux illisible : « {y} » (par exemple 2026)"
                ))
            })?),
        };
        let done_cost = match cost.trim() {
            "" => None,
            c => Some(bilan_shared::fmt::parse_decimal(c).ok_or_else(|| {
                MobileError::Invalid(format!(
                    "coût des travaux illisible : « {c} » (par exemple 14 200,50)"
                ))
            })?),
        };
        Ok(Self {
            status: Some(WorkStatus::Done),
            done_year,
            done_cost,
        })
    }
}

impl DeviceStore {
    /// The complex's latest approved inspection on this device, if any.
    pub fn previous_bsi(&self, complex: ComplexId) -> Result<Option<InspectionDoc>> {
        // Newest first.
        let approved = self
            .summaries(Some(complex))?
            .into_iter()
            .find(|s| s.status == InspectionStatus::Approved);
        approved.map(|s| self.inspection(s.id)).transpose()
    }

    /// Sets what became of work recommended at the previous BSI. A year
    /// and cost only go with work done; a year is four digits, a cost not
    /// negative. Refused input changes nothing.
    pub fn set_work_status(
        &self,
        id: InspectionId,
        work: RecommendationId,
        update: WorkUpdate,
    ) -> Result<()> {
        let done = update.status == Some(WorkStatus::Done);
        if !done && (update.done_year.is_some() || update.done_cost.is_some()) {
            return Err(MobileError::Invalid(
                "l'année et le coût ne se donnent que pour des travaux réalisés".into(),
            ));
        }
        if update
            .done_year
            .is_some_and(|y| !(1900..=2200).contains(&y))
        {
            return Err(MobileError::Invalid(
                "année des travaux attendue sur quatre chiffres (par exemple 2026)".into(),
            ));
        }
        if update.done_cost.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return Err(MobileError::Invalid(
                "coût des travaux attendu : un montant positif en dollars".into(),
            ));
        }
        let mut found = false;
        self.edit(id, |d| {
            if let Some(w) = d
                .previous
                .as_mut()
                .and_then(|p| p.works.iter_mut().find(|w| w.id == work))
            {
                found = true;
                w.status = update.status;
                w.done_year = update.done_year;
                w.done_cost = update.done_cost;
            }
            Ok(())
        })?;
        if found {
            Ok(())
        } else {
            Err(MobileError::Invalid(format!(
                "travaux {work} absents du dernier BSI de cette inspection"
            )))
        }
    }
}
