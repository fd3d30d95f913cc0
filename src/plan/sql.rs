//! The one home of SQL text built from values: a value becomes a literal only through
//! [`literal`]. Node names reach SQL as identifiers the inventory validated.

/// `text` as an SQL string literal: quotes doubled, backslashes kept as they are, which is
/// what a literal means with `standard_conforming_strings` on (the default since PostgreSQL 9.1,
/// Postgres-XC's 9.4 base included; the templates never turn it off).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_doubles_quotes_and_keeps_backslashes() {
        assert_eq!(literal("127.0.10.1"), "'127.0.10.1'");
        assert_eq!(literal("o'brien"), "'o''brien'");
        assert_eq!(literal(r"a\b'c"), r"'a\b''c'");
    }
}
