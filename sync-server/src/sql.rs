//! SQL fragments both SQL backends share (SQLite and PostgreSQL speak them
//! alike): the IVP of a summary row joined with its complex, and the
//! building condition of an IVP. Held to the pure functions of
//! [`crate::reports`] by the SQLite backend's tests.

use bilan_shared::domain::ConditionThresholds;

/// The building condition of an IVP expression, as SQL: the same bands as
/// [`ConditionThresholds::condition_for`] (the tests hold them together).
pub fn condition_sql(ivp: &str, t: &ConditionThresholds) -> String {
    let b = t.upper_bounds;
    format!(
        "CASE WHEN {ivp} <= {} THEN 'A' WHEN {ivp} <= {} THEN 'B' WHEN {ivp} <= {} THEN 'C' WHEN {ivp} <= {} THEN 'D' ELSE 'E' END",
        b[0], b[1], b[2], b[3]
    )
}

/// The IVP of a summary row joined with its complex, as SQL: the same as
/// [`crate::reports::ivp`].
pub const IVP_SQL: &str =
    "(CASE WHEN c.replacement_value > 0 THEN s.cost_5y / c.replacement_value ELSE 0.0 END)";
