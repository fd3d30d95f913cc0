//! What a host looks like now ([`HostFacts`]), read from what the one read-only probe printed.
//! PURE: [`crate::remote::probe`] writes the probe, `observe` runs it, one round trip per host,
//! and this module parses its output; nothing here decides what to change.
//!
//! The probe prints one fact per line (`key value`), and files as `file NAME LENGTH` followed by
//! exactly LENGTH bytes, so any file content parses back unchanged.

use std::collections::BTreeMap;

use crate::inventory::NodeName;

pub use crate::inventory::replication::Lsn;

/// Marker written in a data directory once its initialisation (initdb, initgtm or
/// pg_basebackup, and the first configuration) completed. A directory without it is
/// half-done and is redone.
pub const INIT_MARKER: &str = ".pgxc-deploy-initialized";
/// Marker holding the fingerprint of the install under an install prefix.
pub const INSTALL_MARKER: &str = ".pgxc-deploy-install";
/// Marker in a standby's data directory: pgxc-deploy saw it stream from its primary (apply's
/// verification, a switchover's hand-over) since it last became a standby. A clone or a rewind
/// does not carry it over from the primary, and a promote removes it. failover promotes only a
/// standby that streams now or has it: one that never streamed may lack everything its primary
/// wrote since the clone.
pub const STREAMED_MARKER: &str = ".pgxc-deploy-streamed";

/// Suffix of the directory a node is initialised in before it is renamed into place.
pub const STAGING_SUFFIX: &str = ".pgxc-deploy-tmp";
/// The libpq password file under a host's data root (mode 0600), when the inventory has a
/// password: every command pgxc-deploy runs there, and so every server it starts, gets it as
/// `PGPASSFILE`.
pub const PASSFILE: &str = ".pgxc-deploy.pgpass";

/// A distributed table, as a coordinator's pgxc_class has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    /// Qualified and quoted (`quote_ident`), as SQL takes it.
    pub name: String,
    /// pgxc_class.pclocatortype: H hash, M modulo, N round robin, R replicated.
    pub kind: char,
    /// The datanodes it is on.
    pub nodes: Vec<String>,
}

impl TableRow {
    /// `KIND NODES NAME` (nodes comma-separated; the name last, as it may hold spaces).
    pub fn parse(line: &str) -> Option<TableRow> {
        let (kind, rest) = line.split_once(' ')?;
        let (nodes, name) = rest.split_once(' ')?;
        let mut chars = kind.chars();
        let (Some(kind), None) = (chars.next(), chars.next()) else { return None };
        let nodes = nodes.split(',').filter(|n| !n.is_empty()).map(String::from).collect();
        (!name.is_empty()).then(|| TableRow { name: name.to_string(), kind, nodes })
    }
}

/// One of an OpenTenBase coordinator's node groups (pgxc_group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub name: String,
    /// The default group: where tables without a group go.
    pub default: bool,
    /// Its datanodes, in name order.
    pub members: Vec<String>,
}

impl GroupRow {
    /// `NAME DEFAULT MEMBERS` (DEFAULT 1 or 0, members comma-separated; none: empty).
    pub fn parse(line: &str) -> Option<GroupRow> {
        let mut f = line.split(' ');
        let (name, default, members) = (f.next()?, f.next()?, f.next().unwrap_or(""));
        let members = members.split(',').filter(|m| !m.is_empty()).map(String::from).collect();
        let default = default.parse::<i32>().ok()? != 0;
        (!name.is_empty() && f.next().is_none()).then(|| GroupRow {
            name: name.to_string(),
            default,
            members,
        })
    }
}

/// One row of a coordinator's pgxc_node catalog.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PgxcNodeRow {
    pub name: String,
    pub kind: NodeKind,
    pub host: String,
    pub port: u16,
    /// `nodeis_primary`: the datanode that writes to replicated tables go to first.
    pub primary: bool,
    /// `nodeis_preferred`: a datanode this catalog's server reads replicated tables from.
    pub preferred: bool,
    /// OpenTenBase's `node_forward_port`; 0 where the catalog has none (other flavors, the
    /// GTM's row).
    pub forward: u16,
}

impl PgxcNodeRow {
    /// A row as `node_name node_type node_host node_port nodeis_primary nodeis_preferred
    /// [node_forward_port]`, space-separated, booleans as `t`/`f` or `true`/`false` (how the
    /// probe and the register step read pgxc_node with psql, [`crate::plan::sql::
    /// PGXC_NODE_ROWS`]); no forward port is 0.
    pub fn parse(line: &str) -> Result<PgxcNodeRow, &'static str> {
        let f: Vec<&str> = line.split(' ').collect();
        let (name, kind, host, port, primary, preferred, forward) = match f[..] {
            [a, b, c, d, e, g] => (a, b, c, d, e, g, "0"),
            [a, b, c, d, e, g, h] => (a, b, c, d, e, g, h),
            _ => return Err("bad pgxc_node row"),
        };
        let port = port.parse().map_err(|_| "bad pgxc_node port")?;
        let forward = forward.parse().map_err(|_| "bad pgxc_node forward port")?;
        let flag = |b: &str| match b {
            "t" | "true" => Ok(true),
            "f" | "false" => Ok(false),
            _ => Err("bad pgxc_node flag"),
        };
        Ok(PgxcNodeRow {
            name: name.into(),
            kind: NodeKind::from_code(kind),
            host: host.into(),
            port,
            primary: flag(primary)?,
            preferred: flag(preferred)?,
            forward,
        })
    }

    /// Where the row says the node is: `HOST:PORT`, and ` (forward PORT)` when it has one.
    pub fn address(&self) -> String {
        match self.forward {
            0 => format!("{}:{}", self.host, self.port),
            f => format!("{}:{} (forward {f})", self.host, self.port),
        }
    }

    /// How the row is marked, in words: `primary, preferred`, `primary`, `preferred` or
    /// `unmarked`.
    pub fn marks(&self) -> &'static str {
        match (self.primary, self.preferred) {
            (true, true) => "primary, preferred",
            (true, false) => "primary",
            (false, true) => "preferred",
            (false, false) => "unmarked",
        }
    }
}

/// pgxc_node.node_type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// `C`
    Coordinator,
    /// `D`
    Datanode,
    /// A type pgxc-deploy does not register, as the catalog spells it.
    Other(String),
}

impl NodeKind {
    pub fn from_code(code: &str) -> NodeKind {
        match code {
            "C" => NodeKind::Coordinator,
            "D" => NodeKind::Datanode,
            other => NodeKind::Other(other.to_string()),
        }
    }

    /// A kind pgxc-deploy registers (coordinators and datanodes); a row of another kind is
    /// left as it is.
    pub fn registered(&self) -> bool {
        !matches!(self, NodeKind::Other(_))
    }

    /// The word `CREATE NODE ... WITH (TYPE = '...')` takes.
    pub fn type_word(&self) -> &str {
        match self {
            NodeKind::Coordinator => "coordinator",
            NodeKind::Datanode => "datanode",
            NodeKind::Other(code) => code,
        }
    }
}

/// A standby connected to a primary, from its pg_stat_replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub application_name: String,
    pub state: ReplicaState,
    pub sync_state: String,
    /// WAL bytes written on the primary and not yet replayed by the standby; `None` before
    /// the standby's first reply.
    pub lag_bytes: Option<u64>,
}

/// `pg_stat_replication.state`: how far a connected standby is with its primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaState {
    /// Caught up once, and receiving WAL as the primary writes it.
    Streaming,
    Catchup,
    Startup,
    Backup,
    Stopping,
    /// A state this version of pgxc-deploy does not know.
    Other(String),
}

impl ReplicaState {
    pub fn parse(text: &str) -> ReplicaState {
        match text {
            "streaming" => ReplicaState::Streaming,
            "catchup" => ReplicaState::Catchup,
            "startup" => ReplicaState::Startup,
            "backup" => ReplicaState::Backup,
            "stopping" => ReplicaState::Stopping,
            other => ReplicaState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ReplicaState::Streaming => "streaming",
            ReplicaState::Catchup => "catchup",
            ReplicaState::Startup => "startup",
            ReplicaState::Backup => "backup",
            ReplicaState::Stopping => "stopping",
            ReplicaState::Other(text) => text,
        }
    }
}

impl std::fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `reach_from` when `ip route get` printed no source address (no iproute2 on the host).
pub const UNKNOWN_SOURCE: &str = "?";

/// How long the probe waits for a server's SQL answers, in seconds.
pub const SQL_SECS: u32 = 5;

/// What the probe found for one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub dir_exists: bool,
    pub initialized: bool,
    /// `<data_dir>.pgxc-deploy-tmp`, where an interrupted init left its work, exists.
    pub staging: bool,
    /// Managed files present in the data directory, with their content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The server answers (pg_isready 0; for the GTM, gtm_ctl status).
    pub running: bool,
    /// It accepts connections, but the probe's SQL session did not end within [`SQL_SECS`] (a
    /// Postgres-XC server whose GTM is gone).
    pub sql_stuck: bool,
    /// The process named by the PID file (postmaster.pid, gtm.pid) exists, whether or not it
    /// accepts connections yet.
    pub alive: bool,
    /// The PID of that process (a restart changes it: what tells a restart of a server that
    /// answers no SQL, a Postgres-XL standby, from none).
    pub pid: Option<u32>,
    pub start_time: Option<String>,
    pub in_recovery: Option<bool>,
    /// A GTM or GTM standby of a flavor whose active GTM connects back to its standby: the
    /// address this host's connections to the other one come from (`ip route get`), which is
    /// where that one would send a standby here its transaction IDs.
    pub reach_from: Option<String>,
    /// [`STREAMED_MARKER`] is in the data directory: pgxc-deploy saw this standby stream
    /// from its primary since it last became a standby.
    pub streamed: bool,
    /// On a primary: its current WAL position (written).
    pub wal: Option<Lsn>,
    /// On a standby: the last WAL position received and flushed, and the last replayed.
    pub received: Option<Lsn>,
    pub replayed: Option<Lsn>,
    /// kB free (for the cluster's user) on the filesystem of the data directory.
    pub free_kb: Option<u64>,
    /// The last line among the server log's last lines that says a write found no space.
    pub disk_error: Option<String>,
    pub pgxc_node: Vec<PgxcNodeRow>,
    /// A coordinator: its distributed tables.
    pub tables: Vec<TableRow>,
    /// An OpenTenBase coordinator: its node groups, and the rows of its shard map (`None`:
    /// not read).
    pub groups: Vec<GroupRow>,
    pub shards: Option<u64>,
    /// [`REDISTRIBUTE_MARKER`](super::step::REDISTRIBUTE_MARKER) is in the data directory: a
    /// datanode over which tables are still to be spread.
    pub redistributing: bool,
    /// [`JOIN_MARKER`](super::step::JOIN_MARKER) is in the data directory: initialised to join
    /// a running cluster, not joined yet.
    pub join_pending: bool,
    pub replicas: Vec<Replica>,
    /// pg_settings.context by setting name (`postmaster` needs a restart).
    pub setting_context: BTreeMap<String, String>,
}

/// What the probe found for `node` on `host`, from a probe of several hosts (per host: its
/// facts, or why it could not be probed). `Err`: the host's problem, or `not probed`;
/// `Ok(None)`: the host answered without reporting that node.
pub fn node_facts<'a>(
    facts: &'a BTreeMap<String, Result<HostFacts, String>>,
    host: &str,
    node: &str,
) -> Result<Option<&'a NodeFacts>, String> {
    match facts.get(host) {
        Some(Ok(h)) => Ok(h.nodes.get(node)),
        Some(Err(why)) => Err(why.clone()),
        None => Err("not probed".into()),
    }
}

impl NodeFacts {
    /// Why a GTM standby here, on `host` and listening on `listens`, is not known to be sent
    /// every transaction ID by the active GTM ([`NodeFacts::reach_from`]), with what to do;
    /// `None` when its connections come from where it listens, or when nothing was checked (a
    /// flavor whose standby is not dialed back, an `address` that is a DNS name).
    pub fn unreached(&self, host: &str, listens: &str) -> Option<String> {
        let from = self.reach_from.as_deref()?;
        let ip: std::net::IpAddr = listens.parse().ok()?;
        if from == UNKNOWN_SOURCE {
            return Some(format!(
                "not known to be in sync: the address its connections to the active GTM come \
                 from could not be read on {host} (`ip route get` printed none), and the active \
                 GTM sends its standby every transaction ID there; install iproute2 on {host} \
                 so that pgxc-deploy can check it"
            ));
        }
        (from.parse().ok() != Some(ip)).then(|| {
            format!(
                "never in sync: the active GTM sends its standby every transaction ID at the \
                 address the standby's connection to it comes from, which is {from} on {host}, \
                 but it listens on {listens}; promoted, it would hand out transaction IDs already \
                 used. Give {host} the address its connections to the active GTM come from \
                 (`address` in [hosts.{host}]), or route them from {listens}; on lab hosts, \
                 `pgxc-deploy lab up --netns` gives each host an address of its own"
            )
        })
    }

    /// This primary lists `standby` as connected and streaming.
    pub fn streams_to(&self, standby: &str) -> bool {
        self.replicas
            .iter()
            .any(|r| r.application_name == standby && r.state == ReplicaState::Streaming)
    }
}

/// What the probe found on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The fingerprint recorded under the install prefix, if any.
    pub install: Option<String>,
    /// The SHA-256 of the password file, if there is one (never its content).
    pub passfile: Option<String>,
    pub nodes: BTreeMap<NodeName, NodeFacts>,
}

/// Below this many kB free, a data directory's disk counts as full.
pub const DISK_FULL_KB: u64 = 1024;

/// Why the node's disk may be the cause of its trouble, when it may: its filesystem is full, or
/// its server log's last lines say a write found no space. `None` otherwise.
pub fn disk_cause(f: &NodeFacts, data_dir: &str) -> Option<String> {
    match (f.free_kb, &f.disk_error) {
        (Some(kb), _) if kb < DISK_FULL_KB => {
            Some(format!("no space left on device: {kb} kB free on the filesystem of {data_dir}"))
        }
        (_, Some(line)) if !f.running => {
            Some(format!("no space left on device, says its server log: {}", line.trim()))
        }
        _ => None,
    }
}

/// The probe's output could not be read (a bug, or a host that printed something unexpected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected probe output near byte {offset}: {what}")]
pub struct ParseError {
    pub offset: usize,
    pub what: String,
}

/// Parse what [`crate::remote::probe::probe_script`] printed.
pub fn parse_probe(out: &[u8]) -> Result<HostFacts, ParseError> {
    let mut facts = HostFacts::default();
    let mut current: Option<NodeName> = None;
    let mut pos = 0;
    while pos < out.len() {
        let end = out[pos..].iter().position(|b| *b == b'\n').map_or(out.len(), |i| pos + i);
        let line = String::from_utf8_lossy(&out[pos..end]).into_owned();
        let at = pos;
        let err = |what: &str| ParseError { offset: at, what: format!("{what}: {line:?}") };
        pos = end + 1;
        let (key, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        if key == "install" {
            facts.install = Some(rest.to_string());
            continue;
        }
        if key == "passfile" {
            facts.passfile = Some(rest.to_string());
            continue;
        }
        if key == "node" {
            let name = NodeName::new(rest).map_err(|e| err(&format!("a node name that {e}")))?;
            facts.nodes.insert(name.clone(), NodeFacts::default());
            current = Some(name);
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let node = current
            .as_ref()
            .and_then(|c| facts.nodes.get_mut(c.as_str()))
            .ok_or_else(|| err("fact before any node"))?;
        match key {
            "dir" => node.dir_exists = true,
            "initialized" => node.initialized = true,
            "running" => node.running = true,
            "alive" => node.alive = true,
            "pid" => node.pid = rest.trim().parse().ok(),
            "sqlstuck" => node.sql_stuck = true,
            "staging" => node.staging = true,
            "start" => node.start_time = Some(rest.to_string()),
            "recovery" => node.in_recovery = Some(rest == "t" || rest == "true"),
            "streamed" => node.streamed = true,
            "free" => node.free_kb = rest.trim().parse().ok(),
            "diskerror" => node.disk_error = Some(rest.to_string()),
            "reach_from" => node.reach_from = Some(rest.trim().to_string()),
            "wal" | "received" | "replayed" => {
                let lsn: Lsn = rest.parse().map_err(|e: String| err(&e))?;
                match key {
                    "wal" => node.wal = Some(lsn),
                    "received" => node.received = Some(lsn),
                    _ => node.replayed = Some(lsn),
                }
            }
            "file" => {
                let (name, len) =
                    rest.rsplit_once(' ').ok_or_else(|| err("file without length"))?;
                let len: usize = len.trim().parse().map_err(|_| err("bad file length"))?;
                let body = out.get(pos..pos + len).ok_or_else(|| err("file cut short"))?;
                node.files.insert(name.to_string(), body.to_vec());
                pos += len + 1; // and the newline the probe adds after the content
            }
            "context" => {
                let (name, context) = rest.split_once(' ').ok_or_else(|| err("bad context"))?;
                node.setting_context.insert(name.to_string(), context.to_string());
            }
            "replica" => {
                let mut f = rest.split(' ');
                let (a, s, y, lag) = (f.next(), f.next(), f.next(), f.next());
                node.replicas.push(Replica {
                    application_name: a.unwrap_or_default().to_string(),
                    state: ReplicaState::parse(s.unwrap_or_default()),
                    sync_state: y.unwrap_or_default().to_string(),
                    lag_bytes: lag.and_then(parse_lag),
                });
            }
            "pgxc_node" => {
                node.pgxc_node.push(PgxcNodeRow::parse(rest).map_err(err)?);
            }
            "table" => node.tables.push(TableRow::parse(rest).ok_or_else(|| err("bad table"))?),
            "group" => node.groups.push(GroupRow::parse(rest).ok_or_else(|| err("bad group"))?),
            "shards" => node.shards = Some(rest.parse().map_err(|_| err("bad shards"))?),
            "redistributing" => node.redistributing = true,
            "join_pending" => node.join_pending = true,
            _ => return Err(err("unknown fact")),
        }
    }
    Ok(facts)
}

/// A lag as the probe prints it: a whole number of bytes, empty when unknown. A standby can
/// report a replay position past the primary's last flush for an instant: that is no lag.
pub fn parse_lag(text: &str) -> Option<u64> {
    let bytes: i64 = text.trim().parse().ok()?;
    Some(bytes.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pgxc_node_row_parses_once_for_probe_and_registration() {
        let row = PgxcNodeRow::parse("dn1 D 127.0.10.2 15432 t f").unwrap();
        assert_eq!(row.kind, NodeKind::Datanode);
        assert_eq!((row.name.as_str(), row.host.as_str(), row.port), ("dn1", "127.0.10.2", 15432));
        assert_eq!((row.primary, row.preferred, row.marks()), (true, false, "primary"));
        let coord = PgxcNodeRow::parse("coord1 C localhost 5432 false false").unwrap();
        assert_eq!((coord.kind.type_word(), coord.marks()), ("coordinator", "unmarked"));
        assert_eq!(PgxcNodeRow::parse("dn1 D h 1 f").unwrap_err(), "bad pgxc_node row");
        assert_eq!(PgxcNodeRow::parse("dn1 D h x f f").unwrap_err(), "bad pgxc_node port");
        assert_eq!(PgxcNodeRow::parse("dn1 D h 1 f yes").unwrap_err(), "bad pgxc_node flag");
        // OpenTenBase's forward port, last; 0 where the catalog has none.
        let otb = PgxcNodeRow::parse("dn1 D 127.0.10.2 15432 t f 15434").unwrap();
        assert_eq!(
            (otb.forward, otb.address()),
            (15434, "127.0.10.2:15432 (forward 15434)".into())
        );
        assert_eq!((row.forward, row.address()), (0, "127.0.10.2:15432".into()));
        let bad = PgxcNodeRow::parse("dn1 D h 1 f f x");
        assert_eq!(bad.unwrap_err(), "bad pgxc_node forward port");
    }

    #[test]
    fn an_opentenbase_node_group_parses_with_its_members() {
        let g = GroupRow::parse("default_group 1 dn1,dn2").unwrap();
        assert_eq!((g.name.as_str(), g.default, g.members.len()), ("default_group", true, 2));
        let empty = GroupRow::parse("other 0 ").unwrap();
        assert!(!empty.default && empty.members.is_empty());
        assert_eq!(GroupRow::parse("g x dn1"), None);
        assert_eq!(GroupRow::parse("g 1 dn1 extra"), None);
    }

    #[test]
    fn parses_every_kind_of_fact() {
        let out = b"install abc123\nnode coord1\ndir\ninitialized\nfile postgresql.conf 12\nport = 5432\n\n\
running\nstart 2026-11-25 12:00:00.1+00\nrecovery f\ncontext port postmaster\npgxc_node coord1 C 127.0.10.1 5432 false false\n\
pgxc_node dn1 D 127.0.10.2 15432 false true\nreplica dn1_standby streaming async 4096\nreplica dn2_standby startup async \n\
wal 0/3000060\nfree 51200\n\
node dn1_standby\ndir\nstaging\nalive\nstreamed\nfile odd 3\na\nb\nreplica  \n\
received 0/3000000\n\nfree 12\ndiskerror PANIC:  could not write to file \"pg_wal/xlogtemp.1\": No space left on device\n";
        let facts = parse_probe(out).unwrap();
        assert_eq!(facts.install.as_deref(), Some("abc123"));
        let c = &facts.nodes["coord1"];
        assert!(c.dir_exists && c.initialized && c.running);
        assert_eq!(c.files["postgresql.conf"], b"port = 5432\n");
        assert_eq!(c.in_recovery, Some(false));
        assert_eq!(c.setting_context["port"], "postmaster");
        assert_eq!(c.start_time.as_deref(), Some("2026-11-25 12:00:00.1+00"));
        assert_eq!(c.pgxc_node.len(), 2);
        assert_eq!(
            c.pgxc_node[1],
            PgxcNodeRow {
                name: "dn1".into(),
                kind: NodeKind::Datanode,
                host: "127.0.10.2".into(),
                port: 15432,
                primary: false,
                preferred: true,
                forward: 0,
            }
        );
        assert_eq!(
            c.replicas[0],
            Replica {
                application_name: "dn1_standby".into(),
                state: ReplicaState::Streaming,
                sync_state: "async".into(),
                lag_bytes: Some(4096)
            }
        );
        assert_eq!(c.replicas[1].lag_bytes, None);
        let s = &facts.nodes["dn1_standby"];
        assert!(s.dir_exists && !s.initialized && !s.running);
        assert!(s.staging && s.alive && !c.staging && !c.alive);
        assert!(s.streamed && !c.streamed);
        assert_eq!(s.files["odd"], b"a\nb");
        assert_eq!(
            (c.wal, s.received, s.replayed),
            (Some(Lsn(0x3000060)), Some(Lsn(0x3000000)), None)
        );
        assert_eq!(disk_cause(c, "/d/coord1"), None);
        let cause = disk_cause(s, "/d/dn1_standby").unwrap();
        assert_eq!(
            cause,
            "no space left on device: 12 kB free on the filesystem of /d/dn1_standby"
        );
        let freed = NodeFacts { free_kb: Some(DISK_FULL_KB * 10), ..s.clone() };
        assert!(disk_cause(&freed, "/d").unwrap().contains("says its server log: PANIC:"));
        let running = NodeFacts { running: true, ..freed };
        assert_eq!(disk_cause(&running, "/d"), None, "an old log line on a server that runs again");
        assert!(parse_probe(b"node x\nwal nonsense\n").is_err());
    }

    #[test]
    fn lag_is_whole_bytes_or_unknown() {
        assert_eq!(parse_lag("0"), Some(0));
        assert_eq!(parse_lag("16777216"), Some(16_777_216));
        assert_eq!(parse_lag("-8"), Some(0), "replayed past the primary's flush: no lag");
        assert_eq!(parse_lag(""), None);
        assert_eq!(parse_lag("12.5"), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_probe(b"running\n").is_err());
        assert!(parse_probe(b"node a\nfile x 100\nshort\n").is_err());
        assert!(parse_probe(b"node a\nbogus\n").is_err());
    }
}
