//! Raw inventory -> [`Inventory`]: every check on the meaning of the file.
//!
//! Called by `inventory::parse`. The checks do not stop at the first problem: each one records a
//! [`Diagnostic`] (file:line:column from the value's span, plus a hint) and carries on, and an
//! [`Inventory`] is only returned when there were none. Only TOML syntax and shape errors (unknown
//! key, wrong type, missing key) stop early, because serde gives up there. No I/O here; the
//! caller passes the environment in as a lookup (for `$VARIABLES` and `~/`).
//!
//! First every string value has its `$VARIABLES` expanded ([`env`](mod@env)); then the checks
//! run on the expanded values, with spans still pointing at what was written. The submodules
//! check the tables that say how to install and configure the servers: [`source`], [`auth`] and
//! [`settings`].

mod auth;
mod env;
mod settings;
mod source;

use super::model::{
    Cluster, Flavor, Host, Inventory, Node, NodeName, Role, SettingMap, SshTarget, describe_char,
};
use super::raw::{self, RawFlavor, RawInventory};
use super::{Diagnostic, Error};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

const DEFAULT_OS_USER: &str = "postgres";
const DEFAULT_INSTALL_PREFIX: &str = "/usr/local/pgsql";
const DEFAULT_DATA_ROOT: &str = "/var/lib/pgxc";
const DEFAULT_SSH_PORT: u16 = 22;
const DEFAULT_KNOWN_HOSTS: &str = "~/.ssh/known_hosts";
const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
const DEFAULT_COMMAND_TIMEOUT: u64 = 600;
const DEFAULT_GTM_NAME: &str = "gtm";
const DEFAULT_GTM_PORT: u16 = 6666;
/// Patroni's default for its setting of the same name: 1 MB.
const DEFAULT_MAXIMUM_LAG: u64 = 1 << 20;

use env::Lookup;

pub fn validate(text: &str, path: &Path, env: Lookup<'_>) -> Result<Inventory, Error> {
    let mut cx = Checker {
        file: path.display().to_string(),
        text,
        diagnostics: Vec::new(),
        unexpanded: HashSet::new(),
    };
    let inventory = match raw::from_str(text) {
        Ok(raw) => Some(cx.inventory(raw, path, env)),
        Err(err) => {
            cx.toml_error(&err);
            None
        }
    };
    match inventory {
        Some(inventory) if cx.diagnostics.is_empty() => Ok(inventory),
        _ => {
            let mut diagnostics = cx.diagnostics;
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(Error { diagnostics })
        }
    }
}

/// Collects diagnostics while walking the raw inventory.
struct Checker<'a> {
    file: String,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
    /// Start offsets of values whose `$VARIABLES` could not be expanded. That is reported once;
    /// [`Checker::error`] drops any other diagnostic about the value as written.
    unexpanded: HashSet<usize>,
}

/// A node on its way into the model, with the spans the cross-node checks point at.
struct PendingNode {
    name: String,
    /// The name's span, or the node's table when the name is a default.
    name_span: Range<usize>,
    /// The name was not written but derived (`gtm`, `<datanode>_standby`).
    default_name: bool,
    role: Role,
    host: Spanned<String>,
    port: Spanned<u16>,
    pooler_port: Option<Spanned<u16>>,
    primary: Option<String>,
    synchronous: bool,
    /// The node's own `settings = { ... }`, already checked.
    settings: SettingMap,
}

/// `[ssh]` after defaults, before each host's overrides.
struct SshDefaults {
    user: Option<String>,
    port: u16,
    identity_file: Option<PathBuf>,
    known_hosts: PathBuf,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl Checker<'_> {
    fn inventory(&mut self, mut raw: RawInventory, path: &Path, env: Lookup<'_>) -> Inventory {
        raw.strings_mut(&mut |span, value| self.expand(span, value, env));
        let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let home = home.as_deref();
        let base_dir = path.parent().unwrap_or(Path::new(""));
        let cluster = self.cluster(&raw.cluster, path);
        let install_prefix = match &raw.cluster.install_prefix {
            Some(path) => self.remote_path(path, "install_prefix"),
            None => DEFAULT_INSTALL_PREFIX.to_string(),
        };
        let data_root = match &raw.cluster.data_root {
            Some(path) => self.remote_path(path, "data_root"),
            None => DEFAULT_DATA_ROOT.to_string(),
        };
        let ssh = self.ssh(&raw.ssh, base_dir, home);
        let hosts = self.hosts(&raw, &ssh, base_dir, home, install_prefix, data_root);
        let templates_dir = raw
            .cluster
            .templates_dir
            .as_ref()
            .map(|dir| self.local_path(dir, "templates_dir", base_dir, home));
        let nodes = self.nodes(&raw, cluster.flavor);
        let nodes = self.cross_checks(nodes, &hosts);
        let source = raw.source.as_ref().and_then(|s| self.source(s, &hosts, base_dir, home));
        let has_nodes =
            raw.gtm.is_some() || !raw.coordinators.is_empty() || !raw.datanodes.is_empty();
        let auth = self.auth(raw.auth.as_ref(), cluster.flavor, has_nodes, base_dir, home);
        let settings = self.settings(&raw.settings, cluster.flavor);
        Inventory {
            path: path.to_path_buf(),
            cluster,
            hosts,
            nodes,
            source,
            auth,
            settings,
            templates_dir,
        }
    }

    /// Expand `$VARIABLES` in one value as written, in place.
    fn expand(&mut self, span: Range<usize>, value: &mut String, env: Lookup<'_>) {
        match env::expand(value, env) {
            Ok(expanded) => *value = expanded,
            Err(errors) => {
                for error in errors {
                    let (message, hint) = match error {
                        env::ExpandError::Unset(name) => (
                            format!("environment variable `{name}` is not set"),
                            "export it, or write the value itself; `$$` is a literal `$`",
                        ),
                        env::ExpandError::BadName(inside) => (
                            format!("`${{{inside}}}` is not a variable reference"),
                            "write `${NAME}`, NAME being letters, digits and `_`; `$$` is a literal `$`",
                        ),
                        env::ExpandError::Unclosed(rest) => (
                            format!("`${{{rest}` has no closing `}}`"),
                            "write `${NAME}`, or `$$` for a literal `$`",
                        ),
                    };
                    self.error(span.clone(), message, hint);
                }
                self.unexpanded.insert(span.start);
            }
        }
    }

    fn cluster(&mut self, raw: &raw::RawCluster, path: &Path) -> Cluster {
        let name = match &raw.name {
            Some(name) => {
                self.check_host_like(name, "cluster name");
                name.get_ref().clone()
            }
            None => {
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                let stem = stem.unwrap_or_default();
                if !is_host_like(&stem) {
                    self.whole_file(
                        format!("cannot use the file name `{stem}` as the cluster name"),
                        "set `name` in [cluster]: letters, digits, `.`, `_` and `-`",
                    );
                }
                stem
            }
        };
        let flavor = match raw.flavor.as_ref().map(|f| *f.get_ref()) {
            Some(RawFlavor::Postgresql) => Flavor::Postgresql,
            Some(RawFlavor::PostgresXc) | None => Flavor::PostgresXc,
        };
        let os_user = match &raw.os_user {
            Some(user) => {
                self.check_user(user, "os_user");
                user.get_ref().clone()
            }
            None => DEFAULT_OS_USER.to_string(),
        };
        let maximum_lag_on_failover =
            raw.maximum_lag_on_failover.as_ref().map_or(DEFAULT_MAXIMUM_LAG, |l| *l.get_ref());
        Cluster { name, flavor, os_user, maximum_lag_on_failover }
    }

    fn ssh(&mut self, raw: &raw::RawSsh, base_dir: &Path, home: Option<&Path>) -> SshDefaults {
        if let Some(user) = &raw.user {
            self.check_user(user, "ssh user");
        }
        let known_hosts = match &raw.known_hosts {
            Some(path) => self.local_path(path, "known_hosts", base_dir, home),
            None => match home {
                Some(home) => home.join(".ssh/known_hosts"),
                None => {
                    self.whole_file(
                        format!("cannot expand the default known_hosts `{DEFAULT_KNOWN_HOSTS}`: HOME is not set"),
                        "set HOME, or set `known_hosts` in [ssh] to an absolute path",
                    );
                    PathBuf::new()
                }
            },
        };
        SshDefaults {
            user: raw.user.as_ref().map(|u| u.get_ref().clone()),
            port: self.port(raw.port.as_ref(), DEFAULT_SSH_PORT),
            identity_file: raw
                .identity_file
                .as_ref()
                .map(|p| self.local_path(p, "identity_file", base_dir, home)),
            known_hosts,
            connect_timeout: self.timeout(raw.connect_timeout.as_ref(), DEFAULT_CONNECT_TIMEOUT),
            command_timeout: self.timeout(raw.command_timeout.as_ref(), DEFAULT_COMMAND_TIMEOUT),
        }
    }

    fn hosts(
        &mut self,
        raw: &RawInventory,
        ssh: &SshDefaults,
        base_dir: &Path,
        home: Option<&Path>,
        install_prefix: String,
        data_root: String,
    ) -> Vec<Host> {
        if raw.hosts.is_empty() {
            self.whole_file(
                "no hosts defined".to_string(),
                "add at least one host: a [hosts.db1] table with `address = \"10.0.0.1\"`",
            );
        }
        // The map is sorted by name; the user expects the order of the file.
        let mut entries: Vec<_> = raw.hosts.iter().collect();
        entries.sort_by_key(|(name, _)| name.span().start);
        let mut hosts = Vec::new();
        for (name, host) in entries {
            let host = host.get_ref();
            self.check_host_like(name, "host name");
            self.check_address(&host.address);
            if let Some(user) = &host.user {
                self.check_user(user, "ssh user");
            }
            let identity_file = match &host.identity_file {
                Some(path) => Some(self.local_path(path, "identity_file", base_dir, home)),
                None => ssh.identity_file.clone(),
            };
            let install_prefix = match &host.install_prefix {
                Some(path) => self.remote_path(path, "install_prefix"),
                None => install_prefix.clone(),
            };
            let data_root = match &host.data_root {
                Some(path) => self.remote_path(path, "data_root"),
                None => data_root.clone(),
            };
            hosts.push(Host {
                name: name.get_ref().clone(),
                address: host.address.get_ref().clone(),
                ssh: SshTarget {
                    user: host.user.as_ref().map(|u| u.get_ref().clone()).or(ssh.user.clone()),
                    port: self.port(host.port.as_ref(), ssh.port),
                    identity_file,
                    known_hosts: ssh.known_hosts.clone(),
                    connect_timeout: ssh.connect_timeout,
                    command_timeout: ssh.command_timeout,
                },
                install_prefix,
                data_root,
            });
        }
        hosts
    }

    /// Flatten gtm, coordinators and datanodes (each followed by its standby) and check what
    /// each node needs on its own, including the flavor rules.
    fn nodes(&mut self, raw: &RawInventory, flavor: Flavor) -> Vec<PendingNode> {
        let xc = flavor == Flavor::PostgresXc;
        let mut nodes = Vec::new();
        if let Some(gtm) = &raw.gtm {
            if !xc {
                self.error(
                    gtm.span(),
                    "[gtm] is not used by flavor postgresql".to_string(),
                    "remove the [gtm] table, or set `flavor = \"postgres-xc\"` in [cluster]",
                );
            }
            let g = gtm.get_ref();
            nodes.push(PendingNode {
                name: g.name.as_ref().map_or(DEFAULT_GTM_NAME.to_string(), |n| n.get_ref().clone()),
                name_span: g.name.as_ref().map_or(gtm.span(), Spanned::span),
                default_name: g.name.is_none(),
                role: Role::Gtm,
                host: g.host.clone(),
                port: g.port.clone().unwrap_or(Spanned::new(gtm.span(), DEFAULT_GTM_PORT)),
                pooler_port: None,
                primary: None,
                synchronous: false,
                settings: self.setting_map(g.settings.as_ref(), settings::Conf::Gtm),
            });
        }
        if let (Some(first), false) = (raw.coordinators.first(), xc) {
            self.error(
                first.span(),
                "[[coordinators]] are not used by flavor postgresql".to_string(),
                "remove the [[coordinators]] tables, or set `flavor = \"postgres-xc\"` in [cluster]",
            );
        }
        for coord in &raw.coordinators {
            let c = coord.get_ref();
            if xc && c.pooler_port.is_none() {
                self.error(
                    coord.span(),
                    format!("coordinator `{}` has no `pooler_port`", c.name.get_ref()),
                    "add `pooler_port = 6667` (any free port on its host): coordinators need a pooler under postgres-xc",
                );
            }
            nodes.push(PendingNode {
                name: c.name.get_ref().clone(),
                name_span: c.name.span(),
                default_name: false,
                role: Role::Coordinator,
                host: c.host.clone(),
                port: c.port.clone(),
                pooler_port: c.pooler_port.clone(),
                primary: None,
                synchronous: false,
                settings: self.setting_map(c.settings.as_ref(), settings::Conf::Server),
            });
        }
        for datanode in &raw.datanodes {
            let d = datanode.get_ref();
            nodes.push(PendingNode {
                name: d.name.get_ref().clone(),
                name_span: d.name.span(),
                default_name: false,
                role: Role::Datanode,
                host: d.host.clone(),
                port: d.port.clone(),
                pooler_port: None,
                primary: None,
                synchronous: false,
                settings: self.setting_map(d.settings.as_ref(), settings::Conf::Server),
            });
            if let Some(standby) = &d.standby {
                let s = standby.get_ref();
                nodes.push(PendingNode {
                    name: s
                        .name
                        .as_ref()
                        .map_or(format!("{}_standby", d.name.get_ref()), |n| n.get_ref().clone()),
                    name_span: s.name.as_ref().map_or(standby.span(), Spanned::span),
                    default_name: s.name.is_none(),
                    role: Role::Standby,
                    host: s.host.clone(),
                    port: s.port.clone(),
                    pooler_port: None,
                    primary: Some(d.name.get_ref().clone()),
                    synchronous: s.synchronous,
                    settings: self.setting_map(s.settings.as_ref(), settings::Conf::Server),
                });
            }
        }
        if xc && raw.gtm.is_none() {
            let first_coordinator = raw.coordinators.first().map(Spanned::span);
            if let Some(span) = first_coordinator.or(raw.datanodes.first().map(Spanned::span)) {
                self.error(
                    span,
                    "flavor postgres-xc needs a [gtm] for its coordinators and datanodes"
                        .to_string(),
                    "add a [gtm] table with `host = \"<host name>\"` (port defaults to 6666)",
                );
            }
        }
        if let (true, Some(first), None) = (xc, raw.datanodes.first(), raw.coordinators.first()) {
            self.error(
                first.span(),
                "flavor postgres-xc needs at least one coordinator in front of its datanodes"
                    .to_string(),
                "add a [[coordinators]] table with `name`, `host`, `port` and `pooler_port`",
            );
        }
        nodes
    }

    /// Checks that involve more than one value: names, host references, listeners.
    fn cross_checks(&mut self, pending: Vec<PendingNode>, hosts: &[Host]) -> Vec<Node> {
        let host_names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let mut seen_names: HashMap<&str, &PendingNode> = HashMap::new();
        // (host, port) -> the node listening there, which key ("port"/"pooler_port"), where
        let mut listeners: HashMap<(&str, u16), (&PendingNode, &str, Range<usize>)> =
            HashMap::new();
        let mut nodes = Vec::new();
        for node in &pending {
            let name = self.node_name(node);
            if let Some(first) = seen_names.get(node.name.as_str()) {
                self.error(
                    node.name_span.clone(),
                    format!("node name `{}` is used twice", node.name),
                    &format!(
                        "the {} at line {} already has this name{}; node names must be unique across gtm, coordinators, datanodes and standbys",
                        first.role,
                        self.line(first.name_span.start),
                        if first.default_name { " by default" } else { "" },
                    ),
                );
            } else {
                seen_names.insert(&node.name, node);
            }

            let host = hosts.iter().find(|h| h.name == *node.host.get_ref());
            if host.is_none() {
                self.unknown_host(&node.host, &host_names);
            }

            let port = self.port(Some(&node.port), 0);
            let pooler_port = node.pooler_port.as_ref().map(|p| self.port(Some(p), 0));
            let mut ports = vec![(&node.port, "port")];
            ports.extend(node.pooler_port.as_ref().map(|p| (p, "pooler_port")));
            for (spanned, what) in ports {
                let at = (node.host.get_ref().as_str(), *spanned.get_ref());
                if at.1 == 0 {
                    continue;
                }
                if let Some((other, other_what, other_span)) = listeners.get(&at) {
                    self.error(
                        spanned.span(),
                        format!("port {} on host `{}` is already taken", at.1, at.0),
                        &format!(
                            "{} `{}` listens there (its {other_what}, line {}); choose another port here",
                            other.role,
                            other.name,
                            self.line(other_span.start)
                        ),
                    );
                } else {
                    listeners.insert(at, (node, what, spanned.span()));
                }
            }

            if let (Some(name), Some(host)) = (name, host) {
                nodes.push(Node {
                    data_dir: format!("{}/{}", host.data_root, name),
                    name,
                    role: node.role,
                    host: host.name.clone(),
                    port,
                    pooler_port,
                    primary: node.primary.as_deref().and_then(|p| NodeName::new(p).ok()),
                    synchronous: node.synchronous,
                    serves: None,
                    settings: node.settings.clone(),
                });
            }
        }
        nodes
    }

    fn unknown_host(&mut self, host: &Spanned<String>, host_names: &[&str]) {
        let known = match host_names.is_empty() {
            true => "no hosts are declared yet".to_string(),
            false => format!("known hosts: {}", quoted_list(host_names)),
        };
        self.error(
            host.span(),
            format!("unknown host `{}`", host.get_ref()),
            &format!("{known}; fix the name or add a [hosts.{}] table", host.get_ref()),
        );
    }

    fn node_name(&mut self, node: &PendingNode) -> Option<NodeName> {
        match NodeName::new(&node.name) {
            Ok(name) => Some(name),
            Err(why) => {
                let (default, set_name) = match node.default_name {
                    true => ("default ", "set `name` in this table; "),
                    false => ("", ""),
                };
                self.error(
                    node.name_span.clone(),
                    format!("{default}node name `{}` {why}", node.name),
                    &format!("{set_name}node names are SQL identifiers: lowercase letters, digits and underscores, starting with a letter or underscore, at most 63 bytes, and not a reserved word such as `select` or `node`"),
                );
                None
            }
        }
    }

    fn check_host_like(&mut self, name: &Spanned<String>, what: &str) {
        if !is_host_like(name.get_ref()) {
            self.error(
                name.span(),
                format!("invalid {what} `{}`", name.get_ref()),
                "use letters, digits, `.`, `_` and `-`, starting with a letter or digit",
            );
        }
    }

    fn check_address(&mut self, address: &Spanned<String>) {
        if let Err(why) = check_address(address.get_ref()) {
            self.error(
                address.span(),
                format!("invalid address `{}`: {why}", address.get_ref()),
                "write an IPv4 or IPv6 address (no brackets) or a DNS name such as `db1.example.com`",
            );
        }
    }

    fn check_user(&mut self, user: &Spanned<String>, what: &str) {
        if !is_user_name(user.get_ref()) {
            self.error(
                user.span(),
                format!("invalid {what} `{}`", user.get_ref()),
                "use a POSIX user name: lowercase letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 characters",
            );
        }
    }

    /// A path on the remote hosts, written into commands and config files: absolute, no `..`,
    /// and only characters that never need quoting. Trailing slashes are dropped.
    fn remote_path(&mut self, path: &Spanned<String>, key: &str) -> String {
        let value = path.get_ref();
        let trimmed = value.trim_end_matches('/');
        let problem = if !value.starts_with('/') {
            Some("is not absolute".to_string())
        } else if trimmed.is_empty() {
            Some("is the root directory".to_string())
        } else if let Some(bad) = value.chars().find(|&c| !is_remote_path_char(c)) {
            Some(format!("contains {}", describe_char(bad)))
        } else if value.split('/').any(|part| part == "..") {
            Some("contains a `..` component".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(
                path.span(),
                format!("{key} `{value}` {problem}"),
                "write an absolute remote path such as `/opt/pgxc` using only letters, digits and `._/+-`",
            );
        }
        trimmed.to_string()
    }

    /// A path on this machine (`identity_file`, `known_hosts`): `~/` is `$HOME`, other relative
    /// paths are relative to the inventory file's directory.
    fn local_path(
        &mut self,
        path: &Spanned<String>,
        key: &str,
        base_dir: &Path,
        home: Option<&Path>,
    ) -> PathBuf {
        let value = path.get_ref();
        if value.is_empty() || value.contains(['\n', '\0']) {
            let problem = if value.is_empty() { "is empty" } else { "contains a newline or NUL" };
            self.error(
                path.span(),
                format!("{key} {problem}"),
                &format!("write the path of the file on this machine, or remove `{key}`"),
            );
            return PathBuf::new();
        }
        if let Some(rest) = value.strip_prefix("~/") {
            return match home {
                Some(home) => home.join(rest),
                None => {
                    self.error(
                        path.span(),
                        format!("cannot expand `~` in {key}: HOME is not set"),
                        "set HOME, or write an absolute path",
                    );
                    PathBuf::new()
                }
            };
        }
        base_dir.join(value)
    }

    fn port(&mut self, port: Option<&Spanned<u16>>, default: u16) -> u16 {
        match port {
            Some(p) if *p.get_ref() == 0 => {
                self.error(
                    p.span(),
                    "port 0 is not a valid port".to_string(),
                    "use a port from 1 to 65535",
                );
                0
            }
            Some(p) => *p.get_ref(),
            None => default,
        }
    }

    fn timeout(&mut self, seconds: Option<&Spanned<u64>>, default: u64) -> Duration {
        match seconds {
            Some(s) if *s.get_ref() == 0 => {
                self.error(
                    s.span(),
                    "a timeout of 0 seconds is not allowed".to_string(),
                    "use a number of seconds greater than 0",
                );
                Duration::ZERO
            }
            Some(s) => Duration::from_secs(*s.get_ref()),
            None => Duration::from_secs(default),
        }
    }

    /// serde gave up: turn its error into one diagnostic with a cleaned message and a hint.
    fn toml_error(&mut self, err: &toml::de::Error) {
        let first_line = err.message().lines().next().unwrap_or("invalid TOML").trim();
        let spanned_text = err.span().and_then(|span| self.text.get(span)).unwrap_or("");
        let (message, hint) = explain_toml_error(first_line, spanned_text);
        match err.span() {
            Some(span) => self.error(span, message, &hint),
            None => self.whole_file(message, &hint),
        }
    }

    fn error(&mut self, span: Range<usize>, message: String, hint: &str) {
        if self.unexpanded.contains(&span.start) {
            return;
        }
        let (line, column) = self.position(span.start);
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            line,
            column,
            message,
            hint: Some(hint.to_string()),
        });
    }

    fn whole_file(&mut self, message: String, hint: &str) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            line: 0,
            column: 0,
            message,
            hint: Some(hint.to_string()),
        });
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        (line, before[line_start..].chars().count() + 1)
    }

    fn line(&self, offset: usize) -> usize {
        self.position(offset).0
    }
}

/// Split toml's message into ours: the first part says what is wrong, the hint what to write.
/// `at` is the source text the error points at.
fn explain_toml_error(message: &str, at: &str) -> (String, String) {
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
        let allowed = expected.map(|e| e.strip_prefix("one of ").unwrap_or(e));
        let hint = match allowed {
            Some(allowed) => format!("remove it or fix its spelling; allowed keys here: {allowed}"),
            None => "remove it; this table takes no keys".to_string(),
        };
        let key = key.split(',').next().unwrap_or(key);
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

fn is_host_like(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_user_name(user: &str) -> bool {
    let body = user.strip_suffix('$').unwrap_or(user);
    let mut chars = body.chars();
    user.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

fn is_remote_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '+' | '-')
}

/// An IP literal, or a DNS name by RFC 1123 syntax.
fn check_address(address: &str) -> Result<(), String> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if address.is_empty() {
        return Err("it is empty".to_string());
    }
    if let Some(bad) =
        address.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
    {
        return Err(format!("contains {}", describe_char(bad)));
    }
    if address.len() > 253 {
        return Err("a DNS name has at most 253 characters".to_string());
    }
    if address.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err("not a valid IPv4 address".to_string());
    }
    for label in address.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated part of a DNS name has 1 to 63 characters".to_string());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("DNS label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

/// `db1`, `db2` -> "`db1`, `db2`".
fn quoted_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The environment the inventory unit tests see: `HOME` and the variables that
/// `tests/inventories/valid/full.toml` uses.
#[cfg(test)]
pub(super) fn test_env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/tester".into()),
        "PGXC_REV" => Some("REL1_2_STABLE".into()),
        "LOG_ROOT" => Some("/var/log/pgxc".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Diagnostic;
    use crate::inventory::model::{
        Auth, AuthMethod, Build, BuildMode, Origin, PasswordSource, SettingMap, SettingValue,
        Settings, Source,
    };

    use super::test_env as env;

    const HOME: &str = "/home/tester";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn check(text: &str) -> Result<Inventory, Error> {
        validate(text, Path::new("inv/test.toml"), &env)
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        check(text).expect_err("inventory should be invalid").diagnostics
    }

    #[test]
    fn full_inventory() {
        let label = "tests/inventories/valid/full.toml";
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(label)).unwrap();
        let inv = validate(&text, Path::new(label), &env).unwrap();

        assert_eq!(inv.path, Path::new(label));
        assert_eq!(
            inv.cluster,
            Cluster {
                name: "lab".into(),
                flavor: Flavor::PostgresXc,
                os_user: "postgres".into(),
                maximum_lag_on_failover: 1 << 20
            }
        );

        let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["db1", "db2", "db3"]);
        let db1 = inv.host("db1").unwrap();
        assert_eq!(db1.address, "10.0.0.1");
        assert_eq!(db1.install_prefix, "/opt/pgxc");
        assert_eq!(db1.data_root, "/var/lib/pgxc");
        assert_eq!(inv.bin_dir(db1), "/opt/pgxc/bin");
        assert_eq!(
            db1.ssh,
            SshTarget {
                user: Some("admin".into()),
                port: 22,
                identity_file: Some(PathBuf::from("/home/tester/.ssh/id_ed25519")),
                known_hosts: PathBuf::from("tests/inventories/valid/keys/known_hosts"),
                connect_timeout: Duration::from_secs(5),
                command_timeout: Duration::from_secs(900),
            }
        );
        assert_eq!(inv.host("db2").unwrap().ssh.port, 2222);
        let db3 = inv.host("db3").unwrap();
        assert_eq!(db3.address, "fd00::3");
        assert_eq!(db3.ssh.user.as_deref(), Some("deploy"));
        assert_eq!(db3.ssh.identity_file, Some(PathBuf::from("/etc/pgxc/db3_key")));
        assert_eq!(db3.data_root, "/data/pgxc", "trailing slash dropped");

        let summary: Vec<String> = inv
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {} {}:{} {:?} {}",
                    n.role, n.name, n.host, n.port, n.pooler_port, n.data_dir
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "gtm gtm db1:6666 None /var/lib/pgxc/gtm",
                "coordinator coord1 db1:5432 Some(6667) /var/lib/pgxc/coord1",
                "coordinator coord2 db2:5432 Some(6667) /var/lib/pgxc/coord2",
                "datanode dn1 db2:15432 None /var/lib/pgxc/dn1",
                "standby dn1_standby db3:15432 None /data/pgxc/dn1_standby",
                "datanode dn2 db3:15433 None /data/pgxc/dn2",
                "standby dn2_replica db1:15433 None /var/lib/pgxc/dn2_replica",
            ]
        );
        let dn1_standby = inv.node("dn1_standby").unwrap();
        assert_eq!(dn1_standby.primary.as_ref().map(NodeName::as_str), Some("dn1"));
        assert!(dn1_standby.synchronous);
        let dn2_replica = inv.node("dn2_replica").unwrap();
        assert_eq!(dn2_replica.primary.as_ref().map(NodeName::as_str), Some("dn2"));
        assert!(!dn2_replica.synchronous);
        assert!(inv.nodes.iter().filter(|n| n.role != Role::Standby).all(|n| n.primary.is_none()));
        assert!(inv.node("dn3").is_none() && inv.host("db4").is_none());

        assert_eq!(inv.templates_dir, Some(PathBuf::from("tests/inventories/valid/my-templates")));
        assert_eq!(
            inv.source,
            Some(Source::Build(Build {
                origin: Origin::Git {
                    url: "https://github.com/postgres-x2/postgres-x2.git".into(),
                    rev: "REL1_2_STABLE".into(),
                },
                configure_args: vec!["--without-readline".into(), "CFLAGS=-O2 -fcommon".into()],
                patches: vec![
                    PathBuf::from("tests/inventories/valid/patches/fix.patch"),
                    PathBuf::from("/home/tester/patches/extra.patch"),
                ],
                pre_configure: vec![
                    "sed -i 's/a/b/' src/x.y".into(),
                    "echo $HOME > built-by".into()
                ],
                mode: BuildMode::Once,
                build_host: "db2".into(),
                make_jobs: Some(2),
            }))
        );
        assert_eq!(
            inv.auth,
            Auth {
                method: AuthMethod::Md5,
                password: Some(PasswordSource::Env("PGXC_PASSWORD".into())),
                allow: vec!["10.0.0.0/24".into(), "192.168.1.7/32".into(), "fd00::/64".into()],
            }
        );

        let conf = |map: &SettingMap| -> Vec<String> {
            map.iter().map(|(k, v)| format!("{k} = {}", v.to_conf())).collect()
        };
        assert_eq!(
            conf(&inv.settings.all),
            [
                "fsync = on",
                "log_directory = '/var/log/pgxc/all'",
                "max_connections = 100",
                "random_page_cost = 1.5",
                "shared_buffers = '128MB'",
                "work_mem = '4MB'",
            ]
        );
        assert_eq!(
            conf(&inv.settings.coordinators),
            ["pg_stat_statements.max = 1000", "work_mem = '16MB'"]
        );
        assert_eq!(conf(&inv.settings.gtm), ["log_min_messages = 'WARNING'"]);
        // all < role < node: coord1's own work_mem and fsync win over both scopes.
        assert_eq!(
            conf(&inv.node_settings(inv.node("coord1").unwrap())),
            [
                "fsync = off",
                "log_directory = '/var/log/pgxc/all'",
                "max_connections = 100",
                "pg_stat_statements.max = 1000",
                "random_page_cost = 1.5",
                "shared_buffers = '128MB'",
                "work_mem = '8MB'",
            ]
        );
        assert_eq!(conf(&inv.node_settings(inv.node("coord2").unwrap()))[6], "work_mem = '16MB'");
        // A standby gets the datanodes' scope, then its own settings.
        assert_eq!(
            conf(&inv.node_settings(inv.node("dn1_standby").unwrap())),
            [
                "fsync = on",
                "hot_standby_feedback = on",
                "log_directory = '/var/log/pgxc/datanodes'",
                "max_connections = 100",
                "random_page_cost = 1.5",
                "shared_buffers = '128MB'",
                "work_mem = '32MB'",
            ]
        );
        // The GTM gets gtm.conf settings only, never [settings.all].
        assert_eq!(
            conf(&inv.node_settings(inv.node("gtm").unwrap())),
            ["keepalives_idle = 60", "log_min_messages = 'WARNING'"]
        );
        assert!(inv.node("dn2").unwrap().settings.is_empty());
    }

    #[test]
    fn defaults() {
        let inv = check("[hosts.db1]\naddress = \"db1\"\n").unwrap();
        assert_eq!(
            inv.cluster,
            Cluster {
                name: "test".into(),
                flavor: Flavor::PostgresXc,
                os_user: "postgres".into(),
                maximum_lag_on_failover: 1 << 20
            }
        );
        let host = &inv.hosts[0];
        assert_eq!(host.install_prefix, "/usr/local/pgsql");
        assert_eq!(host.data_root, "/var/lib/pgxc");
        assert_eq!(
            host.ssh,
            SshTarget {
                user: None,
                port: 22,
                identity_file: None,
                known_hosts: PathBuf::from("/home/tester/.ssh/known_hosts"),
                connect_timeout: Duration::from_secs(10),
                command_timeout: Duration::from_secs(600),
            }
        );
        assert!(inv.nodes.is_empty());
        // Hosts only (as for `exec`): no [auth] needed. Postgres-XC's default method is md5.
        assert_eq!(inv.auth, Auth { method: AuthMethod::Md5, password: None, allow: vec![] });
        assert_eq!((inv.source, inv.templates_dir), (None, None));
        assert_eq!(inv.settings, Settings::default());
    }

    /// Every string value the file can hold, each with its own variable. With an empty
    /// environment, each must give exactly one "not set" diagnostic and nothing else: a value
    /// `RawInventory::strings_mut` forgot would not be reported, and its other checks would fire.
    #[test]
    fn every_string_value_is_expanded() {
        let text = r#"
[cluster]
name = "$V_NAME"
os_user = "$V_OS_USER"
install_prefix = "$V_PREFIX"
data_root = "$V_ROOT"
templates_dir = "$V_TEMPLATES"
[ssh]
user = "$V_SSH_USER"
identity_file = "$V_KEY"
known_hosts = "$V_KNOWN"
[source]
git = "$V_GIT"
rev = "$V_REV"
prebuilt = "$V_PREBUILT"
tarball = "$V_TARBALL"
dir = "$V_DIR"
configure_args = ["$V_ARG"]
patches = ["$V_PATCH"]
pre_configure = ["$V_LINE"]
build_host = "$V_BUILD_HOST"
[auth]
password_file = "$V_PASSWORD_FILE"
allow = ["$V_NET"]
[settings.all]
a = "$V_ALL"
[settings.coordinators]
a = "$V_COORDINATORS"
[settings.datanodes]
a = "$V_DATANODES"
[settings.gtm]
a = "$V_GTM_CONF"
[hosts.h1]
address = "$V_ADDRESS"
user = "$V_HOST_USER"
identity_file = "$V_HOST_KEY"
install_prefix = "$V_HOST_PREFIX"
data_root = "$V_HOST_ROOT"
[gtm]
name = "$V_GTM_NAME"
host = "$V_GTM_HOST"
settings = { a = "$V_GTM_SETTING" }
[[coordinators]]
name = "$V_COORD_NAME"
host = "$V_COORD_HOST"
port = 5432
pooler_port = 6667
settings = { a = "$V_COORD_SETTING" }
[[datanodes]]
name = "$V_DN_NAME"
host = "$V_DN_HOST"
port = 5433
settings = { a = "$V_DN_SETTING" }
[datanodes.standby]
name = "$V_STANDBY_NAME"
host = "$V_STANDBY_HOST"
port = 5434
settings = { a = "$V_STANDBY_SETTING" }
"#;
        let written: Vec<String> =
            text.split('$').skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect();
        assert_eq!(written.len(), 40);
        let diagnostics = validate(text, Path::new("x.toml"), &no_env).unwrap_err().diagnostics;
        let reported: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                let name = d.message.strip_prefix("environment variable `");
                let name = name.and_then(|m| m.strip_suffix("` is not set"));
                name.unwrap_or_else(|| panic!("unexpected diagnostic: {d}")).to_string()
            })
            .collect();
        assert_eq!(reported, written);
    }

    #[test]
    fn an_unset_variable_is_one_diagnostic_at_the_value() {
        let d = errors("[hosts.db1]\naddress = \"${DB1_ADDRESS}\"\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].line, d[0].column), (2, 11));
        assert_eq!(d[0].message, "environment variable `DB1_ADDRESS` is not set");
        assert_eq!(
            d[0].hint.as_deref(),
            Some("export it, or write the value itself; `$$` is a literal `$`")
        );
        let d = errors("[hosts.db1]\naddress = \"${DB1\"\n");
        assert_eq!(d[0].message, "`${DB1` has no closing `}`");
        let d = errors("[hosts.db1]\naddress = \"${DB-1}\"\n");
        assert_eq!(d[0].message, "`${DB-1}` is not a variable reference");
    }

    #[test]
    fn checks_see_the_expanded_value_and_point_at_the_written_one() {
        let env = |name: &str| match name {
            "ADDR" => Some("10.0.0.1;reboot".to_string()),
            "HOME" => Some(HOME.to_string()),
            _ => None,
        };
        let text = "[hosts.db1]\naddress = \"$ADDR\"\n";
        let d = validate(text, Path::new("x.toml"), &env).unwrap_err().diagnostics;
        assert_eq!((d[0].line, d[0].column), (2, 11));
        assert_eq!(d[0].message, "invalid address `10.0.0.1;reboot`: contains `;`");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar() {
        let text = "[hosts.db1]\naddress = \"db1\"\n\
                    [cluster]\nflavor = \"postgresql\"\n\
                    [[datanodes]]\nname = \"dn$$1\"\nhost = \"db1\"\nport = 5432\n\
                    settings = { log_line_prefix = \"$$%m \", lone = \"a$\" }\n\
                    [auth]\nmethod = \"trust\"\n";
        let inv = check(text).unwrap();
        let dn = &inv.nodes[0];
        assert_eq!(dn.name.as_str(), "dn$1");
        assert_eq!(dn.settings["log_line_prefix"], SettingValue::String("$%m ".into()));
        assert_eq!(dn.settings["lone"], SettingValue::String("a$".into()));
    }

    #[test]
    fn home_comes_from_the_lookup() {
        let env = |name: &str| (name == "HOME").then(|| "/elsewhere".to_string());
        let text = "[ssh]\nidentity_file = \"~/k\"\n[hosts.db1]\naddress = \"db1\"\n";
        let inv = validate(text, Path::new("x.toml"), &env).unwrap();
        assert_eq!(inv.hosts[0].ssh.identity_file, Some(PathBuf::from("/elsewhere/k")));
        assert_eq!(inv.hosts[0].ssh.known_hosts, PathBuf::from("/elsewhere/.ssh/known_hosts"));
        let empty = |name: &str| (name == "HOME").then(String::new);
        assert!(validate(text, Path::new("x.toml"), &empty).is_err(), "an empty HOME is unset");
    }

    #[test]
    fn plain_postgresql_needs_no_gtm_or_coordinator() {
        let text = "[cluster]\nflavor = \"postgresql\"\n[hosts.db1]\naddress = \"db1\"\n\
                    [[datanodes]]\nname = \"pg\"\nhost = \"db1\"\nport = 5432\n\
                    [auth]\nmethod = \"trust\"\n";
        let inv = check(text).unwrap();
        assert_eq!(inv.cluster.flavor, Flavor::Postgresql);
        assert_eq!(inv.nodes.len(), 1);
        assert_eq!(inv.nodes[0].pooler_port, None);
    }

    #[test]
    fn without_home_tilde_paths_are_errors() {
        let text = "[ssh]\nidentity_file = \"~/.ssh/key\"\n[hosts.db1]\naddress = \"db1\"\n";
        let err = validate(text, Path::new("x.toml"), &no_env).unwrap_err();
        let messages: Vec<&str> = err.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "cannot expand the default known_hosts `~/.ssh/known_hosts`: HOME is not set",
                "cannot expand `~` in identity_file: HOME is not set",
            ]
        );
    }

    #[test]
    fn file_stem_must_make_a_valid_cluster_name() {
        let err = validate("[hosts.db1]\naddress = \"db1\"\n", Path::new("my lab.toml"), &no_env)
            .unwrap_err();
        assert_eq!(err.diagnostics[0].line, 0);
        assert!(err.diagnostics[0].message.contains("`my lab`"));
    }

    #[test]
    fn positions_count_characters_from_one() {
        let d = &errors("# é\n[hosts.db1]\naddress = \"é;\"\n")[0];
        assert_eq!((d.line, d.column), (3, 11));
        let d = &errors("[hosts.db1]\naddress = \"x\"\nport = 0\n")[0];
        assert_eq!((d.line, d.column), (3, 8));
    }

    #[test]
    fn addresses() {
        for ok in ["10.0.0.1", "::1", "fd00::3", "db1", "db-1.example.com", "a.b.c", "x"] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
        let long = format!("{}.com", "a".repeat(64));
        for bad in
            ["", "10.0.0.256", "1.2.3", "-a", "a-", "a..b", "a.", "[::1]", "a b", "a;b", &long]
        {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_names() {
        for ok in ["postgres", "_svc", "a-b_c1", "machine$", &"a".repeat(32)] {
            assert!(is_user_name(ok), "{ok}");
        }
        for bad in ["", "Admin", "1user", "a b", "a;b", "$", "a$b", "-a", &"a".repeat(33)] {
            assert!(!is_user_name(bad), "{bad}");
        }
    }

    /// The golden table: each `tests/inventories/invalid/<case>.toml` must fail with exactly the
    /// text in `<case>.stderr` (Display plus a final newline, as the command prints it).
    /// `SNAPSHOTS=overwrite cargo test` rewrites the `.stderr` files; review the diff.
    #[test]
    fn invalid_inventories() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("tests/inventories/invalid");
        let overwrite = std::env::var("SNAPSHOTS").is_ok_and(|v| v == "overwrite");
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        cases.sort();
        assert!(cases.len() >= 56, "only {} golden cases", cases.len());

        let mut failures = Vec::new();
        for case in &cases {
            let name = case.file_name().unwrap().to_str().unwrap();
            let label = format!("tests/inventories/invalid/{name}");
            let text = std::fs::read_to_string(case).unwrap();
            let actual = match validate(&text, Path::new(&label), &env) {
                Ok(_) => "(no error: this inventory was accepted)\n".to_string(),
                Err(err) => format!("{err}\n"),
            };
            let expected_path = case.with_extension("stderr");
            if overwrite {
                std::fs::write(&expected_path, &actual).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
            if actual != expected {
                failures.push(format!("--- {label}\nexpected:\n{expected}actual:\n{actual}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} golden case(s) differ (SNAPSHOTS=overwrite rewrites them):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
