//! The operations on a cluster, below the command line: what `apply`, `failover`,
//! `switchover`, `restart`, `degrade`, `status`, `start`/`stop` and `clean` do, as functions of
//! a [`Session`] and options, so that a command file only turns arguments into options, calls
//! one operation and reports how it ended (cargo's `ops` layer is the model).
//!
//! Each operation is a loop of probe -> pure decision ([`crate::plan`]) -> act: it probes
//! through the session, asks `plan` what to do (steps to run, nothing, or a refusal), runs the
//! steps through [`crate::executor`] and reports each. No decision is made here that a pure
//! function in `plan` could make.
//!
//! - [`session`]: the open cluster: inventory, install layout, templates, SSH fleet, how to run
//!   as the cluster's user on each host, forks.
//! - [`cluster`]: loading the inventory, the lock, the probe, running a phase of steps.
//! - [`failover`], [`switchover`], [`degrade`], [`lifecycle`]: the operations that other
//!   operations reuse (a roll hands datanodes over; `status --heal` degrades; `clean` stops).

pub mod apply;
pub mod clean;
pub mod cluster;
pub mod degrade;
pub mod exec;
pub mod failover;
pub mod gtm;
pub mod lifecycle;
pub mod remove;
pub mod restart;
#[cfg(test)]
pub mod scripted;
pub mod session;
pub mod status;
pub mod switchover;

pub use session::Session;

/// How a command ended; [`Status::code`] is the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0.
    Ok,
    /// 1: some target failed.
    Failed,
    /// 2: an invalid inventory or usage.
    Invalid,
    /// 130: Ctrl-C cut the work short (128 + SIGINT, as shells report it).
    Interrupted,
    /// `plan` found changes to make: exit 0, or 2 with `--detailed-exitcode` (terraform's
    /// habit; the command layer decides).
    Pending,
    /// `exec`: the remote command's exit status (the highest of them, like `clush -S`).
    Exit(u8),
}

impl Status {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Invalid | Status::Pending => 2,
            Status::Interrupted => 130,
            Status::Exit(code) => code,
        }
    }
}

/// Why a command could not do its work at all (as opposed to a target failing).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Every problem found in the inventory, one diagnostic each.
    #[error("{0}")]
    Inventory(#[from] crate::inventory::Error),
    #[error("{0}")]
    Usage(String),
    #[error("lab")]
    Lab(#[from] crate::lab::Error),
    #[error("[source] prebuilt")]
    Source(#[from] crate::source::Error),
    #[error("cannot write output")]
    Output(#[from] std::io::Error),
    /// A file kept beside the inventory (the roles file, the replication record) cannot be
    /// read, parsed or written.
    #[error(transparent)]
    Beside(#[from] crate::inventory::roles::Error),
    /// Another command changed the roles file between this command's first read and its lock:
    /// what it would do was planned on old roles, so it did nothing.
    #[error("{0}")]
    Changed(String),
    /// Work done on the hosts (`done` says what) that the roles file does not record.
    #[error("{done}, but the roles file does not say so")]
    Unrecorded {
        done: String,
        #[source]
        source: crate::inventory::roles::Error,
    },
}

impl Error {
    pub fn exit_status(&self) -> Status {
        match self {
            Error::Inventory(_) | Error::Usage(_) => Status::Invalid,
            // The inventory names a directory that holds no install.
            Error::Source(crate::source::Error::NotAnInstall { .. }) => Status::Invalid,
            // A roles file or replication record edited into something else.
            Error::Beside(crate::inventory::roles::Error::Parse { .. }) => Status::Invalid,
            _ => Status::Failed,
        }
    }

    /// Output closed by the reader (`| head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// An inventory error is a list of located diagnostics, printed as it is.
    pub fn is_diagnostics(&self) -> bool {
        matches!(self, Error::Inventory(_))
    }
}
