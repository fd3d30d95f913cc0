//! What each host's values mean together and what hosts share: an address that other nodes
//! reach (one machine, one set of ports), and the two directories pgxc-deploy writes into, the
//! install (`install_prefix`) and the nodes' data (`data_root`). Paths are compared lexically,
//! as written; nothing here looks at a host.

use super::Checker;
use crate::inventory::model::Host;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

/// Directories that belong to the system or to everyone: pgxc-deploy unpacks an install into
/// `install_prefix` and makes node directories in `data_root`, and `clean` removes them, so
/// neither may be one of these. Their subdirectories (`/usr/local/pgsql`, `/var/lib/pgxc`,
/// `/tmp/pgxc-lab/...`) are fine.
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/etc",
    "/usr/local/include",
    "/usr/local/lib",
    "/usr/local/sbin",
    "/usr/local/share",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// `install_prefix` or `data_root` for one host, and where it was written.
#[derive(Clone)]
pub(super) struct Dir {
    /// Normalised by [`normalize`].
    pub path: String,
    /// `None`: the default.
    pub span: Option<Range<usize>>,
    /// Written in the host's own table, not in `[cluster]`.
    pub own: bool,
    /// No error was found in the path itself (else it is not compared with the other).
    pub valid: bool,
}

impl Checker<'_> {
    /// The install and the data need directories of their own: not the same, the data not
    /// inside the install, and the install not where pgxc-deploy keeps its own files in
    /// data_root. An install elsewhere inside data_root is fine (the PostgreSQL lab inventory
    /// has one, as only a lab host's `data` and `install` are the lab user's); a node's data
    /// directory is checked with the nodes, [`Checker::check_install_outside`].
    pub(super) fn check_dirs(&mut self, install: &Dir, data: &Dir) {
        let (i, d) = (&install.path, &data.path);
        let (message, hint) = if !install.valid || !data.valid {
            return;
        } else if i == d {
            (
                format!("data_root and install_prefix are the same directory `{d}`"),
                "the install is unpacked into install_prefix and each node's data directory is made in data_root: give each a directory of its own, such as `/usr/local/pgsql` and `/var/lib/pgxc`",
            )
        } else if is_within(i, d)
            && i[d.len()..].trim_start_matches('/').starts_with(".pgxc-deploy")
        {
            (
                format!(
                    "install_prefix `{i}` is where pgxc-deploy keeps its own files in data_root `{d}`"
                ),
                "pgxc-deploy's files in data_root are named `.pgxc-deploy*`: put the install elsewhere, such as `/usr/local/pgsql`",
            )
        } else if is_within(d, i) {
            (
                format!("data_root `{d}` is inside install_prefix `{i}`"),
                "an install replaces what is in install_prefix: put the data outside it, such as `/var/lib/pgxc`",
            )
        } else {
            return;
        };
        // Point at the most specific value written: a host's own, data_root first.
        let preference = [(data, true), (install, true), (data, false), (install, false)];
        let written = preference.iter().find(|(dir, own)| dir.own == *own && dir.span.is_some());
        if let Some(span) = written.and_then(|(dir, _)| dir.span.clone()) {
            self.error(span, message, hint);
        }
    }

    /// The install of the node's host is not inside the node's data directory (which initdb
    /// wants empty, and `clean` removes).
    pub(super) fn check_install_outside(
        &mut self,
        name_span: Range<usize>,
        node: &str,
        data_dir: &str,
        host: &Host,
    ) {
        let install = &host.install_prefix;
        if is_within(install, data_dir) {
            self.error(
                name_span,
                format!("the data directory of node `{node}`, `{data_dir}`, holds host `{}`'s install_prefix `{install}`", host.name),
                "initdb needs an empty data directory and `clean` removes it: rename the node, or put the install elsewhere, such as `/usr/local/pgsql`",
            );
        }
    }

    /// A directory pgxc-deploy must not take over. `path` is normalised.
    pub(super) fn check_not_system_dir(&mut self, span: Range<usize>, key: &str, path: &str) {
        if !SYSTEM_DIRS.contains(&path) {
            return;
        }
        let example = if key == "install_prefix" { "/usr/local/pgsql" } else { "/var/lib/pgxc" };
        self.error(
            span,
            format!("{key} is the system directory `{path}`"),
            &format!("pgxc-deploy writes into {key} and `clean` removes what it wrote there: give it a directory of its own, such as `{example}`"),
        );
    }

    /// Refuse an address that other nodes could not reach this host at; `true` if it is fine.
    pub(super) fn check_reachable(&mut self, address: &toml::Spanned<String>) -> bool {
        let a = address.get_ref();
        let (why, hint) = match not_a_host(a) {
            Some(NotAHost::Localhost) => (
                "names every host itself",
                "other nodes reach this host at its address (CREATE NODE, primary_conninfo), and `localhost` would point them at themselves: write the host's real address or DNS name (a test lab host: its own loopback address, such as `127.0.10.1`)",
            ),
            Some(NotAHost::Unspecified) => (
                "is the unspecified address, not a host's",
                "write the host's real IPv4 or IPv6 address or DNS name",
            ),
            Some(NotAHost::Group) => (
                "is a broadcast or multicast address, not a host's",
                "write the host's real IPv4 or IPv6 address or DNS name",
            ),
            None => return true,
        };
        self.error(address.span(), format!("address `{a}` {why}"), hint);
        false
    }
}

#[derive(Debug, PartialEq, Eq)]
enum NotAHost {
    Localhost,
    Unspecified,
    Group,
}

fn not_a_host(address: &str) -> Option<NotAHost> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        return match ip {
            _ if ip.is_unspecified() => Some(NotAHost::Unspecified),
            _ if ip.is_multicast() || ip == Ipv4Addr::BROADCAST => Some(NotAHost::Group),
            _ => None,
        };
    }
    let name = address.to_ascii_lowercase();
    let local = ["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"];
    (local.contains(&name.as_str()) || name.ends_with(".localhost")).then_some(NotAHost::Localhost)
}

/// What identifies a machine's address: an IP in its canonical form, a DNS name in lower case.
pub(super) fn machine_address(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => address.to_ascii_lowercase(),
    }
}

/// `//usr/./lib/` -> `/usr/lib`: empty and `.` components dropped, lexically (a `..` is
/// refused before this).
pub(super) fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    format!("/{}", parts.join("/"))
}

/// `inner` is `outer` or below it; both normalised.
fn is_within(inner: &str, outer: &str) -> bool {
    outer == "/" || inner == outer || inner.strip_prefix(outer).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_lexically() {
        for (written, normal) in [
            ("/usr", "/usr"),
            ("/usr/", "/usr"),
            ("//usr//local/", "/usr/local"),
            ("/./etc/.", "/etc"),
            ("/.", "/"),
            ("///", "/"),
        ] {
            assert_eq!(normalize(written), normal, "{written}");
        }
    }

    #[test]
    fn within_means_below_a_whole_component() {
        assert!(is_within("/srv/a/b", "/srv/a"));
        assert!(is_within("/srv/a", "/srv/a"));
        assert!(!is_within("/srv/ab", "/srv/a"));
        assert!(!is_within("/srv", "/srv/a"));
    }

    #[test]
    fn system_dirs_are_sorted_so_the_list_stays_reviewable() {
        assert!(SYSTEM_DIRS.windows(2).all(|w| w[0] < w[1]));
        assert!(SYSTEM_DIRS.iter().all(|d| normalize(d) == *d));
    }

    #[test]
    fn addresses_other_hosts_cannot_use() {
        for (address, verdict) in [
            ("localhost", Some(NotAHost::Localhost)),
            ("LOCALHOST", Some(NotAHost::Localhost)),
            ("db1.localhost", Some(NotAHost::Localhost)),
            ("0.0.0.0", Some(NotAHost::Unspecified)),
            ("::", Some(NotAHost::Unspecified)),
            ("::ffff:0.0.0.0", Some(NotAHost::Unspecified)),
            ("255.255.255.255", Some(NotAHost::Group)),
            ("224.0.0.1", Some(NotAHost::Group)),
            ("127.0.10.1", None),
            ("::1", None),
            ("localhostess.example.com", None),
            ("10.0.0.1", None),
        ] {
            assert_eq!(not_a_host(address), verdict, "{address}");
        }
    }

    #[test]
    fn machine_addresses_compare_canonical_forms() {
        assert_eq!(machine_address("fd00:0:0::3"), machine_address("fd00::3"));
        assert_eq!(machine_address("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(machine_address("DB1.Example.com"), "db1.example.com");
    }
}
