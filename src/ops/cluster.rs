//! What the operations on a deployed cluster (apply, plan, status, start, stop, clean, ...)
//! share: the templates to render with, how to run as the cluster's user on each host, where
//! the install's binaries are, the cluster lock, and the one probe per host.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::executor::report;
use crate::executor::steps::HostEnv;

use crate::inventory::{Inventory, Source, replication, roles};
use crate::lock::{self, ClusterLock, LockHost};
use crate::observe::{self, Facts};
use crate::plan::desired::{bin_dir, passfile_path};
use crate::plan::render::Renderer;
use crate::plan::state::HostFacts;
use crate::shell::{Become, Cmd, Lines, Script};
use crate::source::{self, Layout};
use crate::transport::Fleet;

use super::{Error, Status};

/// Read and validate the inventory, and print its warnings on stderr. Every command loads it
/// through here (or [`load_now`]), once, so the warnings are printed once.
pub fn load(path: &Path) -> Result<Inventory, Error> {
    let inv = crate::inventory::load(path)?;
    report::inventory_warnings(&inv.warnings, &mut report::stderr())?;
    Ok(inv)
}

/// The inventory as the cluster runs now (the roles file's swaps applied, see
/// [`roles::Roles::effective`]), and the roles file.
pub fn load_now(path: &Path) -> Result<(Inventory, roles::Roles), Error> {
    let inv = load(path)?;
    let roles = roles::load(path).map_err(Error::from)?;
    let now = roles
        .effective(&inv)
        .map_err(|e| Error::Usage(format!("{}: {e}", roles::path_for(path).display())))?;
    Ok((now, roles))
}

/// [`load_now`] with the coordinators `remove` took out still in (apply re-adds them, see
/// [`roles::Roles::effective_readding`]).
pub fn load_readding(path: &Path) -> Result<(Inventory, roles::Roles), Error> {
    let inv = load(path)?;
    let roles = roles::load(path).map_err(Error::from)?;
    let now = roles
        .effective_readding(&inv)
        .map_err(|e| Error::Usage(format!("{}: {e}", roles::path_for(path).display())))?;
    Ok((now, roles))
}

/// The built-in templates, with the inventory's own where it names a templates directory.
pub fn renderer(inv: &Inventory) -> Result<Renderer, Error> {
    let Some(dir) = &inv.templates_dir else { return Ok(Renderer::new()) };
    let mut overrides = BTreeMap::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Usage(format!("templates_dir {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".hbs") {
            let text = std::fs::read_to_string(entry.path())
                .map_err(|e| Error::Usage(format!("{}: {e}", entry.path().display())))?;
            overrides.insert(name, text);
        }
    }
    Renderer::with_overrides(overrides)
        .map_err(|e| Error::Usage(format!("templates_dir {}: {e}", dir.display())))
}

/// How to run as the cluster's user on each host, and the install's directories there.
pub fn host_envs(inv: &Inventory, layout: &Layout) -> BTreeMap<String, HostEnv> {
    let local = crate::transport::local_user_name();
    inv.hosts
        .iter()
        .map(|h| {
            let login = h.ssh.user.clone().unwrap_or_else(|| local.clone());
            let env = HostEnv {
                as_user: Become::for_users(&login, &inv.cluster.os_user),
                install_prefix: h.install_prefix.clone(),
                data_root: h.data_root.clone(),
                lib_dir: format!("{}/{}", h.install_prefix, layout.lib),
                passfile: passfile_path(inv, h),
            };
            (h.name.clone(), env)
        })
        .collect()
}

/// Where the shipped install keeps its binaries and libraries under an install prefix. From the
/// local prebuilt install when this machine has it (read without packing it; apply gets it from
/// the package it ships), else from the record apply left on the hosts (the first of `hosts` to
/// answer), else a `configure --prefix` install's: operating a cluster never needs the install
/// on this machine.
pub async fn layout<'h>(
    inv: &Inventory,
    fleet: &Fleet,
    hosts: impl IntoIterator<Item = &'h str>,
) -> Result<Layout, Error> {
    Ok(match &inv.source {
        Some(Source::Prebuilt { path }) if source::is_install(path) => {
            source::layout_of(path).await?
        }
        Some(Source::Prebuilt { .. }) => {
            recorded_layout(inv, fleet, hosts).await.unwrap_or_default()
        }
        _ => Layout::default(),
    })
}

/// The layout recorded under the install prefix of the first of `hosts` that answers with one.
async fn recorded_layout<'h>(
    inv: &Inventory,
    fleet: &Fleet,
    hosts: impl IntoIterator<Item = &'h str>,
) -> Option<Layout> {
    let mut reads: FuturesUnordered<_> = hosts
        .into_iter()
        .filter_map(|name| inv.host(name))
        .map(|host| async move {
            let record = format!("{}/{}", host.install_prefix, source::LAYOUT_RECORD);
            let cat = Script::new().cmd(Cmd::new("cat").arg(record)).to_string();
            let out = fleet.session(&host.name).await.ok()?.run(&cat).await.ok()?;
            Layout::parse_record(&String::from_utf8_lossy(&out.stdout))
        })
        .collect();
    while let Some(read) = reads.next().await {
        if read.is_some() {
            return read;
        }
    }
    None
}

/// Which hosts a command locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    /// Every host of the inventory: any that cannot be locked refuses the command.
    Every,
    /// The hosts that answer (failover, whose primary's machine may be gone); a busy lock still
    /// refuses.
    Reachable,
}

/// Take the cluster lock for `what` (the command's name, recorded as its holder), or say who
/// holds it (or why a host could not be locked), close the fleet's sessions (a refused command
/// goes no further) and give the status to exit with. The lock lasts until it is released or
/// the fleet's sessions close.
pub async fn lock(
    inv: &Inventory,
    fleet: &Fleet,
    envs: &BTreeMap<String, HostEnv>,
    what: &str,
    scope: LockScope,
) -> Result<ClusterLock, Result<Status, Error>> {
    lock_then(inv, fleet, envs, what, scope, &|_| None).await
}

/// What a probe reads: the hosts and nodes of `inv` (an inventory narrowed to them), each
/// node's managed files `files(node)`, and (`sql`) what each running server's SQL tells (see
/// [`probe`]).
pub struct Probe<'a> {
    pub inv: &'a Inventory,
    pub files: &'a (dyn Fn(&str) -> Vec<String> + Sync),
    pub sql: bool,
}

/// [`lock()`] on every host of `inv`, and `probe` of its hosts in the same login under the
/// lock: one shell start-up per host instead of two (a root login whose start-up files take
/// 0.3 s pays it once). `bin_rel` as for [`probe`]. The facts are those [`probe`] gives (a host
/// that `scope` left unlocked, unreachable, has the reason instead).
pub async fn lock_and_probe(
    inv: &Inventory,
    fleet: &Fleet,
    envs: &BTreeMap<String, HostEnv>,
    what: &str,
    scope: LockScope,
    bin_rel: &str,
    probe: &Probe<'_>,
) -> Result<(ClusterLock, Facts), Result<Status, Error>> {
    let bin = |host: &str| bin_dir(inv.host(host).expect("inventory host"), bin_rel);
    let then = |host: &str| {
        let probed = probe.inv.host(host).is_some();
        probed.then(|| observe::host_script(probe.inv, host, &bin, probe.files, probe.sql))
    };
    let mut lock = lock_then(inv, fleet, envs, what, scope, &then).await?;
    let facts = std::mem::take(&mut lock.outputs)
        .into_iter()
        .map(|(host, out)| (host, out.and_then(|block| observe::parse_block(&block))))
        .collect();
    Ok((lock, facts))
}

async fn lock_then(
    inv: &Inventory,
    fleet: &Fleet,
    envs: &BTreeMap<String, HostEnv>,
    what: &str,
    scope: LockScope,
    then: &(dyn Fn(&str) -> Option<Lines> + Sync),
) -> Result<ClusterLock, Result<Status, Error>> {
    let hosts: Vec<LockHost> = inv
        .hosts
        .iter()
        .map(|h| LockHost {
            host: h.name.clone(),
            data_root: h.data_root.clone(),
            as_user: envs[&h.name].as_user.clone(),
            then: then(&h.name),
        })
        .collect();
    let owner = lock::owner(what);
    let skip = scope == LockScope::Reachable;
    let locked = ClusterLock::acquire(fleet, &hosts, &owner, skip).await;
    if locked.is_err() {
        fleet.close().await;
    }
    locked.map_err(|refused| {
        let printed = report::lock_refused(&inv.cluster.name, &refused, &mut report::stderr());
        printed.map(|()| Status::Failed).map_err(Error::from)
    })
}

/// Facts per host, as the commands that operate a cluster judge them: the host's facts, or why
/// it could not be probed (`step: message`).
pub type HostResults = BTreeMap<String, Result<HostFacts, String>>;

/// Probe every host once, in parallel: per host its facts, or why it could not be probed.
/// `files(node)`: the managed files whose content to read; `sql`: see [`observe::observe`].
pub async fn probe(
    inv: &Inventory,
    fleet: &Fleet,
    forks: usize,
    envs: &BTreeMap<String, HostEnv>,
    bin_rel: &str,
    files: &(dyn Fn(&str) -> Vec<String> + Sync),
    sql: bool,
) -> Facts {
    let bin = |host: &str| bin_dir(inv.host(host).expect("inventory host"), bin_rel);
    let as_user = |host: &str| envs[host].as_user.clone();
    observe::observe(inv, fleet, forks, &bin, files, sql, &as_user).await
}

/// Keep what `facts` show of each pair's replication in the replication record beside the
/// inventory (`inv`: the cluster as it runs now), for a later failover. A record that cannot
/// be written is said on stderr and does not fail the command.
pub fn remember_replication(path: &Path, inv: &Inventory, facts: &HostResults) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let sightings = crate::plan::failover::sightings(inv, facts, now);
    if sightings.is_empty() {
        return;
    }
    let saved = replication::load(path).and_then(|mut record| {
        for s in sightings {
            record.saw(s);
        }
        replication::save(path, &record)
    });
    if let Err(e) = saved {
        let _ = report::replication_unrecorded(&e, &mut report::stderr());
    }
}
