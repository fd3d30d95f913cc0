//! The validated inventory: types that cannot hold an invalid value.
//!
//! Only `validate` builds an [`Inventory`], after every check passed, so the rest of the tool
//! (commands, planning, the executor) can trust every field: hosts exist, ports are free and
//! non-zero, paths are absolute and shell-safe, and a [`NodeName`] is a valid SQL identifier.
//! No I/O here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Which server software the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Postgres-XC: a GTM, coordinators and datanodes.
    PostgresXc,
    /// Postgres-XL 10: Postgres-XC's layout on PostgreSQL 10.
    PostgresXl,
    /// OpenTenBase: Postgres-XL's descendant on PostgreSQL 10, with sharded tables, node
    /// groups and a forward process on every node.
    Opentenbase,
    /// Plain PostgreSQL: datanodes (primaries) and their streaming standbys.
    Postgresql,
}

impl Flavor {
    /// A Postgres-XC-family cluster (Postgres-XC, Postgres-XL, OpenTenBase): a GTM,
    /// coordinators that register the nodes, datanodes reached through them.
    pub fn is_pgxc(self) -> bool {
        matches!(self, Flavor::PostgresXc | Flavor::PostgresXl | Flavor::Opentenbase)
    }

    /// Datanodes talk to each other (Postgres-XL, OpenTenBase): each has a pooler and keeps a
    /// pgxc_node of its own, with preferred datanodes.
    pub fn datanodes_pool(self) -> bool {
        matches!(self, Flavor::PostgresXl | Flavor::Opentenbase)
    }

    /// Every coordinator and datanode runs a forward process on a port of its own, which
    /// pgxc_node lists (OpenTenBase).
    pub fn forwards(self) -> bool {
        self == Flavor::Opentenbase
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::PostgresXc => "postgres-xc",
            Flavor::PostgresXl => "postgres-xl",
            Flavor::Opentenbase => "opentenbase",
            Flavor::Postgresql => "postgresql",
        })
    }
}

/// What a node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The active GTM.
    Gtm,
    /// A GTM standby (`[gtm.standby]`): a copy of the active GTM's state, ready to be promoted.
    GtmStandby,
    /// A gtm_proxy (`[[gtm_proxies]]`): the nodes of its host reach the GTM through it.
    GtmProxy,
    Coordinator,
    Datanode,
    Standby,
}

impl Role {
    /// The GTM, its standby or a gtm_proxy: run with `gtm_ctl`, configured by a gtm.conf-like
    /// file, no PostgreSQL protocol.
    pub fn is_gtm_kind(self) -> bool {
        matches!(self, Role::Gtm | Role::GtmStandby | Role::GtmProxy)
    }

    /// A node that serves SQL: a coordinator, a datanode or a datanode's standby.
    pub fn is_server(self) -> bool {
        !self.is_gtm_kind()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Gtm => "gtm",
            Role::GtmStandby => "gtm_standby",
            Role::GtmProxy => "gtm_proxy",
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

/// Read as its text wherever a `&str` is wanted (`step.node.as_deref()`).
impl std::ops::Deref for NodeName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Test inventories and facts name nodes with literals (a literal that is not a valid name
/// fails the test).
#[cfg(test)]
impl From<&str> for NodeName {
    fn from(name: &str) -> NodeName {
        NodeName::new(name).unwrap_or_else(|e| panic!("`{name}` {e}"))
    }
}

/// Compared with text as its text is (`n.name == "dn1"`).
impl PartialEq<str> for NodeName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NodeName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Looked up by its text in maps keyed by node name (`facts.nodes.get("dn1")`): a name compares
/// as its text does.
impl std::borrow::Borrow<str> for NodeName {
    fn borrow(&self) -> &str {
        &self.0
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
    /// The GTM and its standby, gtm_proxies, then coordinators, then datanodes, each datanode
    /// followed by its standby.
    pub nodes: Vec<Node>,
    /// Where the server's install comes from; `None`: it is already at every install prefix.
    pub source: Option<Source>,
    /// How clients and nodes authenticate (pg_hba.conf).
    pub auth: Auth,
    /// Server settings by scope; a node's own settings are in [`Node::settings`].
    pub settings: Settings,
    /// A local directory whose `*.hbs` files replace the built-in templates of the same name.
    pub templates_dir: Option<PathBuf>,
    /// What validation found worth saying that does not stop a command (a standby on its
    /// primary's host). Commands print them once, on stderr.
    pub warnings: Vec<super::Diagnostic>,
}

/// Where the install comes from (`[source]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A local, already-built install tree (`prebuilt = "$PGXC_HOME"`), shipped as it is.
    Prebuilt { path: PathBuf },
    /// Build from source with configure / make / make install.
    Build(Build),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub origin: Origin,
    /// Extra `configure` arguments, each passed as one word (`CFLAGS=-O2 -fcommon` included).
    pub configure_args: Vec<String>,
    /// Local patch files applied with `patch -p1` in the source tree before configure.
    pub patches: Vec<PathBuf>,
    /// Shell command lines run in the source tree before configure (after the patches).
    pub pre_configure: Vec<String>,
    pub mode: BuildMode,
    /// The host that builds in [`BuildMode::Once`] (default: the first host).
    pub build_host: String,
    /// `make -j`; `None`: the build host's CPU count.
    pub make_jobs: Option<u32>,
    /// How long apply waits for the build before it gives up on it (the build goes on).
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Cloned or fetched on the build host.
    Git { url: String, rev: String },
    /// A local source tarball, uploaded.
    Tarball(PathBuf),
    /// A local source directory, uploaded.
    Dir(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    /// Build on one host, ship the install to the others.
    Once,
    /// Build on every host.
    EveryHost,
}

/// `[auth]`: the method for every pg_hba.conf entry, and where its password comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub method: AuthMethod,
    /// Required unless the method is trust.
    pub password: Option<PasswordSource>,
    /// Client networks (CIDR) allowed besides the cluster's own hosts.
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Trust,
    ScramSha256,
    Md5,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::Trust => "trust",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Md5 => "md5",
        })
    }
}

/// Where the cluster superuser's password is read (locally); it is never printed.
#[derive(Debug, Clone, PartialEq)]
pub enum PasswordSource {
    File(PathBuf),
    Env(String),
}

/// A postgresql.conf / gtm.conf value as written in the inventory.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl SettingValue {
    /// The value in postgresql.conf syntax: strings single-quoted with `'` doubled.
    pub fn to_conf(&self) -> String {
        match self {
            SettingValue::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
            SettingValue::Integer(i) => i.to_string(),
            SettingValue::Float(x) => x.to_string(),
            SettingValue::Bool(b) => if *b { "on" } else { "off" }.to_string(),
        }
    }
}

/// Setting name -> value, in name order.
pub type SettingMap = BTreeMap<String, SettingValue>;

/// `[settings.*]`: scopes from widest to narrowest (a node's own settings win over all).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// Every coordinator, datanode and standby (postgresql.conf).
    pub all: SettingMap,
    pub coordinators: SettingMap,
    /// Datanodes and their standbys (a standby must be able to replay what its primary does).
    pub datanodes: SettingMap,
    /// gtm.conf.
    pub gtm: SettingMap,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub flavor: Flavor,
    /// The OS user that owns the cluster's processes and data directories.
    pub os_user: String,
    /// The most WAL bytes an asynchronous standby may have been behind, when last seen, for
    /// `failover` to promote it without `--accept-data-loss`.
    pub maximum_lag_on_failover: u64,
    /// Postgres-XC/XL: the datanode that every pgxc_node marks `PRIMARY` (writes to replicated
    /// tables go to it first), named as coordinators name it.
    pub primary_datanode: Option<NodeName>,
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
    /// The system-wide known_hosts (OpenSSH's GlobalKnownHostsFile), read too.
    pub global_known_hosts: PathBuf,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// The jump hosts to go through, in order (OpenSSH's ProxyJump); empty: connect directly.
    pub proxy_jump: Vec<Jump>,
    /// The OpenSSH client configuration files to read, the user's first (`[ssh] config`);
    /// empty: none.
    pub config: Vec<PathBuf>,
    /// Which of the values above the inventory wrote (they win over the OpenSSH client
    /// configuration, which wins over the defaults).
    pub written: Written,
}

/// Which `[ssh]` / `[hosts.X]` values the inventory wrote, rather than took as defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub user: bool,
    pub port: bool,
    pub identity_file: bool,
    pub known_hosts: bool,
    pub connect_timeout: bool,
    pub proxy_jump: bool,
}

/// One hop of a ProxyJump list, `[user@]host[:port]` as written: `host` may name a host of
/// the inventory (then its address, port and user are used), or be an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for Jump {
    /// As written: `user@host:port`, an IPv6 address in brackets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (true, None) => write!(f, "[{}]", self.host),
            (false, None) => write!(f, "{}", self.host),
        }
    }
}

/// Parse a ProxyJump value as OpenSSH does: comma-separated hops ([`parse_jump`]), or `none`
/// (no hop). The inventory's `proxy_jump` and the OpenSSH client configuration's ProxyJump both
/// come through here.
pub fn parse_jumps(text: &str) -> Result<Vec<Jump>, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',').map(|hop| parse_jump(hop).map_err(|why| format!("`{hop}`: {why}"))).collect()
}

/// One hop: `[user@]host[:port]` (an IPv6 address in brackets, `[::1]:2222`) or
/// `ssh://[user@]host[:port]` (OpenSSH's misc.c parse_user_host_port and parse_uri; connection
/// parameters after `;` are ignored, as ssh does). `Err`: what is wrong with it.
pub fn parse_jump(hop: &str) -> Result<Jump, String> {
    let bad = |why: &str| Err(why.to_string());
    if hop.is_empty() || hop.contains([' ', '\t']) {
        return bad("no host, or blanks in it");
    }
    let (user, rest) = match hop.strip_prefix("ssh://") {
        Some(uri) => {
            let uri = uri.strip_suffix('/').unwrap_or(uri);
            match uri.split_once('@') {
                Some((user, rest)) => (Some(user.split(';').next().unwrap_or_default()), rest),
                None => (None, uri),
            }
        }
        None => match hop.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, hop),
        },
    };
    if user == Some("") {
        return bad("empty user before `@`");
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let Some((host, after)) = bracketed.split_once(']') else {
                return bad("no closing `]`");
            };
            match (after, after.strip_prefix(':')) {
                ("", _) => (host, None),
                (_, Some(port)) => (host, Some(port)),
                (after, None) => return bad(&format!("`{after}` after `]`")),
            }
        }
        None => match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    if host.is_empty() || host.contains('/') {
        return bad("no host");
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>().ok().filter(|p| *p != 0) {
            Some(p) => Some(p),
            None => return bad(&format!("port `{p}` is not a number from 1 to 65535")),
        },
    };
    Ok(Jump { user: user.map(str::to_string), host: host.to_string(), port })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: NodeName,
    pub role: Role,
    /// Name of a host in [`Inventory::hosts`].
    pub host: String,
    pub port: u16,
    /// Coordinators; Postgres-XL's and OpenTenBase's datanodes and standbys too.
    pub pooler_port: Option<u16>,
    /// OpenTenBase: the forward process's port (coordinators, datanodes, standbys).
    pub forward_port: Option<u16>,
    /// `<host data_root>/<node name>`.
    pub data_dir: String,
    /// Standbys only: the datanode they replicate (a GTM standby: the GTM).
    pub primary: Option<NodeName>,
    /// Standbys only: replicate synchronously.
    pub synchronous: bool,
    /// Set only where a failover or switchover swapped a datanode's primary and standby
    /// ([`super::roles::Roles::effective`]): the datanode whose data this node holds, as
    /// coordinators name it. See [`Node::datanode_name`].
    pub serves: Option<NodeName>,
    /// The datanodes that this node's pgxc_node marks `PREFERRED` (read first for replicated
    /// tables): a coordinator's, a Postgres-XL datanode's (its standby has its datanode's).
    pub preferred: Vec<NodeName>,
    /// The node's own settings (`settings = { ... }` in its table).
    pub settings: SettingMap,
    /// `state = "removed"` on its datanode (a standby follows its datanode): only apply sees
    /// it ([`super::roles::Roles::effective`] leaves it out), to move its rows to the other
    /// datanodes, drop it from the coordinators and stop it.
    pub removed: bool,
}

/// Where the node whose data directory is `data_dir` keeps its Unix sockets
/// (`unix_socket_directories`; a Postgres-XC coordinator's pooler too): the directory that holds
/// the data directory, its host's `data_root`. Ports are unique per host, so a host's nodes
/// can share it. Not `/tmp`, which lab hosts share; not the data directory, whose every file
/// pg_rewind copies from a primary (a socket cannot be read, and would fail it).
pub fn socket_dir(data_dir: &str) -> &str {
    match data_dir.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/",
        Some((parent, _)) => parent,
        None => ".",
    }
}

impl Node {
    /// See [`socket_dir`].
    pub fn socket_dir(&self) -> &str {
        socket_dir(&self.data_dir)
    }

    /// The name this node's data goes by in the cluster (`pgxc_node_name`, the coordinators'
    /// pgxc_node): a datanode's own name, a standby's primary's (it is a copy, ready to take
    /// the primary's place), and after a failover or switchover the datanode both serve.
    pub fn datanode_name(&self) -> &NodeName {
        self.serves.as_ref().or(self.primary.as_ref()).unwrap_or(&self.name)
    }
}

impl Inventory {
    /// The inventory without its datanodes (and their standbys) marked `state = "removed"`,
    /// and those nodes: what apply deploys, and what it takes out of the cluster.
    pub fn without_removed(&self) -> (Inventory, Vec<Node>) {
        let (removed, nodes) = self.nodes.iter().cloned().partition(|n| n.removed);
        (Inventory { nodes, ..self.clone() }, removed)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name.as_str() == name)
    }

    /// The first node of `role` (the GTM, the GTM standby).
    pub fn node_of(&self, role: Role) -> Option<&Node> {
        self.nodes.iter().find(|n| n.role == role)
    }

    /// The gtm_proxy on `host`, if it has one: that host's nodes reach the GTM through it.
    pub fn gtm_proxy_on(&self, host: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.role == Role::GtmProxy && n.host == host)
    }

    /// The node's effective settings: `all` (not for the GTM), its role's scope, then its own.
    pub fn node_settings(&self, node: &Node) -> SettingMap {
        let s = &self.settings;
        let scopes: Vec<&SettingMap> = match node.role {
            Role::Gtm | Role::GtmStandby => vec![&s.gtm],
            Role::GtmProxy => vec![],
            Role::Coordinator => vec![&s.all, &s.coordinators],
            Role::Datanode | Role::Standby => vec![&s.all, &s.datanodes],
        };
        let mut merged = SettingMap::new();
        for scope in scopes.into_iter().chain([&node.settings]) {
            merged.extend(scope.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_jump_values_parse_like_openssh() {
        let hop = |user: Option<&str>, host: &str, port: Option<u16>| Jump {
            user: user.map(String::from),
            host: host.into(),
            port,
        };
        assert_eq!(parse_jumps("bastion").unwrap(), [hop(None, "bastion", None)]);
        assert_eq!(
            parse_jumps("ops@gw1:2222,[::1]:2200,ssh://root@[fe80::1]/").unwrap(),
            [
                hop(Some("ops"), "gw1", Some(2222)),
                hop(None, "::1", Some(2200)),
                hop(Some("root"), "fe80::1", None)
            ]
        );
        assert!(parse_jumps("none").unwrap().is_empty());
        for (bad, why) in [
            ("gw:0", "port `0`"),
            ("gw:x", "port `x`"),
            ("@gw", "empty user"),
            ("[::1", "no closing"),
            ("a,,b", "no host"),
            ("a, b", "blanks"),
        ] {
            let err = parse_jumps(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

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
    fn sockets_go_beside_the_data_directory() {
        assert_eq!(socket_dir("/var/lib/pgxc/dn1"), "/var/lib/pgxc");
        assert_eq!(socket_dir("/var/lib/pgxc/dn1/"), "/var/lib/pgxc");
        assert_eq!(socket_dir("/dn1"), "/");
    }

    #[test]
    fn reserved_words_are_sorted_so_the_list_stays_reviewable() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn roles_display() {
        let roles = [
            Role::Gtm,
            Role::GtmStandby,
            Role::GtmProxy,
            Role::Coordinator,
            Role::Datanode,
            Role::Standby,
        ];
        let shown: Vec<String> = roles.iter().map(Role::to_string).collect();
        assert_eq!(
            shown,
            ["gtm", "gtm_standby", "gtm_proxy", "coordinator", "datanode", "standby"]
        );
    }
}
