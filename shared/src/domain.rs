//! Domain vocabulary shared by the device, the server and the review pages:
//! roles, the government condition scale, urgencies, statuses, and the
//! reference records (territory, office, complex) that devices cache.

use serde::{Deserialize, Serialize};

use crate::ids::{ComplexId, OfficeId, TerritoryId};

vocabulary!(
    /// What a user may do. Checked on every request against the user's territory
    /// (and office, for office readers).
    Role {
        Inspector => "inspecteur", "Inspecteur du CS";
        Manager => "responsable", "Responsable du CS";
        OfficeReader => "lecteur_organisme", "Lecteur d'organisme";
        Admin => "administrateur", "Administrateur";
    }
);

vocabulary!(
    /// A component's rating: the government condition scale plus the two
    /// non-ratings of the BSI method.
    Rating {
        A => "A", "A – Très bon";
        B => "B", "B – Bon";
        C => "C", "C – Satisfaisant";
        D => "D", "D – Mauvais";
        E => "E", "E – Très mauvais";
        NotApplicable => "sans_objet", "Sans objet";
        NotInspected => "non_inspecte", "Non inspecté";
    }
);

vocabulary!(
    /// Building condition derived from the physical obsolescence index (IVP).
    Condition {
        A => "A", "A – Très bon";
        B => "B", "B – Bon";
        C => "C", "C – Satisfaisant";
        D => "D", "D – Mauvais";
        E => "E", "E – Très mauvais";
    }
);

vocabulary!(
    /// How soon recommended work must be done.
    Urgency {
        Immediate => "immediate", "Immédiate (sécurité)";
        WithinYear => "moins_1_an", "Moins d'un an";
        OneToTwo => "1_2_ans", "1 à 2 ans";
        ThreeToFive => "3_5_ans", "3 à 5 ans";
        OverFive => "plus_5_ans", "Plus de 5 ans";
    }
);

vocabulary!(
    /// How severe a finding is.
    Severity {
        Minor => "mineure", "Mineure";
        Moderate => "moderee", "Modérée";
        Major => "majeure", "Majeure";
        Critical => "critique", "Critique (sécurité)";
    }
);

vocabulary!(
    /// What became of work recommended at the previous BSI, as the inspector
    /// finds it on site (step 1, collecte de renseignements).
    WorkStatus {
        Done => "realises", "Réalisés";
        Ongoing => "en_cours", "En cours";
        Postponed => "reportes", "Reportés";
        Abandoned => "abandonnes", "Abandonnés";
    }
);

impl WorkStatus {
    /// Still to do: carried to the next BSI and counted in the works plan.
    pub fn is_open(status: Option<WorkStatus>) -> bool {
        !matches!(status, Some(WorkStatus::Done | WorkStatus::Abandoned))
    }
}

vocabulary!(
    /// Where an inspection stands in the CS workflow.
    InspectionStatus {
        InProgress => "en_cours", "En cours";
        Submitted => "soumise", "Soumise pour révision";
        Returned => "retournee", "Retournée par le CS";
        Approved => "approuvee", "Approuvée";
    }
);

impl Urgency {
    /// Years from the inspection until the work is due; used by the works plan
    /// and the IVP (work due within 5 years).
    pub fn years_until_due(self) -> u32 {
        match self {
            Urgency::Immediate | Urgency::WithinYear => 0,
            Urgency::OneToTwo => 1,
            Urgency::ThreeToFive => 3,
            Urgency::OverFive => 6,
        }
    }
    /// Counts in the physical obsolescence index (work needed within 5 years).
    pub fn within_five_years(self) -> bool {
        !matches!(self, Urgency::OverFive)
    }
}

/// Thresholds of the IVP bands. Unverified figures (see DOMAIN.md): they are
/// settings of the CS, and these are only the defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionThresholds {
    /// Upper bounds (inclusive, as fractions) of bands A, B, C and D; above the last is E.
    pub upper_bounds: [f64; 4],
}

impl Default for ConditionThresholds {
    fn default() -> Self {
        Self {
            upper_bounds: [0.05, 0.10, 0.15, 0.30],
        }
    }
}

impl ConditionThresholds {
    /// The building condition for an IVP (cost of work due within 5 years ÷ replacement value).
    pub fn condition_for(&self, ivp: f64) -> Condition {
        let bands = [Condition::A, Condition::B, Condition::C, Condition::D];
        for (bound, cond) in self.upper_bounds.iter().zip(bands) {
            if ivp <= *bound {
                return cond;
            }
        }
        Condition::E
    }
}

/// Settings of a CS: the rates of the activity statement and the IVP bands of
/// the building condition. Unverified figures: settings, not constants; these
/// are only the defaults until the CS sets its own.
///
/// Sent to devices with the reference data, so the app grades buildings and
/// dates visits as the review pages do. Stored format (v1): JSON in the
/// server's `meta` under `rates:{territory}` (the key of the first version,
/// which held only the rates). Fields added later must carry a serde default
/// so that older rows and older servers' answers still load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsSettings {
    /// $ per hour of service on site.
    pub hourly: f64,
    /// $ per hour of travel.
    pub travel_hourly: f64,
    /// $ per kilometre.
    pub per_km: f64,
    /// Compensation, as a fraction of the fees (0.10 = 10 %).
    pub compensation: f64,
    /// Upper bounds of the condition bands A..D on the IVP.
    #[serde(default)]
    pub thresholds: ConditionThresholds,
    /// The territory's IANA time zone: every date shown and every year or
    /// day grouped by is counted in it.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The RAM budget envelopes: what each served office may spend on
    /// works each year, held against the works plan.
    #[serde(default)]
    pub budgets: Vec<Budget>,
    /// How devices size photos before uploading them.
    #[serde(default)]
    pub photos: crate::photo_size::PhotoSettings,
    /// Set when the stored settings did not decode and these are the
    /// defaults: the pages tell the manager to check and save them again.
    #[serde(skip)]
    pub unreadable: bool,
}

impl Default for CsSettings {
    fn default() -> Self {
        Self {
            hourly: 75.0,
            travel_hourly: 45.0,
            per_km: 0.55,
            compensation: 0.10,
            thresholds: ConditionThresholds::default(),
            time_zone: default_time_zone(),
            budgets: Vec::new(),
            photos: Default::default(),
            unreadable: false,
        }
    }
}

/// One served office's budget envelope (RAM) for one calendar year.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub office_id: OfficeId,
    pub year: i64,
    /// Dollars.
    pub amount: f64,
}

fn default_time_zone() -> String {
    crate::calendar::DEFAULT_TIME_ZONE.to_string()
}

impl CsSettings {
    /// The territory's time zone; the default one if the stored name is
    /// unknown to this build's tz database (names are checked before they
    /// are saved, so only a tz database that dropped one gets here).
    pub fn zone(&self) -> crate::calendar::TimeZone {
        crate::calendar::zone(&self.time_zone).unwrap_or_else(|_| crate::calendar::default_zone())
    }

    /// Why these settings cannot be saved, in words a manager can act on.
    pub fn check(&self) -> Result<(), String> {
        if [
            self.hourly,
            self.travel_hourly,
            self.per_km,
            self.compensation,
        ]
        .iter()
        .any(|v| !v.is_finite() || *v < 0.0)
            || self.compensation > 1.0
        {
            return Err("taux invalides : nombres positifs, compensation entre 0 et 1".into());
        }
        let b = &self.thresholds.upper_bounds;
        if b.iter().any(|v| !v.is_finite() || *v <= 0.0 || *v > 1.0)
            || b.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(
                "seuils invalides : quatre pourcentages croissants entre 0 et 100 (A < B < C < D)"
                    .into(),
            );
        }
        crate::calendar::zone(&self.time_zone)?;
        self.photos.check()?;
        let mut seen = std::collections::HashSet::new();
        for b in &self.budgets {
            if !(2000..=2100).contains(&b.year) || !b.amount.is_finite() || b.amount < 0.0 {
                return Err(format!(
                    "enveloppe invalide ({}, {} $) : une année entre 2000 et 2100, un montant positif",
                    b.year, b.amount
                ));
            }
            if !seen.insert((b.office_id, b.year)) {
                return Err(format!(
                    "deux enveloppes pour le même organisme en {} : gardez-en une",
                    b.year
                ));
            }
        }
        Ok(())
    }
}

/// A CS territory as devices see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Territory {
    pub id: TerritoryId,
    pub name: String,
}

/// A served housing office.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Office {
    pub id: OfficeId,
    pub territory_id: TerritoryId,
    pub name: String,
    pub code: String,
}

/// A housing complex: what an inspector visits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Complex {
    pub id: ComplexId,
    pub territory_id: TerritoryId,
    pub office_id: OfficeId,
    pub code: String,
    pub name: String,
    pub address: String,
    pub city: String,
    pub dwellings: u32,
    pub year_built: u32,
    /// Replacement value in dollars (CAD), the denominator of the IVP.
    pub replacement_value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_bands_follow_default_thresholds() {
        let t = ConditionThresholds::default();
        assert_eq!(t.condition_for(0.0), Condition::A);
        assert_eq!(t.condition_for(0.05), Condition::A);
        assert_eq!(t.condition_for(0.07), Condition::B);
        assert_eq!(t.condition_for(0.15), Condition::C);
        assert_eq!(t.condition_for(0.16), Condition::D);
        assert_eq!(t.condition_for(0.31), Condition::E);
    }

    #[test]
    fn codes_are_stable_and_parse_back() {
        for r in Rating::ALL {
            assert_eq!(Rating::from_code(r.code()), Some(*r));
        }
        assert_eq!(
            serde_json::to_string(&Role::OfficeReader).unwrap(),
            "\"lecteur_organisme\""
        );
        assert!("Z".parse::<Rating>().is_err());
    }
}
