//! `$NAME`, `${NAME}` and `$$` in inventory strings.
//!
//! Pure: the caller passes the lookup (`inventory::parse` passes `std::env::var`, tests a map).
//! `validate` expands every string value before checking it, so a check sees what the user
//! meant, while its diagnostic still points at what the user wrote.

/// Looks a variable up; `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `$NAME` or `${NAME}` names a variable that is not set.
    Unset(String),
    /// `${...}` with something else than a variable name inside; holds it.
    BadName(String),
    /// `${` without a closing `}`; holds what followed it.
    Unclosed(String),
}

/// Expand `$NAME`, `${NAME}` and `${NAME:-default}` (NAME: `[A-Za-z_][A-Za-z0-9_]*`); `$$` is
/// one `$`. A `$` followed
/// by anything else (or nothing) is kept as it is, as a shell would. Every problem in the value
/// is returned, each variable once.
pub fn expand(value: &str, env: Lookup<'_>) -> Result<String, Vec<ExpandError>> {
    let mut out = String::with_capacity(value.len());
    let mut errors = Vec::new();
    let mut rest = value;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let mut default = None;
        let (name, consumed) = if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        } else if let Some(braced) = after.strip_prefix('{') {
            match braced.split_once('}') {
                Some((name, _)) if is_env_name(name) => (name, name.len() + 2),
                // `${NAME:-default}`: the default when NAME is unset or empty, as in a shell.
                Some((inside, _))
                    if inside.split_once(":-").is_some_and(|(n, _)| is_env_name(n)) =>
                {
                    let (name, fallback) = inside.split_once(":-").expect("checked");
                    default = Some(fallback);
                    (name, inside.len() + 2)
                }
                Some((inside, _)) => {
                    push_once(&mut errors, ExpandError::BadName(inside.to_string()));
                    rest = &braced[inside.len() + 1..];
                    continue;
                }
                None => {
                    push_once(&mut errors, ExpandError::Unclosed(braced.to_string()));
                    rest = "";
                    continue;
                }
            }
        } else {
            let len = name_len(after);
            if len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            (&after[..len], len)
        };
        match (env(name).filter(|v| !v.is_empty() || default.is_none()), default) {
            (Some(found), _) => out.push_str(&found),
            (None, Some(fallback)) => out.push_str(fallback),
            (None, None) => push_once(&mut errors, ExpandError::Unset(name.to_string())),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// A name `$NAME` and `password_env` accept: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name_len(name) == name.len()
}

/// The length of the variable name at the start of `s` (0: none).
fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + 1;
    }
    len
}

fn push_once(errors: &mut Vec<ExpandError>, error: ExpandError) {
    if !errors.contains(&error) {
        errors.push(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/tester".into()),
            "A" => Some("x".into()),
            "EMPTY" => Some(String::new()),
            "DOLLARS" => Some("$A".into()),
            _ => None,
        }
    }

    fn ok(value: &str) -> String {
        expand(value, &env).unwrap_or_else(|e| panic!("{value}: {e:?}"))
    }

    #[test]
    fn variables_expand() {
        assert_eq!(ok("$HOME/pgxc"), "/home/tester/pgxc");
        assert_eq!(ok("${HOME}/pgxc"), "/home/tester/pgxc");
        assert_eq!(ok("${A}b $A-b"), "xb x-b");
        assert_eq!(ok("[$EMPTY]"), "[]");
        assert_eq!(ok("no variables"), "no variables");
        assert_eq!(ok(""), "");
    }

    #[test]
    fn a_default_applies_when_unset_or_empty() {
        assert_eq!(ok("${UNSET:-/opt/pgxc}"), "/opt/pgxc");
        assert_eq!(ok("${EMPTY:-/opt/pgxc}/bin"), "/opt/pgxc/bin");
        assert_eq!(ok("${A:-/opt/pgxc}"), "x");
        assert_eq!(ok("${UNSET:-}"), "");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("a$$b"), "a$b");
        assert_eq!(ok("$$HOME"), "$HOME");
        assert_eq!(ok("$$$A"), "$x");
        assert_eq!(ok("$$$$"), "$$");
        assert_eq!(ok("echo $${A}"), "echo ${A}");
    }

    #[test]
    fn a_dollar_before_anything_else_stays() {
        assert_eq!(ok("machine$"), "machine$");
        assert_eq!(ok("s/a$/b/"), "s/a$/b/");
        assert_eq!(ok("$(date) $1 $ é$"), "$(date) $1 $ é$");
    }

    #[test]
    fn expanded_values_are_not_expanded_again() {
        assert_eq!(ok("$DOLLARS"), "$A");
    }

    #[test]
    fn errors_name_every_unset_variable_once() {
        assert_eq!(
            expand("$NOPE/${NOPE}/$ALSO_NOT/$A", &env),
            Err(vec![ExpandError::Unset("NOPE".into()), ExpandError::Unset("ALSO_NOT".into())])
        );
        assert_eq!(expand("${}", &env), Err(vec![ExpandError::BadName(String::new())]));
        assert_eq!(expand("${A-b}c", &env), Err(vec![ExpandError::BadName("A-b".into())]));
        assert_eq!(expand("${HOME", &env), Err(vec![ExpandError::Unclosed("HOME".into())]));
        assert_eq!(
            expand("${NOPE} ${1}", &env),
            Err(vec![ExpandError::Unset("NOPE".into()), ExpandError::BadName("1".into())])
        );
    }

    #[test]
    fn env_names() {
        for ok in ["PGXC_PASSWORD", "_x", "a1", "A"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "$A", "A-B", "A B", "é"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
