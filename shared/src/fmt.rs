//! French display formats shared by the app's screens and the review pages,
//! so an amount reads the same everywhere (dates: [`crate::calendar`]).

/// Whole dollars the French way: narrow no-break spaces between thousands and
/// a no-break space before the sign, `12 345 $`.
pub fn money(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    format!("{}{out}\u{a0}$", if n < 0 { "-" } else { "" })
}

/// A decimal number the French way, with a comma and at most `decimals`
/// digits after it, trailing zeros dropped: `0,55`, `12,5`, `80`.
pub fn decimal(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    let s = if s == "-0" { "0" } else { s };
    s.replace('.', ",")
}

/// A fraction as a French percentage with one decimal: `0.1234` → `12,3 %`.
pub fn percent(fraction: f64) -> String {
    format!("{}\u{a0}%", decimal(fraction * 100.0, 1))
}

/// A number as people type it in Quebec: `2 000 000,50`, `1,5`, `0.55`,
/// `12 $`; `None` when it is not a finite number.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let cleaned: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '$'))
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_as_typed_in_quebec_and_nonsense_is_refused() {
        assert_eq!(parse_decimal("2 000 000,50"), Some(2_000_000.5));
        assert_eq!(parse_decimal("1,5"), Some(1.5));
        assert_eq!(parse_decimal(" 0.55 "), Some(0.55));
        assert_eq!(parse_decimal("12\u{a0}$"), Some(12.0));
        for bad in ["", "douze", "1,2,3", "NaN", "inf"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_read_the_french_way() {
        assert_eq!(money(1_234_567.4), "1\u{202f}234\u{202f}567\u{a0}$");
        assert_eq!(money(-5.0), "-5\u{a0}$");
        assert_eq!(decimal(0.55, 2), "0,55");
        assert_eq!(decimal(80.0, 2), "80");
        assert_eq!(decimal(12.50, 2), "12,5");
        assert_eq!(decimal(-0.001, 2), "0");
        assert_eq!(percent(0.1234), "12,3\u{a0}%");
        assert_eq!(percent(0.05), "5\u{a0}%");
    }
}
