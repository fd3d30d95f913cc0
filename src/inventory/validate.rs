//! Raw inventory -> [`Inventory`]: every check on the meaning of the file.
//!
//! Called by `inventory::parse`. The checks do not stop at the first problem: each one records a
//! [`Diagnostic`] (file:line:column from the value's span, plus a hint) and carries on, and an
//! [`Inventory`] is only returned when there were no errors; warnings go with it. TOML syntax
//! errors stop before any other check. A table with a shape error (unknown key, wrong type,
//! missing key) is left out by `raw`, and the others are still checked, without the errors its
//! absence would imply. No I/O here; the caller passes the environment in as a lookup (for
//! `$VARIABLES` and `~/`).
//!
//! First every string value has its `$VARIABLES` expanded ([`env`](mod@env)); then the checks
//! run on the expanded values, with spans still pointing at what was written. The submodules
//! check the tables that say how to install and configure the servers: [`source`], [`auth`] and
//! [`settings`]; [`hosts`] checks what the hosts share (addresses, directories), [`shape`]
//! words `raw`'s errors.

mod auth;
mod env;
mod hosts;
mod settings;
mod shape;
mod source;

use super::diagnostic::{Lines, Severity};
use super::model::{
    Cluster, Flavor, Host, Inventory, Jump, Node, NodeName, Role, SettingMap, SshTarget, Written,
    describe_char, parse_jumps,
};
use super::raw::{self, Broken, RawFlavor, RawInventory};
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
/// OpenSSH's system-wide client configuration.
const DEFAULT_SSH_CONFIG: &str = "/etc/ssh/ssh_config";
/// OpenSSH's default GlobalKnownHostsFile.
const DEFAULT_GLOBAL_KNOWN_HOSTS: &str = "/etc/ssh/ssh_known_hosts";
const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
const DEFAULT_COMMAND_TIMEOUT: u64 = 600;
const DEFAULT_GTM_NAME: &str = "gtm";
const DEFAULT_GTM_PORT: u16 = 6666;
const DEFAULT_GTM_STANDBY_NAME: &str = "gtm_standby";
/// Patroni's default for its setting of the same name: 1 MB.
const DEFAULT_MAXIMUM_LAG: u64 = 1 << 20;

use env::Lookup;
use hosts::Dir;

/// A default directory: not written, so no diagnostic points at it.
fn default_dir(path: &str) -> Dir {
    Dir { path: path.to_string(), span: None, own: false, valid: true }
}

pub fn validate(text: &str, path: &Path, env: Lookup<'_>) -> Result<Inventory, Error> {
    let mut cx = Checker {
        file: path.display().to_string(),
        text,
        lines: Lines::new(text),
        diagnostics: Vec::new(),
        warnings: Vec::new(),
        reported: HashSet::new(),
        unexpanded: HashSet::new(),
        broken: Broken::default(),
    };
    let inventory = match raw::from_str(text) {
        Ok(parsed) => {
            parsed.errors.iter().for_each(|e| cx.shape_error(e));
            Some(cx.inventory(parsed.raw, path, env))
        }
        Err(errors) => {
            errors.iter().for_each(|e| cx.shape_error(e));
            None
        }
    };
    let by_position = |d: &Diagnostic| (d.line, d.column);
    match inventory {
        Some(mut inventory) if cx.diagnostics.is_empty() => {
            cx.warnings.sort_by_key(by_position);
            inventory.warnings = cx.warnings;
            Ok(inventory)
        }
        _ => {
            let mut diagnostics = cx.diagnostics;
            diagnostics.sort_by_key(by_position);
            Err(Error { diagnostics })
        }
    }
}

/// Collects diagnostics while walking the raw inventory.
struct Checker<'a> {
    file: String,
    text: &'a str,
    lines: Lines<'a>,
    diagnostics: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// (offset, message) of every diagnostic so far: a value that several hosts share (a
    /// `[cluster]` path) is reported once, not once per host.
    reported: HashSet<(usize, String)>,
    /// Start offsets of values whose `$VARIABLES` could not be expanded. That is reported once;
    /// [`Checker::error`] drops any other diagnostic about the value as written.
    unexpanded: HashSet<usize>,
    /// The tables `raw` left out, whose errors were reported instead.
    broken: Broken,
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
    forward_port: Option<Spanned<u16>>,
    primary: Option<String>,
    synchronous: bool,
    /// `preferred_datanodes` as written (a standby: its datanode's), checked by
    /// [`Checker::datanode_marks`].
    preferred: Vec<Spanned<String>>,
    /// The node's own `settings = { ... }`, already checked.
    settings: SettingMap,
    /// `state = "removed"` (its datanode's, for a standby).
    removed: bool,
}

/// The strings of a list key as written, or none.
fn written_list(list: &Option<Spanned<Vec<Spanned<String>>>>) -> Vec<Spanned<String>> {
    list.as_ref().map_or_else(Vec::new, |l| l.get_ref().clone())
}

/// Who listens on each (machine address, port), to report the second one there.
type Listeners<'p> = HashMap<(String, u16), Listener<'p>>;

struct Listener<'p> {
    node: &'p PendingNode,
    /// `port` or `pooler_port`.
    what: &'static str,
    span: Range<usize>,
}

/// `[ssh]` after defaults, before each host's overrides.
struct SshDefaults {
    user: Option<String>,
    port: u16,
    identity_file: Option<PathBuf>,
    known_hosts: PathBuf,
    global_known_hosts: PathBuf,
    connect_timeout: Duration,
    command_timeout: Duration,
    proxy_jump: Vec<Jump>,
    config: Vec<PathBuf>,
    written: Written,
}

impl Checker<'_> {
    fn inventory(&mut self, mut raw: RawInventory, path: &Path, env: Lookup<'_>) -> Inventory {
        self.broken = std::mem::take(&mut raw.broken);
        raw.strings_mut(&mut |span, value| self.expand(span, value, env));
        let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let home = home.as_deref();
        let base_dir = path.parent().unwrap_or(Path::new(""));
        let cluster = self.cluster(&raw.cluster, path);
        let install_prefix = self.dir(raw.cluster.install_prefix.as_ref(), "install_prefix");
        let install_prefix = install_prefix.unwrap_or_else(|| default_dir(DEFAULT_INSTALL_PREFIX));
        let data_root = self.dir(raw.cluster.data_root.as_ref(), "data_root");
        let data_root = data_root.unwrap_or_else(|| default_dir(DEFAULT_DATA_ROOT));
        let ssh = self.ssh(&raw.ssh, base_dir, home);
        let hosts = self.hosts(&raw, &ssh, base_dir, home, install_prefix, data_root);
        let templates_dir = raw
            .cluster
            .templates_dir
            .as_ref()
            .map(|dir| self.local_path(dir, "templates_dir", base_dir, home));
        let nodes = self.nodes(&raw, cluster.flavor);
        let nodes = self.cross_checks(nodes, &hosts);
        self.datanode_marks(&raw, &cluster, &nodes);
        let source = raw.source.as_ref().and_then(|s| self.source(s, &hosts, base_dir, home));
        let b = &self.broken;
        let has_nodes =
            raw.gtm.is_some() || !raw.coordinators.is_empty() || !raw.datanodes.is_empty();
        let has_nodes = (has_nodes || b.gtm || b.coordinators || b.datanodes) && !b.auth;
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
            warnings: Vec::new(),
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
                if !is_host_like(&stem) && !self.broken.cluster {
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
            Some(RawFlavor::PostgresXl) => Flavor::PostgresXl,
            Some(RawFlavor::Opentenbase) => Flavor::Opentenbase,
            Some(RawFlavor::PostgresXc) | None => Flavor::PostgresXc,
        };
        let os_user = match &raw.os_user {
            Some(user) => {
                self.check_user(user, "os_user");
                if user.get_ref() == "root" {
                    self.error(
                        user.span(),
                        "os_user `root` is refused: PostgreSQL will not run as root".to_string(),
                        "use an unprivileged user that owns the cluster's files, such as `postgres` (the default); `user` in [ssh] may still be root",
                    );
                }
                user.get_ref().clone()
            }
            None => DEFAULT_OS_USER.to_string(),
        };
        let maximum_lag_on_failover =
            raw.maximum_lag_on_failover.as_ref().map_or(DEFAULT_MAXIMUM_LAG, |l| *l.get_ref());
        let primary_datanode = raw.primary_datanode.as_ref().and_then(|p| {
            if !flavor.is_pgxc() {
                self.error(
                    p.span(),
                    format!("`primary_datanode` is not used by flavor {flavor}"),
                    "remove it: only postgres-xc, postgres-xl and opentenbase mark a primary datanode",
                );
            }
            NodeName::new(p.get_ref()).ok()
        });
        Cluster { name, flavor, os_user, maximum_lag_on_failover, primary_datanode }
    }

    /// `primary_datanode` and every `preferred_datanodes` entry name a datanode of the
    /// inventory (as coordinators name it), once each; the primary is not being removed.
    fn datanode_marks(&mut self, raw: &RawInventory, cluster: &Cluster, nodes: &[Node]) {
        let datanodes: Vec<&Node> = nodes.iter().filter(|n| n.role == Role::Datanode).collect();
        let names: Vec<&str> = datanodes.iter().map(|n| n.name.as_str()).collect();
        let check = |checker: &mut Self, written: &Spanned<String>, key: &str| {
            let Some(datanode) = datanodes.iter().find(|n| n.name.as_str() == written.get_ref())
            else {
                checker.error(
                    written.span(),
                    format!("`{key}` names `{}`, which is not a datanode", written.get_ref()),
                    &format!(
                        "datanodes: {}; a standby is never marked, its datanode is",
                        quoted_list(&names)
                    ),
                );
                return;
            };
            if key == "primary_datanode" && datanode.removed {
                checker.error(
                    written.span(),
                    format!("primary datanode `{}` is being removed", datanode.name),
                    "name another datanode in `primary_datanode` (or remove the key) in the same apply",
                );
            }
        };
        if let (Some(p), true) = (&raw.cluster.primary_datanode, cluster.flavor.is_pgxc()) {
            check(self, p, "primary_datanode");
        }
        let lists = raw.coordinators.iter().map(|c| &c.get_ref().preferred_datanodes);
        let lists = lists.chain(raw.datanodes.iter().map(|d| &d.get_ref().preferred_datanodes));
        for list in lists.flatten() {
            let mut seen = Vec::new();
            for written in list.get_ref() {
                if seen.contains(&written.get_ref()) {
                    self.error(
                        written.span(),
                        format!("`{}` is listed twice in `preferred_datanodes`", written.get_ref()),
                        "list each datanode once",
                    );
                    continue;
                }
                seen.push(written.get_ref());
                check(self, written, "preferred_datanodes");
            }
        }
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
            global_known_hosts: match &raw.global_known_hosts {
                Some(path) => self.local_path(path, "global_known_hosts", base_dir, home),
                None => PathBuf::from(DEFAULT_GLOBAL_KNOWN_HOSTS),
            },
            connect_timeout: self.timeout(raw.connect_timeout.as_ref(), DEFAULT_CONNECT_TIMEOUT),
            command_timeout: self.timeout(raw.command_timeout.as_ref(), DEFAULT_COMMAND_TIMEOUT),
            proxy_jump: self.jumps(raw.proxy_jump.as_ref()).unwrap_or_default(),
            config: match raw.config.as_ref().map(|c| c.get_ref()) {
                Some(raw::RawSshConfig::On(false)) => Vec::new(),
                Some(raw::RawSshConfig::Path(path)) => {
                    let spanned =
                        Spanned::new(raw.config.as_ref().expect("some").span(), path.clone());
                    vec![self.local_path(&spanned, "config", base_dir, home)]
                }
                None | Some(raw::RawSshConfig::On(true)) => home
                    .map(|h| h.join(".ssh/config"))
                    .into_iter()
                    .chain([PathBuf::from(DEFAULT_SSH_CONFIG)])
                    .collect(),
            },
            written: Written {
                user: raw.user.is_some(),
                port: raw.port.is_some(),
                identity_file: raw.identity_file.is_some(),
                known_hosts: raw.known_hosts.is_some(),
                connect_timeout: raw.connect_timeout.is_some(),
                proxy_jump: raw.proxy_jump.is_some(),
            },
        }
    }

    /// A `proxy_jump` value: its hops, `Some(vec![])` for `"none"`, `None` when not written
    /// (or wrong, then reported).
    fn jumps(&mut self, value: Option<&Spanned<String>>) -> Option<Vec<Jump>> {
        let value = value?;
        match parse_jumps(value.get_ref()) {
            Ok(hops) => Some(hops),
            Err(why) => {
                self.error(
                    value.span(),
                    format!("invalid proxy_jump {why}"),
                    "write comma-separated `[user@]host[:port]` hops (a host of this inventory, or an address), or `none`",
                );
                None
            }
        }
    }

    fn hosts(
        &mut self,
        raw: &RawInventory,
        ssh: &SshDefaults,
        base_dir: &Path,
        home: Option<&Path>,
        install_prefix: Dir,
        data_root: Dir,
    ) -> Vec<Host> {
        if raw.hosts.is_empty() && self.broken.hosts.is_empty() {
            self.whole_file(
                "no hosts defined".to_string(),
                "add at least one host: a [hosts.db1] table with `address = \"10.0.0.1\"`",
            );
        }
        // The map is sorted by name; the user expects the order of the file.
        let mut entries: Vec<_> = raw.hosts.iter().collect();
        entries.sort_by_key(|(name, _)| name.span().start);
        let mut hosts = Vec::new();
        // (machine address, ssh port) -> the first host there, and its address's span
        let mut machines: HashMap<(String, u16), (&str, Range<usize>)> = HashMap::new();
        for (name, host) in entries {
            let host = host.get_ref();
            self.check_host_like(name, "host name");
            let usable = self.check_address(&host.address);
            let port = self.port(host.port.as_ref(), ssh.port);
            let machine = (hosts::machine_address(host.address.get_ref()), port);
            match machines.get(&machine).filter(|_| usable) {
                Some((first, at)) => self.error(
                    host.address.span(),
                    format!(
                        "hosts `{first}` and `{}` are the same machine (address `{}`, ssh port {port})",
                        name.get_ref(),
                        host.address.get_ref()
                    ),
                    &format!(
                        "`{first}` at line {} has this address and ssh port; declare the machine once and put all its nodes on that host",
                        self.line(at.start)
                    ),
                ),
                None => {
                    machines.insert(machine, (name.get_ref(), host.address.span()));
                }
            }
            if let Some(user) = &host.user {
                self.check_user(user, "ssh user");
            }
            let identity_file = match &host.identity_file {
                Some(path) => Some(self.local_path(path, "identity_file", base_dir, home)),
                None => ssh.identity_file.clone(),
            };
            let own_install = self.dir(host.install_prefix.as_ref(), "install_prefix");
            let own_data = self.dir(host.data_root.as_ref(), "data_root");
            let install = own_install.unwrap_or(Dir { own: false, ..install_prefix.clone() });
            let data = own_data.unwrap_or(Dir { own: false, ..data_root.clone() });
            self.check_dirs(&install, &data);
            hosts.push(Host {
                name: name.get_ref().clone(),
                address: host.address.get_ref().clone(),
                ssh: SshTarget {
                    user: host.user.as_ref().map(|u| u.get_ref().clone()).or(ssh.user.clone()),
                    port,
                    identity_file,
                    known_hosts: ssh.known_hosts.clone(),
                    global_known_hosts: ssh.global_known_hosts.clone(),
                    connect_timeout: ssh.connect_timeout,
                    command_timeout: ssh.command_timeout,
                    proxy_jump: self
                        .jumps(host.proxy_jump.as_ref())
                        .unwrap_or_else(|| ssh.proxy_jump.clone()),
                    config: ssh.config.clone(),
                    written: Written {
                        user: ssh.written.user || host.user.is_some(),
                        port: ssh.written.port || host.port.is_some(),
                        identity_file: ssh.written.identity_file || host.identity_file.is_some(),
                        proxy_jump: ssh.written.proxy_jump || host.proxy_jump.is_some(),
                        ..ssh.written
                    },
                },
                install_prefix: install.path,
                data_root: data.path,
            });
        }
        hosts
    }

    /// An `install_prefix` or `data_root` as written (in `[cluster]` or a host's table).
    fn dir(&mut self, path: Option<&Spanned<String>>, key: &str) -> Option<Dir> {
        let path = path?;
        let errors = self.diagnostics.len();
        let normal = self.remote_path(path, key);
        let valid = self.diagnostics.len() == errors;
        Some(Dir { path: normal, span: Some(path.span()), own: true, valid })
    }

    /// A port key that some flavors require on a node and the others do not use: a datanode's
    /// (or its standby's) `pooler_port` (Postgres-XL and OpenTenBase datanodes pool connections
    /// to each other), and OpenTenBase's `forward_port` on coordinators, datanodes and
    /// standbys. `what` is the node's kind, `owner` the coordinator or datanode it belongs to.
    fn flavor_port(
        &mut self,
        flavor: Flavor,
        span: Range<usize>,
        value: &Option<Spanned<u16>>,
        key: &str,
        what: &str,
        owner: &str,
    ) {
        let (wanted, why) = match key {
            "forward_port" => {
                (flavor.forwards(), "opentenbase nodes exchange rows through a forward process")
            }
            _ => (
                flavor.datanodes_pool(),
                "postgres-xl and opentenbase datanodes pool connections to each other",
            ),
        };
        match (wanted, value) {
            (true, None) => self.error(
                span,
                match what {
                    "standby" => format!("the standby of datanode `{owner}` has no `{key}`"),
                    _ => format!("{what} `{owner}` has no `{key}`"),
                },
                &format!("add `{key} = <a free port on its host>`: {why}"),
            ),
            (true, Some(_)) | (false, None) => {}
            (false, Some(p)) => self.error(
                p.span(),
                format!("`{key}` of a {what} is not used by flavor {flavor}"),
                &format!("remove it ({why})"),
            ),
        }
    }

    /// Flatten gtm, coordinators and datanodes (each followed by its standby) and check what
    /// each node needs on its own, including the flavor rules.
    fn nodes(&mut self, raw: &RawInventory, flavor: Flavor) -> Vec<PendingNode> {
        let xc = flavor.is_pgxc();
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
                forward_port: None,
                primary: None,
                synchronous: false,
                preferred: Vec::new(),
                settings: self.setting_map(g.settings.as_ref(), settings::Conf::Gtm),
                removed: false,
            });
            if let Some(standby) = &g.standby {
                let s = standby.get_ref();
                nodes.push(PendingNode {
                    name: s
                        .name
                        .as_ref()
                        .map_or(DEFAULT_GTM_STANDBY_NAME.to_string(), |n| n.get_ref().clone()),
                    name_span: s.name.as_ref().map_or(standby.span(), Spanned::span),
                    default_name: s.name.is_none(),
                    role: Role::GtmStandby,
                    host: s.host.clone(),
                    port: s.port.clone().unwrap_or(Spanned::new(standby.span(), DEFAULT_GTM_PORT)),
                    pooler_port: None,
                    forward_port: None,
                    primary: Some(
                        g.name
                            .as_ref()
                            .map_or(DEFAULT_GTM_NAME.to_string(), |n| n.get_ref().clone()),
                    ),
                    synchronous: false,
                    preferred: Vec::new(),
                    settings: self.setting_map(s.settings.as_ref(), settings::Conf::Gtm),
                    removed: false,
                });
            }
        }
        if let (Some(first), false) = (raw.gtm_proxies.first(), xc) {
            self.error(
                first.span(),
                "[[gtm_proxies]] are not used by flavor postgresql".to_string(),
                "remove the [[gtm_proxies]] tables, or set `flavor = \"postgres-xc\"` in [cluster]",
            );
        }
        if let (Some(first), Flavor::Opentenbase) = (raw.gtm_proxies.first(), flavor) {
            self.error(
                first.span(),
                "[[gtm_proxies]] are not used by flavor opentenbase".to_string(),
                "remove the [[gtm_proxies]] tables: opentenbase nodes reach the GTM at the address initdb gave them (their pgxc_node's GTM row)",
            );
        }
        let mut proxy_hosts: HashMap<&str, &Spanned<String>> = HashMap::new();
        for proxy in &raw.gtm_proxies {
            let p = proxy.get_ref();
            if let Some(first) = proxy_hosts.insert(p.host.get_ref(), &p.name) {
                self.error(
                    p.host.span(),
                    format!("host `{}` has two gtm_proxies", p.host.get_ref()),
                    &format!(
                        "`{}` is already its proxy (line {}): a host's nodes reach the GTM through one proxy; remove one",
                        first.get_ref(),
                        self.line(first.span().start)
                    ),
                );
            }
            nodes.push(PendingNode {
                name: p.name.get_ref().clone(),
                name_span: p.name.span(),
                default_name: false,
                role: Role::GtmProxy,
                host: p.host.clone(),
                port: p.port.clone(),
                pooler_port: None,
                forward_port: None,
                primary: None,
                synchronous: false,
                preferred: Vec::new(),
                settings: self.setting_map(p.settings.as_ref(), settings::Conf::GtmProxy),
                removed: false,
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
            let name = c.name.get_ref();
            self.flavor_port(
                flavor,
                coord.span(),
                &c.forward_port,
                "forward_port",
                "coordinator",
                name,
            );
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
                forward_port: c.forward_port.clone(),
                primary: None,
                synchronous: false,
                preferred: written_list(&c.preferred_datanodes),
                settings: self.setting_map(c.settings.as_ref(), settings::Conf::Server),
                removed: false,
            });
        }
        for datanode in &raw.datanodes {
            let d = datanode.get_ref();
            let removed = self.node_state(d.state.as_ref());
            let standby = d.standby.as_ref().map(|s| (s.span(), s.get_ref()));
            let ports = [(datanode.span(), &d.pooler_port, &d.forward_port, "datanode")];
            let standby_ports =
                standby.map(|(span, s)| (span, &s.pooler_port, &s.forward_port, "standby"));
            for (span, pooler, forward, what) in ports.into_iter().chain(standby_ports) {
                let name = d.name.get_ref();
                self.flavor_port(flavor, span.clone(), pooler, "pooler_port", what, name);
                self.flavor_port(flavor, span, forward, "forward_port", what, name);
            }
            let preferred = written_list(&d.preferred_datanodes);
            if let (Some(list), false) = (&d.preferred_datanodes, flavor.datanodes_pool()) {
                self.error(
                    list.span(),
                    format!("`preferred_datanodes` of a datanode is not used by flavor {flavor}"),
                    "remove it: only postgres-xl and opentenbase datanodes keep a pgxc_node of their own; mark preferred datanodes on the coordinators",
                );
            }
            nodes.push(PendingNode {
                name: d.name.get_ref().clone(),
                name_span: d.name.span(),
                default_name: false,
                role: Role::Datanode,
                host: d.host.clone(),
                port: d.port.clone(),
                pooler_port: d.pooler_port.clone(),
                forward_port: d.forward_port.clone(),
                primary: None,
                synchronous: false,
                preferred: preferred.clone(),
                settings: self.setting_map(d.settings.as_ref(), settings::Conf::Server),
                removed,
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
                    pooler_port: s.pooler_port.clone(),
                    forward_port: s.forward_port.clone(),
                    primary: Some(d.name.get_ref().clone()),
                    synchronous: s.synchronous,
                    preferred: preferred.clone(),
                    settings: self.setting_map(s.settings.as_ref(), settings::Conf::Server),
                    removed,
                });
            }
        }
        if xc && raw.gtm.is_none() && !self.broken.gtm {
            let first_coordinator = raw.coordinators.first().map(Spanned::span);
            if let Some(span) = first_coordinator.or(raw.datanodes.first().map(Spanned::span)) {
                self.error(
                    span,
                    format!("flavor {flavor} needs a [gtm] for its coordinators and datanodes"),
                    "add a [gtm] table with `host = \"<host name>\"` (port defaults to 6666)",
                );
            }
        }
        let no_coordinator = raw.coordinators.is_empty() && !self.broken.coordinators;
        if let (true, Some(first), true) = (xc, raw.datanodes.first(), no_coordinator) {
            self.error(
                first.span(),
                "flavor postgres-xc needs at least one coordinator in front of its datanodes"
                    .to_string(),
                "add a [[coordinators]] table with `name`, `host`, `port` and `pooler_port`",
            );
        }
        let present = nodes.iter().any(|n| n.role == Role::Datanode && !n.removed);
        if let (Some(first), false) = (raw.datanodes.first(), present) {
            self.error(
                first.span(),
                "every datanode is `state = \"removed\"`: nothing would hold the rows".to_string(),
                "keep at least one datanode present (leave `state` out)",
            );
        }
        nodes
    }

    /// Checks that involve more than one value: names, host references, listeners.
    fn cross_checks(&mut self, pending: Vec<PendingNode>, hosts: &[Host]) -> Vec<Node> {
        let host_names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let by_name: HashMap<&str, &Host> = hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut seen_names: HashMap<&str, &PendingNode> = HashMap::new();
        let mut listeners = Listeners::new();
        let mut nodes = Vec::new();
        for node in &pending {
            let name = self.node_name(node);
            if let Some(first) = seen_names.get(node.name.as_str()) {
                self.error(
                    node.name_span.clone(),
                    format!("node name `{}` is used twice", node.name),
                    &format!(
                        "the {} at line {} already has this name{}; node names must be unique across the GTM, its standby, gtm_proxies, coordinators, datanodes and standbys",
                        first.role,
                        self.line(first.name_span.start),
                        if first.default_name { " by default" } else { "" },
                    ),
                );
            } else {
                seen_names.insert(&node.name, node);
            }

            let host = by_name.get(node.host.get_ref().as_str()).copied();
            match host {
                None => self.unknown_host(&node.host, &host_names),
                Some(host) => {
                    self.listen(&mut listeners, node, host);
                    let primary = node.primary.as_deref().and_then(|p| seen_names.get(p));
                    if let Some(primary) = primary.filter(|p| p.host.get_ref() == &host.name) {
                        self.warning(
                            node.host.span(),
                            format!("standby `{}` is on `{}`, the host of its datanode `{}`", node.name, host.name, primary.name),
                            &format!("losing `{}` loses both copies: no high availability; put the standby on another host", host.name),
                        );
                    }
                }
            }
            let port = self.port(Some(&node.port), 0);
            let pooler_port = node.pooler_port.as_ref().map(|p| self.port(Some(p), 0));
            let forward_port = node.forward_port.as_ref().map(|p| self.port(Some(p), 0));

            if let (Some(name), Some(host)) = (name, host) {
                let data_dir = format!("{}/{}", host.data_root, name);
                self.check_install_outside(node.name_span.clone(), &node.name, &data_dir, host);
                nodes.push(Node {
                    data_dir,
                    name,
                    role: node.role,
                    host: host.name.clone(),
                    port,
                    pooler_port,
                    forward_port,
                    primary: node.primary.as_deref().and_then(|p| NodeName::new(p).ok()),
                    synchronous: node.synchronous,
                    serves: None,
                    preferred: node
                        .preferred
                        .iter()
                        .filter_map(|p| NodeName::new(p.get_ref()).ok())
                        .collect(),
                    settings: node.settings.clone(),
                    removed: node.removed,
                });
            }
        }
        nodes
    }

    /// Record the node's ports at its host's address. Other nodes reach a node at its host's
    /// address, so two hosts with one address (containers behind different ssh ports) share
    /// their ports too.
    fn listen<'p>(&mut self, listeners: &mut Listeners<'p>, node: &'p PendingNode, host: &Host) {
        let mut ports = vec![(&node.port, "port")];
        ports.extend(node.pooler_port.as_ref().map(|p| (p, "pooler_port")));
        ports.extend(node.forward_port.as_ref().map(|p| (p, "forward_port")));
        for (spanned, what) in ports {
            let port = *spanned.get_ref();
            if port == 0 {
                continue;
            }
            let at = (hosts::machine_address(&host.address), port);
            let Some(other) = listeners.get(&at) else {
                listeners.insert(at, Listener { node, what, span: spanned.span() });
                continue;
            };
            let message = if other.node.host.get_ref() == &host.name {
                format!("port {port} on host `{}` is already taken", host.name)
            } else {
                format!("port {port} at address `{}` is already taken", host.address)
            };
            let on = match other.node.host.get_ref() == &host.name {
                true => String::new(),
                false => format!(" on host `{}`", other.node.host.get_ref()),
            };
            let hint = format!(
                "{} `{}`{on} listens there (its {}, line {}); choose another port here",
                other.node.role,
                other.node.name,
                other.what,
                self.line(other.span.start)
            );
            self.error(spanned.span(), message, &hint);
        }
    }

    fn unknown_host(&mut self, host: &Spanned<String>, host_names: &[&str]) {
        if self.broken.hosts.contains(host.get_ref()) {
            return; // declared, but its table did not parse: that is reported
        }
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
            // `<datanode>_standby` from an invalid datanode name: that one is reported.
            Err(_)
                if node.default_name
                    && node.primary.as_deref().is_some_and(|p| NodeName::new(p).is_err()) =>
            {
                None
            }
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

    /// A datanode's `state`: `true` for `"removed"`.
    fn node_state(&mut self, state: Option<&Spanned<String>>) -> bool {
        match state.map(|s| s.get_ref().as_str()) {
            None | Some("present") => false,
            Some("removed") => true,
            Some(other) => {
                self.error(
                    state.expect("matched Some").span(),
                    format!("unknown state `{other}`"),
                    "write `state = \"removed\"` to move the datanode's rows to the others and take it out of the cluster, or leave `state` out (`\"present\"`)",
                );
                false
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

    /// Whether the address is one that other hosts can reach this host at.
    fn check_address(&mut self, address: &Spanned<String>) -> bool {
        match check_address(address.get_ref()) {
            Err(why) => {
                self.error(
                    address.span(),
                    format!("invalid address `{}`: {why}", address.get_ref()),
                    "write an IPv4 or IPv6 address (no brackets) or a DNS name such as `db1.example.com`",
                );
                false
            }
            Ok(()) => self.check_reachable(address),
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
    /// only characters that never need quoting, and no system directory. Returned normalised
    /// (`//opt/./pgxc/` -> `/opt/pgxc`).
    fn remote_path(&mut self, path: &Spanned<String>, key: &str) -> String {
        let value = path.get_ref();
        let normal = hosts::normalize(value);
        let problem = if !value.starts_with('/') {
            Some("is not absolute".to_string())
        } else if normal == "/" {
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
        } else {
            self.check_not_system_dir(path.span(), key, &normal);
        }
        normal
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

    fn error(&mut self, span: Range<usize>, message: String, hint: &str) {
        if let Some(diagnostic) = self.located(span, Severity::Error, message, hint) {
            self.diagnostics.push(diagnostic);
        }
    }

    /// A problem that does not stop the command: it is printed, and the inventory accepted.
    fn warning(&mut self, span: Range<usize>, message: String, hint: &str) {
        if let Some(diagnostic) = self.located(span, Severity::Warning, message, hint) {
            self.warnings.push(diagnostic);
        }
    }

    /// `None` when the value is already reported: as unexpanded, or with the same message.
    fn located(
        &mut self,
        span: Range<usize>,
        severity: Severity,
        message: String,
        hint: &str,
    ) -> Option<Diagnostic> {
        if self.unexpanded.contains(&span.start)
            || !self.reported.insert((span.start, message.clone()))
        {
            return None;
        }
        let (line, column) = self.lines.position(span.start);
        Some(Diagnostic {
            file: self.file.clone(),
            line,
            column,
            severity,
            message,
            hint: Some(hint.to_string()),
            snippet: Some(self.lines.snippet(&span)),
        })
    }

    fn whole_file(&mut self, message: String, hint: &str) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            line: 0,
            column: 0,
            severity: Severity::Error,
            message,
            hint: Some(hint.to_string()),
            snippet: None,
        });
    }

    fn line(&self, offset: usize) -> usize {
        self.lines.position(offset).0
    }
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
                maximum_lag_on_failover: 1 << 20,
                primary_datanode: None,
            }
        );

        let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["db1", "db2", "db3"]);
        let db1 = inv.host("db1").unwrap();
        assert_eq!(db1.address, "10.0.0.1");
        assert_eq!(db1.install_prefix, "/opt/pgxc");
        assert_eq!(db1.data_root, "/var/lib/pgxc");
        assert_eq!(
            db1.ssh,
            SshTarget {
                user: Some("admin".into()),
                port: 22,
                identity_file: Some(PathBuf::from("/home/tester/.ssh/id_ed25519")),
                known_hosts: PathBuf::from("tests/inventories/valid/keys/known_hosts"),
                global_known_hosts: PathBuf::from("/etc/ssh/ssh_known_hosts"),
                connect_timeout: Duration::from_secs(5),
                command_timeout: Duration::from_secs(900),
                proxy_jump: Vec::new(),
                config: vec![
                    PathBuf::from("/home/tester/.ssh/config"),
                    PathBuf::from("/etc/ssh/ssh_config")
                ],
                written: Written {
                    user: true,
                    identity_file: true,
                    known_hosts: true,
                    connect_timeout: true,
                    ..Written::default()
                },
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
                timeout: std::time::Duration::from_secs(5400),
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
                maximum_lag_on_failover: 1 << 20,
                primary_datanode: None,
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
                global_known_hosts: PathBuf::from("/etc/ssh/ssh_known_hosts"),
                connect_timeout: Duration::from_secs(10),
                command_timeout: Duration::from_secs(600),
                proxy_jump: Vec::new(),
                config: vec![
                    PathBuf::from("/home/tester/.ssh/config"),
                    PathBuf::from("/etc/ssh/ssh_config")
                ],
                written: Written::default(),
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
    fn a_standby_on_its_primarys_host_is_a_warning() {
        let text = "[cluster]\nflavor = \"postgresql\"\n[hosts.db1]\naddress = \"db1\"\n\
                    [[datanodes]]\nname = \"pg\"\nhost = \"db1\"\nport = 5432\n\
                    [datanodes.standby]\nhost = \"db1\"\nport = 5433\n\
                    [auth]\nmethod = \"trust\"\n";
        let inv = check(text).unwrap();
        assert_eq!(inv.nodes.len(), 2);
        let shown: Vec<String> = inv.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "inv/test.toml:10:8: warning: standby `pg_standby` is on `db1`, the host of its datanode `pg`\n   |\n\
              10 | host = \"db1\"\n   |        ^^^^^\n  \
              hint: losing `db1` loses both copies: no high availability; put the standby on another host"
            ]
        );
        let elsewhere = text.replacen(
            "[datanodes.standby]\nhost = \"db1\"",
            "[datanodes.standby]\nhost = \"db2\"",
            1,
        );
        let elsewhere =
            elsewhere.replacen("[[datanodes]]", "[hosts.db2]\naddress = \"db2\"\n[[datanodes]]", 1);
        assert_eq!(check(&elsewhere).unwrap().warnings, []);
    }

    /// Thousands of nodes, every one with an invalid name: one diagnostic each (none for the
    /// standbys' derived names), and the same file with valid names validates. Positions were
    /// found by scanning the text from its start for each diagnostic, quadratic in the file.
    #[test]
    fn thousands_of_nodes() {
        let big = |name: &str| {
            let mut text =
                String::from("[cluster]\nflavor = \"postgresql\"\n[auth]\nmethod = \"trust\"\n");
            for h in 0..500 {
                text += &format!("[hosts.h{h}]\naddress = \"10.0.{}.{}\"\n", h / 256, h % 256);
            }
            for i in 0..4000 {
                let (h, port) = (i % 500, 10000 + i);
                text += &format!(
                    "[[datanodes]]\nname = \"{name}{i}\"\nhost = \"h{h}\"\nport = {port}\n"
                );
                text +=
                    &format!("[datanodes.standby]\nhost = \"h{}\"\nport = {port}\n", (h + 1) % 500);
            }
            text
        };
        assert_eq!(check(&big("dn")).unwrap().nodes.len(), 8000);
        let d = errors(&big("Dn"));
        assert_eq!(d.len(), 4000);
        assert!(
            d.iter().all(|d| d
                .message
                .ends_with("must start with a lowercase letter or an underscore"))
        );
        assert_eq!((d[3999].line, d[3999].column), (1000 + 4 + 7 * 3999 + 2, 8));
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
