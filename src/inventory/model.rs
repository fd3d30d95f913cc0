//! The validated inventory: types that cannot hold an invalid value.
//!
//! Only `validate` builds an [`Inventory`], after every check passed, so the rest of the tool
//! (commands, planning, the executor) can trust every field: hosts exist, ports are free and
//! non-zero, paths are absolute and shell-safe, and a [`NodeName`] is a valid SQL identifier.
//! No I/O here.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Which server software the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Postgres-XC: a GTM, coordinators and datanodes.
    PostgresXc,
    /// Plain PostgreSQL: datanodes (primaries) and their streaming standbys.
    Postgresql,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::PostgresXc => "postgres-xc",
            Flavor::Postgresql => "postgresql",
        })
    }
}

/// What a node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Gtm,
    Coordinator,
    Datanode,
    Standby,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Gtm => "gtm",
            Role::Coordinator => "coordinator",
            Role::Datanode => "datanode",
            Role::Standby => "standby",
        })
    }
}

/// A node name that is a valid unquoted SQL identifier, so it can be written into
/// `CREATE NODE`, configuration files and paths without quoting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(String);

/// Why a string is not a [`NodeName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeNameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 63 bytes")]
    TooLong,
    #[error("must start with a lowercase letter or an underscore")]
    BadStart,
    #[error("contains {}; only lowercase letters, digits, `_` and `$` are allowed", describe_char(*.0))]
    BadChar(char),
    #[error("is a reserved SQL keyword")]
    Reserved,
}

/// A character as a reader can see it in a message: "`;`", "a space", ...
pub(super) fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '`' => "a backtick".to_string(),
        '\n' => "a newline".to_string(),
        '\t' => "a tab".to_string(),
        c if c.is_control() => format!("the control character {:?}", c),
        c => format!("`{c}`"),
    }
}

/// Words that cannot be used as an unquoted identifier: PostgreSQL's reserved keywords, plus a
/// few that Postgres-XC adds (`node`, `barrier`, ...) or that read badly as names (`drop`).
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "barrier",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "distribute",
    "do",
    "drop",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "node",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

impl NodeName {
    /// The longest identifier PostgreSQL keeps without truncating it (NAMEDATALEN - 1).
    pub const MAX_LEN: usize = 63;

    pub fn new(name: &str) -> Result<NodeName, NodeNameError> {
        let first = name.chars().next().ok_or(NodeNameError::Empty)?;
        if name.len() > Self::MAX_LEN {
            return Err(NodeNameError::TooLong);
        }
        if !(first.is_ascii_lowercase() || first == '_') {
            return Err(NodeNameError::BadStart);
        }
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$';
        if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
            return Err(NodeNameError::BadChar(bad));
        }
        if RESERVED.contains(&name) {
            return Err(NodeNameError::Reserved);
        }
        Ok(NodeName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeName {
    type Err = NodeNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeName::new(s)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A validated inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// The file it was read from, as given to `load`/`parse`.
    pub path: PathBuf,
    pub cluster: Cluster,
    /// In file order; at least one.
    pub hosts: Vec<Host>,
    /// The GTM, then coordinators, then datanodes, each datanode followed by its standby.
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub flavor: Flavor,
    /// The OS user that owns the cluster's processes and data directories.
    pub os_user: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// The `[hosts.<name>]` key.
    pub name: String,
    /// An IP literal or a DNS name.
    pub address: String,
    pub ssh: SshTarget,
    /// Absolute remote path; binaries are in `<install_prefix>/bin`.
    pub install_prefix: String,
    /// Absolute remote path; each node's data directory is `<data_root>/<node name>`.
    pub data_root: String,
}

/// How to reach a host over SSH: `[ssh]` defaults merged with the host's overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct SshTarget {
    /// `None`: the caller uses the local user name.
    pub user: Option<String>,
    pub port: u16,
    /// `None`: use ssh-agent. `~/` and relative paths are already resolved.
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: NodeName,
    pub role: Role,
    /// Name of a host in [`Inventory::hosts`].
    pub host: String,
    pub port: u16,
    /// Coordinators only.
    pub pooler_port: Option<u16>,
    /// `<host data_root>/<node name>`.
    pub data_dir: String,
    /// Standbys only: the datanode they replicate.
    pub primary: Option<NodeName>,
    /// Standbys only: replicate synchronously.
    pub synchronous: bool,
}

impl Inventory {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name.as_str() == name)
    }

    /// Where the server binaries live on `host`.
    pub fn bin_dir(&self, host: &Host) -> String {
        format!("{}/bin", host.install_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for ok in ["dn1", "_x", "coord_1", "a$b", &"a".repeat(63)] {
            assert_eq!(NodeName::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(NodeName::new(""), Err(NodeNameError::Empty));
        assert_eq!(NodeName::new(&"a".repeat(64)), Err(NodeNameError::TooLong));
        assert_eq!(NodeName::new("1dn"), Err(NodeNameError::BadStart));
        assert_eq!(NodeName::new("Dn1"), Err(NodeNameError::BadStart));
        assert_eq!(NodeName::new("dn-1"), Err(NodeNameError::BadChar('-')));
        assert_eq!(NodeName::new("dn;drop"), Err(NodeNameError::BadChar(';')));
        assert_eq!(NodeName::new("select"), Err(NodeNameError::Reserved));
        assert_eq!(NodeName::new("node"), Err(NodeNameError::Reserved));
    }

    #[test]
    fn reserved_words_are_sorted_so_the_list_stays_reviewable() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn roles_display() {
        let shown: Vec<String> = [Role::Gtm, Role::Coordinator, Role::Datanode, Role::Standby]
            .iter()
            .map(Role::to_string)
            .collect();
        assert_eq!(shown, ["gtm", "coordinator", "datanode", "standby"]);
    }
}
