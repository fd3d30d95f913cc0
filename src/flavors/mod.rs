//! What differs between the server flavors, behind one trait. PURE: values only, no I/O.
//!
//! A [`Flavor`] says, for one node of a validated [`Inventory`], which configuration files it
//! has ([`ConfigFile`]), the argv of its commands ([`NodeCommands`]: init, start, stop, reload,
//! status, ready probe), in which order roles start, and the switches templates branch on
//! ([`Features`]). [`postgres_xc`] holds Postgres-XC (GTM, coordinators, datanodes; 9.4-based),
//! [`postgresql`] plain PostgreSQL 13 or later (primaries and standbys). [`of`] picks one from
//! the inventory's [`inventory::Flavor`].
//!
//! One ordering is the caller's to respect: a datanode's `synchronous_standby.conf` names its
//! synchronous standby, and until that standby streams, every commit on the datanode waits for
//! it. Write the file only once the standby is up (then reload), or write it empty first.
//!
//! Commands are argv vectors with absolute binary paths (`<bin_dir>/pg_ctl`); the caller quotes
//! them with [`crate::shell::Cmd`] and runs them as the cluster's OS user. The planner
//! (`crate::plan`) calls this module; nothing here knows about hosts being reachable.

pub mod opentenbase;
pub mod postgres_xc;
pub mod postgres_xl;
pub mod postgresql;

use crate::inventory::{self, Host, Inventory, Node, Role};
use serde::Serialize;

/// Seconds `pg_ctl -w` waits for a server to start or stop.
pub const PG_CTL_WAIT_SECS: u32 = 60;

/// The log file, in the data directory, that receives a server's stderr (`pg_ctl -l`,
/// `gtm_ctl -l`).
pub const SERVER_LOG: &str = "server.log";

/// The flavor of an inventory.
pub fn of(kind: inventory::Flavor) -> &'static dyn Flavor {
    match kind {
        inventory::Flavor::PostgresXc => &postgres_xc::PostgresXc,
        inventory::Flavor::PostgresXl => &postgres_xl::PostgresXl,
        inventory::Flavor::Opentenbase => &opentenbase::Opentenbase,
        inventory::Flavor::Postgresql => &postgresql::Postgresql,
    }
}

/// Everything that differs between Postgres-XC and PostgreSQL.
pub trait Flavor: std::fmt::Debug + Send + Sync {
    /// Which flavor this is.
    fn kind(&self) -> inventory::Flavor;

    /// Switches and values the templates branch on (the `features` field of the context).
    fn features(&self) -> Features;

    /// The roles in the order their nodes start; each role is one tier that must be up before
    /// the next starts. Stop in the reverse order.
    fn start_order(&self) -> &'static [Role];

    /// The files pgxc-deploy writes into the node's data directory, in writing order.
    fn config_files(&self, node: &Node) -> Result<Vec<ConfigFile>, Error>;

    /// A SQL script to run on the node once the whole cluster is up (Postgres-XC coordinators:
    /// `register_nodes.sql.hbs`), as a template name, or `None`.
    fn setup_sql(&self, node: &Node) -> Option<&'static str>;

    /// Whether a streaming standby accepts sessions (a Postgres-XL standby refuses every one:
    /// "Was unable to obtain a snapshot from GTM"), so its state is read with SQL.
    fn standby_answers_sql(&self) -> bool {
        true
    }

    /// The argv, run on a standby's host, that fails until the standby whose data directory is
    /// `data_dir` holds in its own WAL the record that starts at `lsn` on `timeline`: how a
    /// switchover checks a standby that refuses SQL ([`Flavor::standby_answers_sql`]) before it
    /// promotes it, as a promotion replays all the WAL a standby holds before it ends recovery.
    /// pg_waldump reads the record only once it is there whole; pages of a recycled segment
    /// fail its checks. PostgreSQL 10's names (pg_waldump, pg_wal).
    fn wal_holds_argv(
        &self,
        bin_dir: &str,
        data_dir: &str,
        timeline: u32,
        lsn: &str,
    ) -> Vec<String> {
        [
            format!("{bin_dir}/pg_waldump"),
            "-p".into(),
            format!("{data_dir}/pg_wal"),
            "-t".into(),
            timeline.to_string(),
            "-s".into(),
            lsn.to_string(),
            "-n".into(),
            "1".into(),
        ]
        .to_vec()
    }

    /// Whether pgxc-deploy keeps the node's pgxc_node table (every coordinator; on Postgres-XL
    /// every datanode too, since datanodes talk to each other).
    fn registers(&self, node: &Node) -> bool {
        self.setup_sql(node).is_some()
    }

    /// Whether the cluster's tables are sharded over a default node group that one
    /// coordinator creates once every node is registered (OpenTenBase: [`crate::plan::sql::
    /// default_group`]); the probe then reads each coordinator's node groups.
    fn default_group(&self) -> bool {
        false
    }

    /// How a standby that was a primary becomes a standby of the new one by `pg_rewind`
    /// ([`Features::pg_rewind`]).
    fn rewind(&self, inv: &Inventory, node: &Node, bin_dir: &str) -> Result<Rewind, Error> {
        rewind(inv, node, bin_dir)
    }

    /// The argv of every command that manages the node. `bin_dir` is the absolute directory
    /// of the server binaries on the node's host (`plan::desired::bin_dir`: the install
    /// layout's binaries under the host's `install_prefix`).
    fn commands(&self, inv: &Inventory, node: &Node, bin_dir: &str) -> Result<NodeCommands, Error>;

    /// A SQL expression over one row of the primary's `pg_stat_replication`: the bytes of WAL
    /// the primary has written that the standby has not replayed yet (NULL before the standby's
    /// first reply). These three use PostgreSQL 10's names (`wal`/`lsn`, PostgreSQL and
    /// Postgres-XL); Postgres-XC is 9.4-based and overrides them with the old `xlog`/`location`
    /// ones.
    fn replay_lag_sql(&self) -> &'static str {
        "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint"
    }

    /// SQL statements that print the node's WAL positions, one `key X/Y` line each: `wal`
    /// (written, on a primary), `received` and `replayed` (on a standby). A NULL position
    /// prints an empty line.
    fn positions_sql(&self) -> &'static str {
        "select 'wal ' || pg_current_wal_lsn() where not pg_is_in_recovery();\n\
         select 'received ' || pg_last_wal_receive_lsn() where pg_is_in_recovery();\n\
         select 'replayed ' || pg_last_wal_replay_lsn() where pg_is_in_recovery();\n"
    }

    /// A SQL expression, on a standby: whether it has replayed the WAL record that starts at
    /// `lsn` (a `X/Y` position, as pg_controldata prints it). `pg_last_wal_replay_lsn()` is the
    /// end of the last record replayed, so it is past `lsn` once that record is replayed.
    fn replayed_past_sql(&self, lsn: &str) -> String {
        format!("pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '{lsn}') > 0")
    }

    /// The inventory's nodes grouped by [`Flavor::start_order`], in inventory order within a
    /// tier; roles without nodes give no tier.
    fn start_tiers<'a>(&self, inv: &'a Inventory) -> Vec<Vec<&'a Node>> {
        self.start_order()
            .iter()
            .map(|role| inv.nodes.iter().filter(|n| n.role == *role).collect::<Vec<_>>())
            .filter(|tier| !tier.is_empty())
            .collect()
    }
}

/// An argv that succeeds while the PID file `pid_file` names a live process and, with
/// `third_line`, while its third line says that (a GTM's gtm.pid: `1` active, `0` standby).
/// What the GTM commands offer instead of `gtm_ctl status`, whose output differs between
/// Postgres-X2 and Postgres-XL (and which cannot read an XL gtm_proxy's PID file).
pub fn pid_file_says(pid_file: &str, third_line: Option<&str>) -> Vec<String> {
    let script = "p=$(head -n 1 \"$0\" 2>/dev/null) && [ -n \"$p\" ] && kill -0 \"$p\" \
                  2>/dev/null && { [ -z \"$1\" ] || [ \"$(sed -n 3p \"$0\")\" = \"$1\" ]; }";
    argv(["sh", "-c", script, pid_file, third_line.unwrap_or("")])
}

/// Switches that templates branch on, so a template never tests the flavor's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Features {
    /// Postgres-XC: `pgxc_node_name`, `gtm_host`/`gtm_port` and the coordinator pooler.
    pub pgxc: bool,
    /// The GTM's address is a setting (`gtm_host`, `gtm_port`); OpenTenBase has none (initdb
    /// writes the GTM's address into pgxc_node).
    pub gtm_setting: bool,
    /// Standbys are configured in `recovery.conf` (PostgreSQL up to 11, so Postgres-XC);
    /// otherwise by a `standby.signal` file and `primary_conninfo` in postgresql.conf.
    pub recovery_conf: bool,
    /// WAL kept for standbys is set with `wal_keep_size` (PostgreSQL 13+), otherwise with
    /// `wal_keep_segments`.
    pub wal_keep_size: bool,
    /// The `wal_level` that streaming replication needs: `hot_standby` before 9.6, `replica`
    /// since.
    pub wal_level: &'static str,
    /// The install has `pg_rewind` (PostgreSQL 9.5+; 9.4-based Postgres-XC has not), so an old
    /// primary can rejoin as a standby by rewinding rather than by a full copy.
    pub pg_rewind: bool,
    /// The active GTM connects to its standby to send it every transaction ID, at the address
    /// the standby's own connection to it came from (Postgres-X2, Postgres-XL: gtm_standby.c
    /// registers `node_get_local_addr`). A standby that listens elsewhere is never in sync.
    /// OpenTenBase's standby streams the GTM's WAL over its own connection instead.
    pub gtm_standby_dialed: bool,
}

/// One file pgxc-deploy writes into a node's data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file name inside the data directory: `postgresql.conf`, `pg_hba.conf`, ...
    pub name: &'static str,
    /// The template that renders its text (`postgresql.conf.hbs`); `None`: an empty file whose
    /// presence is what matters (`standby.signal`).
    pub template: Option<&'static str>,
    /// Unix permission bits.
    pub mode: u32,
}

impl ConfigFile {
    /// A file rendered from `<name>.hbs`, readable by its owner only (like initdb's files).
    pub const fn rendered(name: &'static str, template: &'static str) -> ConfigFile {
        ConfigFile { name, template: Some(template), mode: 0o600 }
    }

    /// An empty marker file.
    pub const fn marker(name: &'static str) -> ConfigFile {
        ConfigFile { name, template: None, mode: 0o600 }
    }
}

/// The argv of each command that manages one node, binaries as absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCommands {
    /// Creates the data directory: `initgtm`, `initdb`, or `pg_basebackup` from the primary for
    /// a standby. Runs once, on a node whose data directory does not exist yet.
    pub init: Vec<String>,
    /// The password file `init` reads (initdb's `--pwfile=`), which the executor writes just
    /// before and removes just after; `None`: `init` reads none (no password in the
    /// inventory, or not initdb).
    pub pwfile: Option<String>,
    /// The data directory the commands work on (their `-D`; `init`'s is where it creates it).
    pub data_dir: String,
    /// Starts the server in the background; stderr goes to [`SERVER_LOG`] in the data directory.
    pub start: Vec<String>,
    /// The server's log that `start` names (`-l`, [`SERVER_LOG`] in the data directory): a
    /// failed start points there.
    pub log: String,
    /// Stops the server, in a [`StopMode`], waiting for it or not ([`StopCommand::argv`]).
    pub stop: StopCommand,
    /// Makes the running server re-read its configuration files; `None`: it cannot (the GTM
    /// must restart).
    pub reload: Option<Vec<String>>,
    /// Tells whether the server runs: exit 0 running; `pg_ctl status` exits 3 when stopped.
    pub status: Vec<String>,
    /// Exits 0 once the server accepts connections (for the GTM: once its PID file exists).
    pub ready: Vec<String>,
    /// Ends recovery on a standby, which becomes a primary (`pg_ctl promote`); empty for the
    /// GTM.
    pub promote: Vec<String>,
    /// Files that must not outlive the server, removed once it has stopped: the GTM's
    /// `register.node`, as the manual procedure does (nodes register again when they start).
    pub remove_after_stop: Vec<String>,
}

/// How a server stops (`pg_ctl stop -m`, `gtm_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Wait for clients to disconnect.
    Smart,
    /// Disconnect clients, roll back open transactions, checkpoint.
    Fast,
    /// Quit at once; crash recovery at the next start.
    Immediate,
}

impl StopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StopMode::Smart => "smart",
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Whether a stop command waits until the server is gone or returns once it has signalled
/// it. Only `pg_ctl` has the choice (`-w`, `-W`); `gtm_ctl stop` is the same either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWait {
    /// `pg_ctl -w`: wait up to [`PG_CTL_WAIT_SECS`] for the server to be gone.
    Wait,
    /// `pg_ctl -W`: return at once; the caller polls `status` itself, ten times a second
    /// where 9.4's pg_ctl (Postgres-XC) looks once a second and so keeps a node down a second
    /// longer than its shutdown takes.
    NoWait,
}

/// The stop command of a server, built for a [`StopMode`] and a [`StopWait`] by
/// [`StopCommand::argv`]: `<program> -m <mode> [-w|-W -t <secs>] stop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopCommand {
    /// The words before `-m`: the control program (absolute), its options and `-D <data_dir>`.
    program: Vec<String>,
    /// The program takes `-w`/`-W` and `-t` (`pg_ctl`); `gtm_ctl` is given neither.
    timed: bool,
    /// A gtm_proxy: waited for `-w -t` [`PROXY_STOP_SECS`], then killed (see
    /// [`StopCommand::gtm_proxy`]).
    proxy: bool,
}

/// How long a gtm_proxy may take to stop before it is killed.
pub const PROXY_STOP_SECS: u32 = 5;

impl StopCommand {
    /// `pg_ctl <options> -m <mode> -w|-W -t <PG_CTL_WAIT_SECS> stop`.
    fn pg_ctl(program: Vec<String>) -> StopCommand {
        StopCommand { program, timed: true, proxy: false }
    }

    /// `gtm_ctl <options> -m <mode> stop`.
    fn gtm_ctl(program: Vec<String>) -> StopCommand {
        StopCommand { program, timed: false, proxy: false }
    }

    /// A gtm_proxy's `gtm_ctl <options> -m <mode> -w -t 5 stop`, then SIGKILL to the PID in
    /// `<data_dir>/gtm_proxy.pid` if it is still there: a Postgres-X2 proxy whose GTM is gone
    /// ignores every stop mode for a minute and more (it keeps no state to lose).
    fn gtm_proxy(program: Vec<String>, data_dir: &str) -> StopCommand {
        // Whether it is gone is the caller's `status` poll to tell.
        let script = "d=$1; shift; \"$@\" && exit 0; p=$(head -n 1 \"$d/gtm_proxy.pid\" \
                      2>/dev/null); [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null && kill -KILL \
                      \"$p\" && echo \"the gtm_proxy did not stop (is its GTM gone?): killed \
                      $p\"; exit 0";
        let mut words = argv(["sh", "-c", script, "sh", data_dir]);
        words.extend(program);
        StopCommand { program: words, timed: false, proxy: true }
    }

    /// The argv that stops the server in `mode`, waiting for it to be gone or not.
    pub fn argv(&self, mode: StopMode, wait: StopWait) -> Vec<String> {
        let mut words = self.program.clone();
        words.extend(argv(["-m", mode.as_str()]));
        if self.proxy {
            words.extend(argv(["-w", "-t", &PROXY_STOP_SECS.to_string()]));
        }
        if self.timed {
            let wait = match wait {
                StopWait::Wait => "-w",
                StopWait::NoWait => "-W",
            };
            words.extend(argv([wait, "-t", &PG_CTL_WAIT_SECS.to_string()]));
        }
        words.push("stop".to_string());
        words
    }
}

/// A node the flavor cannot build commands or files for. The inventory's validation rules
/// these out, so seeing one means a caller built an [`Inventory`] by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{flavor} clusters have no {role} nodes (node `{node}`)")]
    UnsupportedRole { flavor: inventory::Flavor, role: Role, node: String },
    #[error("standby `{node}` has no primary in the inventory")]
    NoPrimary { node: String },
    #[error("node `{node}` is on host `{host}`, which is not in the inventory")]
    UnknownHost { node: String, host: String },
    #[error("node `{node}` needs a GTM, and the inventory has none")]
    NoGtm { node: String },
}

/// `bin_dir/program` as one argv word.
pub(crate) fn bin(bin_dir: &str, program: &str) -> String {
    format!("{}/{program}", bin_dir.trim_end_matches('/'))
}

/// `<data_dir>/server.log`: absolute, because `gtm_ctl` resolves a relative `-l` in the data
/// directory and `pg_ctl` in its working directory.
pub(crate) fn server_log(node: &Node) -> String {
    format!("{}/{SERVER_LOG}", node.data_dir.trim_end_matches('/'))
}

/// Owned argv from string slices.
pub(crate) fn argv<const N: usize>(words: [&str; N]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The `pg_ctl` commands of a node; `server_mode` is Postgres-XC's `-Z coordinator|datanode`,
/// which only `start` needs. `init` and the password file it reads, `pwfile`, are the caller's.
pub(crate) fn pg_ctl_commands(
    inv: &Inventory,
    node: &Node,
    bin_dir: &str,
    server_mode: Option<&str>,
    init: Vec<String>,
    pwfile: Option<String>,
) -> NodeCommands {
    let pg_ctl = bin(bin_dir, "pg_ctl");
    let dir = node.data_dir.as_str();
    let mut start = vec![pg_ctl.clone()];
    if let Some(mode) = server_mode {
        start.extend(argv(["-Z", mode]));
    }
    // No `-w`: 9.4's pg_ctl polls once a second; the start step polls `ready` more often.
    let log = server_log(node);
    start.extend(argv(["-D", dir, "-l", &log, "start"]));
    NodeCommands {
        init,
        pwfile,
        data_dir: dir.to_string(),
        start,
        log,
        stop: StopCommand::pg_ctl(argv([&pg_ctl, "-D", dir])),
        reload: Some(argv([&pg_ctl, "-D", dir, "reload"])),
        status: argv([&pg_ctl, "-D", dir, "status"]),
        promote: argv([&pg_ctl, "-D", dir, "promote"]),
        remove_after_stop: Vec::new(),
        // The socket is in the node's socket directory (unix_socket_directories). A user and
        // a database that exist keep the probe out of the server log as a failed login; 9.4's
        // pg_isready reads -d only as a connection string, hence `dbname=`.
        ready: argv([
            &bin(bin_dir, "pg_isready"),
            "-h",
            node.socket_dir(),
            "-p",
            &node.port.to_string(),
            "-U",
            &inv.cluster.os_user,
            "-d",
            "dbname=postgres",
        ]),
    }
}

/// `initdb` arguments shared by both flavors (after the program and any flavor options).
///
/// Encoding and locale are explicit: over a non-interactive SSH session `LANG` is often unset,
/// and initdb would pick SQL_ASCII, different on each host. Local connections are trusted
/// and TCP ones rejected only until pgxc-deploy writes its own pg_hba.conf, before the first
/// start.
///
/// With a password in the inventory, initdb sets it for the superuser from a file that the
/// executor writes just before and removes just after ([`initdb_pwfile`]).
pub(crate) fn initdb_args(inv: &Inventory, node: &Node) -> Vec<String> {
    let mut args = argv([
        "-D",
        &node.data_dir,
        "-U",
        &inv.cluster.os_user,
        "--encoding=UTF8",
        "--locale=C",
        "--auth-local=trust",
        "--auth-host=reject",
        // No fsync per file: the init step runs one `sync` afterwards (much faster, as safe).
        "--nosync",
    ]);
    if let Some(pwfile) = initdb_pwfile(inv, node) {
        args.push(format!("--pwfile={pwfile}"));
    }
    args
}

/// The password file [`initdb_args`] names, beside the data directory, when the inventory has
/// a password ([`NodeCommands::pwfile`]); the executor fills it (the password is never in an
/// argv).
pub(crate) fn initdb_pwfile(inv: &Inventory, node: &Node) -> Option<String> {
    inv.auth.password.as_ref().map(|_| format!("{}.pgxc-deploy-pw", node.data_dir))
}

/// `pg_basebackup` from the standby's primary, streaming the WAL it needs alongside. `-w`:
/// never prompt for a password (there is no terminal); a password comes from the password file
/// that `PGPASSFILE` names (pgxc-deploy writes it on every host, see `crate::secret`).
/// No `-R`: pgxc-deploy writes the standby's recovery settings itself.
pub(crate) fn basebackup(
    inv: &Inventory,
    node: &Node,
    bin_dir: &str,
) -> Result<Vec<String>, Error> {
    let (primary, host) = primary_of(inv, node)?;
    Ok(argv([
        &bin(bin_dir, "pg_basebackup"),
        "-h",
        &host.address,
        "-p",
        &primary.port.to_string(),
        "-U",
        &inv.cluster.os_user,
        "-D",
        &node.data_dir,
        "-X",
        "stream",
        "--checkpoint=fast",
        // 9.4's WAL streamer only notices the end of the backup at its next status report
        // (every 10 s by default) when the primary writes no WAL meanwhile.
        "--status-interval=1",
        // A `DONE/TOTAL kB` line a second on stderr: the live line's share and ETA.
        "--progress",
        "-w",
    ]))
}

/// A standby's primary and that primary's host.
fn primary_of<'a>(inv: &'a Inventory, node: &Node) -> Result<(&'a Node, &'a Host), Error> {
    let no_primary = || Error::NoPrimary { node: node.name.to_string() };
    let primary =
        node.primary.as_ref().and_then(|p| inv.node(p.as_str())).ok_or_else(no_primary)?;
    let host = inv.host(&primary.host).ok_or_else(|| Error::UnknownHost {
        node: primary.name.to_string(),
        host: primary.host.clone(),
    })?;
    Ok((primary, host))
}

/// How an old primary that a failover left behind becomes a standby of the new one without a
/// full copy: `pg_rewind` of its data directory from the new primary, after a `CHECKPOINT`
/// there. pg_rewind reads the source's timeline from its last checkpoint, and a promoted
/// server's first checkpoint on its new timeline runs in the background (spread): before it
/// ends, pg_rewind sees both on the old timeline and says "no rewind required".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewind {
    /// psql on the new primary, over TCP from the old primary's host: `CHECKPOINT`.
    pub checkpoint: Vec<String>,
    pub rewind: Vec<String>,
}

/// [`Rewind`] for a standby from its primary. pg_rewind needs `wal_log_hints` (the templates
/// set it) or data checksums on the old primary; a server that was not shut down cleanly is
/// recovered first by pg_rewind itself (PostgreSQL 13+). No `-R`: pgxc-deploy writes the
/// standby's files itself, afterwards (pg_rewind copies the primary's).
pub(crate) fn rewind(inv: &Inventory, node: &Node, bin_dir: &str) -> Result<Rewind, Error> {
    let (primary, host) = primary_of(inv, node)?;
    // The values are validated (address, port, user name): no conninfo quoting needed.
    let source = format!(
        "host={} port={} user={} dbname=postgres",
        host.address, primary.port, inv.cluster.os_user
    );
    Ok(Rewind {
        checkpoint: argv([&bin(bin_dir, "psql"), "-X", "-q", "-d", &source, "-c", "checkpoint"]),
        rewind: argv([
            &bin(bin_dir, "pg_rewind"),
            "-D",
            &node.data_dir,
            &format!("--source-server={source}"),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_absolute_under_bin_dir() {
        assert_eq!(bin("/opt/pgxc/bin", "pg_ctl"), "/opt/pgxc/bin/pg_ctl");
        assert_eq!(bin("/opt/pgxc/bin/", "pg_ctl"), "/opt/pgxc/bin/pg_ctl");
    }

    const MODES: [StopMode; 3] = [StopMode::Smart, StopMode::Fast, StopMode::Immediate];

    /// Each mode and wait, for both control programs, word for word.
    #[test]
    fn stop_commands_per_mode_and_wait() {
        let pg_ctl = StopCommand::pg_ctl(argv(["/b/pg_ctl", "-D", "/d"]));
        let gtm_ctl = StopCommand::gtm_ctl(argv(["/b/gtm_ctl", "-Z", "gtm", "-D", "/d"]));
        for mode in MODES {
            let m = mode.as_str();
            assert_eq!(
                pg_ctl.argv(mode, StopWait::Wait).join(" "),
                format!("/b/pg_ctl -D /d -m {m} -w -t 60 stop")
            );
            assert_eq!(
                pg_ctl.argv(mode, StopWait::NoWait).join(" "),
                format!("/b/pg_ctl -D /d -m {m} -W -t 60 stop")
            );
            for wait in [StopWait::Wait, StopWait::NoWait] {
                assert_eq!(
                    gtm_ctl.argv(mode, wait).join(" "),
                    format!("/b/gtm_ctl -Z gtm -D /d -m {m} stop")
                );
            }
        }
    }

    /// Every node's stop argv, in every mode and wait, is the fast one with its `-m` value
    /// replaced and, without the wait, `-w` made `-W`: the rewriting this replaced
    /// (`NodeCommands::stop_in`, `plan::restart::no_wait`), kept here as the reference.
    #[test]
    fn stop_commands_are_the_fast_stop_rewritten_as_before() {
        fn stop_in(fast: &[String], mode: StopMode) -> Vec<String> {
            let mut argv = fast.to_vec();
            if let Some(i) = argv.iter().position(|w| w == "-m")
                && let Some(value) = argv.get_mut(i + 1)
            {
                *value = mode.as_str().to_string();
            }
            argv
        }
        fn no_wait(stop: &[String]) -> Vec<String> {
            stop.iter().map(|w| if w == "-w" { "-W".to_string() } else { w.clone() }).collect()
        }
        use crate::plan::fixtures;
        for inv in [fixtures::postgres_xc(), fixtures::postgresql()] {
            for node in &inv.nodes {
                let c = of(inv.cluster.flavor).commands(&inv, node, "/b").unwrap();
                let fast = c.stop.argv(StopMode::Fast, StopWait::Wait);
                for mode in MODES {
                    let waits = c.stop.argv(mode, StopWait::Wait);
                    assert_eq!(waits, stop_in(&fast, mode), "{}", node.name);
                    let polls = c.stop.argv(mode, StopWait::NoWait);
                    assert_eq!(polls, no_wait(&stop_in(&fast, mode)), "{}", node.name);
                }
            }
        }
    }

    /// The word after `flag` in `argv`, as the executor and the remote scripts once read it.
    fn word_after<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
        argv.iter().skip_while(|w| *w != flag).nth(1).map(String::as_str)
    }

    /// The fields that replaced reading an argv hold what the argv says, for every node of
    /// both flavors.
    #[test]
    fn fields_say_what_the_argv_says() {
        use crate::plan::fixtures;
        for inv in [fixtures::postgres_xc(), fixtures::postgresql()] {
            for node in &inv.nodes {
                let c = of(inv.cluster.flavor).commands(&inv, node, "/b").unwrap();
                let dir = Some(c.data_dir.as_str());
                assert_eq!(c.data_dir, node.data_dir);
                assert_eq!(word_after(&c.start, "-D"), dir, "{}", node.name);
                assert_eq!(word_after(&c.status, "-D"), dir, "{}", node.name);
                for mode in MODES {
                    for wait in [StopWait::Wait, StopWait::NoWait] {
                        assert_eq!(word_after(&c.stop.argv(mode, wait), "-D"), dir);
                    }
                }
                assert_eq!(word_after(&c.start, "-l"), Some(c.log.as_str()), "{}", node.name);
                let pwfile = c.init.iter().find_map(|a| a.strip_prefix("--pwfile="));
                assert_eq!(pwfile, c.pwfile.as_deref(), "{}", node.name);
                if !c.promote.is_empty() {
                    assert_eq!(word_after(&c.promote, "-D"), dir, "{}", node.name);
                }
            }
        }
    }

    #[test]
    fn of_picks_the_inventory_flavor() {
        for kind in [inventory::Flavor::PostgresXc, inventory::Flavor::Postgresql] {
            assert_eq!(of(kind).kind(), kind);
        }
    }
}
