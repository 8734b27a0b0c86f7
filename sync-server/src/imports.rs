//! CSV files of offices, complexes and budget envelopes (French headers), parsed and checked
//! line by line without writing anything: the import preview, and what the
//! import writes once every line passes. Pure: the territory's offices are
//! passed in.

use bilan_shared::domain::{Budget, Complex, Office};
use bilan_shared::ids::{ComplexId, TerritoryId};

use crate::StoreError;

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

/// Headers of the budget envelopes CSV (`;`-separated: amounts take a
/// decimal comma).
pub const BUDGET_HEADERS: [&str; 3] = ["organisme", "annee", "montant"];

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

/// A file with a NUL character is refused at its first one's line.
fn refuse_nul_line(csv_text: &str) -> Result<(), ImportError> {
    match csv_text.find('\0') {
        Some(at) => Err(ImportError::Lines(vec![LineError {
            line: csv_text[..at].matches('\n').count() + 1,
            message: crate::error::nul_message("le fichier"),
        }])),
        None => Ok(()),
    }
}

/// Reads a CSV with `headers` (`delimiter`-separated) line by line: `check`
/// turns a line into a row, given the rows kept so far, or says what is
/// wrong with it. Every line or nothing: the errors of all the lines.
fn read_lines<T>(
    csv_text: &str,
    delimiter: u8,
    headers: &[&str],
    mut check: impl FnMut(&csv::StringRecord, &[T]) -> Result<T, Vec<String>>,
) -> Result<Vec<T>, ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    refuse_nul_line(csv_text)?;
    check_headers(&mut rdr, headers)?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let message = match rec {
            Ok(r) => match check(&r, &rows) {
                Ok(row) => {
                    rows.push(row);
                    continue;
                }
                Err(problems) => problems.join("; "),
            },
            Err(e) => e.to_string(),
        };
        errors.push(LineError { line, message });
    }
    if !errors.is_empty() {
        return Err(ImportError::Lines(errors));
    }
    Ok(rows)
}

/// Checks an offices CSV without writing anything (the import preview).
pub fn parse_offices(csv_text: &str) -> Result<Vec<(String, String)>, ImportError> {
    read_lines(csv_text, b',', &OFFICE_HEADERS, |r, _| {
        let field = |n: usize| r.get(n).unwrap_or("").to_string();
        if field(0).is_empty() || field(1).is_empty() {
            return Err(vec!["code et nom sont obligatoires".into()]);
        }
        Ok((field(0), field(1)))
    })
}

/// Checks a complexes CSV against the territory's `offices`; `organisme`
/// is an office code.
pub fn parse_complexes(
    offices: &[Office],
    territory: TerritoryId,
    csv_text: &str,
) -> Result<Vec<Complex>, ImportError> {
    read_lines(csv_text, b',', &COMPLEX_HEADERS, |r, _| {
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
        let value = bilan_shared::fmt::parse_decimal(&field(7))
            .filter(|v| *v > 0.0)
            .or_else(|| {
                problems.push("« valeur_remplacement » doit être un montant positif".into());
                None
            });
        match (office, dwellings, year, value) {
            (Some(o), Some(d), Some(y), Some(v)) if problems.is_empty() => Ok(Complex {
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
            }),
            _ => Err(problems),
        }
    })
}

/// Checks a budget envelopes CSV (`organisme;annee;montant`, the office by
/// its code) against the territory's `offices`: every line or nothing.
pub fn parse_budgets(offices: &[Office], csv_text: &str) -> Result<Vec<Budget>, ImportError> {
    read_lines(csv_text, b';', &BUDGET_HEADERS, |r, rows: &[Budget]| {
        let field = |n: usize| r.get(n).unwrap_or("").to_string();
        let mut problems = Vec::new();
        let office = offices.iter().find(|o| o.code == field(0));
        if office.is_none() {
            problems.push(format!(
                "organisme « {} » inconnu dans ce territoire",
                field(0)
            ));
        }
        let year = field(1)
            .parse::<i64>()
            .ok()
            .filter(|y| (2000..=2100).contains(y));
        if year.is_none() {
            problems.push("« annee » doit être une année entre 2000 et 2100".into());
        }
        let amount = bilan_shared::fmt::parse_decimal(&field(2)).filter(|a| *a >= 0.0);
        if amount.is_none() {
            problems.push("« montant » doit être un montant positif (ex. 250 000,00)".into());
        }
        match (office, year, amount) {
            (Some(o), Some(y), _) if rows.iter().any(|b| b.office_id == o.id && b.year == y) => {
                problems.push(format!("{} a déjà une enveloppe pour {y}", o.code));
                Err(problems)
            }
            (Some(o), Some(y), Some(a)) if problems.is_empty() => Ok(Budget {
                office_id: o.id,
                year: y,
                amount: a,
            }),
            _ => Err(problems),
        }
    })
}

/// Budget envelopes as the CSV [`parse_budgets`] reads (office codes).
pub fn budgets_csv(offices: &[Office], budgets: &[Budget]) -> String {
    let mut out = BUDGET_HEADERS.join(";");
    for b in budgets {
        let code = offices
            .iter()
            .find(|o| o.id == b.office_id)
            .map_or("?", |o| o.code.as_str());
        out.push_str(&format!(
            "\n{code};{};{}",
            b.year,
            crate::exports::csv_number(b.amount)
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod budget_tests {
    use super::*;
    use bilan_shared::ids::OfficeId;

    fn offices() -> Vec<Office> {
        let t = TerritoryId::new();
        ["OH-TR", "OMH-SH"]
            .iter()
            .map(|c| Office {
                id: OfficeId::new(),
                territory_id: t,
                code: c.to_string(),
                name: c.to_string(),
            })
            .collect()
    }

    #[test]
    fn budget_envelopes_read_back_as_they_are_written() {
        let o = offices();
        let text = "organisme;annee;montant\nOH-TR;2027;250 000,50\nOMH-SH;2027;90000\n";
        let b = parse_budgets(&o, text).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].office_id, b[0].year, b[0].amount),
            (o[0].id, 2027, 250_000.5)
        );
        assert_eq!(parse_budgets(&o, &budgets_csv(&o, &b)).unwrap(), b);
    }

    #[test]
    fn a_bad_budget_line_refuses_the_whole_file_with_each_line_said() {
        let o = offices();
        let text = "organisme;annee;montant\nOH-XX;2027;1\nOH-TR;27;1\nOH-TR;2027;-5\nOH-TR;2028;1\nOH-TR;2028;2\n";
        match parse_budgets(&o, text) {
            Err(ImportError::Lines(e)) => {
                assert_eq!(
                    e.iter().map(|e| e.line).collect::<Vec<_>>(),
                    vec![2, 3, 4, 6]
                );
                assert!(e[0].message.contains("OH-XX"), "{:?}", e[0]);
            }
            other => panic!("refused expected: {other:?}"),
        }
        assert!(matches!(
            parse_budgets(&o, "office;year;amount\n"),
            Err(ImportError::Headers { .. })
        ));
    }
}
