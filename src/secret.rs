//! The cluster superuser's password: read once on this machine, never printed. Its `Debug`
//! hides it, and it reaches hosts only as file contents (a libpq password file, initdb's
//! `--pwfile`), never on a command line, where any user could read it from the process list.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::inventory::PasswordSource;

/// The password, as read from the inventory's `password_file` or `password_env`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Read it from where the inventory says: the first line of a file, or a variable. The
    /// error names the place and says what to do, never the value.
    pub fn read(source: &PasswordSource) -> Result<Secret, String> {
        let (text, place) = match source {
            PasswordSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("[auth] password_file {}: {e}: create it, mode 0600", path.display())
                })?;
                (text, format!("password_file {}", path.display()))
            }
            PasswordSource::Env(name) => {
                let text = std::env::var(name).map_err(|_| {
                    format!("[auth] password_env: ${name} is not set: export it before running")
                })?;
                (text, format!("${name}"))
            }
        };
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(format!("[auth] the password in {place} is empty: write the password"));
        }
        Ok(Secret(line.to_string()))
    }

    /// For tests.
    pub fn new(password: &str) -> Secret {
        Secret(password.to_string())
    }

    /// initdb's `--pwfile` content: the password on one line.
    pub fn pwfile(&self) -> Vec<u8> {
        format!("{}\n", self.0).into_bytes()
    }

    /// A libpq password file letting `user` connect anywhere with this password.
    pub fn pgpass(&self, user: &str) -> Vec<u8> {
        format!("*:*:*:{}:{}\n", pgpass_escape(user), pgpass_escape(&self.0)).into_bytes()
    }

    /// `ALTER ROLE user PASSWORD '...'` with the password already hashed as the server keeps
    /// it (a SCRAM-SHA-256 verifier, else md5): the servers, their logs and the statements a
    /// Postgres-XC coordinator passes on never see the password itself. Committed locally: a
    /// primary whose synchronous standby is down would otherwise wait for it indefinitely.
    pub fn alter_role_sql(&self, user: &str, scram: bool) -> String {
        let hashed = if scram {
            postgres_protocol::password::scram_sha_256(self.0.as_bytes())
        } else {
            postgres_protocol::password::md5(self.0.as_bytes(), user)
        };
        format!(
            "SET synchronous_commit TO local;\nALTER ROLE \"{}\" PASSWORD '{}';\n",
            user.replace('"', "\"\""),
            hashed
        )
    }

    /// The SHA-256 of [`Secret::pgpass`], to tell whether a host's file is current without
    /// reading the password back.
    pub fn pgpass_sha256(&self, user: &str) -> String {
        Sha256::digest(self.pgpass(user)).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `:` and `\` are escaped with `\` in a password file.
fn pgpass_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_it_and_pgpass_escapes_it() {
        let s = Secret::new(r"p:a\ss");
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert_eq!(s.pgpass("pgxc"), b"*:*:*:pgxc:p\\:a\\\\ss\n");
        assert_eq!(s.pwfile(), b"p:a\\ss\n");
        assert_eq!(s.pgpass_sha256("pgxc").len(), 64);
    }

    #[test]
    fn alter_role_sends_the_hash_the_server_keeps_never_the_password() {
        let s = Secret::new("s3cret");
        // md5 of the password followed by the user name, as PostgreSQL stores it.
        assert_eq!(
            s.alter_role_sql("pgxc", false),
            format!(
                "SET synchronous_commit TO local;\nALTER ROLE \"pgxc\" PASSWORD 'md5{}';\n",
                md5_hex("s3cretpgxc")
            )
        );
        let scram = s.alter_role_sql("pg\"x", true);
        assert!(
            scram.contains("\nALTER ROLE \"pg\"\"x\" PASSWORD 'SCRAM-SHA-256$4096:"),
            "{scram}"
        );
        assert!(!scram.contains("s3cret"));
    }

    fn md5_hex(text: &str) -> String {
        let out = std::process::Command::new("md5sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(text.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap().split(' ').next().unwrap().to_string()
    }

    #[test]
    fn read_takes_the_first_line_and_never_shows_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(Secret::read(&PasswordSource::File(file.clone())), Ok(Secret::new("s3cret")));
        std::fs::write(&file, "\n").unwrap();
        let err = Secret::read(&PasswordSource::File(file)).unwrap_err();
        assert!(err.contains("is empty"), "{err}");
        let err = Secret::read(&PasswordSource::Env("PGXC_TEST_SURELY_UNSET".into())).unwrap_err();
        assert!(err.contains("$PGXC_TEST_SURELY_UNSET is not set"), "{err}");
    }
}
