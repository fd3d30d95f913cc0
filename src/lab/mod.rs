//! Lab hosts: N local OpenSSH servers, one per loopback address `127.0.10.K` (with `up --netns`,
//! each in a network namespace of its own at `198.18.N.K`), each with its own host key and
//! directories. They are the fixture for integration tests and the way users try
//! the tool without machines. `commands::lab` calls [`up`], [`down`] and [`status`] and prints
//! what they return; nothing here prints.
//!
//! # Layout
//!
//! - this file: the public API and the order of operations (lock, users, keys, hosts).
//! - `layout` PURE: paths inside the lab directory and the text of every file written.
//! - `sshd`: start, wait for, recognise and stop the sshd processes.
//! - `keys`: ssh-keygen. `users`: who logs in, and the `pgxc` login made when running as root.
//! - `netns`: with `up --netns`, each host's network namespace and the bridge joining them.
//! - `files`, `command`: small I/O helpers that put the path or program into every error.
//!
//! The sshds daemonize, so hosts outlive `pgxc-deploy`; their PIDs are recorded in
//! `DIR/hosts/hK/sshd.pid` and [`down`] stops exactly those, after checking /proc that each is
//! still an sshd running that host's config.

mod command;
mod error;
mod files;
mod keys;
mod layout;
mod netns;
mod sshd;
mod users;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use error::{Error, Result};
use layout::{HostLayout, Layout, MAX_HOSTS, MAX_NETNS_HOSTS, Net};
use users::Account;

/// Where the lab lives when `--dir` is not given.
pub const DEFAULT_DIR: &str = "/tmp/pgxc-lab";

/// How long a started sshd has to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many hosts are prepared (ssh-keygen, sshd start) at once.
const PARALLEL_STARTS: usize = 32;

/// Options of `lab up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The lab directory; relative paths are made absolute.
    pub dir: PathBuf,
    /// Hosts 1..=hosts must be running afterwards (at most 254).
    pub hosts: usize,
    /// Port for every host. Default: the port of the existing hosts, else 22 as root and 2222
    /// otherwise.
    pub port: Option<u16>,
    /// A new lab's hosts each get a network namespace and an address `198.18.N.K` of their own
    /// (root only). A lab keeps the kind it was made with.
    pub netns: bool,
}

/// One lab host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabHost {
    /// `hK`.
    pub name: String,
    /// `127.0.10.K`, or `198.18.N.K` in a lab of network namespaces.
    pub address: String,
    pub port: u16,
    /// The PID recorded in `sshd.pid`, if any (it may be stale: see `running`).
    pub pid: Option<u32>,
    /// True if `pid` is alive and is this host's sshd.
    pub running: bool,
    /// `DIR/hosts/hK`.
    pub dir: PathBuf,
}

/// A lab directory and its hosts, sorted by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    pub dir: PathBuf,
    /// SSH login user: the invoking user.
    pub user: String,
    /// Owner of the install and data directories: `pgxc` when running as root, else the
    /// invoking user.
    pub cluster_user: String,
    pub hosts: Vec<LabHost>,
}

/// Starts hosts 1..=`opts.hosts` in `opts.dir`, keeping those already running, and writes
/// `known_hosts` and `hosts.toml`.
///
/// Returns hosts 1..=N plus any other host of the directory that is running (a lab is never
/// shrunk by `up`; use [`down`]).
pub async fn up(opts: &UpOptions) -> Result<Lab> {
    let max = if opts.netns { MAX_NETNS_HOSTS } else { MAX_HOSTS };
    if !(1..=max).contains(&opts.hosts) {
        return Err(Error::HostCount { hosts: opts.hosts, max });
    }
    let mut layout = Layout::new(lab_dir(&opts.dir)?);
    let me = users::invoking()?;
    let sshd_bin = sshd::find()?;
    if opts.netns && !me.is_root() {
        return Err(Error::NetnsNeedsRoot);
    }
    let _lock = claim(&layout).await?;
    layout.net = network(&layout, opts.netns, me.is_root()).await?;
    if layout.net.is_some() && opts.hosts > MAX_NETNS_HOSTS {
        return Err(Error::HostCount { hosts: opts.hosts, max: MAX_NETNS_HOSTS });
    }

    let cluster = if me.is_root() {
        // sshd's privilege separation directory; packages create it only when the service runs.
        files::create_dir(Path::new("/run/sshd"), 0o755)?;
        let cluster = users::ensure_cluster_user(users::CLUSTER_USER_WHEN_ROOT).await?;
        users::check_reachable(&layout.dir, &cluster)?;
        cluster
    } else {
        me.clone()
    };

    let (id_ed25519, id_rsa) = (layout.id_ed25519(), layout.id_rsa());
    let (ed25519, rsa) = tokio::join!(
        keys::ensure(&id_ed25519, keys::Kind::Ed25519, "pgxc-lab"),
        keys::ensure(&id_rsa, keys::Kind::Rsa, "pgxc-lab"),
    );
    ed25519?;
    rsa?;
    let authorized = format!(
        "{} pgxc-lab\n{} pgxc-lab\n",
        keys::public_body(&id_ed25519)?,
        keys::public_body(&id_rsa)?
    );
    files::write(&layout.authorized_keys(), &authorized, 0o644)?;

    let existing = scan(&layout)?;
    let port = choose_port(opts, &existing, me.is_root())?;
    files::create_dir(&layout.hosts_dir(), 0o755)?;

    let started = std::time::Instant::now();
    let limit = Arc::new(Semaphore::new(PARALLEL_STARTS));
    let mut tasks = JoinSet::new();
    for k in 1..=opts.hosts {
        let running = existing.iter().any(|(j, h)| *j == k && h.running);
        let host = layout.host(k);
        let job = HostJob {
            net: layout.net.map(|net| (net, k)),
            host,
            port,
            sshd: sshd_bin.clone(),
            authorized_keys: layout.authorized_keys(),
            owner: me.is_root().then(|| cluster.clone()),
        };
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let result = if running { job.check().await } else { job.start(&limit).await };
            (k, result)
        });
    }
    let mut results = tasks.join_all().await;
    results.sort_by_key(|(k, _)| *k);
    let mut failures = results.into_iter().filter_map(|(_, r)| r.err());
    if let Some(first) = failures.next() {
        for other in failures {
            tracing::error!("{other}");
        }
        return Err(first);
    }
    tracing::info!(hosts = opts.hosts, elapsed = ?started.elapsed(), "lab hosts ready");

    let mut hosts = scan(&layout)?;
    hosts.retain(|(k, h)| *k <= opts.hosts || h.running);
    let mut known_hosts = String::new();
    for (k, host) in &hosts {
        let key = keys::public_body(&layout.host(*k).host_key())?;
        known_hosts.push_str(&layout::known_hosts_line(&host.address, host.port, &key));
    }
    files::write(&layout.known_hosts(), &known_hosts, 0o644)?;
    let lab = Lab {
        dir: layout.dir.clone(),
        user: me.name.clone(),
        cluster_user: cluster.name.clone(),
        hosts: hosts.into_iter().map(|(_, h)| h).collect(),
    };
    files::write(&layout.hosts_toml(), &hosts_table(&lab), 0o644)?;
    Ok(lab)
}

/// Stops every sshd the lab in `dir` started, removes their pid files, and with `purge` deletes
/// the whole directory. Keys are kept otherwise, so known_hosts stays valid for the next `up`.
///
/// A missing directory is not an error: there is nothing to stop.
pub async fn down(dir: &Path, purge: bool) -> Result<Lab> {
    let mut layout = Layout::new(lab_dir(dir)?);
    let me = users::invoking()?;
    let mut lab = Lab {
        dir: layout.dir.clone(),
        user: me.name.clone(),
        cluster_user: me.cluster_user_name(),
        hosts: Vec::new(),
    };
    if !layout.dir.exists() {
        return Ok(lab);
    }
    if !layout.marker().exists() {
        return Err(Error::BadDir {
            dir: layout.dir.clone(),
            reason: "not a lab directory (no .pgxc-lab inside): nothing was stopped or deleted; \
                     check --dir"
                .to_string(),
        });
    }
    let _lock = lock(&layout.marker(), false).await?;
    layout.net = read_net(&layout)?;

    let hosts = scan(&layout)?;
    let mut tasks = JoinSet::new();
    for (k, host) in &hosts {
        let (host_layout, pid) = (layout.host(*k), host.pid);
        tasks.spawn(async move {
            if let Some(pid) = pid {
                sshd::stop(&host_layout, pid).await?;
                tracing::info!(host = %host_layout.name, pid, "sshd stopped");
            }
            files::remove_opt(&host_layout.pid_file())
        });
    }
    let results = tasks.join_all().await;
    if let Some(error) = results.into_iter().find_map(|r| r.err()) {
        return Err(error);
    }
    lab.hosts = scan(&layout)?.into_iter().map(|(_, h)| h).collect();
    if let (Some(net), true) = (layout.net, purge) {
        netns::remove(net).await?;
        tracing::info!(bridge = %net.bridge(), "lab network removed");
    }
    if purge {
        std::fs::remove_dir_all(&layout.dir).map_err(error::io_at("delete", &layout.dir))?;
        tracing::info!(dir = %layout.dir.display(), "lab directory deleted");
    }
    Ok(lab)
}

/// The hosts of the lab in `dir` and whether each is running. Reads files and /proc only.
pub fn status(dir: &Path) -> Result<Lab> {
    let layout = Layout::new(lab_dir(dir)?);
    if !layout.marker().exists() {
        return Err(Error::NoLab { dir: layout.dir });
    }
    let me = users::invoking()?;
    Ok(Lab {
        dir: layout.dir.clone(),
        user: me.name.clone(),
        cluster_user: me.cluster_user_name(),
        hosts: scan(&layout)?.into_iter().map(|(_, h)| h).collect(),
    })
}

/// The inventory fragment for `lab`: an `[ssh]` table and one `[hosts.hK]` table per host. `up`
/// writes it to `DIR/hosts.toml`.
pub fn hosts_table(lab: &Lab) -> String {
    let port = lab.hosts.first().map_or(layout::default_port(lab.user == "root"), |h| h.port);
    let hosts: Vec<layout::TableHost<'_>> = lab
        .hosts
        .iter()
        .map(|h| layout::TableHost { name: &h.name, address: &h.address, dir: &h.dir })
        .collect();
    layout::hosts_table(&lab.dir, &lab.user, port, &hosts)
}

/// Everything needed to bring up one host, owned so it can move into a task.
struct HostJob {
    /// The lab's network and the host's number, in a lab of network namespaces.
    net: Option<(Net, usize)>,
    host: HostLayout,
    port: u16,
    sshd: PathBuf,
    authorized_keys: PathBuf,
    /// Owner for install/ and data/ when running as root.
    owner: Option<Account>,
}

impl HostJob {
    /// Prepares directories, host key and config, starts sshd and waits for it.
    async fn start(self, limit: &Semaphore) -> Result<()> {
        let log_offset = {
            let _permit = limit.acquire().await.expect("the semaphore is never closed");
            let host = &self.host;
            files::create_dir(&host.dir, 0o755)?;
            for dir in [host.install(), host.data()] {
                if !dir.exists() {
                    files::create_dir(&dir, 0o755)?;
                }
                if let Some(owner) = &self.owner {
                    users::chown(&dir, owner)?;
                }
            }
            keys::ensure(&host.host_key(), keys::Kind::Ed25519, &format!("pgxc-lab-{}", host.name))
                .await?;
            if let Some((net, k)) = self.net {
                netns::ensure_host(net, k, &host.name).await?;
            }
            // A stale pid file would be taken for the new daemon's.
            files::remove_opt(&host.pid_file())?;
            let config = layout::sshd_config(host, self.port, &self.authorized_keys);
            files::write(&host.config(), &config, 0o644)?;
            let offset = files::len(&host.log());
            sshd::start(&self.sshd, host).await?;
            offset
        };
        let pid = sshd::wait_ready(&self.host, self.port, log_offset, READY_TIMEOUT).await?;
        tracing::info!(host = %self.host.name, pid, port = self.port, "sshd started");
        Ok(())
    }

    /// For a host that was already running: make sure it still answers.
    async fn check(self) -> Result<()> {
        let offset = files::len(&self.host.log());
        sshd::wait_ready(&self.host, self.port, offset, READY_TIMEOUT).await?;
        tracing::info!(host = %self.host.name, "sshd already running");
        Ok(())
    }
}

/// The port for this `up`: `--port`, else the port the lab already uses, else the default.
fn choose_port(opts: &UpOptions, existing: &[(usize, LabHost)], root: bool) -> Result<u16> {
    let current = existing.iter().find(|(_, h)| h.running).or(existing.first());
    let port = opts.port.or(current.map(|(_, h)| h.port)).unwrap_or(layout::default_port(root));
    // A running sshd keeps its port until restarted, and one lab has one port.
    match existing.iter().find(|(_, h)| h.running && h.port != port) {
        Some((_, h)) => {
            Err(Error::PortMismatch { host: h.name.clone(), running: h.port, requested: port })
        }
        None => Ok(port),
    }
}

/// The lab's network, its bridge up: the one recorded in `DIR/netns`, else with `netns` a new
/// one (for a lab without hosts yet), else none (hosts on loopback addresses).
async fn network(layout: &Layout, netns: bool, root: bool) -> Result<Option<Net>> {
    if let Some(net) = read_net(layout)? {
        if !root {
            return Err(Error::NetnsLab { dir: layout.dir.clone() });
        }
        netns::ensure_bridge(net, &layout.dir).await?;
        return Ok(Some(net));
    }
    if !netns {
        return Ok(None);
    }
    if !scan(layout)?.is_empty() {
        return Err(Error::BadDir {
            dir: layout.dir.clone(),
            reason: format!(
                "its hosts are on 127.0.10.x: for a lab of network namespaces run \
                 `pgxc-deploy lab down --purge --dir {}` first, or choose another --dir",
                layout.dir.display()
            ),
        });
    }
    let net = netns::claim(&layout.dir).await?;
    files::write(&layout.net_file(), &net.to_file(), 0o644)?;
    tracing::info!(bridge = %net.bridge(), "lab network chosen");
    Ok(Some(net))
}

/// The network recorded in `DIR/netns`, if the lab has one.
fn read_net(layout: &Layout) -> Result<Option<Net>> {
    let path = layout.net_file();
    match files::read_opt(&path)? {
        None => Ok(None),
        Some(text) => Net::parse(&text).map(Some).ok_or_else(|| Error::BadDir {
            dir: layout.dir.clone(),
            reason: format!("{} does not hold a lab network number (0-255)", path.display()),
        }),
    }
}

/// The hosts found in the lab directory (those with an sshd_config), with their numbers.
fn scan(layout: &Layout) -> Result<Vec<(usize, LabHost)>> {
    let hosts_dir = layout.hosts_dir();
    let entries = match std::fs::read_dir(&hosts_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error::io_at("list", &hosts_dir)(e)),
    };
    let mut hosts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(error::io_at("list", &hosts_dir))?;
        let Some(k) = entry.file_name().to_str().and_then(layout::parse_host_name) else {
            continue;
        };
        let host = layout.host(k);
        let Some(config) = files::read_opt(&host.config())? else { continue };
        let listen = layout::parse_sshd_config(&config);
        let pid = sshd::read_pid(&host.pid_file())?;
        let running = pid.is_some_and(|pid| sshd::is_lab_sshd(pid, &host.config()));
        hosts.push((
            k,
            LabHost {
                name: host.name.clone(),
                address: listen.address.unwrap_or_else(|| host.address.clone()),
                // sshd's own default.
                port: listen.port.unwrap_or(22),
                pid,
                running,
                dir: host.dir.clone(),
            },
        ));
    }
    hosts.sort_by_key(|(k, _)| *k);
    Ok(hosts)
}

/// Makes `dir` absolute and lexically normal, and checks it can be written into config files.
fn lab_dir(dir: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(dir).map_err(error::io_at("resolve", dir))?;
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    let bad = |reason: String| Error::BadDir { dir: normal.clone(), reason };
    layout::check_dir_text(&normal).map_err(bad)?;
    if normal.parent().is_none() {
        return Err(bad("refusing to use the root directory: choose e.g. /tmp/pgxc-lab".into()));
    }
    Ok(normal)
}

/// Creates the lab directory (or adopts an empty one), marks it, and locks it for this `up`.
async fn claim(layout: &Layout) -> Result<File> {
    let dir = &layout.dir;
    let marker = layout.marker();
    if !marker.exists() {
        let empty = match std::fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(error::io_at("list", dir)(e)),
        };
        if !empty {
            return Err(Error::BadDir {
                dir: dir.clone(),
                reason: "exists, is not empty and is not a lab (no .pgxc-lab inside): \
                         choose a new or empty --dir"
                    .to_string(),
            });
        }
        // The login users (pgxc when root) read keys here.
        files::create_dir(dir, 0o755)?;
    }
    lock(&marker, true).await
}

/// Opens (with `create`, creates) the marker file and takes an exclusive lock on it, so two
/// `up`/`down` on one directory, in one process or several, run one after the other.
async fn lock(marker: &Path, create: bool) -> Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .open(marker)
        .map_err(error::io_at("open", marker))?;
    if create && file.metadata().map_err(error::io_at("inspect", marker))?.len() == 0 {
        file.write_all(b"This directory holds a pgxc-deploy lab: see `pgxc-deploy lab status`.\n")
            .map_err(error::io_at("write", marker))?;
        files::set_mode(marker, 0o644)?;
    }
    let path = marker.to_path_buf();
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .expect("locking does not panic")
        .map_err(error::io_at("lock", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, port: u16, running: bool) -> (usize, LabHost) {
        let k = layout::parse_host_name(name).unwrap();
        let dir = PathBuf::from(format!("/tmp/lab/hosts/{name}"));
        let lab_host = LabHost {
            name: name.into(),
            address: layout::address(k),
            port,
            pid: running.then_some(100),
            running,
            dir,
        };
        (k, lab_host)
    }

    fn opts(port: Option<u16>) -> UpOptions {
        UpOptions { dir: PathBuf::from("/tmp/lab"), hosts: 2, port, netns: false }
    }

    #[test]
    fn port_defaults_follow_the_user_and_the_existing_lab() {
        assert_eq!(choose_port(&opts(None), &[], true).unwrap(), 22);
        assert_eq!(choose_port(&opts(None), &[], false).unwrap(), 2222);
        assert_eq!(choose_port(&opts(Some(2022)), &[], true).unwrap(), 2022);
        let stopped = [host("h1", 2022, false)];
        assert_eq!(choose_port(&opts(None), &stopped, true).unwrap(), 2022);
        assert_eq!(choose_port(&opts(Some(22)), &stopped, true).unwrap(), 22);
        let running = [host("h1", 2022, true)];
        assert_eq!(choose_port(&opts(None), &running, true).unwrap(), 2022);
        let err = choose_port(&opts(Some(22)), &running, true).unwrap_err();
        assert!(matches!(err, Error::PortMismatch { running: 2022, requested: 22, .. }), "{err}");
    }

    #[test]
    fn lab_dir_is_normalised_and_checked() {
        assert_eq!(lab_dir(Path::new("/tmp/a/../b/./c")).unwrap(), Path::new("/tmp/b/c"));
        assert!(lab_dir(Path::new("relative")).unwrap().is_absolute());
        assert!(matches!(lab_dir(Path::new("/tmp/..")), Err(Error::BadDir { .. })));
        assert!(matches!(lab_dir(Path::new("/tmp/a b")), Err(Error::BadDir { .. })));
    }

    #[test]
    fn hosts_table_uses_the_lab_fields() {
        let lab = Lab {
            dir: PathBuf::from("/tmp/lab"),
            user: "alice".into(),
            cluster_user: "alice".into(),
            hosts: vec![host("h1", 2222, true).1],
        };
        let text = hosts_table(&lab);
        assert!(text.contains("user = \"alice\"\nport = 2222\n"), "{text}");
        assert!(text.contains("[hosts.h1]\naddress = \"127.0.10.1\"\n"), "{text}");
        assert!(text.contains("data_root = \"/tmp/lab/hosts/h1/data\"\n"), "{text}");
        let empty = Lab { hosts: vec![], ..lab };
        assert!(hosts_table(&empty).contains("port = 2222\n"));
    }
}
