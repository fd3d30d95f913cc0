//! The only code that speaks SSH (russh). One [`Session`] per host, reused for every command and
//! file of a run; [`Fleet`] hands out those sessions, connecting each host at most once.
//!
//! Callers give ready-made command lines (built with [`crate::shell`]) and get back stdout,
//! stderr and exit status. Nothing here decides what to run.

mod auth;
mod error;
pub mod known_hosts;
pub mod ssh_config;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelMsg, Preferred};
use tokio::sync::OnceCell;

pub use error::{Error, ErrorKind};
pub use known_hosts::UnknownKeys;

use crate::shell::{Become, Cmd};

/// Where and how to reach one host.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The inventory's name for the host, used in every message.
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Tried in order after ssh-agent's keys; empty: ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
    pub identity_files: Vec<PathBuf>,
    /// OpenSSH's IdentitiesOnly: with identity files named, ssh-agent is not asked.
    pub identities_only: bool,
    pub known_hosts: known_hosts::Files,
    pub unknown_keys: UnknownKeys,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// The jump host to reach it through (OpenSSH's ProxyJump), itself maybe behind another:
    /// the connection is a `direct-tcpip` channel of the jump host's session.
    pub via: Option<Box<Endpoint>>,
    /// OpenSSH's ProxyCommand (run with `sh -c` on this machine; the connection is its stdin
    /// and stdout), when there is no jump host.
    pub proxy_command: Option<String>,
    /// A keepalive after this long without a word from the host (ServerAliveInterval);
    /// `None`: [`KEEPALIVE_INTERVAL`]; zero: none.
    pub keepalive: Option<Duration>,
}

impl Endpoint {
    /// What identifies a jump host's session in a [`Fleet`]: who logs in where, and through
    /// which hops.
    fn key(&self) -> String {
        let via = self.via.as_ref().map(|v| format!(" via {}", v.key())).unwrap_or_default();
        format!("{}@{}:{}{via}", self.user, self.address, self.port)
    }
}

/// Called with each piece of a command's output as it arrives: `true` for stderr.
pub type OnData<'a> = dyn Fn(bool, &[u8]) + Send + Sync + 'a;

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Code(u32),
    Signal(String),
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// What a remote command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: ExitStatus,
}

/// An authenticated connection to one host.
pub struct Session {
    endpoint: Endpoint,
    handle: Handle<Client>,
    kex: String,
    /// The jump host's session this one runs through, kept open as long as this one.
    _via: Option<Arc<Session>>,
    /// The ProxyCommand whose stdin and stdout carry it, killed with the session.
    _proxy: Option<tokio::process::Child>,
}

/// A keepalive is sent after this long without a word from the host (OpenSSH's
/// ServerAliveInterval)...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// ...and the session is given up after this many go unanswered (ServerAliveCountMax).
pub const KEEPALIVE_MAX: usize = 3;

impl Session {
    /// Connect, check the host key and authenticate, all within the connect timeout.
    pub async fn connect(endpoint: &Endpoint) -> Result<Session, Error> {
        Session::connect_via(endpoint, None).await
    }

    /// [`Session::connect`], through `via`'s session when given (a `direct-tcpip` channel to
    /// the endpoint's address and port, opened by the jump host: ProxyJump).
    pub async fn connect_via(
        endpoint: &Endpoint,
        via: Option<Arc<Session>>,
    ) -> Result<Session, Error> {
        let err = |kind| Error { host: endpoint.name.clone(), kind };
        let addr = format!("{}:{}", endpoint.address, endpoint.port);
        let timeout = endpoint.connect_timeout;
        match tokio::time::timeout(timeout, Session::establish(endpoint, &addr, via)).await {
            Ok(result) => result.map_err(err),
            Err(_) => Err(err(ErrorKind::ConnectTimeout { addr, timeout })),
        }
    }

    async fn establish(
        ep: &Endpoint,
        addr: &str,
        via: Option<Arc<Session>>,
    ) -> Result<Session, ErrorKind> {
        let mut proxy = None;
        let (mut handle, kex) = match &via {
            None if ep.proxy_command.is_some() => {
                let command = ep.proxy_command.as_deref().unwrap_or_default();
                let mut child = tokio::process::Command::new("sh")
                    .args(["-c", command])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| ErrorKind::Connect {
                        addr: format!("{addr} (ProxyCommand {command})"),
                        source: Arc::new(e),
                    })?;
                let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
                    unreachable!("piped above")
                };
                // The session keeps the child: dropping it would kill the command.
                proxy = Some(child);
                Session::handshake(ep, addr, tokio::io::join(stdout, stdin)).await?
            }
            None => {
                let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
                    ErrorKind::Connect { addr: addr.to_string(), source: Arc::new(e) }
                })?;
                let _ = tcp.set_nodelay(true);
                Session::handshake(ep, addr, tcp).await?
            }
            Some(jump) => {
                let port = u32::from(ep.port);
                let opened =
                    jump.handle.channel_open_direct_tcpip(&ep.address, port, "127.0.0.1", 0);
                let channel = opened.await.map_err(|e| ErrorKind::Jump {
                    addr: addr.to_string(),
                    via: jump.endpoint.name.clone(),
                    source: Arc::new(e),
                })?;
                Session::handshake(ep, addr, channel.into_stream()).await?
            }
        };
        auth::authenticate(&mut handle, ep, addr).await?;
        let through = via.as_ref().map(|v| v.endpoint.name.as_str()).unwrap_or("");
        tracing::info!(host = %ep.name, addr, kex = %kex, user = %ep.user, via = through, "connected");
        Ok(Session { endpoint: ep.clone(), handle, kex, _via: via, _proxy: proxy })
    }

    /// The SSH handshake over `stream`, host key checked: the handle, not yet authenticated,
    /// and the key exchange negotiated.
    async fn handshake<S>(
        ep: &Endpoint,
        addr: &str,
        stream: S,
    ) -> Result<(Handle<Client>, String), ErrorKind>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (key, host_key_certificates) =
            known_hosts::preferred(&ep.address, ep.port, &ep.known_hosts, &Preferred::DEFAULT.key);
        let preferred = Preferred {
            key: key.into(),
            host_key_certificates: host_key_certificates.into(),
            ..Preferred::DEFAULT
        };
        let config = Arc::new(client::Config {
            preferred,
            // Keeps long-running commands (builds) alive through idle NAT/firewalls, and ends a
            // session whose host stopped answering: after KEEPALIVE_MAX unanswered keepalives
            // (about 30-40 s) every command on it fails with "connection lost".
            keepalive_interval: match ep.keepalive {
                None => Some(KEEPALIVE_INTERVAL),
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
            },
            keepalive_max: KEEPALIVE_MAX,
            ..Default::default()
        });
        let verdict = Arc::new(Mutex::new(None));
        let kex = Arc::new(Mutex::new(String::new()));
        let handler = Client {
            address: ep.address.clone(),
            port: ep.port,
            known_hosts: ep.known_hosts.clone(),
            unknown_keys: ep.unknown_keys,
            verdict: verdict.clone(),
            kex: kex.clone(),
        };
        match client::connect_stream(config, stream, handler).await {
            Ok(handle) => {
                let kex = kex.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Ok((handle, kex))
            }
            Err(e) => {
                // A refused host key surfaces from russh as a generic error: report ours.
                let refused = verdict.lock().unwrap_or_else(|p| p.into_inner()).take();
                Err(refused.unwrap_or_else(|| ErrorKind::ssh(addr, e)))
            }
        }
    }

    /// The inventory's name of the host.
    pub fn host(&self) -> &str {
        &self.endpoint.name
    }

    /// The key exchange algorithm negotiated with the host (e.g. `curve25519-sha256`).
    pub fn kex(&self) -> &str {
        &self.kex
    }

    /// Run a command line in the remote user's shell, within the command timeout.
    pub async fn run(&self, command: &str) -> Result<Output, Error> {
        self.run_with_stdin(command, None).await
    }

    /// Like [`Session::run`], feeding `stdin` to the command and then closing its input.
    pub async fn run_with_stdin(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Output, Error> {
        self.run_inner(command, stdin, None).await
    }

    /// Like [`Session::run`], handing every piece of output to `on_data` as it arrives
    /// (`true`: stderr) as well.
    pub async fn run_streaming(
        &self,
        command: &str,
        on_data: &OnData<'_>,
    ) -> Result<Output, Error> {
        self.run_inner(command, None, Some(on_data)).await
    }

    async fn run_inner(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        on_data: Option<&OnData<'_>>,
    ) -> Result<Output, Error> {
        let timeout = self.endpoint.command_timeout;
        let result = tokio::time::timeout(timeout, self.exchange(command, stdin, on_data)).await;
        let kind = match result {
            Ok(Ok(output)) => return Ok(output),
            Ok(Err(kind)) => kind,
            Err(_) => ErrorKind::CommandTimeout { timeout },
        };
        Err(Error { host: self.endpoint.name.clone(), kind })
    }

    async fn exchange(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        on_data: Option<&OnData<'_>>,
    ) -> Result<Output, ErrorKind> {
        let addr = &self.endpoint.address;
        let ssh = |e| ErrorKind::ssh(addr, e);
        let mut channel = self.handle.channel_open_session().await.map_err(ssh)?;
        #[allow(clippy::disallowed_methods)] // transport/ is where commands are sent.
        channel.exec(true, command).await.map_err(ssh)?;
        if let Some(data) = stdin {
            channel.data(data).await.map_err(ssh)?;
        }
        channel.eof().await.map_err(ssh)?;
        let mut collected = Collected::default();
        while let Some(msg) = channel.wait().await {
            if let Some(on_data) = on_data {
                match &msg {
                    ChannelMsg::Data { data } => on_data(false, data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => on_data(true, data),
                    _ => {}
                }
            }
            collected.absorb(msg);
        }
        collected.finish()
    }

    /// Start `command` and keep it running until [`Held::release`] or until this connection
    /// ends, however it ends (an SSH session's commands die with it). Returns once the command
    /// printed its first line: `Ok` with that line, or `Err(output)` if it exited first. Used
    /// for locks that must not outlive their holder.
    pub async fn hold(&self, command: &str) -> Result<Result<(Held, String), Output>, Error> {
        let result = tokio::time::timeout(self.endpoint.command_timeout, self.start_held(command));
        let kind = match result.await {
            Ok(Ok(held)) => return Ok(held),
            Ok(Err(kind)) => kind,
            Err(_) => ErrorKind::CommandTimeout { timeout: self.endpoint.command_timeout },
        };
        Err(Error { host: self.endpoint.name.clone(), kind })
    }

    async fn start_held(&self, command: &str) -> Result<Result<(Held, String), Output>, ErrorKind> {
        let ssh = |e| ErrorKind::ssh(&self.endpoint.address, e);
        let mut channel = self.handle.channel_open_session().await.map_err(ssh)?;
        #[allow(clippy::disallowed_methods)] // transport/ is where commands are sent.
        channel.exec(true, command).await.map_err(ssh)?;
        let mut collected = Collected::default();
        while let Some(msg) = channel.wait().await {
            collected.absorb(msg);
            if let Some(end) = collected.stdout.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&collected.stdout[..end]).into_owned();
                let pending = collected.stdout.split_off(end + 1);
                let host = self.endpoint.name.clone();
                let timeout = self.endpoint.command_timeout;
                return Ok(Ok((Held { channel, pending, host, timeout }, line)));
            }
        }
        collected.finish().map(Err)
    }

    /// Write `contents` to `path` on the host with `mode`, atomically: a temporary file beside
    /// it, then a rename, so a reader never sees half a file. The file belongs to whoever
    /// `as_user` says.
    pub async fn upload(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        as_user: &Become,
    ) -> Result<Output, Error> {
        let tmp = format!("{path}.pgxc-deploy.tmp");
        let script = format!(
            "umask 077 && {} && {} && {}",
            Cmd::new("cat").raw(">").arg(&tmp),
            Cmd::new("chmod").arg(format!("{mode:o}")).arg(&tmp),
            Cmd::new("mv").arg("-f").arg(&tmp).arg(path),
        );
        let output = self.run_with_stdin(&as_user.wrap(&script), Some(contents)).await?;
        if !output.status.success() {
            // Leave nothing half-written behind.
            let _ = self.run(&as_user.wrap(&Cmd::new("rm").arg("-f").arg(&tmp).to_string())).await;
        }
        Ok(output)
    }

    /// Close the connection politely.
    pub async fn close(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// What a command printed so far, and how it ended once it did.
#[derive(Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
}

impl Collected {
    fn absorb(&mut self, msg: ChannelMsg) {
        match msg {
            ChannelMsg::Data { data } => self.stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => self.stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => {
                self.status = Some(ExitStatus::Code(exit_status))
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                self.status = Some(ExitStatus::Signal(format!("{signal_name:?}")))
            }
            _ => {}
        }
    }

    /// The output, once the channel closed: without an exit status, the connection was lost.
    fn finish(self) -> Result<Output, ErrorKind> {
        let status = self.status.ok_or(ErrorKind::NoExitStatus)?;
        Ok(Output { stdout: self.stdout, stderr: self.stderr, status })
    }
}

/// How long [`Held::release`] waits for the held command to end.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A command kept running by [`Session::hold`].
pub struct Held {
    channel: russh::Channel<client::Msg>,
    /// Output read past the first line, not yet taken by [`Held::read_block`].
    pending: Vec<u8>,
    host: String,
    timeout: std::time::Duration,
}

impl Held {
    /// The next block the command prints while it is held: a `block N` line, then N bytes
    /// (what a command run under the lock printed, [`crate::remote::lock::lock_script`]). Fails when
    /// the command ends first, prints something else, or takes longer than the command timeout.
    pub async fn read_block(&mut self) -> Result<Vec<u8>, Error> {
        let error = |kind| Error { host: self.host.clone(), kind };
        let read = async {
            loop {
                if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                    let header = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                    let len = header.strip_prefix("block ").and_then(|n| n.parse::<usize>().ok());
                    let Some(len) = len else { return Err(ErrorKind::UnexpectedOutput(header)) };
                    if self.pending.len() > end + len {
                        let rest = self.pending.split_off(end + 1 + len);
                        let mut block = std::mem::replace(&mut self.pending, rest);
                        block.drain(..=end);
                        return Ok(block);
                    }
                }
                match self.channel.wait().await {
                    Some(ChannelMsg::Data { data }) => self.pending.extend_from_slice(&data),
                    Some(_) => {}
                    None => return Err(ErrorKind::NoExitStatus),
                }
            }
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(result) => result.map_err(error),
            Err(_) => Err(error(ErrorKind::CommandTimeout { timeout: self.timeout })),
        }
    }

    /// Close the command's input, so it ends, and wait until it did (at most
    /// 10 s: the lock ends with the connection anyway, which the caller closes).
    pub async fn release(mut self) {
        let _ = self.channel.eof().await;
        let ended = async { while self.channel.wait().await.is_some() {} };
        if tokio::time::timeout(RELEASE_WAIT, ended).await.is_err() {
            tracing::warn!(host = %self.host, "a held command did not end {RELEASE_WAIT:?} after its input closed");
        }
    }
}

/// A host's session once connected, or why it could not be.
type SessionCell = OnceCell<Result<Arc<Session>, Error>>;

/// Every host's session, each connected on first use and then shared.
pub struct Fleet {
    endpoints: HashMap<String, Endpoint>,
    sessions: Mutex<HashMap<String, Arc<SessionCell>>>,
}

impl Fleet {
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Fleet {
        let endpoints = endpoints.into_iter().map(|e| (e.name.clone(), e)).collect();
        Fleet { endpoints, sessions: Mutex::new(HashMap::new()) }
    }

    /// The session with `host`, connecting if this is the first use (through its jump hosts,
    /// whose sessions are shared by every host behind them). A failed connection is
    /// remembered: every later user of the host gets the same error without a new attempt.
    pub async fn session(&self, host: &str) -> Result<Arc<Session>, Error> {
        let endpoint = self.endpoints.get(host).expect("host comes from the inventory");
        self.connected(host.to_string(), endpoint).await
    }

    /// The session of `endpoint`, known in the fleet as `key`.
    fn connected<'a>(
        &'a self,
        key: String,
        endpoint: &'a Endpoint,
    ) -> futures::future::BoxFuture<'a, Result<Arc<Session>, Error>> {
        Box::pin(async move {
            let cell = {
                let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
                sessions.entry(key).or_default().clone()
            };
            let connect = async {
                let via = match &endpoint.via {
                    None => None,
                    Some(jump) => {
                        let jumped = self.connected(format!("jump {}", jump.key()), jump).await;
                        // The target's error names the target, and says the jump failed.
                        Some(jumped.map_err(|e| Error {
                            host: endpoint.name.clone(),
                            kind: ErrorKind::JumpHost {
                                via: jump.name.clone(),
                                source: Box::new(e),
                            },
                        })?)
                    }
                };
                Session::connect_via(endpoint, via).await.map(Arc::new)
            };
            cell.get_or_init(|| connect).await.clone()
        })
    }

    /// Disconnect every session.
    pub async fn close(&self) {
        let cells: Vec<_> = {
            let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.values().cloned().collect()
        };
        for cell in cells {
            if let Some(Ok(session)) = cell.get() {
                session.close().await;
            }
        }
    }
}

/// russh's callbacks: host key check, and the negotiated key exchange.
struct Client {
    address: String,
    port: u16,
    known_hosts: known_hosts::Files,
    unknown_keys: UnknownKeys,
    /// Why the host key was refused, for a better message than russh's.
    verdict: Arc<Mutex<Option<ErrorKind>>>,
    kex: Arc<Mutex<String>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let checked = known_hosts::verify(
            &self.address,
            self.port,
            key,
            &self.known_hosts,
            self.unknown_keys,
        );
        match checked {
            Ok(()) => Ok(true),
            Err(kind) => {
                *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(kind);
                Ok(false)
            }
        }
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        *self.kex.lock().unwrap_or_else(|p| p.into_inner()) = names.kex.as_ref().to_string();
        Ok(())
    }
}

/// The name of the user running pgxc-deploy: $USER, else $LOGNAME, else /etc/passwd's entry
/// for our uid (containers and CI often set neither variable).
pub fn local_user_name() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(name) = std::env::var(var)
            && !name.is_empty()
        {
            return name;
        }
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid.to_string())
        .map(|f| f[0].to_string())
        .unwrap_or_else(|| if uid == 0 { "root".into() } else { uid.to_string() })
}
