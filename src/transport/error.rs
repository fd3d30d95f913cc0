//! The transport's error: which host, and what went wrong there, with the cause kept as `source`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// An SSH failure on one host. Cloneable, because one failed connection is reported for every
/// target (node) on that host. Its message is the host; what went wrong is its `source` (so a
/// printed chain reads `db1: cannot connect to 10.0.0.1:22: Connection refused`, once).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host}")]
pub struct Error {
    /// The inventory's name of the host.
    pub host: String,
    #[source]
    pub kind: ErrorKind,
}

/// What went wrong. Messages are short and say what to do; causes are kept as sources.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("the jump host {via} cannot open a connection to {addr}")]
    Jump {
        addr: String,
        via: String,
        #[source]
        source: Arc<russh::Error>,
    },
    #[error("through the jump host {via}")]
    JumpHost {
        via: String,
        #[source]
        source: Box<Error>,
    },
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error(
        "no answer from {addr} within {timeout:?} (is sshd there and responsive? see --connect-timeout)"
    )]
    ConnectTimeout { addr: String, timeout: Duration },
    #[error(
        "host key of {addr} is unknown ({fingerprint}, not in {known_hosts}); \
         check it, then re-run with --accept-new to record it"
    )]
    UnknownHostKey { addr: String, fingerprint: String, known_hosts: PathBuf },
    #[error(
        "HOST KEY CHANGED for {addr}: it is now {fingerprint}, but {known_hosts} line {line} \
         records another key; this may be an attack. If the host was reinstalled, delete that \
         line and re-run with --accept-new"
    )]
    HostKeyChanged { addr: String, fingerprint: String, known_hosts: PathBuf, line: usize },
    #[error(
        "host key of {addr} ({fingerprint}) is REVOKED by {known_hosts} line {line}; it is \
         refused, whatever else is known about it"
    )]
    HostKeyRevoked { addr: String, fingerprint: String, known_hosts: PathBuf, line: usize },
    #[error("host certificate of {addr} refused: {why}")]
    HostCertificateInvalid { addr: String, why: String },
    #[error(
        "cannot read {}{}: {why}; fix or remove that line (no host key is trusted or learned \
         until then)",
        path.display(),
        line.map(|l| format!(" line {l}")).unwrap_or_default()
    )]
    KnownHostsUnreadable { path: PathBuf, line: Option<usize>, why: String },
    #[error("cannot record the host key of {addr} in {known_hosts}")]
    LearnHostKey {
        addr: String,
        known_hosts: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error(
        "cannot load identity file {path} (an encrypted key must be loaded into ssh-agent: \
         `ssh-add {}`)",
        path.display()
    )]
    Identity {
        path: PathBuf,
        #[source]
        source: Arc<russh::keys::Error>,
    },
    #[error(
        "no identity: the inventory and the OpenSSH client configuration name no identity \
         file, SSH_AUTH_SOCK is not set and ~/.ssh has no id_ed25519, id_ecdsa or id_rsa"
    )]
    NoIdentity,
    #[error("ssh-agent at SSH_AUTH_SOCK")]
    Agent {
        #[source]
        source: Arc<russh::keys::Error>,
    },
    #[error(
        "public key authentication as `{user}` refused by {addr} ({tried}); check the user and authorized_keys"
    )]
    AuthRefused { user: String, addr: String, tried: String },
    #[error("ssh session with {addr}")]
    Ssh {
        addr: String,
        #[source]
        source: Arc<russh::Error>,
    },
    #[error(
        "command timed out after {timeout:?}; it may still be running there (see --command-timeout)"
    )]
    CommandTimeout { timeout: Duration },
    #[error(
        "connection lost before the command finished (the host stopped answering, or the \
         connection was cut); the command may still be running there"
    )]
    NoExitStatus,
    #[error("unexpected output from a held command: {0:?} (a shell start-up file that prints?)")]
    UnexpectedOutput(String),
}

impl ErrorKind {
    pub(crate) fn ssh(addr: &str, source: russh::Error) -> ErrorKind {
        ErrorKind::Ssh { addr: addr.to_string(), source: Arc::new(source) }
    }
}
