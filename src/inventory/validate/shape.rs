//! `raw`'s shape errors (TOML syntax, unknown key, wrong type, missing key) in our words:
//! what is wrong, and a hint that says what to write instead, such as the key the user
//! probably meant, or the quotes a string needs.

use super::Checker;
use crate::inventory::raw::ShapeError;
use toml::de::DeValue;

impl Checker<'_> {
    pub(super) fn shape_error(&mut self, err: &ShapeError) {
        let Some(span) = err.span.clone() else {
            let first_line = err.message.lines().next().unwrap_or("invalid TOML").trim();
            let (message, hint) = explain(first_line, "");
            return self.whole_file(message, &hint);
        };
        if let Some(hint) = err.hint {
            return self.error(span, err.message.clone(), hint);
        }
        let line_start = self.lines.line_start(span.start);
        let line = self.lines.snippet(&span).text;
        if let Some((key, value)) = unquoted_string(&line) {
            // Underline the whole value, not the character toml stopped at.
            let start = line_start + line.find(value).unwrap_or(0);
            return self.error(
                start..start + value.len(),
                format!("the string `{value}` needs quotes"),
                &format!("TOML strings are quoted: write `{key} = \"{value}\"`"),
            );
        }
        let first_line = err.message.lines().next().unwrap_or("invalid TOML").trim();
        let at = self.text.get(span.clone()).unwrap_or("");
        let (message, hint) = explain(first_line, at);
        self.error(span, message, &hint);
    }
}

/// Split toml's message into ours: the first part says what is wrong, the hint what to write.
/// `at` is the source text the error points at.
fn explain(message: &str, at: &str) -> (String, String) {
    let message = message
        .replace("expected a sequence", "expected an array")
        .replace("expected u16", "expected a port number from 1 to 65535")
        .replace("expected u64", "expected a whole number of seconds")
        .replace("expected u32", "expected a whole number greater than 0")
        .replace("expected a boolean", "expected `true` or `false`");
    let (what, expected) = match message.split_once(", expected ") {
        Some((what, expected)) => (what, Some(expected)),
        None => (message.as_str(), None),
    };
    if let Some(key) = what.strip_prefix("unknown field ") {
        let key = key.split(',').next().unwrap_or(key);
        let allowed = expected.map(|e| e.strip_prefix("one of ").unwrap_or(e));
        let hint = match allowed {
            Some(allowed) => match closest(key.trim_matches('`'), allowed) {
                Some(near) => format!("did you mean `{near}`? Allowed keys here: {allowed}"),
                None => format!("remove it or fix its spelling; allowed keys here: {allowed}"),
            },
            None => "remove it; this table takes no keys".to_string(),
        };
        return (format!("unknown key {key}"), hint);
    }
    if let Some(key) = what.strip_prefix("missing field ") {
        let example = match key.trim_matches('`') {
            "address" => "address = \"10.0.0.1\"",
            "host" => "host = \"db1\"",
            "name" => "name = \"dn1\"",
            "port" => "port = 5432",
            _ => "",
        };
        let hint = if example.is_empty() {
            format!("add {key} to this table; it is required")
        } else {
            format!("add `{example}` to this table; {key} is required")
        };
        return (format!("missing key {key}"), hint);
    }
    if what == "duplicate key" {
        return (
            format!("duplicate key `{at}`"),
            "each key and each [table] may appear only once; remove or rename this one".to_string(),
        );
    }
    let too_large = [" as i128", " as u128", "overflowed", "valid TOML value"];
    if is_integer(at) && too_large.iter().any(|t| message.contains(t)) {
        let range = "TOML integers are 64-bit, from -9223372036854775808 to 9223372036854775807";
        let hint = match expected.filter(|_| what.starts_with("invalid type")) {
            Some(expected) => format!("{range}; change this value to {expected}"),
            None => format!("{range}; write a smaller number"),
        };
        return (format!("integer `{at}` is out of range"), hint);
    }
    let is_value_error = ["invalid type", "invalid value", "invalid length", "unknown variant"]
        .iter()
        .any(|p| what.starts_with(p));
    let hint = match expected {
        Some("an array") if at.starts_with('[') => {
            let table = at.trim_matches(['[', ']']);
            format!("write [[{table}]] with double brackets: each entry is its own table in a list")
        }
        Some(expected) if what.starts_with("invalid type: string") => {
            format!("change this value to {expected} (without quotes)")
        }
        Some(expected) if is_value_error => format!("change this value to {expected}"),
        Some(expected) => format!("fix the TOML syntax here: expected {expected}"),
        None => "fix the TOML syntax here (see https://toml.io)".to_string(),
    };
    (message, hint)
}

/// `key = value` where the value is no TOML value and not the start of one (a quote, a
/// bracket or a brace): a string written without its quotes (`address = 10.0.0.1`, `host =
/// db1`). Returns the key and the value.
fn unquoted_string(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let value = value.split(" #").next().unwrap_or(value).trim();
    let bare_key = |k: &str| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    };
    let opens = value.starts_with(['"', '\'', '[', '{']);
    let unquoted = bare_key(key) && !value.is_empty() && !opens && !is_integer(value);
    (unquoted && DeValue::parse(value).is_err()).then_some((key, value))
}

/// Digits, with an optional sign and `_` separators: what an integer that is too large for
/// TOML looks like.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
}

/// The allowed key (from serde's "`a`, `b`" list) nearest to `key` by edit distance, if it is
/// near enough to be a typo: at most one edit per three characters (transpositions count one).
fn closest<'a>(key: &str, allowed: &'a str) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).max(1);
    allowed
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_matched_to_the_nearest_key() {
        let allowed = "`name`, `host`, `port`, `pooler_port`, `settings`";
        assert_eq!(closest("prot", allowed), Some("port"));
        assert_eq!(closest("hots", allowed), Some("host"));
        assert_eq!(closest("pooler-port", allowed), Some("pooler_port"));
        assert_eq!(closest("setings", allowed), Some("settings"));
        assert_eq!(closest("synchronous", allowed), None);
        assert_eq!(closest("x", allowed), None);
    }

    #[test]
    fn bare_words_are_strings_without_quotes() {
        assert_eq!(unquoted_string("address = 127.0.10.1"), Some(("address", "127.0.10.1")));
        assert_eq!(unquoted_string("host = db1   # the first"), Some(("host", "db1")));
        for not in ["port = 5432", "a = \"x", "a = [1,", "[hosts.db1]", "a = true", "a = 1.5"] {
            assert_eq!(unquoted_string(not), None, "{not}");
        }
    }
}
