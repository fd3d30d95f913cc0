//! Desired state vs observed facts -> [`Plan`]. PURE: every decision apply makes is here, and
//! testable without a host.
//!
//! Order: install, initialise primaries (GTM, coordinators, datanodes), update files, start
//! and reload/restart by tier (GTM, datanodes, coordinators), register nodes on coordinators,
//! then standbys (cloned from their running primary, then started).

use std::collections::{BTreeMap, BTreeSet};

use super::desired::{DesiredHost, DesiredNode};
use super::spread::{self, Retiring};
use super::sql;
use super::state::{HostFacts, NodeFacts, ReplicaState, STREAMED_MARKER};
use super::step::{Action, FileContent, JOIN_MARKER, Plan, Rejoin, Step};
use crate::inventory::Role;

/// The file that holds a primary's `synchronous_standby_names`.
pub const SYNC_FILE: &str = "synchronous_standby.conf";

/// Compute the plan. A host whose facts are missing (unreachable) gets no steps; the caller
/// reports it and stops before applying anything.
pub fn plan(
    hosts: &[DesiredHost],
    nodes: &[DesiredNode],
    retiring: &[Retiring],
    facts: &BTreeMap<String, HostFacts>,
) -> Plan {
    let empty = NodeFacts::default();
    let fact =
        |n: &DesiredNode| facts.get(&n.host).and_then(|h| h.nodes.get(&n.name)).unwrap_or(&empty);
    let mut plan = Plan::default();

    // Synchronous replication waits until its standby streams; switched on in the last phases:
    // the file first, then the reload (steps of one phase run at once, so a reload in the same
    // phase could read the file before it is written).
    let mut enable_sync = Vec::new();
    let mut reload_sync = Vec::new();
    let held: Vec<DesiredNode> = nodes
        .iter()
        .map(|n| {
            let Some(standby) = &n.sync_standby else { return n.clone() };
            let streaming = fact(n).streams_to(standby);
            // Synchronous now (the host has the file apply writes): kept as it is, so commits
            // go on waiting for the standby as the inventory asks, even while it is down.
            // Only `degrade` (or `status --heal`) lowers durability, never apply.
            let on_now =
                n.files.iter().filter(|f| f.name == SYNC_FILE).all(|f| {
                    fact(n).files.get(SYNC_FILE).is_some_and(|c| c == f.content.as_bytes())
                });
            if streaming || (on_now && fact(n).initialized) {
                return n.clone();
            }
            let mut held = n.clone();
            for file in held.files.iter_mut().filter(|f| f.name == SYNC_FILE) {
                let on = file.clone();
                file.content = hold_sync(&file.content, standby);
                let old = Some(file.content.clone());
                let data_dir = n.data_dir.clone();
                enable_sync.push(step(n, Action::WriteFile { data_dir, file: on, old }));
            }
            if let Some(argv) = &n.reload {
                let settings = vec!["synchronous_standby_names".into()];
                reload_sync.push(step(n, Action::Reload { argv: argv.clone(), settings }));
            }
            held
        })
        .collect();
    let nodes = held.as_slice();

    let (mut build, mut install) = (Vec::new(), Vec::new());
    for h in hosts {
        let Some(want) = &h.install else { continue };
        if facts.get(&h.name).and_then(|f| f.install.as_ref()) == Some(want) {
            continue;
        }
        let fingerprint = want.clone();
        let (list, action) = if h.build {
            (&mut build, Action::Build { fingerprint })
        } else {
            (&mut install, Action::ShipInstall { fingerprint })
        };
        list.push(Step { host: h.name.clone(), node: None, action });
    }
    for h in hosts {
        let Some(want) = &h.passfile else { continue };
        if facts.get(&h.name).and_then(|f| f.passfile.as_ref()) != Some(&want.sha256) {
            let action = Action::WritePassfile { path: want.path.clone() };
            install.push(Step { host: h.name.clone(), node: None, action });
        }
    }
    plan.push("change the password", password_change(hosts, nodes, facts));
    plan.push("build", build);
    plan.push("install", install);

    let is_primary = |n: &&DesiredNode| n.role != Role::Standby;
    // A coordinator that `remove` took out comes back with a new catalog, not its stale one.
    let readded = |n: &DesiredNode| n.rejoin && n.role == Role::Coordinator;
    let fresh = |n: &DesiredNode| !fact(n).initialized || readded(n);
    // Initialised to join by an apply whose join did not finish: it joins now.
    let joining = |n: &DesiredNode| fresh(n) || fact(n).join_pending;
    // A new node joins a running Postgres-XC cluster under this coordinator's DDL lock.
    let source = nodes.iter().find(|c| {
        c.role == Role::Coordinator && c.join.is_some() && !joining(c) && fact(c).running
    });
    let stale = nodes.iter().filter(|n| readded(n) && fact(n).initialized).map(|n| {
        let (stop, status, _) = n.restart.clone();
        let action = Action::Remove { data_dir: Some(n.data_dir.clone()), staging: None };
        (n, fact(n).running.then_some((stop, status)), action)
    });
    let mut removals = Vec::new();
    for (n, running, remove) in stale {
        if let Some((argv, status)) = running {
            let data_dir = n.data_dir.clone();
            let (mode, remove_after, then) =
                (crate::flavors::StopMode::Fast, Vec::new(), Vec::new());
            removals.push(step(
                n,
                Action::Stop { argv, mode, data_dir, status, remove: remove_after, then },
            ));
        }
        removals.push(step(n, remove));
    }
    plan.push("remove the stale catalog of re-added coordinators", removals);
    let init = |n: &DesiredNode| {
        let f = fact(n);
        let mut files = n.files.clone();
        if n.join.is_some() && source.is_some() {
            files.push(FileContent {
                name: JOIN_MARKER.into(),
                content: String::new(),
                mode: 0o600,
            });
        }
        fresh(n).then(|| {
            step(
                n,
                Action::Init {
                    argv: n.init.clone(),
                    pwfile: n.pwfile.clone(),
                    data_dir: n.data_dir.clone(),
                    staging: n.staging.clone(),
                    files,
                    foreign: f.dir_exists && !readded(n),
                },
            )
        })
    };
    plan.push("initialise", nodes.iter().filter(is_primary).filter_map(init).collect());

    let mut files = Vec::new();
    let mut tiers: BTreeMap<u8, Vec<Step>> = BTreeMap::new();
    let mut joins = Vec::new();
    for n in nodes.iter().filter(is_primary) {
        let f = fact(n);
        if joining(n) {
            let running = |c: &DesiredNode| !joining(c) && fact(c).running;
            let joined = match (&n.join, source) {
                (Some(join), Some(source)) => join_action(n, join, source, nodes, &running),
                _ => None,
            };
            match joined {
                Some(action) => joins.push(step(n, action)),
                None => tiers.entry(tier(n.role)).or_default().push(step(n, start(n))),
            }
            continue;
        }
        let (writes, change) = file_changes(n, f);
        files.extend(writes);
        if let Some(action) = change {
            tiers.entry(tier(n.role)).or_default().push(step(n, action));
        }
    }
    plan.push("configure", files);
    for (tier, steps) in tiers {
        plan.push(tier_name(tier), steps);
    }
    let joining_nodes: Vec<String> =
        joins.iter().filter_map(|j| j.node.as_ref().map(|n| n.to_string())).collect();
    let joins_of_datanodes: Vec<String> = joins
        .iter()
        .filter(|j| {
            nodes
                .iter()
                .any(|n| Some(n.name.as_str()) == j.node.as_deref() && n.role == Role::Datanode)
        })
        .filter_map(|j| j.node.as_ref().map(|n| n.to_string()))
        .collect();
    // One join at a time: each holds pgxc_lock_for_backup() on the source coordinator while
    // it copies the catalog, and a second join's lock would wait for (or fail against) it.
    let total = joins.len();
    for (k, join) in joins.into_iter().enumerate() {
        let name = match total {
            1 => "join the running cluster".to_string(),
            _ => format!("join the running cluster ({}/{total})", k + 1),
        };
        plan.push(name, vec![join]);
    }

    // Removed datanodes stay registered until their rows have moved.
    let cluster = spread::Cluster { nodes, retiring, joined: &joins_of_datanodes, source, facts };
    let mut refused = spread::refusals(&cluster);
    let (group, group_refused) = default_group(nodes, &fact);
    refused.extend(group_refused);
    // OpenTenBase: a node that would join the running cluster is refused (a datanode by the
    // node group above). Its pg_dumpall writes functions its own restore refuses ("parameter
    // parallel must be SAFE, RESTRICTED, or UNSAFE"), so no catalog copy can be made.
    if nodes.iter().any(|n| n.default_group.is_some()) {
        for name in joining_nodes.iter().filter(|j| !joins_of_datanodes.contains(j)) {
            refused.push(format!(
                "{name} would join the running opentenbase cluster, which pgxc-deploy cannot do \
                 yet (OpenTenBase's pg_dumpall writes a catalog its restore refuses); take it out \
                 of the inventory to run without it"
            ));
        }
    }
    if !refused.is_empty() {
        return Plan { phases: Vec::new(), refused };
    }
    let register = nodes
        .iter()
        .filter_map(|n| {
            let mut want = n.pgxc_node.clone()?;
            want.extend(spread::kept_rows(&cluster, n));
            let want = &want;
            let f = fact(n);
            // Rows of kinds pgxc-deploy does not register (OpenTenBase's GTM) are not compared.
            let mut have: Vec<_> =
                f.pgxc_node.iter().filter(|r| r.kind.registered()).cloned().collect();
            have.sort();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            (!f.initialized || !f.running || have != want_sorted).then(|| {
                step(
                    n,
                    Action::Register {
                        psql: n.psql.clone(),
                        want: want.clone(),
                        fresh_sql: n.register_sql.clone(),
                    },
                )
            })
        })
        .collect();
    plan.push("register nodes", register);
    plan.push("shard the default node group", group.into_iter().collect());
    spread::plan(&mut plan, &cluster);

    let standbys: Vec<&DesiredNode> = nodes.iter().filter(|n| n.role == Role::Standby).collect();
    let rejoins = |n: &&&DesiredNode| n.rejoin && fact(n).initialized;
    let rejoin = |n: &&DesiredNode| {
        let (stop, status, _) = n.restart.clone();
        let action = Action::Rejoin(Box::new(Rejoin {
            stop,
            status,
            rewind: n.rewind.clone(),
            init: n.init.clone(),
            data_dir: n.data_dir.clone(),
            staging: n.staging.clone(),
            files: n.files.clone(),
        }));
        step(n, action)
    };
    plan.push("rebuild old primaries", standbys.iter().filter(rejoins).map(rejoin).collect());
    plan.push("clone standbys", standbys.iter().filter_map(|n| init(n)).collect());
    let mut standby_files = Vec::new();
    let mut standby_runs = Vec::new();
    for n in standbys {
        let f = fact(n);
        if !f.initialized || n.rejoin {
            standby_runs.push(step(n, start(n)));
            continue;
        }
        let (writes, change) = file_changes(n, f);
        standby_files.extend(writes);
        standby_runs.extend(change.map(|a| step(n, a)));
    }
    plan.push("configure standbys", standby_files);
    plan.push("start standbys", standby_runs);
    plan.push("synchronous replication", enable_sync);
    plan.push("reload synchronous replication", reload_sync);
    // Not a standby this plan rebuilds: what streamed was the copy it replaces.
    let mut marks = streamed_marks(nodes, facts);
    marks.retain(|s| !nodes.iter().any(|n| n.rejoin && s.node.as_deref() == Some(n.name.as_str())));
    plan.push(STREAMED_PHASE, marks);
    plan
}

/// A new coordinator or datanode `n` joins: DDL locked on the coordinator `source`, the
/// catalog copied from `dump_from` (the first of its join's candidates that `running` says
/// runs), registered with every other coordinator of `nodes` that runs (the others: at the
/// register phase). `None` while no node to copy from runs.
/// OpenTenBase: once every node is registered, the first coordinator makes the datanodes the
/// default node group and shards it, unless its catalog shows that done; a default group that
/// holds other datanodes is refused (OpenTenBase's `ALTER NODE GROUP` moves no rows, so
/// pgxc-deploy neither adds nor removes its datanodes).
fn default_group<'a>(
    nodes: &[DesiredNode],
    fact: &dyn Fn(&DesiredNode) -> &'a NodeFacts,
) -> (Option<Step>, Vec<String>) {
    let coordinators: Vec<(&DesiredNode, &Vec<String>)> =
        nodes.iter().filter_map(|n| Some((n, n.default_group.as_ref()?))).collect();
    let Some(&first) = coordinators.first() else {
        return (None, Vec::new());
    };
    // What a running coordinator's catalog says; none runs: a new cluster, or one stopped
    // everywhere, whose group is not known (the next apply makes it if it is missing).
    let (n, want) = match coordinators.iter().find(|(n, _)| fact(n).running) {
        Some(&running) => running,
        None if coordinators.iter().any(|(n, _)| fact(n).initialized) => {
            return (None, Vec::new());
        }
        None => first,
    };
    let f = fact(n);
    let have = f.groups.iter().find(|g| g.name == sql::DEFAULT_GROUP || g.default);
    let mut sorted = want.clone();
    sorted.sort();
    let exists = match have {
        Some(g) if f.running && g.members != sorted => {
            let why = format!(
                "node group {} on {} holds {}, and the inventory's datanodes are {}: pgxc-deploy \
                 does not add or remove opentenbase datanodes (its ALTER NODE GROUP moves no \
                 rows); put the [[datanodes]] back as they were",
                g.name,
                n.name,
                g.members.join(", "),
                sorted.join(", ")
            );
            return (None, vec![why]);
        }
        Some(_) => true,
        None => false,
    };
    if exists && f.running && f.shards.is_some_and(|s| s > 0) {
        return (None, Vec::new());
    }
    let mut argv = n.psql.clone();
    argv.extend(["-v".to_string(), "ON_ERROR_STOP=1".to_string()]);
    for statement in sql::default_group(want, exists) {
        argv.extend(["-c".to_string(), statement]);
    }
    let what = format!("node group {} ({}) sharded", sql::DEFAULT_GROUP, want.join(", "));
    (Some(step(n, Action::Check { argv, what })), Vec::new())
}

fn join_action(
    n: &DesiredNode,
    join: &super::desired::Join,
    source: &DesiredNode,
    nodes: &[DesiredNode],
    running: &dyn Fn(&DesiredNode) -> bool,
) -> Option<Action> {
    let peer = |name: &str| join.peers.iter().find(|p| p.name == name);
    let from = peer(&source.name).expect("the source is another coordinator");
    let runs = |name: &str| nodes.iter().any(|c| c.name == name && running(c));
    let (dump_from, dumpall) = join.dumps.iter().find(|(name, _)| runs(name))?;
    Some(Action::JoinNode(Box::new(super::step::JoinNode {
        data_dir: n.data_dir.clone(),
        source: source.name.to_string(),
        source_psql: from.psql.clone(),
        dump_from: dump_from.to_string(),
        dumpall: dumpall.clone(),
        restore_start: join.restore_start.clone(),
        stop: n.restart.0.clone(),
        start: n.start.clone(),
        log: n.log.clone(),
        ready: n.ready.clone(),
        psql: n.psql.clone(),
        self_sql: join.self_sql.clone(),
        peers: join
            .peers
            .iter()
            .filter(|p| runs(&p.name))
            .map(|p| (p.psql.clone(), p.sql.clone()))
            .collect(),
        marker: join.marker.clone(),
        pending: format!("{}/{}", n.data_dir, JOIN_MARKER),
    })))
}

/// When a host's password file holds another password than the inventory's, the cluster's
/// password changed: the servers learn it (`ALTER ROLE`) before the password files change, so
/// that a failure leaves the old password working everywhere. On a Postgres-XC coordinator the
/// statement reaches every node; otherwise every primary gets it (its standbys replay it). A
/// node that does not run cannot learn it: the step fails, and apply stops there.
fn password_change(
    hosts: &[DesiredHost],
    nodes: &[DesiredNode],
    facts: &BTreeMap<String, HostFacts>,
) -> Vec<Step> {
    let changed = hosts.iter().find_map(|h| {
        let want = h.passfile.as_ref()?;
        let have = facts.get(&h.name)?.passfile.as_ref()?;
        (have != &want.sha256).then_some(want.scram)
    });
    let Some(scram) = changed else { return Vec::new() };
    let initialized = |n: &&DesiredNode| {
        facts.get(&n.host).and_then(|h| h.nodes.get(&n.name)).is_some_and(|f| f.initialized)
    };
    let set = |n: &DesiredNode| step(n, Action::SetPassword { psql: n.psql.clone(), scram });
    match nodes.iter().filter(initialized).find(|n| n.role == Role::Coordinator) {
        Some(coordinator) => vec![set(coordinator)],
        None => {
            nodes.iter().filter(initialized).filter(|n| n.role == Role::Datanode).map(set).collect()
        }
    }
}

/// The phase that writes [`STREAMED_MARKER`]s; apply also runs [`streamed_marks`] once its
/// verification passed, for the standbys it has just started.
pub const STREAMED_PHASE: &str = "record streaming standbys";

/// Write [`STREAMED_MARKER`] into every standby whose primary lists it as streaming and that
/// lacks it, so that a later failover knows it is not a copy that never streamed.
pub fn streamed_marks(nodes: &[DesiredNode], facts: &BTreeMap<String, HostFacts>) -> Vec<Step> {
    let fact = |n: &DesiredNode| facts.get(&n.host).and_then(|h| h.nodes.get(&n.name));
    let streaming: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n.role != Role::Standby)
        .filter_map(fact)
        .flat_map(|f| &f.replicas)
        .filter(|r| r.state == ReplicaState::Streaming)
        .map(|r| r.application_name.as_str())
        .collect();
    nodes
        .iter()
        .filter(|n| n.role == Role::Standby && streaming.contains(n.name.as_str()))
        .filter(|n| {
            fact(n).is_some_and(|f| f.initialized && f.in_recovery == Some(true) && !f.streamed)
        })
        .map(|n| step(n, streamed_mark(&n.data_dir)))
        .collect()
}

/// Write [`STREAMED_MARKER`] into a standby's data directory.
pub fn streamed_mark(data_dir: &str) -> Action {
    let file = FileContent { name: STREAMED_MARKER.into(), content: String::new(), mode: 0o600 };
    Action::WriteFile { data_dir: data_dir.to_string(), file, old: None }
}

/// `synchronous_standby_names` off, saying why, until `standby` streams. `degrade` writes the
/// same text, so that apply recognises it and switches synchronous replication back on by itself
/// once the standby streams again.
pub fn hold_sync(content: &str, standby: &str) -> String {
    content
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("synchronous_standby_names") {
                format!("synchronous_standby_names = ''  # off until {standby} streams")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Whether a primary's synchronous_standby.conf (as read from its host) is the one
/// [`hold_sync`] writes: synchronous replication off.
pub fn sync_held(content: &[u8]) -> bool {
    String::from_utf8_lossy(content).lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("synchronous_standby_names") && l.contains("= ''")
    })
}

fn step(n: &DesiredNode, action: Action) -> Step {
    Step { host: n.host.clone(), node: Some(n.name.clone()), action }
}

/// Start the node: its start command, then its readiness probe.
fn start(n: &DesiredNode) -> Action {
    Action::Start {
        argv: n.start.clone(),
        data_dir: n.data_dir.clone(),
        log: n.log.clone(),
        ready: n.ready.clone(),
    }
}

fn tier(role: Role) -> u8 {
    match role {
        Role::Gtm => 0,
        Role::GtmStandby => 1,
        Role::GtmProxy => 2,
        Role::Datanode => 3,
        Role::Coordinator => 4,
        Role::Standby => 5,
    }
}

fn tier_name(tier: u8) -> &'static str {
    [
        "start gtm",
        "start gtm standby",
        "start gtm proxies",
        "start datanodes",
        "start coordinators",
        "start standbys",
    ][tier as usize]
}

/// The file writes an initialised node needs, and then whether it must start, reload or restart.
/// Settings that the server reports as reloadable (pg_settings.context `sighup`) but uses
/// only at start: OpenTenBase's `forward_port` (its forward process keeps listening on the
/// old port after a reload, and every node then looks for it at the new one).
const READ_AT_START: &[&str] = &["forward_port"];

fn file_changes(n: &DesiredNode, f: &NodeFacts) -> (Vec<Step>, Option<Action>) {
    let mut writes = Vec::new();
    let mut restart = BTreeSet::new();
    let mut reload = BTreeSet::new();
    for file in &n.files {
        let old = f.files.get(&file.name).map(|b| String::from_utf8_lossy(b).into_owned());
        if old.as_deref() == Some(file.content.as_str()) {
            continue;
        }
        match file.name.as_str() {
            "postgresql.conf" | "gtm.conf" => {
                for name in changed_settings(old.as_deref().unwrap_or(""), &file.content) {
                    let context = f.setting_context.get(&name).map(String::as_str);
                    // An include directive is read again by a reload (a primary's
                    // synchronous_standby.conf after a failover made a standby its primary).
                    let include = name.starts_with("include") && file.name != "gtm.conf";
                    // gtm.conf has no pg_settings: every change needs a restart. So does a
                    // setting the server does not know (it would refuse to start otherwise).
                    if include {
                        reload.insert(name);
                    } else if file.name == "gtm.conf"
                        || matches!(context, Some("postmaster") | None)
                        || READ_AT_START.contains(&name.as_str())
                    {
                        restart.insert(name);
                    } else {
                        reload.insert(name);
                    }
                }
            }
            // Read only at start on 9.4-based servers.
            "recovery.conf" | "standby.signal" => {
                restart.insert(file.name.clone());
            }
            _ => {
                reload.insert(file.name.clone());
            }
        }
        writes.push(step(
            n,
            Action::WriteFile { data_dir: n.data_dir.clone(), file: file.clone(), old },
        ));
    }
    let action = if !f.running {
        Some(start(n))
    } else if !restart.is_empty() || (!reload.is_empty() && n.reload.is_none()) {
        restart.extend(reload);
        let (stop, status, start) = n.restart.clone();
        let ready = n.ready.clone();
        let settings = restart.into_iter().collect();
        let (data_dir, log) = (n.data_dir.clone(), n.log.clone());
        Some(Action::Restart { stop, data_dir, status, start, log, ready, settings })
    } else if let (false, Some(argv)) = (reload.is_empty(), &n.reload) {
        Some(Action::Reload { argv: argv.clone(), settings: reload.into_iter().collect() })
    } else {
        None
    };
    (writes, action)
}

/// Names of settings whose value differs between two configuration files (added or removed
/// ones included).
pub fn changed_settings(old: &str, new: &str) -> Vec<String> {
    let (old, new) = (settings(old), settings(new));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names.into_iter().filter(|n| old.get(*n) != new.get(*n)).cloned().collect()
}

/// `name = value` lines of a postgresql.conf / gtm.conf, comments and blank lines skipped.
fn settings(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (name, value) = match line.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => line.split_once(char::is_whitespace).map(|(n, v)| (n, v.trim()))?,
            };
            Some((name.to_lowercase(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::Passfile;
    use crate::plan::step::REDISTRIBUTE_MARKER;
    fn file(name: &str, content: &str) -> FileContent {
        FileContent { name: name.into(), content: content.into(), mode: 0o600 }
    }

    fn node(name: &str, role: Role, host: &str) -> DesiredNode {
        DesiredNode {
            name: name.into(),
            role,
            host: host.into(),
            files: vec![
                file("postgresql.conf", "port = 5432\nshared_buffers = '128MB'\n"),
                file("pg_hba.conf", "local all all trust\n"),
            ],
            data_dir: format!("/data/{name}"),
            staging: format!("/data/{name}.pgxc-deploy-tmp"),
            init: vec!["/bin/initdb".into()],
            pwfile: None,
            start: vec!["start".into()],
            log: format!("/data/{name}/server.log"),
            ready: vec!["ready".into()],
            reload: Some(vec!["reload".into()]),
            restart: (vec!["stop".into()], vec!["status".into()], vec!["start".into()]),
            pgxc_node: None,
            register_sql: String::new(),
            default_group: None,
            psql: vec!["psql".into()],
            sync_standby: None,
            rewind: None,
            rejoin: false,
            join: None,
        }
    }

    fn running(n: &DesiredNode, context: &[(&str, &str)]) -> NodeFacts {
        NodeFacts {
            dir_exists: true,
            initialized: true,
            running: true,
            files: n
                .files
                .iter()
                .map(|f| (f.name.clone(), f.content.clone().into_bytes()))
                .collect(),
            setting_context: context.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            ..Default::default()
        }
    }

    fn facts(
        pairs: Vec<(&str, &str, NodeFacts)>,
        install: Option<&str>,
    ) -> BTreeMap<String, HostFacts> {
        let mut map: BTreeMap<String, HostFacts> = BTreeMap::new();
        for (host, node, f) in pairs {
            let h = map.entry(host.into()).or_default();
            h.install = install.map(Into::into);
            h.nodes.insert(node.into(), f);
        }
        map
    }

    fn summary(plan: &Plan) -> Vec<String> {
        plan.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| format!("{}: {s}", p.name)))
            .collect()
    }

    /// `n` as apply left it: initialised and running (`up`) or not, its managed files and its
    /// pgxc_node as desired.
    fn deployed(n: &DesiredNode, up: bool) -> NodeFacts {
        NodeFacts {
            initialized: up,
            running: up,
            files: n
                .files
                .iter()
                .map(|f| (f.name.clone(), f.content.clone().into_bytes()))
                .collect(),
            pgxc_node: n.pgxc_node.clone().unwrap_or_default(),
            ..NodeFacts::default()
        }
    }

    /// A datanode with no data directory, in a running cluster: it joins from a running
    /// datanode's catalog (locked on a coordinator), then every table that was on all the
    /// other datanodes is spread over it, one per phase, and its marker goes; a later apply
    /// that finds the marker resumes with the tables still to do, and without it plans none.
    #[test]
    fn a_new_datanode_joins_then_the_tables_are_spread_over_it_and_a_resume_skips_done_ones() {
        use crate::plan::desired::desired;
        use crate::plan::state::TableRow;
        let inv = crate::plan::fixtures::postgres_xc();
        let (hosts, nodes) =
            desired(&inv, &crate::plan::render::Renderer::new(), "bin", None, None).unwrap();
        let table = |name: &str, nodes: &[&str]| TableRow {
            name: name.into(),
            kind: 'H',
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        };
        let mut facts: BTreeMap<String, HostFacts> = BTreeMap::new();
        for n in &nodes {
            let new = n.name == "dn2" || n.name == "dn2_replica";
            let f = NodeFacts {
                dir_exists: !new,
                tables: match n.name.as_str() {
                    "coord1" | "coord2" => {
                        vec![table("public.a", &["dn1"]), table("s.b", &["dn1"])]
                    }
                    _ => Vec::new(),
                },
                ..deployed(n, !new)
            };
            facts.entry(n.host.clone()).or_default().nodes.insert(n.name.clone(), f);
        }
        let names =
            |p: &Plan| -> Vec<String> { p.phases.iter().map(|ph| ph.name.clone()).collect() };
        let p = plan(&hosts, &nodes, &[], &facts);
        let join = &p.phases.iter().find(|ph| ph.name == "join the running cluster").unwrap().steps;
        let Action::JoinNode(j) = &join[0].action else { panic!("{p:?}") };
        assert_eq!((j.source.as_str(), j.dump_from.as_str()), ("coord1", "dn1"));
        assert_eq!(j.dumpall.last().map(String::as_str), Some("-s"), "no node definitions");
        assert!(j.restore_start.contains(&"restoremode".to_string()), "{:?}", j.restore_start);
        assert!(j.self_sql.is_empty() && j.marker.as_ref().unwrap().ends_with(REDISTRIBUTE_MARKER));
        assert_eq!(j.peers.len(), 2, "registered with both running coordinators");
        assert!(j.pending.ends_with(JOIN_MARKER));
        let init = &p.phases.iter().find(|ph| ph.name == "initialise").unwrap().steps;
        let Action::Init { files, .. } = &init[0].action else { panic!("{p:?}") };
        assert!(files.iter().any(|f| f.name == JOIN_MARKER), "the join is pending until done");

        // Its join failed after initdb: the next apply joins it, not just starts it.
        let mut pending = facts.clone();
        for h in pending.values_mut() {
            if let Some(f) = h.nodes.get_mut("dn2") {
                (f.dir_exists, f.initialized, f.join_pending) = (true, true, true);
            }
        }
        let again = plan(&hosts, &nodes, &[], &pending);
        let names_again = names(&again);
        assert!(names_again.contains(&"join the running cluster".to_string()), "{names_again:?}");
        let inits =
            again.phases.iter().filter(|ph| ph.name == "initialise").flat_map(|ph| &ph.steps);
        assert!(!inits.into_iter().any(|s| s.node.as_deref() == Some("dn2")), "{again:?}");
        let moves: Vec<String> = p
            .phases
            .iter()
            .flat_map(|ph| &ph.steps)
            .filter_map(|s| match &s.action {
                Action::Redistribute(r) => Some(format!("{} +{}", r.table, r.add.join(","))),
                _ => None,
            })
            .collect();
        assert_eq!(moves, ["public.a +dn2", "s.b +dn2"]);
        let n = names(&p);
        let at = |name: &str| n.iter().position(|x| x == name).unwrap_or_else(|| panic!("{n:?}"));
        assert!(at("join the running cluster") < at("redistribute (1/2)"), "{n:?}");
        assert!(at("redistribute (2/2)") < at("redistribution done"), "{n:?}");

        // Interrupted after the first table: the marker says dn2 is still to fill.
        for h in facts.values_mut() {
            for (name, f) in h.nodes.iter_mut() {
                f.dir_exists = true;
                f.initialized = true;
                f.running = true;
                f.redistributing = name == "dn2";
                if !f.tables.is_empty() {
                    f.tables[0].nodes.push("dn2".into());
                }
            }
        }
        let all = nodes.iter().find(|n| n.name == "coord1").unwrap().pgxc_node.clone().unwrap();
        for h in facts.values_mut() {
            for (name, f) in h.nodes.iter_mut() {
                if name.starts_with("coord") {
                    f.pgxc_node = all.clone();
                }
            }
        }
        let p = plan(&hosts, &nodes, &[], &facts);
        let n = names(&p);
        assert!(n.contains(&"redistribute (1/1)".to_string()), "{n:?}");
        assert!(n.contains(&"redistribution done".to_string()), "{n:?}");
        assert!(!n.contains(&"join the running cluster".to_string()), "{n:?}");

        // Done: no marker, nothing to spread.
        for h in facts.values_mut() {
            for f in h.nodes.values_mut() {
                f.redistributing = false;
            }
        }
        let p = plan(&hosts, &nodes, &[], &facts);
        assert!(!names(&p).iter().any(|n| n.starts_with("redistribut")), "{:?}", names(&p));
    }

    /// A coordinator with no data directory, beside a running one: it joins from that one's
    /// catalog instead of starting empty; with no coordinator running, it starts as in a new
    /// cluster; a re-added (removed) one loses its stale directory first.
    #[test]
    fn a_new_coordinator_joins_from_a_running_one_s_catalog() {
        use crate::plan::desired::desired;
        let inv = crate::plan::fixtures::postgres_xc();
        let (hosts, mut nodes) =
            desired(&inv, &crate::plan::render::Renderer::new(), "bin", None, None).unwrap();
        let mut facts: BTreeMap<String, HostFacts> = BTreeMap::new();
        for n in &nodes {
            let f = NodeFacts { dir_exists: true, ..deployed(n, n.name != "coord2") };
            facts.entry(n.host.clone()).or_default().nodes.insert(n.name.clone(), f);
        }
        let phase = |p: &Plan, name: &str| {
            p.phases
                .iter()
                .find(|ph| ph.name == name)
                .map(|ph| ph.steps.clone())
                .unwrap_or_default()
        };
        let p = plan(&hosts, &nodes, &[], &facts);
        let joins = phase(&p, "join the running cluster");
        let Action::JoinNode(j) = &joins[0].action else { panic!("{p:?}") };
        assert_eq!((joins.len(), j.source.as_str()), (1, "coord1"));
        assert_eq!(j.peers.len(), 1, "registered with coord1, which runs");
        assert!(j.restore_start.contains(&"restoremode".to_string()), "{:?}", j.restore_start);
        assert!(j.dumpall.ends_with(&[
            "-s".into(),
            "--include-nodes".into(),
            "--dump-nodes".into()
        ]));
        assert!(
            !phase(&p, "start coordinators").iter().any(|s| s.node.as_deref() == Some("coord2"))
        );

        // Two nodes join: one at a time (each holds the DDL lock on coord1).
        let mut two = facts.clone();
        for h in two.values_mut() {
            if let Some(f) = h.nodes.get_mut("dn2") {
                *f = NodeFacts::default();
            }
        }
        let p = plan(&hosts, &nodes, &[], &two);
        for (k, node) in [(1, "coord2"), (2, "dn2")] {
            let steps = phase(&p, &format!("join the running cluster ({k}/2)"));
            assert_eq!(steps.len(), 1, "{p:?}");
            assert_eq!(steps[0].node.as_deref(), Some(node));
        }

        // No coordinator runs: a new cluster's start.
        for h in facts.values_mut() {
            if let Some(f) = h.nodes.get_mut("coord1") {
                f.running = false;
            }
        }
        let p = plan(&hosts, &nodes, &[], &facts);
        assert!(phase(&p, "join the running cluster").is_empty());

        // Removed, back: its stale directory goes, then it is initialised and joins.
        for h in facts.values_mut() {
            h.nodes.values_mut().for_each(|f| (f.initialized, f.running) = (true, true));
        }
        nodes.iter_mut().filter(|n| n.name == "coord2").for_each(|n| n.rejoin = true);
        let p = plan(&hosts, &nodes, &[], &facts);
        let removed = phase(&p, "remove the stale catalog of re-added coordinators");
        assert!(matches!(removed[0].action, Action::Stop { .. }), "it ran: stopped first");
        assert!(matches!(removed[1].action, Action::Remove { .. }));
        let Action::Init { foreign, .. } = &phase(&p, "initialise")[0].action else { panic!() };
        assert!(!foreign);
        assert_eq!(phase(&p, "join the running cluster").len(), 1);
    }

    #[test]
    fn from_nothing_installs_initialises_starts_in_order_and_clones_standbys() {
        let hosts = vec![DesiredHost {
            name: "h1".into(),
            install: Some("abc".into()),
            build: false,
            passfile: None,
        }];
        let mut dn = node("dn1", Role::Datanode, "h1");
        dn.files.truncate(1);
        let nodes =
            vec![node("gtm", Role::Gtm, "h1"), dn, node("dn1_standby", Role::Standby, "h1")];
        let plan = plan(&hosts, &nodes, &[], &BTreeMap::new());
        assert_eq!(
            summary(&plan),
            [
                "install: h1: install (fingerprint abc)",
                "initialise: gtm on h1: initialise with initdb, write postgresql.conf, pg_hba.conf",
                "initialise: dn1 on h1: initialise with initdb, write postgresql.conf",
                "start gtm: gtm on h1: start",
                "start datanodes: dn1 on h1: start",
                "clone standbys: dn1_standby on h1: initialise with initdb, write postgresql.conf, pg_hba.conf",
                "start standbys: dn1_standby on h1: start",
            ]
        );
    }

    #[test]
    fn a_fenced_old_primary_is_rebuilt_then_started_as_a_standby() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let mut nodes =
            vec![node("dn1_standby", Role::Datanode, "h1"), node("dn1", Role::Standby, "h1")];
        nodes[1].rejoin = true;
        let (checkpoint, rewind) = (vec!["psql".into()], vec!["pg_rewind".into()]);
        nodes[1].rewind = Some(crate::flavors::Rewind { checkpoint, rewind });
        let mut old = running(&nodes[1], &[]);
        old.running = false;
        old.files.clear();
        let f =
            facts(vec![("h1", "dn1_standby", running(&nodes[0], &[])), ("h1", "dn1", old)], None);
        let p = plan(&hosts, &nodes, &[], &f);
        assert_eq!(
            summary(&p),
            [
                "rebuild old primaries: dn1 on h1: rebuild the fenced old primary as a standby \
                 (pg_rewind, else pg_basebackup)",
                "start standbys: dn1 on h1: start",
            ]
        );
        let Action::Rejoin(rejoin) = &p.phases[0].steps[0].action else { panic!("{p:?}") };
        assert_eq!((rejoin.files.len(), rejoin.staging.as_str()), (2, "/data/dn1.pgxc-deploy-tmp"));

        // Not there at all: cloned like any new standby.
        let f = facts(vec![("h1", "dn1_standby", running(&nodes[0], &[]))], None);
        assert_eq!(
            summary(&plan(&hosts, &nodes, &[], &f))[0].split(':').next(),
            Some("clone standbys")
        );
    }

    #[test]
    fn an_include_line_reloads() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let mut nodes = vec![node("dn1", Role::Datanode, "h1")];
        let f = running(&nodes[0], &[]);
        nodes[0].files[0].content.push_str("include_if_exists 'synchronous_standby.conf'\n");
        let p = plan(&hosts, &nodes, &[], &facts(vec![("h1", "dn1", f)], None));
        assert_eq!(summary(&p)[1], "start datanodes: dn1 on h1: reload (include_if_exists)");
    }

    #[test]
    fn an_unchanged_cluster_needs_nothing() {
        let hosts = vec![DesiredHost {
            name: "h1".into(),
            install: Some("abc".into()),
            build: false,
            passfile: None,
        }];
        let nodes =
            vec![node("dn1", Role::Datanode, "h1"), node("dn1_standby", Role::Standby, "h1")];
        let f = facts(
            vec![
                ("h1", "dn1", running(&nodes[0], &[])),
                ("h1", "dn1_standby", running(&nodes[1], &[])),
            ],
            Some("abc"),
        );
        assert!(plan(&hosts, &nodes, &[], &f).is_empty());
    }

    #[test]
    fn a_standby_seen_streaming_without_its_marker_gets_it() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let nodes =
            vec![node("dn1", Role::Datanode, "h1"), node("dn1_standby", Role::Standby, "h1")];
        let replica = |state: &str| crate::plan::state::Replica {
            application_name: "dn1_standby".into(),
            state: ReplicaState::parse(state),
            sync_state: "async".into(),
            lag_bytes: Some(0),
        };
        let with = |state: &str, streamed: bool| {
            let primary = NodeFacts { replicas: vec![replica(state)], ..running(&nodes[0], &[]) };
            let standby =
                NodeFacts { in_recovery: Some(true), streamed, ..running(&nodes[1], &[]) };
            facts(vec![("h1", "dn1", primary), ("h1", "dn1_standby", standby)], None)
        };
        let p = plan(&hosts, &nodes, &[], &with("streaming", false));
        assert_eq!(
            summary(&p),
            ["record streaming standbys: dn1_standby on h1: create .pgxc-deploy-streamed"]
        );
        assert!(plan(&hosts, &nodes, &[], &with("streaming", true)).is_empty());
        assert!(plan(&hosts, &nodes, &[], &with("startup", false)).is_empty(), "not streaming yet");
        // A standby this plan rebuilds: the copy that streamed is replaced.
        let mut rebuilt = nodes.clone();
        rebuilt[1].rejoin = true;
        let p = plan(&hosts, &rebuilt, &[], &with("streaming", false));
        assert!(!summary(&p).iter().any(|s| s.starts_with(STREAMED_PHASE)), "{:?}", summary(&p));
        assert!(!p.is_empty());
    }

    #[test]
    fn a_changed_password_is_altered_on_the_servers_before_the_password_files() {
        let passfile = Passfile { path: "/data/.pgpass".into(), sha256: "new".into(), scram: true };
        let hosts = vec![DesiredHost {
            name: "h1".into(),
            install: None,
            build: false,
            passfile: Some(passfile),
        }];
        let mut nodes =
            vec![node("dn1", Role::Datanode, "h1"), node("dn1_standby", Role::Standby, "h1")];
        let with = |nodes: &[DesiredNode], have: Option<&str>| {
            let mut f = facts(
                nodes.iter().map(|n| ("h1", n.name.as_str(), running(n, &[]))).collect(),
                None,
            );
            f.get_mut("h1").unwrap().passfile = have.map(Into::into);
            f
        };
        let p = plan(&hosts, &nodes, &[], &with(&nodes, Some("old")));
        assert_eq!(
            summary(&p),
            [
                "change the password: dn1 on h1: ALTER ROLE: the inventory's new password",
                "install: h1: write the password file /data/.pgpass"
            ]
        );
        // A first password file, or the same password: nothing to alter.
        assert_eq!(summary(&plan(&hosts, &nodes, &[], &with(&nodes, None))).len(), 1);
        assert!(plan(&hosts, &nodes, &[], &with(&nodes, Some("new"))).is_empty());
        // Postgres-XC: one coordinator passes it on to every node.
        nodes.push(node("coord1", Role::Coordinator, "h1"));
        let p = plan(&hosts, &nodes, &[], &with(&nodes, Some("old")));
        assert_eq!(
            summary(&p)[0],
            "change the password: coord1 on h1: ALTER ROLE: the inventory's new password"
        );
        assert_eq!(summary(&p).len(), 2);
    }

    #[test]
    fn a_changed_setting_reloads_or_restarts_by_its_context() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let mut nodes = vec![node("dn1", Role::Datanode, "h1")];
        let mut f = running(&nodes[0], &[("work_mem", "user"), ("shared_buffers", "postmaster")]);
        nodes[0].files[0].content.push_str("work_mem = '8MB'\n");
        let p = plan(&hosts, &nodes, &[], &facts(vec![("h1", "dn1", f.clone())], None));
        assert_eq!(
            summary(&p),
            [
                "configure: dn1 on h1: update postgresql.conf",
                "start datanodes: dn1 on h1: reload (work_mem)"
            ]
        );

        nodes[0].files[0].content = nodes[0].files[0].content.replace("128MB", "256MB");
        let p = plan(&hosts, &nodes, &[], &facts(vec![("h1", "dn1", f.clone())], None));
        assert_eq!(
            summary(&p)[1],
            "start datanodes: dn1 on h1: restart (shared_buffers, work_mem)"
        );

        f.running = false;
        let p = plan(&hosts, &nodes, &[], &facts(vec![("h1", "dn1", f)], None));
        assert_eq!(summary(&p)[1], "start datanodes: dn1 on h1: start");
    }

    /// OpenTenBase's forward_port says `sighup`, but its forward process reads it at start.
    #[test]
    fn a_changed_forward_port_restarts_whatever_its_context_says() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let mut nodes = vec![node("dn1", Role::Datanode, "h1")];
        let f = running(&nodes[0], &[("forward_port", "sighup")]);
        nodes[0].files[0].content.push_str("forward_port = 15434\n");
        let p = plan(&hosts, &nodes, &[], &facts(vec![("h1", "dn1", f)], None));
        assert_eq!(summary(&p)[1], "start datanodes: dn1 on h1: restart (forward_port)");
    }

    /// OpenTenBase: the first coordinator makes the datanodes the default node group and shards
    /// it once; a group already there and sharded is left; one that holds other datanodes is
    /// refused before anything runs.
    #[test]
    fn the_default_node_group_is_made_once_and_never_changed() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let mut coord = node("coord1", Role::Coordinator, "h1");
        coord.default_group = Some(vec!["dn2".into(), "dn1".into()]);
        let nodes = vec![coord];
        let mut f = running(&nodes[0], &[]);
        let shard = |f: &NodeFacts| {
            let p = plan(&hosts, &nodes, &[], &facts(vec![("h1", "coord1", f.clone())], None));
            let steps: Vec<String> = p
                .phases
                .iter()
                .filter(|ph| ph.name == "shard the default node group")
                .flat_map(|ph| &ph.steps)
                .map(|s| match &s.action {
                    Action::Check { argv, .. } => argv.join(" "),
                    other => format!("{other:?}"),
                })
                .collect();
            (steps, p.refused)
        };
        let (steps, refused) = shard(&f);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(
            steps,
            ["psql -v ON_ERROR_STOP=1 -c CREATE DEFAULT NODE GROUP default_group WITH (dn2, dn1) \
              -c CREATE SHARDING GROUP TO GROUP default_group -c CLEAN SHARDING"]
        );
        let group = |members: &[&str]| crate::plan::state::GroupRow {
            name: "default_group".into(),
            default: true,
            members: members.iter().map(|m| m.to_string()).collect(),
        };
        f.groups = vec![group(&["dn1", "dn2"])];
        f.shards = Some(0);
        let (steps, _) = shard(&f);
        assert_eq!(
            steps,
            ["psql -v ON_ERROR_STOP=1 -c CREATE SHARDING GROUP TO GROUP default_group -c CLEAN \
              SHARDING"]
        );
        f.shards = Some(4096);
        assert_eq!(shard(&f), (Vec::new(), Vec::new()));
        f.groups = vec![group(&["dn1"])];
        let (steps, refused) = shard(&f);
        assert!(steps.is_empty());
        assert!(refused[0].contains("holds dn1, and the inventory's datanodes are dn1, dn2"));
        // Stopped: its catalog is not known, so nothing is planned (it starts in this apply).
        f.running = false;
        assert_eq!(shard(&f), (Vec::new(), Vec::new()));
    }

    #[test]
    fn synchronous_replication_is_written_then_reloaded_in_a_later_phase() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let mut dn = node("dn1", Role::Datanode, "h1");
        dn.files.push(file(SYNC_FILE, "synchronous_standby_names = 'dn1_standby'\n"));
        dn.sync_standby = Some("dn1_standby".into());
        let nodes = vec![dn, node("dn1_standby", Role::Standby, "h1")];
        let p = plan(&hosts, &nodes, &[], &BTreeMap::new());
        let last: Vec<String> = summary(&p).into_iter().rev().take(2).collect();
        assert_eq!(
            last,
            [
                "reload synchronous replication: dn1 on h1: reload (synchronous_standby_names)",
                "synchronous replication: dn1 on h1: update synchronous_standby.conf",
            ]
        );
    }

    #[test]
    fn a_synchronous_primary_whose_standby_is_down_stays_synchronous() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let mut dn = node("dn1", Role::Datanode, "h1");
        dn.files.push(file(SYNC_FILE, "synchronous_standby_names = 'dn1_standby'\n"));
        dn.sync_standby = Some("dn1_standby".into());
        let standby = node("dn1_standby", Role::Standby, "h1");
        let mut down = running(&standby, &[]);
        down.running = false;
        let (on, off) = (running(&dn, &[]), down);
        let p = plan(
            &hosts,
            &[dn.clone(), standby.clone()],
            &[],
            &facts(vec![("h1", "dn1", on), ("h1", "dn1_standby", off.clone())], None),
        );
        // Only the standby is started: the primary's synchronous file is left on.
        assert_eq!(summary(&p), ["start standbys: dn1_standby on h1: start"]);

        // Degraded (the held text on the host): apply switches it back on once it streams.
        let mut degraded = running(&dn, &[]);
        let held = hold_sync("synchronous_standby_names = 'dn1_standby'\n", "dn1_standby");
        degraded.files.insert(SYNC_FILE.into(), held.into_bytes());
        let p = plan(
            &hosts,
            &[dn, standby],
            &[],
            &facts(vec![("h1", "dn1", degraded), ("h1", "dn1_standby", off)], None),
        );
        assert!(summary(&p).last().unwrap().contains("reload (synchronous_standby_names)"));
    }

    #[test]
    fn a_data_directory_not_made_by_pgxc_deploy_is_refused() {
        let hosts =
            vec![DesiredHost { name: "h1".into(), install: None, build: false, passfile: None }];
        let nodes = vec![node("dn1", Role::Datanode, "h1")];
        let f = NodeFacts { dir_exists: true, ..Default::default() };
        let p = plan(&hosts, &nodes, &[], &facts(vec![("h1", "dn1", f)], None));
        assert!(matches!(p.phases[0].steps[0].action, Action::Init { foreign: true, .. }));
    }

    #[test]
    fn changed_settings_ignores_comments_and_spacing() {
        let old = "# c\nport = 5432\nwork_mem='4MB'\nfsync = on\n";
        let new = "port=5432\nwork_mem = '8MB'\nmax_connections = 100\n";
        assert_eq!(changed_settings(old, new), ["fsync", "max_connections", "work_mem"]);
    }
}
