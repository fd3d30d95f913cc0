//! Command-line types (clap derive) and nothing else. `commands` turns them into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Deploy and operate Postgres-XC clusters over SSH, from one inventory file.
#[derive(Debug, Parser)]
#[command(name = "pgxc-deploy", version, about)]
pub struct Cli {
    /// More log output (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Colour in log lines: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to colour output to stderr: `auto` follows <https://no-color.org> (a non-empty
    /// NO_COLOR turns it off) and whether stderr is a terminal.
    pub fn on_stderr(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stderr())
            }
        }
    }
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Cli {
    /// `plan --detailed-exitcode`: every error exits 1 (2 says changes are pending).
    pub fn detailed_exitcode(&self) -> bool {
        matches!(&self.command, Command::Plan(p) if p.detailed_exitcode)
    }

    /// Apply's and the operations' name, and whether they report in JSON events (their
    /// `--json`; plan, status, exec and lab status print their own JSON). `None` for the
    /// other commands.
    pub fn reporting(&self) -> Option<(&'static str, bool)> {
        let (name, json) = match &self.command {
            Command::Apply(a) => ("apply", a.json),
            Command::Start(a) => ("start", a.json),
            Command::Stop(a) => ("stop", a.target.json),
            Command::Restart(a) => ("restart", a.target.json),
            Command::Clean(a) => ("clean", a.json),
            Command::Failover(a) => ("failover", a.json),
            Command::Degrade(a) => ("degrade", a.json),
            Command::Switchover(a) => ("switchover", a.pair.json),
            Command::Remove(a) => ("remove", a.json),
            _ => return None,
        };
        Some((name, json))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command on every selected host, or once per selected node.
    ///
    /// Several words are passed to the remote command verbatim, each quoted. A single word is a
    /// command line for the remote shell, as with ssh: `exec inv.toml -- 'pg_controldata "$PGDATA"'`.
    /// Per node (when --on selects nodes) the command runs as the cluster's os_user and sees
    /// PGDATA, PGPORT, PGHOST, PGUSER, PGDATABASE, PGXC_NODE, PGXC_ROLE and the install's bin
    /// directory first on PATH.
    Exec(ExecArgs),
    /// Make the cluster match the inventory: install, initialise, configure, start, register
    /// nodes, clone standbys. Does only what differs; a second run changes nothing.
    Apply(ApplyArgs),
    /// Show what apply would do (with diffs of every changed file), changing nothing.
    Plan(PlanArgs),
    /// List what a selector selects, one name per line, contacting no host (like `nodeset -e`
    /// or `ansible --list-hosts`).
    Nodes(NodesArgs),
    /// Read and check the inventory, contacting no host: every problem at once, with its
    /// file:line:col and a hint. Exit 0 when it is valid, 2 when it is not.
    Validate(ValidateArgs),
    /// One row per node: running, in recovery, replication and lag, pgxc_node, config drift.
    /// Exit status 1 when any node is unhealthy.
    Status(StatusArgs),
    /// Start the selected nodes (default: all) in dependency order: GTM, datanodes, standbys,
    /// coordinators; parallel within a tier, each waited for until it accepts connections.
    /// Nodes already running are left alone.
    Start(LifecycleArgs),
    /// Stop the selected nodes (default: all) in reverse dependency order; parallel within a
    /// tier. Nodes already stopped are left alone; the GTM's register.node is removed.
    Stop(StopArgs),
    /// Restart the selected nodes (default: all but the GTM) one at a time without taking the
    /// cluster down: standbys, then datanodes' primaries, then coordinators, the GTM last and
    /// only when --on selects it. Each node must accept connections again with a new start time
    /// and pass its role's check (a standby streams again; a Postgres-XC datanode answers
    /// through a coordinator; a PostgreSQL primary answers a query) before the next one
    /// restarts; the roll stops at the first node that does not come back.
    Restart(RestartArgs),
    /// Delete the cluster's data: without --yes, list per host the data directories it would
    /// delete; with --yes, stop every node immediately and delete them. Only directories apply
    /// initialised (and its staging directories); never an install prefix.
    Clean(CleanArgs),
    /// A datanode's primary is lost: fence it if its host answers, promote its standby (never
    /// one that is not a complete, streamed copy), record the new roles beside the inventory,
    /// re-point every coordinator (Postgres-XC), check that the datanode takes writes.
    Failover(FailoverArgs),
    /// A datanode's synchronous standby is dead and every commit waits for it: empty the
    /// primary's synchronous_standby_names and reload, so writes resume. A later apply switches
    /// synchronous replication back on once the standby streams again.
    Degrade(PairArgs),
    /// Planned hand-over, losing nothing: stop the datanode's primary cleanly, wait until its
    /// standby replayed everything, promote it, record the roles, re-point coordinators, then
    /// make the old primary a streaming standby of the new one. Again: switches back.
    Switchover(SwitchoverArgs),
    /// A coordinator is lost (or retired): stop it if its host answers, record it as removed
    /// beside the inventory, drop it from every other coordinator's (and Postgres-XL datanode's) pgxc_node and reload their
    /// pools, so that DDL works again, and check DDL through each of them.
    Remove(RemoveArgs),
    /// Print a shell completion script: `pgxc-deploy completions bash > \
    /// /etc/bash_completion.d/pgxc-deploy` (or into ~/.local/share/bash-completion/completions).
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff): `pgxc-deploy man > /usr/local/share/man/man1/pgxc-deploy.1`.
    Man,
    /// Local lab hosts: real sshd processes on 127.0.10.x (or each in a network namespace of its
    /// own), to try the tool and to test it.
    #[command(subcommand)]
    Lab(LabCommand),
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// Which targets: node or host names, globs (`dn*`), ranges (`dn[1-3]`), roles (`@gtm`,
    /// `@gtm_standby`, `@gtm_proxies`, `@coordinators`, `@datanodes`, `@standbys`, `@all`),
    /// joined by ClusterShell's operators: `,` or, `!` but not, `&` and, `^` either but not
    /// both (`'dn*!dn2'`, `'@all!@standbys'`). Default: every host.
    #[arg(long, value_name = "SELECTOR")]
    pub on: Option<String>,

    /// Leave out what this selector selects (clush's -x).
    #[arg(short = 'x', long, value_name = "SELECTOR")]
    pub exclude: Option<String>,

    /// Print one JSON object per target and line instead of the lines as they arrive.
    #[arg(long, conflicts_with = "fold")]
    pub json: bool,

    /// Once every target is done, fold identical outputs into one block that lists who printed
    /// it (clush -b), instead of the lines as they arrive (`TARGET: line`).
    #[arg(short = 'b', long)]
    pub fold: bool,

    #[command(flatten)]
    pub ssh: SshArgs,

    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// Limit the change to these nodes (Ansible's --limit), as `exec --on` selects them: steps
    /// on other nodes are left for a later apply. What cannot be limited (registering a new
    /// node on every coordinator) still runs, and the plan says so; a selected node that needs
    /// a node left out and down (its primary, the GTM, its host's gtm_proxy) is refused.
    #[arg(long, value_name = "SELECTOR")]
    pub on: Option<String>,

    /// Leave out what this selector selects.
    #[arg(short = 'x', long, value_name = "SELECTOR")]
    pub exclude: Option<String>,

    /// Print one JSON object per line on stdout (docs/json.md): for plan, one per step and a
    /// summary; for apply, one per finished step, notes, and a summary. The lines for people
    /// go to stderr.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,

    /// Exit 0 when there is nothing to do, 2 when changes are pending, 1 on any error
    /// (terraform's `-detailed-exitcode`), for scripts and CI.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct NodesArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// The selector, as `exec --on` takes it. Default: every host.
    #[arg(long, value_name = "SELECTOR")]
    pub on: Option<String>,

    /// Leave out what this selector selects.
    #[arg(short = 'x', long, value_name = "SELECTOR")]
    pub exclude: Option<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// Print one JSON object per node and line instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Refresh every SECONDS until interrupted (Ctrl-C); the exit status is the last refresh's.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub watch: Option<u64>,

    /// While watching, degrade a primary whose commits wait for a synchronous standby that did
    /// not stream at two refreshes in a row (as `degrade` does), and switch synchronous
    /// replication back on once that standby streams again. Only with --watch.
    #[arg(long, requires = "watch")]
    pub heal: bool,

    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub struct LifecycleArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// Which nodes: node or host names (a host means its nodes), globs (`dn*`), ranges
    /// (`dn[1-3]`), roles (`@gtm`, `@gtm_standby`,
    /// `@gtm_proxies`, `@coordinators`, `@datanodes`, `@standbys`, `@all`), joined by `,` `!` `&` `^`.
    /// Default: every node.
    #[arg(long, value_name = "SELECTOR")]
    pub on: Option<String>,

    /// Print one JSON object per finished step and line on stdout, then a summary object
    /// (docs/json.md); the lines for people go to stderr.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub target: LifecycleArgs,

    /// smart: wait for clients to disconnect; fast: disconnect them and roll back; immediate:
    /// quit at once (crash recovery at the next start).
    #[arg(long, value_enum, default_value_t = StopModeArg::Fast)]
    pub mode: StopModeArg,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub target: LifecycleArgs,

    /// Node by node (the only kind of restart there is: `stop` then `start` restart everything
    /// at once).
    #[arg(long, required = true)]
    pub rolling: bool,

    /// How many nodes of a tier restart at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: u16,

    /// Keep datanodes writable: a primary whose standby streams from it is not restarted but
    /// switched over to that standby (restarted first, in the standbys' tier), one datanode at
    /// a time; the old primary restarts as its standby. The roles stay swapped (recorded beside
    /// the inventory, as after `switchover`) unless --switch-back. A datanode with no streaming
    /// standby restarts in place.
    #[arg(long)]
    pub switchover: bool,

    /// With --switchover: switch each datanode back right after, so the roll ends with the roles
    /// it started with (a second short hand-over per datanode).
    #[arg(long, requires = "switchover")]
    pub switch_back: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StopModeArg {
    Smart,
    Fast,
    Immediate,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// Really stop every node and delete the data directories (without it: list them).
    #[arg(long)]
    pub yes: bool,

    /// Print one JSON object per finished step and line on stdout, then a summary object
    /// (docs/json.md); the lines for people go to stderr.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// The datanode whose primary is lost (or its standby's name).
    pub node: String,

    /// Promote the standby even when it may lack commits the primary acknowledged (it was
    /// degraded, asynchronous and too far behind, or not streaming when last seen); failover
    /// says how much may be lost.
    #[arg(long)]
    pub accept_data_loss: bool,

    /// Do it without asking (without a terminal to ask on, failover refuses to run without it).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Print one JSON object per finished step and line on stdout, then a summary object
    /// (docs/json.md); the lines for people go to stderr.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    #[command(flatten)]
    pub pair: PairArgs,

    /// Do it without asking (without a terminal to ask on, switchover refuses to run without
    /// it).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct PairArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// The datanode (or its standby's name).
    pub node: String,

    /// Print one JSON object per finished step and line on stdout, then a summary object
    /// (docs/json.md); the lines for people go to stderr.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The inventory file (TOML).
    pub inventory: PathBuf,

    /// The coordinator to remove.
    pub node: String,

    /// Print one JSON object per finished step and line on stdout, then a summary object
    /// (docs/json.md); the lines for people go to stderr.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub ssh: SshArgs,
}

/// SSH options shared by every command that reaches hosts.
#[derive(Debug, Args, Clone)]
pub struct SshArgs {
    /// How many targets to work on at once.
    #[arg(short = 'f', long, default_value_t = 64)]
    pub forks: usize,

    /// Record unknown host keys in known_hosts (never changed ones), like OpenSSH's
    /// StrictHostKeyChecking=accept-new.
    #[arg(long)]
    pub accept_new: bool,

    /// Seconds to connect and authenticate (default: the inventory's, else 10).
    #[arg(long, value_name = "SECONDS")]
    pub connect_timeout: Option<u64>,

    /// Seconds a command may run (default: the inventory's, else 600).
    #[arg(long, value_name = "SECONDS")]
    pub command_timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start N lab hosts (or add the missing ones) and print their `[hosts]` table.
    Up {
        /// How many hosts: 127.0.10.1 to 127.0.10.N (at most 254; with --netns 198.18.M.1 to
        /// 198.18.M.N, at most 253).
        #[arg(long, default_value_t = 3)]
        hosts: usize,
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
        /// sshd port (default: 22 as root, 2222 otherwise).
        #[arg(long)]
        port: Option<u16>,
        /// Give each new host a network namespace and an address of its own (198.18.N.K on a
        /// bridge), so hosts reach each other from their own address as on a real network
        /// (root only; a lab keeps the kind it was made with).
        #[arg(long)]
        netns: bool,
    },
    /// Stop the lab's sshd processes (exactly those it started).
    Down {
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
        /// Also delete the lab directory (keys, logs, data), and a --netns lab's namespaces and
        /// bridge.
        #[arg(long)]
        purge: bool,
    },
    /// List the lab's hosts and whether their sshd runs.
    Status {
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,

        /// One JSON object per host and line (`host`, `address`, `port`, `pid`, `running`).
        #[arg(long)]
        json: bool,
    },
}
