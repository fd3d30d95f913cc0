//! An error and its causes (its `source()` chain) as one line, `outer: cause: inner cause`:
//! how a step's failure and a command's error are shown when one line is wanted.

/// `err` followed by each of its causes, separated by `: `.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_follows_its_error() {
        let err = Wrapped(std::io::Error::other("disk full"));
        assert_eq!(chain(&err), "cannot save: disk full");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot save")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
