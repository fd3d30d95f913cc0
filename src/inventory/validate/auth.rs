//! `[auth]`: the pg_hba.conf method, where the superuser's password comes from, and which client
//! networks may connect. The password itself is never read here.

use super::Checker;
use super::env::is_env_name;
use crate::inventory::model::{Auth, AuthMethod, Flavor, PasswordSource};
use crate::inventory::raw::{RawAuth, RawAuthMethod};
use std::net::IpAddr;
use std::path::Path;
use toml::Spanned;

const PASSWORD_HINT: &str =
    "add [auth] with password_file or password_env, or method = \"trust\" for a lab";

impl Checker<'_> {
    /// A cluster without nodes (only hosts, as for `exec`) needs no password.
    /// The default method is the strongest the flavor has: scram-sha-256 for PostgreSQL, md5
    /// for Postgres-XC (Postgres-X2 is PostgreSQL 9.4, which has no scram-sha-256).
    pub(super) fn auth(
        &mut self,
        raw: Option<&Spanned<RawAuth>>,
        flavor: Flavor,
        has_nodes: bool,
        base_dir: &Path,
        home: Option<&Path>,
    ) -> Auth {
        let default = match flavor {
            // Postgres-XC is 9.4-based (no SCRAM); Postgres-XL's pgxc_ctl sets up md5 too.
            Flavor::PostgresXc | Flavor::PostgresXl | Flavor::Opentenbase => AuthMethod::Md5,
            Flavor::Postgresql => AuthMethod::ScramSha256,
        };
        let Some(spanned) = raw else {
            if has_nodes {
                self.whole_file(
                    format!("no [auth]: the default method {default} needs a password"),
                    PASSWORD_HINT,
                );
            }
            return Auth { method: default, password: None, allow: Vec::new() };
        };
        let a = spanned.get_ref();
        let method = match a.method.as_ref().map(|m| *m.get_ref()) {
            Some(RawAuthMethod::Trust) => AuthMethod::Trust,
            Some(RawAuthMethod::Md5) => AuthMethod::Md5,
            Some(RawAuthMethod::ScramSha256) => AuthMethod::ScramSha256,
            None => default,
        };
        if let (Some(m), Flavor::PostgresXc, AuthMethod::ScramSha256) = (&a.method, flavor, method)
        {
            self.error(
                m.span(),
                "method `scram-sha-256` is not known to Postgres-XC".to_string(),
                "Postgres-XC / Postgres-X2 is based on PostgreSQL 9.4, which has md5 but no scram-sha-256: write `method = \"md5\"`",
            );
        }

        if let Some(name) = a.password_env.as_ref().filter(|n| !is_env_name(n.get_ref())) {
            self.error(
                name.span(),
                format!("invalid password_env `{}`: not an environment variable name", name.get_ref()),
                "write the variable's name itself, such as `PGXC_PASSWORD` (no `$`): letters, digits and `_`, not starting with a digit",
            );
        }
        let password = match (&a.password_file, &a.password_env) {
            (Some(file), Some(env)) => {
                let second = if file.span().start > env.span().start { file } else { env };
                self.error(
                    second.span(),
                    "set only one of `password_file` and `password_env`".to_string(),
                    "the password is read from one place; remove one of them",
                );
                None
            }
            (Some(file), None) => {
                Some(PasswordSource::File(self.local_path(file, "password_file", base_dir, home)))
            }
            (None, Some(env)) => Some(PasswordSource::Env(env.get_ref().clone())),
            (None, None) => {
                if has_nodes && method != AuthMethod::Trust {
                    self.error(
                        spanned.span(),
                        format!("auth method `{method}` needs a password"),
                        "set `password_file = \"~/.pgxc-password\"` or `password_env = \"PGXC_PASSWORD\"`, or `method = \"trust\"` for a lab",
                    );
                }
                None
            }
        };

        let mut allow = Vec::new();
        for network in a.allow.iter().flatten() {
            match check_cidr(network.get_ref()) {
                Ok(()) => allow.push(network.get_ref().clone()),
                Err(why) => self.error(
                    network.span(),
                    format!("invalid network `{}` in allow: {why}", network.get_ref()),
                    "write an IPv4 or IPv6 network as address/prefix, such as `10.0.0.0/24`, or `192.168.1.7/32` for one address",
                ),
            }
        }
        Auth { method, password, allow }
    }
}

/// An IPv4 or IPv6 network in CIDR form, as pg_hba.conf takes it: `address/prefix`.
fn check_cidr(network: &str) -> Result<(), String> {
    let Some((address, prefix)) = network.split_once('/') else {
        return Err("no `/prefix`".to_string());
    };
    let ip: IpAddr = address.parse().map_err(|_| format!("`{address}` is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match prefix.bytes().all(|b| b.is_ascii_digit()) && !prefix.is_empty() {
        true => prefix.parse::<u32>().ok(),
        false => None,
    };
    match bits {
        Some(bits) if bits <= max => Ok(()),
        Some(_) | None => Err(format!("the prefix must be a number from 0 to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::validate::{test_env, validate};
    use std::path::PathBuf;

    #[test]
    fn networks() {
        for ok in ["10.0.0.0/24", "192.168.1.7/32", "0.0.0.0/0", "fd00::/64", "::1/128"] {
            assert_eq!(check_cidr(ok), Ok(()), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/99999999999",
            "db1/32",
            "10.0.0/24",
            "[::1]/128",
            "fe80::1%eth0/64",
            "10.0.0.0/24 ",
            "",
            "all",
        ] {
            assert!(check_cidr(bad).is_err(), "{bad}");
        }
    }

    const NODES: &str = "[hosts.db1]\naddress = \"db1\"\n[cluster]\nflavor = \"postgresql\"\n\
                         [[datanodes]]\nname = \"pg\"\nhost = \"db1\"\nport = 5432\n";

    fn auth(text: &str) -> Result<Auth, Vec<String>> {
        match validate(text, Path::new("inv/x.toml"), &test_env) {
            Ok(inv) => Ok(inv.auth),
            Err(err) => Err(err.diagnostics.iter().map(|d| d.message.clone()).collect()),
        }
    }

    #[test]
    fn password_sources() {
        let a = auth(&format!("{NODES}[auth]\npassword_file = \"~/.pgxc-password\"\n")).unwrap();
        assert_eq!(a.method, AuthMethod::ScramSha256);
        assert_eq!(
            a.password,
            Some(PasswordSource::File(PathBuf::from("/home/tester/.pgxc-password")))
        );
        let a = auth(&format!("{NODES}[auth]\nmethod = \"trust\"\n")).unwrap();
        assert_eq!((a.method, a.password), (AuthMethod::Trust, None));
        // Trust may still set the superuser's password.
        let a = auth(&format!("{NODES}[auth]\nmethod = \"trust\"\npassword_env = \"PW\"\n"));
        assert_eq!(a.unwrap().password, Some(PasswordSource::Env("PW".into())));
    }

    #[test]
    fn without_nodes_no_password_is_needed() {
        let hosts = "[hosts.db1]\naddress = \"db1\"\n";
        assert!(auth(hosts).is_ok());
        assert_eq!(
            auth(&format!("{hosts}[auth]\nmethod = \"md5\"\n")).unwrap().method,
            AuthMethod::Md5
        );
        assert_eq!(
            auth(&format!("{NODES}[auth]\nmethod = \"md5\"\n")),
            Err(vec!["auth method `md5` needs a password".to_string()])
        );
        assert_eq!(
            auth(NODES),
            Err(vec!["no [auth]: the default method scram-sha-256 needs a password".to_string()])
        );
    }
}
