//! Apply and plan (`pgxc-deploy apply|plan INVENTORY`): observe every host (one
//! probe each), compute the plan, and either print it (plan) or run it phase by phase (apply),
//! then verify the cluster from the servers themselves.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::executor::steps::{Shipment, StepContext, fetch_install};
use crate::executor::{self, report};
use crate::inventory::roles::Roles;
use crate::inventory::{self, Build, Inventory, Role, Source};
use crate::lock::ClusterLock;
use crate::observe;
use crate::plan::desired::desired;
use crate::plan::desired::{DesiredHost, DesiredNode};
use crate::plan::diff::{self, plan};
use crate::plan::gtm;
use crate::plan::limit::{self, Scope, Selection};
use crate::plan::spread::{self, Retiring};
use crate::plan::state::{HostFacts, disk_cause};
use crate::plan::step::{Action, Phase, Plan, Step};
use crate::secret::Secret;
use crate::source::{self, BuildInputs, Layout};

use super::cluster;
use super::session::Session;
use super::{Error, Status};

/// What apply prepares on this machine before it connects: the prebuilt install's
/// fingerprint (computed in the background while the hosts are locked and probed), the build's
/// local inputs, the cluster's password.
pub struct Local {
    packing: Option<Packing>,
    build: Option<(Build, BuildInputs)>,
    password: Option<Secret>,
}

/// The prebuilt install's fingerprint being computed: its layout, fingerprint and (when it had
/// to be packed for it) archive.
type Packing = tokio::task::JoinHandle<Result<(Layout, String, Option<Vec<u8>>), source::Error>>;

/// Prepare `inv`'s local inputs, and the install's layout (read from the local install, which
/// apply ships).
pub async fn prepare(inv: &Inventory) -> Result<(Local, Layout), Error> {
    // A prebuilt install is fingerprinted (packed, unless this machine has its fingerprint
    // cached) while the hosts are locked and probed.
    let (packing, layout, build) = match &inv.source {
        Some(Source::Prebuilt { path }) => {
            let layout = source::layout_of(path).await?;
            let path = path.clone();
            let packing = tokio::spawn(async move { source::prebuilt_fingerprint(&path).await });
            (Some(packing), layout, None)
        }
        Some(Source::Build(b)) => {
            (None, Layout::default(), Some((b.clone(), source::build_inputs(b).await?)))
        }
        None => (None, Layout::default(), None),
    };
    let password = match &inv.auth.password {
        Some(source) => Some(Secret::read(source).map_err(Error::Usage)?),
        None => None,
    };
    Ok((Local { packing, build, password }, layout))
}

/// Apply, or (`dry_run`) plan; `json`: the plan as JSON lines; `on`: only for the nodes
/// `--on`/`-x` select ([`limit`]).
#[derive(Debug, Clone, Copy)]
pub struct Mode<'a> {
    pub dry_run: bool,
    pub json: bool,
    pub on: Option<&'a Selection>,
}

/// What `--on` less `-x` select in `inv` (the inventory with its roles applied, removed
/// datanodes included); `None` without either. Nothing selected is a usage error, as for exec.
pub fn selection(
    inv: &Inventory,
    on: Option<&str>,
    exclude: Option<&str>,
) -> Result<Option<Selection>, Error> {
    Selection::resolve(inv, on, exclude)
        .map_err(|e| Error::Usage(format!("--on: {e}\n  hint: {}", e.hint())))
}

/// Make the cluster of `s` (its inventory with the roles file's swaps applied, `roles`) match
/// the inventory, or (`dry_run`) print the plan; see the module doc. `started`: when the
/// command started, for the last line.
pub async fn apply(
    s: &Session,
    mut roles: Roles,
    local: Local,
    mode: Mode<'_>,
    started: Instant,
) -> Result<Status, Error> {
    let dry_run = mode.dry_run;
    let (renderer, layout) = (&s.renderer, &s.layout);
    // Datanodes marked `state = "removed"` are probed (with the rest of `s.inv`) and taken out.
    let (live, _) = s.inv.without_removed();
    let inv = &live;
    let Local { packing, build, password } = local;
    let (lock, first) = if dry_run {
        (None, None)
    } else {
        // Which files to read does not depend on the install's fingerprint.
        let (_, nodes) = desired(inv, renderer, &layout.bin, None, password.as_ref())
            .map_err(|e| Error::Usage(format!("templates: {e}")))?;
        let files = |node: &str| -> Vec<String> {
            let n = nodes.iter().find(|n| n.name == node);
            n.map(|n| n.files.iter().map(|f| f.name.clone()).collect()).unwrap_or_default()
        };
        match s.lock_and_probe("apply", &files).await {
            Ok((lock, facts)) => (lock, Some(facts)),
            Err(status) => return status,
        }
    };
    // Read again under the lock: a failover or switchover may have changed the roles since the
    // inventory was loaded with them, and this apply would deploy (and record) the old ones.
    if !dry_run && let Err(e) = roles_unchanged(&s.path, &roles) {
        return give_up(lock, Err(e)).await;
    }
    let (package, archive) = match packing {
        Some(packing) => match packing.await.map_err(std::io::Error::other) {
            Ok(Ok((_, fingerprint, archive))) => (Some(fingerprint), archive),
            Ok(Err(e)) => return give_up(lock, Err(e.into())).await,
            Err(e) => return give_up(lock, Err(e.into())).await,
        },
        None => (None, None),
    };
    let fingerprint = match (&package, &build) {
        (Some(fingerprint), _) => Some(fingerprint.as_str()),
        (None, Some((_, inputs))) => Some(inputs.fingerprint.as_str()),
        (None, None) => None,
    };
    let (hosts, mut nodes) =
        match desired(inv, renderer, &layout.bin, fingerprint, password.as_ref()) {
            Ok(desired) => desired,
            Err(e) => {
                let e = Error::Usage(format!("templates: {e}"));
                return give_up(lock, Err(e)).await;
            }
        };
    let retiring = match crate::plan::desired::retiring(&s.inv, renderer, &layout.bin) {
        Ok(retiring) => retiring,
        Err(e) => return give_up(lock, Err(Error::Usage(format!("templates: {e}")))).await,
    };
    let rebuild: Vec<String> = roles.to_rebuild().into_iter().map(String::from).collect();
    for n in nodes.iter_mut().filter(|n| rebuild.iter().any(|r| n.name == r.as_str())) {
        n.rejoin = true;
    }
    let rebuilds = !rebuild.is_empty();

    let inputs = Inputs {
        build: build.as_ref().map(|(b, i)| (b, i)),
        prebuilt: match (&inv.source, &package) {
            (Some(Source::Prebuilt { path }), Some(fingerprint)) => {
                Some((path.as_path(), fingerprint.as_str()))
            }
            _ => None,
        },
        archive,
        password: password.as_ref().map(|s| (s, inv.cluster.os_user.as_str())),
    };
    let job = Job { s, mode, started, hosts: &hosts, nodes: &nodes, retiring: &retiring };
    let mut scope = None;
    let status = converge(&job, inputs, first, &mut scope).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    // Under --on, recorded only when every old primary to rebuild was in the selection.
    let covered = scope.is_none_or(|scope| rebuild.iter().all(|n| scope.contains(n)));
    if rebuilds && covered && !dry_run && matches!(status, Ok(Status::Ok)) {
        // Verified: every standby streams, the rebuilt old primaries included.
        roles.rebuilt();
        let path = inventory::roles::save(&s.path, &roles).map_err(|source| {
            let done = format!(
                "the old primaries {} were rebuilt as standbys",
                rebuilt(&nodes).join(", ")
            );
            Error::Unrecorded { done, source }
        })?;
        report::rebuilt(&path, &rebuilt(&nodes), &mut report::people())?;
    }
    status
}

/// `Ok` when the roles file beside the inventory `path` still says `roles`.
fn roles_unchanged(path: &Path, roles: &Roles) -> Result<(), Error> {
    if inventory::roles::load(path)? == *roles {
        return Ok(());
    }
    Err(Error::Changed(format!(
        "{} changed while apply started (a failover or switchover ran); nothing was changed: run \
         apply again",
        inventory::roles::path_for(path).display()
    )))
}

/// Release the lock (when taken), then end with `status`.
async fn give_up(
    lock: Option<ClusterLock>,
    status: Result<Status, Error>,
) -> Result<Status, Error> {
    if let Some(lock) = lock {
        lock.release().await;
    }
    status
}

/// The old primaries this apply rebuilds as standbys.
fn rebuilt(nodes: &[DesiredNode]) -> Vec<&str> {
    nodes.iter().filter(|n| n.rejoin).map(|n| n.name.as_str()).collect()
}

/// What apply ships or builds: the local parts.
struct Inputs<'a> {
    build: Option<(&'a Build, &'a BuildInputs)>,
    /// The install to ship: the prebuilt one (packed only when something ships, if its
    /// fingerprint was cached), or (fetched once built) the build host's.
    archive: Option<Vec<u8>>,
    /// The prebuilt install and the fingerprint the plan was made with.
    prebuilt: Option<(&'a Path, &'a str)>,
    password: Option<(&'a Secret, &'a str)>,
}

/// Everything one apply (or plan) works with, prepared before any host is contacted.
struct Job<'a> {
    s: &'a Session,
    mode: Mode<'a>,
    started: Instant,
    hosts: &'a [DesiredHost],
    nodes: &'a [DesiredNode],
    /// The nodes of datanodes marked `state = "removed"`.
    retiring: &'a [Retiring],
}

/// Probe, plan, and (unless a dry run) run the plan and verify.
/// `first`: the hosts' facts when they were read already (under the lock). `scope`: set to
/// what a limited apply changed and verified, when `--on` left steps out.
async fn converge(
    job: &Job<'_>,
    inputs: Inputs<'_>,
    first: Option<observe::Facts>,
    scope: &mut Option<Scope>,
) -> Result<Status, Error> {
    let Job { s, mode, started, hosts, nodes, retiring } = *job;
    let dry_run = mode.dry_run;
    let (inv, fleet, envs, layout) = (&s.inv, &s.fleet, &s.envs, &s.layout);
    let mut err = report::stderr();
    let first = match first {
        Some(facts) => split(facts),
        None => probe(s, nodes).await,
    };
    // plan shows what it can: the steps of the hosts that answered, naming the others.
    let (facts, unprobed) = match first {
        Ok(facts) => (facts, Vec::new()),
        Err((failed, answered)) if dry_run => {
            report::unprobed_plan(&failed, &mut err)?;
            (answered, failed.into_iter().map(|(host, _)| host).collect())
        }
        Err((failed, _)) => {
            report::unprobed(&failed, &mut err)?;
            return Ok(Status::Failed);
        }
    };
    if !dry_run {
        cluster::remember_replication(&s.path, inv, &all_ok(&facts));
    }
    let mut whole = plan(hosts, nodes, retiring, &facts);
    whole.refused.extend(gtm::unreachable_standbys(inv, nodes, &facts));
    let (mut plan, limited) = match mode.on {
        Some(selection) => {
            let limited = limit::limit(whole, selection, inv, &facts);
            (limited.plan.clone(), Some(limited))
        }
        None => (whole, None),
    };
    // What --on left out, and the sentences for what it kept outside the selection.
    let (left_out, unlimited, elsewhere) = match &limited {
        Some(l) => (l.left_out, l.unlimited.as_slice(), l.elsewhere.as_slice()),
        None => (0, &[][..], &[][..]),
    };
    *scope = limited.as_ref().filter(|l| l.left_out > 0).map(|l| l.scope.clone());
    let scope = scope.as_ref();
    table_sizes(s, &mut plan).await;
    let mut out = report::people();
    if !plan.refused.is_empty() {
        report::plan_refused(&plan.refused, &mut err)?;
        if mode.json {
            report::plan_json(&plan, &inv.cluster.name, &[], left_out, unlimited, &mut out)?;
        }
        return Ok(Status::Failed);
    }

    if dry_run {
        for phase in &mut plan.phases {
            phase.steps.retain(|step| !unprobed.contains(&step.host));
        }
        plan.phases.retain(|phase| !phase.steps.is_empty());
        if mode.json {
            let name = &inv.cluster.name;
            report::plan_json(&plan, name, &unprobed, left_out, unlimited, &mut out)?;
            let pending = if plan.is_empty() { Status::Ok } else { Status::Pending };
            return Ok(if unprobed.is_empty() { pending } else { Status::Failed });
        }
        report::plan(&plan, &mut out)?;
        if limited.is_some() {
            report::plan_limited(unlimited, left_out, elsewhere, &mut out)?;
        }
        if !unprobed.is_empty() {
            report::plan_partial(&unprobed, &mut out)?;
            return Ok(Status::Failed);
        }
        report::plan_summary(&plan, &inv.cluster.name, left_out, &mut out)?;
        return Ok(if plan.is_empty() { Status::Ok } else { Status::Pending });
    }
    if plan.is_empty() {
        let elapsed = started.elapsed();
        match scope {
            Some(_) => {
                report::nothing_to_apply_on(&s.path, left_out, elsewhere, elapsed, &mut out)?
            }
            None => report::nothing_to_apply(&inv.cluster.name, &s.path, elapsed, &mut out)?,
        }
        return Ok(Status::Ok);
    }

    let Inputs { build, mut archive, prebuilt, password } = inputs;
    if limited.is_some() {
        report::plan_limited(unlimited, left_out, elsewhere, &mut err)?;
    }
    report::apply_start(&plan, &mut err)?;
    for (i, phase) in plan.phases.iter().enumerate() {
        if interrupted_before(&plan.phases[i..], &mut err)? {
            return Ok(Status::Interrupted);
        }
        report::phase_header(&phase.name, &mut err)?;
        let ships = phase.steps.iter().any(|s| matches!(s.action, Action::ShipInstall { .. }));
        if let (true, None, Some((path, fingerprint))) = (ships, &archive, prebuilt) {
            let package = source::pack_prebuilt(path).await?;
            if package.fingerprint != fingerprint {
                report::install_changed(path, &mut err)?;
                return Ok(Status::Failed);
            }
            archive = Some(package.archive);
        }
        if let (true, None, Some((b, _))) = (ships, &archive, &build) {
            // Built once: the build host's install is what the other hosts get.
            let cx = StepContext {
                fleet,
                hosts: envs.clone(),
                archive: None,
                build: None,
                password: None,
            };
            match fetch_install(&b.build_host, &cx).await {
                Ok(bytes) => archive = Some(bytes),
                Err(e) => {
                    report::fetch_failed(&b.build_host, &e, &mut err)?;
                    return Ok(Status::Failed);
                }
            }
        }
        let cx = StepContext {
            fleet,
            hosts: envs.clone(),
            // Checked on the host before it is unpacked: a cut connection must not leave a
            // partial install that looks complete.
            archive: archive.as_deref().filter(|_| ships).map(|archive| Shipment {
                archive,
                layout,
                sha256: source::sha256_hex(archive),
            }),
            build,
            password,
        };
        let ok = s.failed_with(&cx, &phase.steps, &mut err).await?.is_empty();
        if !ok && crate::interrupt::interrupted() {
            report::phase_interrupted(&phase.name, &plan.phases[i + 1..], &mut err)?;
            return Ok(Status::Interrupted);
        }
        if !ok {
            report::phase_failed(&phase.name, &mut err)?;
            return Ok(Status::Failed);
        }
    }

    if interrupted_before(&[], &mut err)? {
        return Ok(Status::Interrupted);
    }
    // Verify from the servers themselves: running, registered, streaming. A standby that has
    // just started may still replay what it was given (a rewound old primary: everything since
    // the fork) before it streams: that alone is waited for, up to STREAM_WAIT. Under --on,
    // only what the limited plan changed is verified.
    let here = |node: &str| scope.is_none_or(|scope| scope.contains(node));
    let retiring: Vec<Retiring> = retiring.iter().filter(|r| here(&r.node.name)).cloned().collect();
    let waiting = Instant::now();
    let (problems, facts) = loop {
        let facts = match probe(s, nodes).await {
            Ok(facts) => facts,
            Err((failed, _)) => {
                report::verify_unprobed(&failed, &mut err)?;
                return Ok(Status::Failed);
            }
        };
        let mut problems = verify(inv, nodes, &facts, scope);
        let left = spread::unretired(&spread::Cluster::after(nodes, &retiring, &facts));
        problems.extend(left.into_iter().map(Problem::fatal));
        let settling = !problems.is_empty() && problems.iter().all(|p| p.not_streaming_yet);
        if !settling || waiting.elapsed() >= STREAM_WAIT || crate::interrupt::interrupted() {
            break (problems, facts);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    cluster::remember_replication(&s.path, inv, &all_ok(&facts));
    // The standbys it has just seen streaming, whatever else is wrong: a later failover may
    // promote them.
    let mut marks = diff::streamed_marks(nodes, &facts);
    marks.retain(|m| m.node.as_deref().is_some_and(here));
    let mut marked = true;
    if !marks.is_empty() {
        report::phase_header(diff::STREAMED_PHASE, &mut err)?;
        marked = s.run(&marks, &mut err).await?;
    }
    for p in &problems {
        report::verify_problem(&p.text, &mut err)?;
    }
    if !problems.is_empty() || !marked {
        return Ok(Status::Failed);
    }
    let (steps, name, elapsed) = (plan.step_count(), &inv.cluster.name, started.elapsed());
    match scope {
        Some(_) => report::applied_on(steps, name, left_out, elsewhere, elapsed, &mut out)?,
        None => report::applied(steps, name, elapsed, &mut out)?,
    }
    Ok(Status::Ok)
}

/// Fill in the size of every table `plan` redistributes, read in one query through the
/// coordinator its steps go through. Left out when that fails: the size only informs.
async fn table_sizes(s: &Session, plan: &mut Plan) {
    let moves = || {
        plan.phases.iter().flat_map(|p| &p.steps).filter_map(|step| match &step.action {
            Action::Redistribute(r) => Some((step, r)),
            _ => None,
        })
    };
    let Some((first, r)) = moves().next() else { return };
    let tables: Vec<&str> = moves().map(|(_, r)| r.table.as_str()).collect();
    let mut argv = r.psql.clone();
    argv.extend(["-A", "-t", "-c"].map(String::from));
    argv.push(crate::plan::sql::table_sizes(&tables));
    let what = "read the sizes of the tables to redistribute".to_string();
    let check = Step { action: Action::Check { argv, what }, ..first.clone() };
    let outcome = s.run_one(&check).await;
    let Some(out) = outcome.result.ok().filter(|o| o.status.success()) else { return };
    let sizes: BTreeMap<String, u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (bytes, table) = line.split_once(' ')?;
            Some((table.to_string(), bytes.parse().ok()?))
        })
        .collect();
    for step in plan.phases.iter_mut().flat_map(|p| &mut p.steps) {
        if let Action::Redistribute(r) = &mut step.action {
            r.bytes = sizes.get(&r.table).copied();
        }
    }
}

/// After Ctrl-C: say that `left` (the phases not started yet) will not run, and `true`.
fn interrupted_before(left: &[Phase], err: &mut dyn Write) -> Result<bool, Error> {
    if !crate::interrupt::interrupted() {
        return Ok(false);
    }
    report::interrupted_before(left, err)?;
    Ok(true)
}

type ProbeFailures = (Vec<(String, executor::StepError)>, BTreeMap<String, HostFacts>);

/// Facts of hosts that all answered, as the other commands hold them.
fn all_ok(facts: &BTreeMap<String, HostFacts>) -> cluster::HostResults {
    facts.iter().map(|(host, f)| (host.clone(), Ok(f.clone()))).collect()
}

/// Probe every host of `s`, reading the managed files of `nodes`.
async fn probe(
    s: &Session,
    nodes: &[DesiredNode],
) -> Result<BTreeMap<String, HostFacts>, ProbeFailures> {
    let files = |node: &str| -> Vec<String> {
        nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.files.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default()
    };
    split(s.probe_all(&files).await)
}

/// The facts of every host, or the hosts that could not be probed (and the facts of those
/// that could).
fn split(facts: observe::Facts) -> Result<BTreeMap<String, HostFacts>, ProbeFailures> {
    let mut ok = BTreeMap::new();
    let mut failed = Vec::new();
    for (host, f) in facts {
        match f {
            Ok(f) => {
                ok.insert(host, f);
            }
            Err(e) => failed.push((host, e)),
        }
    }
    if failed.is_empty() { Ok(ok) } else { Err((failed, ok)) }
}

/// How long apply's verification waits for standbys that run but do not stream yet.
const STREAM_WAIT: Duration = Duration::from_secs(60);

/// One thing wrong with the cluster after apply.
struct Problem {
    text: String,
    /// A running standby in recovery that does not stream yet: it may still be replaying.
    not_streaming_yet: bool,
}

impl Problem {
    fn fatal(text: String) -> Problem {
        Problem { text, not_streaming_yet: false }
    }
}

/// What is wrong with the cluster after apply, read from the servers; under `--on` (`scope`),
/// with the nodes the limited apply changed, each coordinator's registration of them.
fn verify(
    inv: &Inventory,
    nodes: &[DesiredNode],
    facts: &BTreeMap<String, HostFacts>,
    scope: Option<&Scope>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for n in nodes.iter().filter(|n| scope.is_none_or(|scope| scope.contains(&n.name))) {
        let Some(f) = facts.get(&n.host).and_then(|h| h.nodes.get(&n.name)) else {
            problems.push(Problem::fatal(format!("{} on {}: no facts", n.name, n.host)));
            continue;
        };
        let cause = disk_cause(f, &n.data_dir).map(|c| format!(": {c}")).unwrap_or_default();
        if !f.running {
            problems.push(Problem::fatal(format!(
                "{} on {}: not accepting connections{cause} (see {}/server.log)",
                n.name, n.host, n.data_dir
            )));
            continue;
        }
        if let Some(want) = &n.pgxc_node {
            let want = match scope {
                Some(scope) => scope.rows(want, Some(&f.pgxc_node)),
                None => want.clone(),
            };
            let differences = crate::plan::health::pgxc_node_differences(&want, &f.pgxc_node);
            if !differences.is_empty() {
                problems.push(Problem::fatal(format!(
                    "{} on {}: pgxc_node differs from the inventory: {}",
                    n.name,
                    n.host,
                    differences.join("; ")
                )));
            }
        }
        if n.role == Role::Standby {
            let node = inv.node(&n.name).expect("inventory node");
            let primary = node
                .primary
                .as_ref()
                .and_then(|p| inv.node(p.as_str()))
                .expect("standby has a primary");
            let pf = facts.get(&primary.host).and_then(|h| h.nodes.get(primary.name.as_str()));
            let streaming = pf.is_some_and(|pf| pf.streams_to(&n.name));
            if f.in_recovery.is_none() {
                problems.push(Problem::fatal(format!(
                    "{} on {}: accepts connections but did not answer the probe's queries{cause} \
                     (see {}/server.log)",
                    n.name, n.host, n.data_dir
                )));
            } else if f.in_recovery != Some(true) {
                problems.push(Problem::fatal(format!("{} on {}: not in recovery", n.name, n.host)));
            } else if !streaming {
                let text = format!(
                    "{} on {}: not streaming from {} (pg_stat_replication on the primary){cause}",
                    n.name, n.host, primary.name
                );
                problems.push(Problem { text, not_streaming_yet: true });
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_refuses_roles_that_changed_after_it_read_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.toml");
        let read = Roles::default();
        assert!(roles_unchanged(&path, &read).is_ok());
        let mut failed_over = Roles::default();
        failed_over.datanodes.insert(
            "dn1".into(),
            inventory::roles::Promotion {
                primary: "dn1_standby".into(),
                old_primary: "dn1".into(),
                old_primary_fenced: true,
                old_primary_follows: false,
                failed_over_at_unix: 1,
            },
        );
        inventory::roles::save(&path, &failed_over).unwrap();
        let err = roles_unchanged(&path, &read).unwrap_err();
        assert_eq!(err.exit_status(), Status::Failed);
        assert!(err.to_string().contains("changed while apply started"), "{err}");
        assert!(roles_unchanged(&path, &failed_over).is_ok());
    }
}

#[cfg(test)]
mod orchestration {
    use super::*;
    use crate::inventory::Inventory;
    use crate::ops::scripted::{self, Ran, World, healthy, node_mut, streaming};
    use crate::plan::fixtures;
    use crate::plan::render::Renderer;

    /// A PostgreSQL cluster as apply leaves it: every node running with the files apply writes,
    /// pg1_standby streaming from pg1.
    fn deployed(inv: &Inventory) -> World {
        let mut world = healthy(inv);
        streaming(&mut world, inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        node_mut(&mut world, inv.node("pg2").unwrap()).unwrap().in_recovery = Some(false);
        let layout = Layout { bin: "bin".into(), lib: "lib".into() };
        let (_, nodes) = desired(inv, &Renderer::new(), &layout.bin, None, None).unwrap();
        for n in &nodes {
            let f = node_mut(&mut world, inv.node(&n.name).unwrap()).unwrap();
            for file in &n.files {
                f.files.insert(file.name.clone(), file.content.clone().into_bytes());
            }
        }
        world
    }

    fn local() -> Local {
        Local { packing: None, build: None, password: None }
    }

    async fn apply_on(
        inv: &Inventory,
        world: World,
        script: impl FnOnce(&scripted::Scripted),
    ) -> Ran {
        let op = async |s: &Session, _: &mut Vec<u8>| {
            apply(
                s,
                Roles::default(),
                local(),
                Mode { dry_run: false, json: false, on: None },
                Instant::now(),
            )
            .await
        };
        scripted::run(inv, world, script, op).await
    }

    #[tokio::test]
    async fn a_cluster_that_matches_its_inventory_gets_nothing_but_the_lock() {
        let inv = fixtures::postgresql();
        let ran = apply_on(&inv, deployed(&inv), |_| {}).await;
        assert_eq!(ran.status, Status::Ok);
        assert_eq!(ran.hosts.log(), ["lock apply"]);
    }

    #[tokio::test]
    async fn a_stopped_node_is_started_then_the_cluster_is_verified_from_a_new_probe() {
        let inv = fixtures::postgresql();
        let pg2 = inv.node("pg2").unwrap().clone();
        let mut world = deployed(&inv);
        let f = node_mut(&mut world, &pg2).unwrap();
        (f.running, f.alive, f.in_recovery) = (false, false, None);
        let ran = apply_on(&inv, world, move |h| {
            h.on("pg2: start", move |w| {
                let f = node_mut(w, &pg2).unwrap();
                (f.running, f.alive, f.in_recovery) = (true, true, Some(false));
            });
        })
        .await;
        assert_eq!(ran.status, Status::Ok);
        assert_eq!(ran.hosts.log(), ["lock apply", "pg2: start"]);
    }

    /// `--on pg2` with pg1 and pg2 stopped: pg2 alone is started, and verified; pg1, left for
    /// a later apply, fails nothing.
    #[tokio::test]
    async fn a_limited_apply_changes_and_verifies_the_selection_only() {
        let inv = fixtures::postgresql();
        let pg2 = inv.node("pg2").unwrap().clone();
        let mut world = deployed(&inv);
        for node in ["pg1", "pg2"] {
            let f = node_mut(&mut world, inv.node(node).unwrap()).unwrap();
            (f.running, f.alive, f.in_recovery) = (false, false, None);
        }
        let on = Selection::resolve(&inv, Some("pg2"), None).unwrap();
        let op = async |s: &Session, _: &mut Vec<u8>| {
            let mode = Mode { dry_run: false, json: false, on: on.as_ref() };
            apply(s, Roles::default(), local(), mode, Instant::now()).await
        };
        let script = move |h: &scripted::Scripted| {
            h.on("pg2: start", move |w| {
                let f = node_mut(w, &pg2).unwrap();
                (f.running, f.alive, f.in_recovery) = (true, true, Some(false));
            })
        };
        let ran = scripted::run(&inv, world, script, op).await;
        assert_eq!(ran.status, Status::Ok);
        assert_eq!(ran.hosts.log(), ["lock apply", "pg2: start"]);
    }

    #[tokio::test]
    async fn a_start_that_fails_stops_apply_at_its_phase() {
        let inv = fixtures::postgresql();
        let pg2 = inv.node("pg2").unwrap().clone();
        let mut world = deployed(&inv);
        let f = node_mut(&mut world, &pg2).unwrap();
        (f.running, f.alive, f.in_recovery) = (false, false, None);
        let ran = apply_on(&inv, world, |h| h.fail_while("pg2: start", |_| true)).await;
        assert_eq!(ran.status, Status::Failed);
        assert_eq!(ran.hosts.log(), ["lock apply", "pg2: start"]);
    }
}
