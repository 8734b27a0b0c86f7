//! The review pages' use-cases: reference data for devices, the territory
//! overview, the inspections page's filters (checked here, then handed to
//! storage as a plain query), the works plan, the activity statement and
//! the CS's settings. Figures are computed by [`crate::reports`].

use bilan_shared::calendar;
use bilan_shared::catalogue::Catalogue;
use bilan_shared::domain::{CsSettings, InspectionStatus};
use bilan_shared::protocol::{ReferenceResponse, UserInfo};

use super::access;
use super::core::{Result, Service};
use crate::audit::{AuditAction, AuditEntry};
use crate::error::StoreError;
use crate::reports::{self, ActivityLine, OfficeOverview, PlanLine};
use crate::storage::{FilterOptions, InspectionQuery, InspectionRow, SortKey};

/// Filters of the inspections page (all optional).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct InspectionFilter {
    pub office: Option<String>,
    pub status: Option<String>,
    pub condition: Option<String>,
    pub conflicts: Option<String>,
    pub inspector: Option<String>,
    /// `YYYY-MM-DD`, on the inspection's start.
    pub from: Option<String>,
    pub to: Option<String>,
    /// `date`, `complex`, `office`, `status`, `cost`, `conflicts`; `-` prefix for descending.
    pub sort: Option<String>,
    pub page: Option<u32>,
}

/// Sort keys of the inspections page.
const SORT_KEYS: [&str; 6] = ["date", "complex", "office", "status", "cost", "conflicts"];

/// An ISO date (`AAAA-MM-JJ`) of a filter or a form; a clear error for
/// anything else.
pub fn parse_day(d: &str) -> Result<calendar::Date> {
    calendar::parse_date(d).ok_or_else(|| {
        StoreError::BadRequest(format!("date invalide « {d} » : attendu AAAA-MM-JJ"))
    })
}

impl InspectionFilter {
    /// Refuses a value outside each filter's vocabulary, so a typo or a
    /// forged query gets a 400 saying what is expected instead of an empty page.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str, v: &str| {
            Err(StoreError::BadRequest(format!(
                "filtre {what} invalide : « {v} »"
            )))
        };
        for (what, v) in [("organisme", &self.office), ("inspecteur", &self.inspector)] {
            if let Some(v) = set(v)
                && uuid::Uuid::parse_str(v).is_err()
            {
                return bad(what, v);
            }
        }
        if let Some(v) = set(&self.status)
            && InspectionStatus::from_code(v).is_none()
        {
            return bad("statut", v);
        }
        if let Some(v) = set(&self.condition)
            && !["A", "B", "C", "D", "E"].contains(&v)
        {
            return bad("état", v);
        }
        if let Some(v) = set(&self.conflicts)
            && v != "oui"
        {
            return bad("conflits", v);
        }
        for d in [set(&self.from), set(&self.to)].into_iter().flatten() {
            parse_day(d)?;
        }
        if let Some(v) = set(&self.sort)
            && !SORT_KEYS.contains(&v.strip_prefix('-').unwrap_or(v))
        {
            return bad("tri", v);
        }
        Ok(())
    }
}

/// A filter's value, trimmed; `None` when empty.
fn set(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl InspectionFilter {
    /// The checked filter as storage's query, days as instants of the
    /// territory's zone.
    pub fn to_query(&self, tz: &calendar::TimeZone) -> Result<InspectionQuery> {
        self.check()?;
        let sort = set(&self.sort).unwrap_or("-date");
        let (key, descending) = match sort.strip_prefix('-') {
            Some(k) => (k, true),
            None => (sort, false),
        };
        Ok(InspectionQuery {
            office: set(&self.office).and_then(|v| v.parse().ok()),
            status: set(&self.status).and_then(InspectionStatus::from_code),
            condition: set(&self.condition).and_then(|c| c.chars().next()),
            conflicts_only: set(&self.conflicts) == Some("oui"),
            inspector: set(&self.inspector).and_then(|v| v.parse().ok()),
            from_ms: set(&self.from)
                .map(|d| parse_day(d).map(|day| calendar::day_start_ms(day, tz)))
                .transpose()?,
            before_ms: set(&self.to)
                .map(|d| parse_day(d).map(|day| calendar::day_end_ms(day, tz)))
                .transpose()?,
            sort: match key {
                "complex" => SortKey::Complex,
                "office" => SortKey::Office,
                "status" => SortKey::Status,
                "cost" => SortKey::Cost,
                "conflicts" => SortKey::Conflicts,
                _ => SortKey::Date,
            },
            descending,
            page: self.page.unwrap_or(1).max(1),
        })
    }
}

impl Service {
    /// Reference data for a device: the user's territory (their office for
    /// an office reader) after revision `since`, with the CS's settings.
    pub fn reference(&self, user: &UserInfo, since: u64) -> Result<ReferenceResponse> {
        let scope = access::scope_of(user)?;
        let data = self.store.reference(&scope, since)?;
        Ok(ReferenceResponse {
            territory: data.territory,
            offices: data.offices,
            complexes: data.complexes,
            assignments: data.assignments,
            revision: data.revision,
            catalogue_version: Catalogue::current().version.clone(),
            settings: self.store.settings(scope.territory)?,
        })
    }

    /// The CS's settings (rates, condition thresholds, time zone).
    pub fn settings(&self, user: &UserInfo) -> Result<CsSettings> {
        self.store.settings(access::territory_of(user)?)
    }

    /// Changes the CS's settings (the manager), with its audit entry.
    pub fn set_settings(&self, user: &UserInfo, settings: &CsSettings) -> Result<()> {
        access::require_manager(user)?;
        let territory = access::territory_of(user)?;
        settings.check().map_err(StoreError::BadRequest)?;
        let detail = serde_json::to_string(settings)
            .map_err(|e| StoreError::Backend(format!("paramètres : {e}")))?;
        let audit = AuditEntry::by(user, AuditAction::ChangeSettings, "tarifs et seuils");
        self.store
            .set_settings(territory, settings, &audit.with_detail(detail))
    }

    /// The budget envelopes as the CSV the settings form edits.
    pub fn budgets_csv(&self, user: &UserInfo) -> Result<String> {
        let t = access::territory_of(user)?;
        let settings = self.store.settings(t)?;
        Ok(crate::imports::budgets_csv(
            &self.store.offices(t)?,
            &settings.budgets,
        ))
    }

    /// Replaces the budget envelopes with a CSV's (`organisme;annee;montant`,
    /// the manager): every line checked first, refused input changes
    /// nothing; with its audit entry. Returns the envelopes kept.
    pub fn set_budgets(
        &self,
        user: &UserInfo,
        csv_text: &str,
    ) -> std::result::Result<usize, crate::imports::ImportError> {
        access::require_manager(user)?;
        let t = access::territory_of(user)?;
        let budgets = crate::imports::parse_budgets(&self.store.offices(t)?, csv_text)?;
        let mut settings = self.store.settings(t)?;
        if settings.unreadable {
            return Err(StoreError::BadRequest(
                "les paramètres enregistrés sont illisibles : enregistrez d'abord les taux et seuils".into(),
            )
            .into());
        }
        let n = budgets.len();
        settings.budgets = budgets;
        settings.check().map_err(StoreError::BadRequest)?;
        let audit = AuditEntry::by(user, AuditAction::ChangeSettings, "enveloppes budgétaires")
            .with_detail(format!("{n} enveloppe(s)"));
        self.store.set_settings(t, &settings, &audit)?;
        Ok(n)
    }

    /// The envelopes of the offices the user may read, by office name and
    /// year (the works plan's keys).
    pub fn budgets_by_office(
        &self,
        user: &UserInfo,
    ) -> Result<std::collections::BTreeMap<(String, i64), f64>> {
        let scope = access::scope_of(user)?;
        let settings = self.store.settings(scope.territory)?;
        let offices = self.store.offices(scope.territory)?;
        Ok(settings
            .budgets
            .iter()
            .filter(|b| scope.office.is_none_or(|o| o == b.office_id))
            .filter_map(|b| {
                let office = offices.iter().find(|o| o.id == b.office_id)?;
                Some(((office.name.clone(), b.year), b.amount))
            })
            .collect())
    }

    /// Territory overview: per office, progress of the cycle and conditions.
    pub fn overview(&self, user: &UserInfo) -> Result<Vec<OfficeOverview>> {
        let scope = access::scope_of(user)?;
        let settings = self.store.settings(scope.territory)?;
        let rows = self.store.complex_rows(&scope)?;
        let cycle_start = calendar::cycle_cutoff_ms(bilan_shared::doc::now_ms(), &settings.zone());
        Ok(reports::overview(&rows, &settings.thresholds, cycle_start))
    }

    /// A page of the inspections the user may read, filtered and sorted,
    /// with the total count; conditions use the CS's thresholds.
    pub fn search_inspections(
        &self,
        user: &UserInfo,
        filter: &InspectionFilter,
    ) -> Result<(Vec<InspectionRow>, u32)> {
        let scope = access::scope_of(user)?;
        let settings = self.store.settings(scope.territory)?;
        let query = filter.to_query(&settings.zone())?;
        self.store.search(&scope, &query, &settings.thresholds)
    }

    /// Offices and inspectors the user may filter on.
    pub fn filter_options(&self, user: &UserInfo) -> Result<FilterOptions> {
        self.store.filter_options(&access::scope_of(user)?)
    }

    /// The works plan (PPI draft): each complex's latest recommendations in
    /// the year they are due.
    pub fn works_plan(&self, user: &UserInfo) -> Result<Vec<PlanLine>> {
        let scope = access::scope_of(user)?;
        let tz = self.store.settings(scope.territory)?.zone();
        let this_year = calendar::year(bilan_shared::doc::now_ms(), &tz);
        Ok(self
            .store
            .plan_rows(&scope, None)?
            .into_iter()
            .map(|r| reports::plan_line(r, &tz, this_year))
            .collect())
    }

    /// The activity statement between two ISO dates, with the rates used.
    pub fn activity(
        &self,
        user: &UserInfo,
        from: &str,
        to: &str,
    ) -> Result<(Vec<ActivityLine>, CsSettings)> {
        parse_day(from)?;
        parse_day(to)?;
        let scope = access::scope_of(user)?;
        let rates = self.store.settings(scope.territory)?;
        let lines = self
            .store
            .visit_totals(&scope, from, to)?
            .into_iter()
            .map(|v| reports::activity_line(v, &rates))
            .collect();
        Ok((lines, rates))
    }
}
