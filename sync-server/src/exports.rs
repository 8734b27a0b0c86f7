//! The tables a manager downloads (works plan, activity statement, BSI
//! progress): each built once as a [`Table`] and written either as CSV
//! (`;`-separated, decimal commas, UTF-8 with BOM, the keys as headers: what
//! the SHQ's and the CS's own scripts read) or as an Excel workbook (.xlsx:
//! French headers, money, hours and kilometres as numbers with their
//! formats, a total row whose cells are `SUM` formulas). No HTTP here.

use rust_xlsxwriter::{Format, FormatBorder, Formula, Workbook, XlsxError};

/// What a column holds, which sets its format in a workbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A whole number (visits, complexes).
    Count,
    /// A calendar year: a number without a thousands separator.
    Year,
    /// Dollars, two decimals.
    Money,
    /// Hours, two decimals.
    Hours,
    /// Kilometres, whole.
    Km,
}

/// One column: its CSV key, its French header, its kind, and whether the
/// workbook's total row sums it.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub total: bool,
}

impl Column {
    pub const fn new(key: &'static str, label: &'static str, kind: Kind) -> Self {
        Self {
            key,
            label,
            kind,
            total: matches!(kind, Kind::Money | Kind::Hours | Kind::Km | Kind::Count),
        }
    }

    /// A numeric column the total row leaves empty (a year, say).
    pub const fn untotalled(self) -> Self {
        Self {
            total: false,
            ..self
        }
    }
}

/// A cell's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Number(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Number(f64::from(v))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Number(v as f64)
    }
}

/// A table to download: its file name without extension, its sheet's
/// title, columns and rows (each row as long as the columns).
#[derive(Clone, Debug)]
pub struct Table {
    pub file: String,
    pub sheet: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// A table that could not be written (a bug or a resource limit, never the
/// user's input): the HTTP layer answers a generic 500 and logs this.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("écriture du CSV : {0}")]
    Csv(String),
    #[error("écriture du classeur Excel : {0}")]
    Xlsx(#[from] XlsxError),
}

/// A number as the CSV writes it: two decimals, decimal comma.
pub fn csv_number(v: f64) -> String {
    format!("{v:.2}").replace('.', ",")
}

impl Table {
    /// The table as CSV (no total row: scripts sum what they need).
    pub fn csv(&self) -> Result<Vec<u8>, ExportError> {
        let mut w = csv::WriterBuilder::new()
            .delimiter(b';')
            .from_writer(vec![0xEF, 0xBB, 0xBF]);
        let bad = |e: csv::Error| ExportError::Csv(e.to_string());
        w.write_record(self.columns.iter().map(|c| c.key))
            .map_err(bad)?;
        for row in &self.rows {
            let cells = row.iter().zip(&self.columns).map(|(v, c)| match v {
                Value::Text(s) => s.clone(),
                Value::Number(n) if matches!(c.kind, Kind::Count | Kind::Year) => {
                    format!("{n:.0}")
                }
                Value::Number(n) => csv_number(*n),
            });
            w.write_record(cells).map_err(bad)?;
        }
        w.into_inner()
            .map_err(|e| ExportError::Csv(e.error().to_string()))
    }

    /// The table as an .xlsx workbook of one sheet: headers in bold, the
    /// header row frozen, a "Total" row of `SUM` formulas (with their
    /// values computed, so a reader that does not recalculate sees them).
    pub fn xlsx(&self) -> Result<Vec<u8>, ExportError> {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name(self.sheet)?;
        let header = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_border_bottom(FormatBorder::Thin);
        let format = |kind: Kind, bold: bool| {
            let f = match kind {
                Kind::Text => Format::new(),
                Kind::Count => Format::new().set_num_format("#,##0"),
                Kind::Year => Format::new().set_num_format("0"),
                Kind::Money => Format::new().set_num_format("#,##0.00\\ \"$\""),
                Kind::Hours => Format::new().set_num_format("#,##0.00\\ \"h\""),
                Kind::Km => Format::new().set_num_format("#,##0\\ \"km\""),
            };
            if bold { f.set_bold() } else { f }
        };
        for (c, col) in self.columns.iter().enumerate() {
            let c = c as u16;
            sheet.write_string_with_format(0, c, col.label, &header)?;
            let width = if col.kind == Kind::Text { 30 } else { 16 };
            sheet.set_column_width(c, width)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        for (r, row) in self.rows.iter().enumerate() {
            let r = (r + 1) as u32;
            for (c, (v, col)) in row.iter().zip(&self.columns).enumerate() {
                let c = c as u16;
                match v {
                    Value::Text(s) => sheet.write_string(r, c, s)?,
                    Value::Number(n) => {
                        sheet.write_number_with_format(r, c, *n, &format(col.kind, false))?
                    }
                };
            }
        }
        let total_row = (self.rows.len() + 1) as u32;
        sheet.write_string_with_format(total_row, 0, "Total", &format(Kind::Text, true))?;
        for (c, col) in self.columns.iter().enumerate().filter(|(_, c)| c.total) {
            let sum: f64 = self
                .rows
                .iter()
                .filter_map(|row| match row.get(c) {
                    Some(Value::Number(n)) => Some(*n),
                    _ => None,
                })
                .sum();
            let letter = rust_xlsxwriter::utility::column_number_to_name(c as u16);
            let formula = if self.rows.is_empty() {
                Formula::new("=0")
            } else {
                Formula::new(format!("=SUM({letter}2:{letter}{total_row})"))
            }
            .set_result(sum.to_string());
            sheet.write_formula_with_format(
                total_row,
                c as u16,
                formula,
                &format(col.kind, true),
            )?;
        }
        Ok(book.save_to_buffer()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            file: "t".into(),
            sheet: "Plan",
            columns: vec![
                Column::new("organisme", "Organisme", Kind::Text),
                Column::new("annee", "Année", Kind::Year).untotalled(),
                Column::new("cout", "Coût estimé", Kind::Money),
            ],
            rows: vec![
                vec!["OH A".to_string().into(), 2027_i64.into(), 1234.5.into()],
                vec!["OH B".to_string().into(), 2028_i64.into(), 10.25.into()],
            ],
        }
    }

    #[test]
    fn csv_keeps_the_keys_as_headers_and_writes_decimal_commas() {
        let csv = String::from_utf8(table().csv().unwrap()).unwrap();
        assert_eq!(
            csv,
            "\u{feff}organisme;annee;cout\nOH A;2027;1234,50\nOH B;2028;10,25\n"
        );
    }

    #[test]
    fn an_xlsx_workbook_is_a_zip_with_the_sheet_named_in_french() {
        let bytes = table().xlsx().unwrap();
        assert_eq!(&bytes[..2], b"PK", "an .xlsx is a zip archive");
    }
}
