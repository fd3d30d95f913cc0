//! What apply does, as values: a [`Plan`] is phases run one after the other, each a set of
//! [`Step`]s run in parallel. `plan` prints it; `apply` runs exactly it. PURE.

use crate::inventory::NodeName;
use std::fmt;

use crate::flavors::{NodeCommands, StopMode};

/// One thing to do on one host, for one node or for the host itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub host: String,
    pub node: Option<NodeName>,
    pub action: Action,
}

/// What a step does. Argument vectors are absolute paths and words; the executor quotes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Build the install from source on this host (see [`crate::remote::build`]).
    Build { fingerprint: String },
    /// Unpack the install under the host's install prefix and record its fingerprint.
    ShipInstall { fingerprint: String },
    /// Write the host's libpq password file at `path` (mode 0600); its content, the password,
    /// is the executor's to add, never part of a plan.
    WritePassfile { path: String },
    /// Give the cluster's user the inventory's (changed) password on the server `psql` reaches,
    /// hashed as the server keeps it (`scram`: SCRAM-SHA-256, else md5); the password is the
    /// executor's to add, never part of a plan.
    SetPassword { psql: Vec<String>, scram: bool },
    /// Create the node's data directory at `data_dir`: run `argv` (initdb, initgtm or
    /// pg_basebackup) into `staging`, write `files`, mark it initialised, then rename it into
    /// place. A leftover staging directory is removed first, so an interrupted init is redone,
    /// never mistaken for done. `foreign`: `data_dir` exists without pgxc-deploy's marker: the
    /// step refuses to touch it.
    Init {
        argv: Vec<String>,
        /// The password file `argv` reads (initdb's `--pwfile=`): the executor writes the
        /// password there just before and removes it just after; `None`: it reads none.
        pwfile: Option<String>,
        data_dir: String,
        staging: String,
        files: Vec<FileContent>,
        foreign: bool,
    },
    /// Replace one managed file in `data_dir` (atomically); `old` is what is there now.
    WriteFile { data_dir: String, file: FileContent, old: Option<String> },
    /// Start the node, then poll `ready` until it accepts connections.
    Start {
        argv: Vec<String>,
        /// The node's data directory (the `-D` of `argv`), cleared of stale PID files first.
        data_dir: String,
        /// The server's log (the `-l` of `argv`), which a failed start's error names.
        log: String,
        ready: Vec<String>,
    },
    /// Stop the node with `argv`, wait while `status` still says it runs, then remove
    /// `remove` (files that must not outlive the server), then run `then` unless empty, whose
    /// output is the step's (switchover reads the final checkpoint with pg_controldata in the
    /// same round trip).
    Stop {
        argv: Vec<String>,
        /// The mode `argv` stops in ([`StopCommand::argv`](crate::flavors::StopCommand::argv)
        /// built it), for the step's line: `stop (fast)`.
        mode: StopMode,
        /// The node's data directory (the `-D` of `argv`), cleared of stale PID files first.
        data_dir: String,
        status: Vec<String>,
        remove: Vec<String>,
        then: Vec<String>,
    },
    /// Kill every process still running in `data_dir` (its working directory): the backends
    /// and helpers a dead postmaster left behind, which can go on committing through pooled
    /// connections. Fails unless none is left. Prints what it killed.
    KillLeftovers { data_dir: String },
    /// Remove one file (`rm -f`): a host's password file, when `clean` removed its last node.
    RemoveFile { path: String },
    /// Remove the node's staging directory and its data directory, the latter only when it
    /// carries apply's init marker (checked again on the host, right before removing it).
    Remove { data_dir: Option<String>, staging: Option<String> },
    /// End a standby's recovery with `argv` (`pg_ctl promote`), then poll `primary` until it
    /// succeeds (it fails while the server is still in recovery). `after`: first poll this
    /// argv until it succeeds (60 s at most; the text says what it waits for), in the same
    /// round trip: switchover promotes once the standby has replayed the old primary's last
    /// record.
    Promote {
        argv: Vec<String>,
        /// The standby's data directory (the `-D` of `argv`), where the promote signal files
        /// that a repeated promote leaves are removed.
        data_dir: String,
        primary: Vec<String>,
        after: Option<(Vec<String>, String)>,
    },
    /// Run `argv`, which fails when `what` does not hold.
    Check { argv: Vec<String>, what: String },
    /// Signal the node to re-read its configuration.
    Reload { argv: Vec<String>, settings: Vec<String> },
    /// Restart the node: stop, wait while `status` says it still runs, start, then poll
    /// `ready` until it accepts connections (settings that only take effect at start changed,
    /// or a rolling restart). The step prints how long the node was down.
    Restart {
        stop: Vec<String>,
        /// The node's data directory (the `-D` of `stop` and `start`), cleared of stale PID
        /// files first.
        data_dir: String,
        status: Vec<String>,
        start: Vec<String>,
        /// The server's log (the `-l` of `start`), which a failed restart's error names.
        log: String,
        ready: Vec<String>,
        settings: Vec<String>,
    },
    /// Poll `argv` ten times a second until it succeeds, failing after `tenths` tenths of a
    /// second with the last error: `what` does not hold (yet).
    Await { argv: Vec<String>, what: String, tenths: u32 },
    /// Make a coordinator's pgxc_node match `want`. The executor reads pgxc_node first (the
    /// coordinator may only just have started): a fresh coordinator, which knows only itself,
    /// gets `fresh_sql` (rendered from `register_nodes.sql.hbs`); any other gets
    /// [`super::sql::registration`], which converges from what is there. Run through
    /// `psql` (argv reading SQL from stdin).
    Register { psql: Vec<String>, want: Vec<super::state::PgxcNodeRow>, fresh_sql: String },
    /// Make an old primary that a failover fenced a standby of the new primary ([`Rejoin`]).
    Rejoin(Box<Rejoin>),
    /// A new Postgres-XC coordinator or datanode joins a running cluster ([`JoinNode`]).
    JoinNode(Box<JoinNode>),
    /// Through a coordinator (`psql`, reading SQL from stdin): spread `table` (a qualified,
    /// quoted name) over the datanodes `add` too (`ALTER TABLE ... ADD NODE`) and move its rows
    /// off `delete` (`... DELETE NODE`), failing unless its row count, counted through the
    /// coordinator before and after, is unchanged, pgxc_class lists `after`, and the rows are
    /// where its kind (pgxc_class.pclocatortype) puts them ([`crate::plan::spread`]).
    Redistribute(Box<Redistribute>),
}

/// A new node (initialised, not started) joins a running Postgres-XC cluster: DDL is locked
/// cluster-wide with `pgxc_lock_for_backup()` in a session on the coordinator `source` (held
/// until the end), the catalog is dumped from `dump_from` (another coordinator for a
/// coordinator, a datanode for a datanode), restored into the new node started in restore
/// mode, which then restarts as what it is (then `ready`); it registers itself (`self_sql`,
/// when not empty), every running coordinator registers it (`peers`), and the lock is
/// released. A DDL statement can reach no node that lacks the catalog it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinNode {
    pub data_dir: String,
    /// The running coordinator that holds the DDL lock.
    pub source: String,
    /// psql to `source` (the lock's session).
    pub source_psql: Vec<String>,
    /// The running node whose catalog is copied, and its pg_dumpall.
    pub dump_from: String,
    pub dumpall: Vec<String>,
    pub restore_start: Vec<String>,
    /// Stop (fast, waiting), then start as a coordinator, then poll `ready`.
    pub stop: Vec<String>,
    pub start: Vec<String>,
    pub log: String,
    pub ready: Vec<String>,
    /// psql on the new node.
    pub psql: Vec<String>,
    pub self_sql: String,
    /// Every other running coordinator: psql to it and the SQL that registers the new node.
    pub peers: Vec<(Vec<String>, String)>,
    /// A datanode: the marker written into its data directory before it is registered, which
    /// says that tables are still to be spread over it ([`REDISTRIBUTE_MARKER`]).
    pub marker: Option<String>,
    /// Its [`JOIN_MARKER`], removed once it is registered everywhere.
    pub pending: String,
}

/// See [`Action::Redistribute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redistribute {
    pub psql: Vec<String>,
    pub table: String,
    /// pgxc_class.pclocatortype: H hash, M modulo, N round robin, R replicated.
    pub kind: char,
    pub add: Vec<String>,
    pub delete: Vec<String>,
    /// The datanodes it is on afterwards, sorted.
    pub after: Vec<String>,
    /// Its size (`pg_total_relation_size` through the coordinator), when apply read it.
    pub bytes: Option<u64>,
}

/// In a new datanode's data directory from its join until every table that was spread over
/// all the other datanodes is spread over it too: a later apply resumes the redistribution.
pub const REDISTRIBUTE_MARKER: &str = ".pgxc-deploy-redistribute";

/// Written with the data directory of a node that is to join a running Postgres-XC cluster,
/// removed by its join once it is registered everywhere: a node initialised by an apply whose
/// join failed joins at the next apply (rather than starting with an empty catalog).
pub const JOIN_MARKER: &str = ".pgxc-deploy-join-pending";

impl Action {
    /// Stop a node in `mode` with its flavor's commands, waiting until it is gone.
    pub fn stop(commands: &NodeCommands, mode: crate::flavors::StopMode) -> Action {
        Action::Stop {
            argv: commands.stop.argv(mode, crate::flavors::StopWait::Wait),
            mode,
            data_dir: commands.data_dir.clone(),
            status: commands.status.clone(),
            remove: commands.remove_after_stop.clone(),
            then: Vec::new(),
        }
    }

    /// Start a node with its flavor's commands.
    pub fn start(commands: &NodeCommands) -> Action {
        Action::Start {
            argv: commands.start.clone(),
            data_dir: commands.data_dir.clone(),
            log: commands.log.clone(),
            ready: commands.ready.clone(),
        }
    }
}

/// How an old primary that a failover fenced becomes a standby of the new primary: stop it if
/// it runs (`stop`, then wait while `status` succeeds); then `rewind` (a CHECKPOINT on the new
/// primary and pg_rewind from it) when the flavor has one and it succeeds, else `init`
/// (pg_basebackup) into `staging`, which replaces `data_dir` only once complete. `files` are
/// written last either way (pg_rewind copies the new primary's).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejoin {
    pub stop: Vec<String>,
    pub status: Vec<String>,
    pub rewind: Option<crate::flavors::Rewind>,
    pub init: Vec<String>,
    pub data_dir: String,
    pub staging: String,
    pub files: Vec<FileContent>,
}

/// A managed file's desired content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// Relative to the node's data directory.
    pub name: String,
    pub content: String,
    pub mode: u32,
}

/// Steps run in parallel; the next phase starts when every step of this one succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub phases: Vec<Phase>,
    /// Why apply must not run at all, each a sentence that says what to do; a plan with any
    /// has no phases.
    pub refused: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.phases.iter().all(|p| p.steps.is_empty())
    }

    /// Add a phase, unless it has nothing to do.
    pub fn push(&mut self, name: impl Into<String>, steps: Vec<Step>) {
        if !steps.is_empty() {
            self.phases.push(Phase { name: name.into(), steps });
        }
    }

    pub fn step_count(&self) -> usize {
        self.phases.iter().map(|p| p.steps.len()).sum()
    }
}

impl Action {
    /// The action's name in `plan --json` (snake case, stable).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Build { .. } => "build",
            Action::ShipInstall { .. } => "ship_install",
            Action::WritePassfile { .. } => "write_passfile",
            Action::SetPassword { .. } => "set_password",
            Action::Init { .. } => "init",
            Action::WriteFile { .. } => "write_file",
            Action::Start { .. } => "start",
            Action::Stop { .. } => "stop",
            Action::KillLeftovers { .. } => "kill_leftovers",
            Action::RemoveFile { .. } => "remove_file",
            Action::Remove { .. } => "remove",
            Action::Promote { .. } => "promote",
            Action::Check { .. } => "check",
            Action::Reload { .. } => "reload",
            Action::Restart { .. } => "restart",
            Action::Await { .. } => "await",
            Action::Register { .. } => "register",
            Action::Rejoin(_) => "rejoin",
            Action::JoinNode(_) => "join",
            Action::Redistribute(_) => "redistribute",
        }
    }
}

impl fmt::Display for Step {
    /// One line: `dn1 on h2: start`, `h1: install (fingerprint 1a2b3c4d)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{node} on {}: ", self.host)?,
            None => write!(f, "{}: ", self.host)?,
        }
        match &self.action {
            Action::Build { fingerprint } => {
                write!(
                    f,
                    "build from source (fingerprint {})",
                    &fingerprint[..fingerprint.len().min(12)]
                )
            }
            Action::WritePassfile { path } => write!(f, "write the password file {path}"),
            Action::SetPassword { .. } => f.write_str("ALTER ROLE: the inventory's new password"),
            Action::ShipInstall { fingerprint } => {
                write!(f, "install (fingerprint {})", &fingerprint[..fingerprint.len().min(12)])
            }
            Action::Init { argv, files, foreign, .. } => {
                let tool = argv.first().map(|p| p.rsplit('/').next().unwrap_or(p)).unwrap_or("");
                let files: Vec<&str> = files
                    .iter()
                    .map(|f| f.name.as_str())
                    .filter(|name| !name.starts_with(".pgxc-deploy"))
                    .collect();
                let foreign = if *foreign {
                    " (REFUSED: its data directory exists but pgxc-deploy did not create it)"
                } else {
                    ""
                };
                write!(f, "initialise with {tool}, write {}{foreign}", files.join(", "))
            }
            Action::WriteFile { file, old: None, .. } => write!(f, "create {}", file.name),
            Action::WriteFile { file, old: Some(_), .. } => write!(f, "update {}", file.name),
            Action::Start { .. } => f.write_str("start"),
            Action::Stop { mode, .. } => write!(f, "stop ({})", mode.as_str()),
            Action::RemoveFile { path } => write!(f, "remove {path}"),
            Action::KillLeftovers { .. } => {
                f.write_str("stop every process left in its data directory")
            }
            Action::Remove { data_dir, staging } => {
                let paths: Vec<&str> = data_dir.iter().chain(staging).map(String::as_str).collect();
                write!(f, "remove {}", paths.join(", "))
            }
            Action::Promote { after: None, .. } => f.write_str("promote"),
            Action::Promote { after: Some((_, what)), .. } => write!(f, "promote once {what}"),
            Action::Check { what, .. } => write!(f, "check: {what}"),
            Action::Await { what, .. } => write!(f, "await: {what}"),
            Action::Reload { settings, .. } => write!(f, "reload{}", changed(settings)),
            Action::Restart { settings, .. } => write!(f, "restart{}", changed(settings)),
            Action::Register { want, .. } => {
                let rows: Vec<String> = want
                    .iter()
                    .map(|r| match r.marks() {
                        "unmarked" => format!("{} {}", r.name, r.address()),
                        marks => format!("{} {} ({marks})", r.name, r.address()),
                    })
                    .collect();
                write!(f, "pgxc_node = {}", rows.join(", "))
            }
            Action::JoinNode(join) => write!(
                f,
                "join: catalog from {} (pg_dumpall under pgxc_lock_for_backup() on {}), restored, started, registered with every coordinator",
                join.dump_from, join.source
            ),
            Action::Redistribute(r) => {
                write!(f, "redistribute {}", r.table)?;
                if let Some(bytes) = r.bytes {
                    write!(f, " ({})", human_bytes(bytes))?;
                }
                let mut what = Vec::new();
                if !r.add.is_empty() {
                    what.push(format!("ADD NODE ({})", r.add.join(", ")));
                }
                if !r.delete.is_empty() {
                    what.push(format!("DELETE NODE ({})", r.delete.join(", ")));
                }
                write!(f, ": {}, row count and spread checked", what.join(", then "))
            }
            Action::Rejoin(rejoin) => {
                let how = if rejoin.rewind.is_some() {
                    "pg_rewind, else pg_basebackup"
                } else {
                    "pg_basebackup"
                };
                write!(f, "rebuild the fenced old primary as a standby ({how})")
            }
        }
    }
}

fn changed(settings: &[String]) -> String {
    if settings.is_empty() { String::new() } else { format!(" ({})", settings.join(", ")) }
}

/// `bytes` for people: `512 B`, `3.4 kB`, `1.2 MB`, `5.0 GB` (powers of 1000, as psql's
/// `pg_size_pretty` does not: it uses 1024 and says kB).
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line names the mode from the step's field (it was read from the argv's `-m`).
    #[test]
    fn a_stop_step_says_its_mode() {
        for (mode, line) in [
            (StopMode::Smart, "dn1 on h1: stop (smart)"),
            (StopMode::Fast, "dn1 on h1: stop (fast)"),
            (StopMode::Immediate, "dn1 on h1: stop (immediate)"),
        ] {
            let action = Action::Stop {
                argv: vec!["pg_ctl".into()],
                mode,
                data_dir: "/d".into(),
                status: vec![],
                remove: vec![],
                then: vec![],
            };
            let step =
                Step { host: "h1".into(), node: Some(NodeName::new("dn1").unwrap()), action };
            assert_eq!(step.to_string(), line);
        }
    }

    /// A register step names each row's marks, when it has any.
    #[test]
    fn a_register_step_shows_the_marks() {
        use super::super::state::{NodeKind, PgxcNodeRow};
        let row = |name: &str, kind, primary, preferred| PgxcNodeRow {
            name: name.into(),
            kind,
            host: "10.0.0.1".into(),
            port: 5432,
            primary,
            preferred,
            forward: 0,
        };
        let want = vec![
            row("coord1", NodeKind::Coordinator, false, false),
            row("dn1", NodeKind::Datanode, true, true),
            row("dn2", NodeKind::Datanode, false, true),
        ];
        let action = Action::Register { psql: vec![], want, fresh_sql: String::new() };
        let step = Step { host: "h1".into(), node: Some(NodeName::new("coord1").unwrap()), action };
        assert_eq!(
            step.to_string(),
            "coord1 on h1: pgxc_node = coord1 10.0.0.1:5432, dn1 10.0.0.1:5432 (primary, \
             preferred), dn2 10.0.0.1:5432 (preferred)"
        );
    }
}
