//! The lab's error type: one enum for `lab up`, `lab down` and `lab status`.
//!
//! Each message says what failed, for which host, and what to do about it. Causes are kept as
//! `source` rather than pasted into the message, so `main` can print the chain once.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Everything that can go wrong while starting, stopping or inspecting lab hosts.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// `--hosts` outside `1..=254` (one loopback address `127.0.10.K` per host; 253 with
    /// `--netns`).
    #[error("--hosts {hosts}: a lab has 1 to {max} hosts (one address each, .1 to .{max})")]
    HostCount { hosts: usize, max: usize },

    /// `up --netns` as an ordinary user.
    #[error(
        "--netns: network namespaces need root (`ip netns add`): run `lab up` as root, or \
         without --netns for hosts on 127.0.10.x"
    )]
    NetnsNeedsRoot,

    /// `up` as an ordinary user on a lab made with `--netns`.
    #[error(
        "lab directory `{dir}` was made with --netns ({dir}/netns): run `lab up` as root, or \
         `pgxc-deploy lab down --purge --dir {dir}` and start it again without --netns"
    )]
    NetnsLab { dir: PathBuf },

    /// The lab directory cannot be used (bad characters, not a lab, not reachable by the
    /// cluster user...). `reason` says why and what to do.
    #[error("lab directory `{dir}`: {reason}")]
    BadDir { dir: PathBuf, reason: String },

    /// `status` on a directory where `up` never ran.
    #[error("no lab in `{dir}`: run `pgxc-deploy lab up --dir {dir}`")]
    NoLab { dir: PathBuf },

    /// A required OpenSSH program is missing.
    #[error("{tool} not found: install {package} (apt-get install {package})")]
    ToolNotFound { tool: &'static str, package: &'static str },

    /// A filesystem operation failed.
    #[error("failed to {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A program could not be started at all.
    #[error("failed to run {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },

    /// A helper program (ssh-keygen, useradd, kill...) ran and failed.
    #[error("{what}: {status}: {stderr}")]
    Command { what: String, status: ExitStatus, stderr: String },

    /// The effective uid has no name we can find.
    #[error(
        "cannot tell who is running the lab: uid {uid} is not in /etc/passwd and $USER is unset"
    )]
    UnknownUser { uid: u32 },

    /// The non-root login the lab provides cannot be set up or cannot log in.
    #[error("lab login user {user}: {reason}")]
    LoginUser { user: String, reason: String },

    /// sshd exited or reported a fatal error while starting.
    #[error("{host}: sshd failed to start: {detail}; see {log}")]
    SshdStart { host: String, detail: String, log: PathBuf },

    /// sshd did not accept TCP connections in time.
    #[error(
        "{host}: sshd is not accepting connections on {address}:{port} after {secs}s; see {log}"
    )]
    NotListening { host: String, address: String, port: u16, secs: u64, log: PathBuf },

    /// `up --port` disagrees with a host that is already running.
    #[error(
        "{host}: already running on port {running}, but port {requested} was asked for: \
         run `pgxc-deploy lab down` first or drop --port"
    )]
    PortMismatch { host: String, running: u16, requested: u16 },

    /// Signalling a recorded sshd failed (typically: it belongs to another user).
    #[error("{host}: cannot stop sshd (pid {pid}): {stderr}")]
    Signal { host: String, pid: u32, stderr: String },

    /// A recorded sshd survived SIGTERM and SIGKILL.
    #[error("{host}: sshd (pid {pid}) is still running after SIGKILL")]
    StopFailed { host: String, pid: u32 },
}

/// Result alias for the lab module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns a closure that wraps an `io::Error` with the action and the path it concerned.
pub(crate) fn io_at(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { action, path, source }
}
