//! pgxc-deploy: deploy and operate Postgres-XC clusters over SSH.
//!
//! # Layout
//!
//! Data flows one way, from the user's inventory to the hosts:
//!
//! - [`cli`]: clap types only.
//! - [`commands`]: one module per subcommand, glue only: arguments -> inventory, an
//!   [`ops::Session`] and options -> one [`ops`] function -> exit status.
//! - [`ops`]: the operations (apply, status, start/stop, restart, failover, switchover, degrade,
//!   clean, exec): probe through the session, let [`plan`] decide, run the steps, report each.
//!   The session's one seam to SSH ([`ops::session::Hosts`]) is scripted in their unit tests.
//! - [`inventory`]: PURE. TOML text -> validated [`inventory::Inventory`], every problem reported at once.
//! - [`flavors`]: PURE. What differs between Postgres-XC and PostgreSQL: files, commands, start order.
//! - [`plan`]: PURE. Desired state (render context, templates) vs observed facts -> ordered
//!   steps; every decision and typed refusal; all SQL ([`plan::sql`]).
//! - [`observe`]: one read-only probe per host: what is installed, initialised, running.
//! - [`executor`]: runs work on many targets with a concurrency limit, one outcome per target;
//!   [`executor::report`] writes every line the tool prints.
//! - [`lock`]: the cluster lock on every host, held for as long as an apply's SSH connection.
//! - [`remote`]: PURE. The only home of remote shell: the probe, build, step, lock and exec
//!   scripts.
//! - [`transport`]: the only code that speaks SSH (russh): one session per host.
//! - [`shell`]: PURE. The only way to build a remote command line (quoting).
//! - [`secret`]: the cluster's password, read once and kept out of output and command lines.
//! - [`source`]: the install to ship (`[source] prebuilt`), packed locally.
//! - [`errors`]: an error and its causes on one line.
//! - [`interrupt`]: Ctrl-C for the whole process: first, start nothing new; second, exit.
//! - [`lab`]: local sshd "hosts" on loopback addresses, to try the tool and to test it.
//!
//! Start reading at [`commands::run`], then [`ops`].

pub mod cli;
pub mod commands;
pub mod errors;
pub mod executor;
pub mod flavors;
pub mod interrupt;
pub mod inventory;
pub mod lab;
pub mod lock;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod remote;
pub mod secret;
pub mod shell;
pub mod source;
pub mod transport;
