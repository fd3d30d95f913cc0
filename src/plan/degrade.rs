//! What `degrade` decides, as values: which primary's commits wait for a synchronous standby,
//! and the steps that let them through (write its synchronous_standby.conf with
//! `synchronous_standby_names` emptied, reload, wait until a commit no longer waits). PURE:
//! `ops::degrade` probes and runs the steps.
//!
//! The file written is exactly the one apply holds while a standby does not stream
//! ([`hold_sync`]), so a later `apply` recognises it and switches synchronous replication back
//! on by itself once the standby streams again.
//!
//! `status --watch --heal` decides here too ([`heal`]): which primaries to degrade (blocked at
//! two refreshes in a row) and which to switch back on (held, and the standby streams again).

use super::sql;
use std::collections::{BTreeMap, BTreeSet};

use super::desired::DesiredNode;
use super::diff::{SYNC_FILE, hold_sync};
use super::pair::{self as pairs, Pair};
use super::state::{HostFacts, NodeFacts};
use super::step::{Action, FileContent, Step};
use crate::inventory::{Flavor, Inventory, NodeName};

/// The datanode `name` (a datanode or its standby) names and its synchronous standby, or why
/// there is nothing to degrade. `now`: the inventory as the cluster runs now
/// ([`crate::inventory::roles::Roles::effective`]): after a failover or switchover, the
/// promoted node is the primary and the old primary its (synchronous, as the inventory's
/// standby was) standby, as apply deploys them.
pub fn pair<'a>(now: &'a Inventory, name: &str) -> Result<Pair<'a>, String> {
    let pair = pairs::pair(now, name).map_err(|e| {
        if e.ends_with("has no standby to promote") {
            e.replace("has no standby to promote", "has no standby: commits wait for nobody")
        } else {
            e.replace("only a datanode fails over to its standby", "only a datanode has one")
        }
    })?;
    if !pair.standby.synchronous {
        return Err(format!(
            "`{}` replicates {} asynchronously: commits never wait for it, there is nothing to \
             degrade",
            pair.standby.name, pair.datanode.name
        ));
    }
    Ok(pair)
}

/// psql argv on `primary` that fails until commits no longer wait: a new session sees the
/// setting empty and (PostgreSQL) commits a write. A Postgres-XC datanode takes writes only
/// through a coordinator, so there only the setting is read.
pub fn check(flavor: Flavor, primary: &DesiredNode) -> Vec<String> {
    let sql = match flavor {
        Flavor::PostgresXc | Flavor::PostgresXl | Flavor::Opentenbase => sql::SYNC_OFF.to_string(),
        Flavor::Postgresql => sql::sync_off_then_write(),
    };
    let mut argv = primary.psql.clone();
    argv.extend(["-v".into(), "ON_ERROR_STOP=1".into(), "-c".into(), sql]);
    argv
}

/// The synchronous standby whose absence blocks every commit on `primary`: `facts` (the
/// primary's probe) show it running with its deployed synchronous_standby.conf naming a
/// standby, and that standby not streaming from it. `None`: commits go through.
pub fn blocking_standby<'a>(primary: &'a DesiredNode, facts: &NodeFacts) -> Option<&'a str> {
    let standby = primary.sync_standby.as_deref()?;
    let streams = facts.streams_to(standby);
    (facts.running && sync_names_set(facts) && !streams).then_some(standby)
}

/// The deployed synchronous_standby.conf names a standby: every commit waits for it.
fn sync_names_set(f: &NodeFacts) -> bool {
    let Some(text) = f.files.get(SYNC_FILE) else { return false };
    String::from_utf8_lossy(text).lines().any(|l| {
        let l = l.trim();
        l.starts_with("synchronous_standby_names")
            && l.split_once('=').is_some_and(|(_, v)| {
                let v = v.split('#').next().unwrap_or("").trim();
                !v.is_empty() && v != "''"
            })
    })
}

/// What `status --watch --heal` does after one refresh.
#[derive(Debug, Clone, PartialEq)]
pub enum Heal {
    /// Degrade `datanode`: its commits waited for `standby`, which did not stream, at this
    /// refresh and the one before. (`ops::degrade` probes the pair again before acting.)
    Degrade { datanode: NodeName, standby: String },
    /// Switch synchronous replication back on for `datanode`: degraded (apply's held file), and
    /// `standby` streams from it again (`streaming`: caught up). Write the synchronous file,
    /// reload, wait until the standby is `sync`.
    Restore { datanode: NodeName, standby: String, steps: Vec<Step> },
}

/// What to heal, from one refresh's `facts` (per host, or why it could not be probed), and the
/// datanodes blocked now (pass them back as `blocked_before` at the next refresh).
///
/// A primary is degraded only when it was blocked at two refreshes in a row, so that a standby
/// restarting (a rolling restart, a reconnect) is not mistaken for a dead one. `inv` and
/// `nodes`: the cluster as it runs now (the roles file applied), so a promoted node is judged
/// as the primary it is.
pub fn heal(
    inv: &Inventory,
    nodes: &[DesiredNode],
    facts: &BTreeMap<String, Result<HostFacts, String>>,
    blocked_before: &BTreeSet<NodeName>,
) -> (Vec<Heal>, BTreeSet<NodeName>) {
    let mut heals = Vec::new();
    let mut blocked = BTreeSet::new();
    for n in nodes.iter().filter(|n| n.sync_standby.is_some()) {
        if inv.node(&n.name).is_none() {
            continue;
        }
        let Some(Ok(host)) = facts.get(&n.host) else { continue };
        let Some(f) = host.nodes.get(&n.name) else { continue };
        if let Some(standby) = blocking_standby(n, f) {
            blocked.insert(n.name.clone());
            if blocked_before.contains(&n.name) {
                heals.push(Heal::Degrade { datanode: n.name.clone(), standby: standby.into() });
            }
        } else if let Some(steps) = restore_steps(n, f) {
            let standby = n.sync_standby.clone().unwrap_or_default();
            heals.push(Heal::Restore { datanode: n.name.clone(), standby, steps });
        }
    }
    (heals, blocked)
}

/// What switches synchronous replication back on for `primary`, when its deployed file is the
/// held one and its standby streams from it (caught up): write the synchronous file, reload,
/// wait until the standby is `sync`. `None` otherwise (not degraded, standby not streaming,
/// primary not running).
pub fn restore_steps(primary: &DesiredNode, facts: &NodeFacts) -> Option<Vec<Step>> {
    let standby = primary.sync_standby.as_deref()?;
    let have = facts.files.get(SYNC_FILE)?;
    let streams = facts.streams_to(standby);
    if !facts.running || !streams || !is_held(primary, standby, have) {
        return None;
    }
    let want = primary.files.iter().find(|f| f.name == SYNC_FILE)?.clone();
    let reload = primary.reload.clone()?;
    let name = NodeName::new(standby).ok()?;
    let step =
        |action| Step { host: primary.host.clone(), node: Some(primary.name.clone()), action };
    let old = Some(String::from_utf8_lossy(have).into_owned());
    let mut sync = primary.psql.clone();
    sync.extend(["-c".to_string(), sql::synchronous_again(name.as_str())]);
    Some(vec![
        step(Action::WriteFile { data_dir: primary.data_dir.clone(), file: want, old }),
        step(Action::Reload { argv: reload, settings: vec!["synchronous_standby_names".into()] }),
        step(Action::Await {
            argv: sync,
            what: format!("{standby} is its synchronous standby again"),
            tenths: 100,
        }),
    ])
}

/// What degrading `primary` takes, in order: write the held file (unless it is there already),
/// reload, then poll `check` (psql argv) until it succeeds. `facts`: the primary's probe, with
/// its deployed synchronous_standby.conf.
pub fn steps(
    primary: &DesiredNode,
    standby: &str,
    facts: Option<&NodeFacts>,
    check: Vec<String>,
) -> Result<Vec<Step>, String> {
    let facts = facts.ok_or("the probe did not report it")?;
    if !facts.running {
        return Err("it is not running, so no commit waits on it".into());
    }
    let want = primary
        .files
        .iter()
        .find(|f| f.name == SYNC_FILE)
        .ok_or_else(|| format!("it has no {SYNC_FILE} (the flavor does not manage one)"))?;
    let reload = primary.reload.clone().ok_or("it cannot reload its configuration")?;
    let held = FileContent { content: hold_sync(&want.content, standby), ..want.clone() };
    let have = facts.files.get(SYNC_FILE).map(|b| String::from_utf8_lossy(b).into_owned());
    let step =
        |action| Step { host: primary.host.clone(), node: Some(primary.name.clone()), action };
    let mut steps = Vec::new();
    if have.as_deref() != Some(held.content.as_str()) {
        let data_dir = primary.data_dir.clone();
        steps.push(step(Action::WriteFile { data_dir, file: held, old: have }));
    }
    let settings = vec!["synchronous_standby_names".to_string()];
    steps.push(step(Action::Reload { argv: reload, settings }));
    steps.push(step(Action::Await {
        argv: check,
        what: format!("commits no longer wait for {standby}"),
        tenths: 600,
    }));
    Ok(steps)
}

/// The deployed file is the one degrade (or apply, while the standby does not stream) writes.
pub fn is_held(primary: &DesiredNode, standby: &str, deployed: &[u8]) -> bool {
    primary.files.iter().find(|f| f.name == SYNC_FILE).is_some_and(|want| {
        hold_sync(&want.content, standby).as_bytes() == deployed
            && want.content.as_bytes() != deployed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::roles::Roles;
    use crate::plan::desired::desired;
    use crate::plan::fixtures;
    use crate::plan::render::Renderer;
    use crate::plan::state::ReplicaState;

    #[test]
    fn only_a_datanode_with_a_synchronous_standby_is_degraded() {
        let inv = fixtures::postgresql();
        for name in ["pg1", "pg1_standby"] {
            let p = pair(&inv, name).unwrap();
            assert_eq!((p.datanode.name.as_str(), p.standby.name.as_str()), ("pg1", "pg1_standby"));
        }
        assert_eq!(
            pair(&inv, "pg2").unwrap_err(),
            "datanode `pg2` has no standby: commits wait for nobody"
        );
        let xc = fixtures::postgres_xc();
        let err = pair(&xc, "coord1").unwrap_err();
        assert!(err.ends_with("only a datanode has one"), "{err}");
        let async_standby = xc.nodes.iter().find(|n| !n.synchronous && n.primary.is_some());
        if let Some(s) = async_standby {
            let err = pair(&xc, s.name.as_str()).unwrap_err();
            assert!(err.contains("asynchronously"), "{err}");
        }
        // After a failover or switchover: the promoted node is the primary, the old one its
        // synchronous standby (the inventory's standby was synchronous).
        let now = Roles::handed_over("pg1", "pg1_standby", true).effective(&inv).unwrap();
        let p = pair(&now, "pg1").unwrap();
        assert_eq!((p.datanode.name.as_str(), p.standby.name.as_str()), ("pg1_standby", "pg1"));
    }

    #[test]
    fn writes_apply_s_held_file_then_reloads_and_waits_and_is_idempotent() {
        let inv = fixtures::postgresql();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let pg1 = nodes.iter().find(|n| n.name == "pg1").unwrap();
        let on = pg1.files.iter().find(|f| f.name == SYNC_FILE).unwrap().content.clone();
        let mut facts = NodeFacts { running: true, ..Default::default() };
        facts.files.insert(SYNC_FILE.into(), on.clone().into_bytes());
        let check = vec!["psql".to_string()];
        let steps = steps(pg1, "pg1_standby", Some(&facts), check.clone()).unwrap();
        let shown: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "pg1 on pg-a: update synchronous_standby.conf",
                "pg1 on pg-a: reload (synchronous_standby_names)",
                "pg1 on pg-a: await: commits no longer wait for pg1_standby",
            ]
        );
        let Action::WriteFile { file, .. } = &steps[0].action else { panic!("a write") };
        assert!(
            file.content
                .contains("synchronous_standby_names = ''  # off until pg1_standby streams"),
            "{}",
            file.content
        );
        assert!(is_held(pg1, "pg1_standby", file.content.as_bytes()));
        assert!(!is_held(pg1, "pg1_standby", on.as_bytes()));

        // Already written: reload and check only.
        facts.files.insert(SYNC_FILE.into(), file.content.clone().into_bytes());
        let again = super::steps(pg1, "pg1_standby", Some(&facts), check.clone()).unwrap();
        assert_eq!(again.len(), 2);
        facts.running = false;
        let err = super::steps(pg1, "pg1_standby", Some(&facts), check).unwrap_err();
        assert!(err.contains("not running"), "{err}");
        assert!(sql::sync_off_then_write().starts_with(sql::SYNC_OFF));
    }

    /// Facts of the PostgreSQL fixture as apply leaves it (pg1 with synchronous standby
    /// pg1_standby streaming), by host.
    fn cluster() -> (Inventory, Vec<DesiredNode>, BTreeMap<String, Result<HostFacts, String>>) {
        use crate::plan::state::Replica;
        let inv = fixtures::postgresql();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let mut facts: BTreeMap<String, Result<HostFacts, String>> = BTreeMap::new();
        for n in &nodes {
            let mut f =
                NodeFacts { initialized: true, running: true, alive: true, ..Default::default() };
            f.files =
                n.files.iter().map(|f| (f.name.clone(), f.content.clone().into_bytes())).collect();
            if n.name == "pg1" {
                f.replicas.push(Replica {
                    application_name: "pg1_standby".into(),
                    state: ReplicaState::Streaming,
                    sync_state: "sync".into(),
                    lag_bytes: Some(0),
                });
            }
            let host = facts.entry(n.host.clone()).or_insert_with(|| Ok(HostFacts::default()));
            host.as_mut().unwrap().nodes.insert(n.name.clone(), f);
        }
        (inv, nodes, facts)
    }

    fn pg1(facts: &mut BTreeMap<String, Result<HostFacts, String>>) -> &mut NodeFacts {
        facts.get_mut("pg-a").unwrap().as_mut().unwrap().nodes.get_mut("pg1").unwrap()
    }

    #[test]
    fn heal_degrades_a_primary_blocked_at_two_refreshes_in_a_row_then_restores_it() {
        let (inv, nodes, mut facts) = cluster();
        let none = BTreeSet::new();
        assert_eq!(heal(&inv, &nodes, &facts, &none), (vec![], none.clone()));

        // The standby stops streaming: blocked, but degraded only if it was at the last
        // refresh too.
        pg1(&mut facts).replicas.clear();
        let (heals, blocked) = heal(&inv, &nodes, &facts, &none);
        assert!(heals.is_empty(), "{heals:?}");
        assert_eq!(blocked, BTreeSet::from(["pg1".into()]));
        let (heals, again) = heal(&inv, &nodes, &facts, &blocked);
        assert_eq!(
            heals,
            [Heal::Degrade { datanode: "pg1".into(), standby: "pg1_standby".into() }]
        );
        assert_eq!(again, blocked);
        // Catching up is not streaming yet.
        pg1(&mut facts).replicas.push(crate::plan::state::Replica {
            application_name: "pg1_standby".into(),
            state: ReplicaState::Catchup,
            sync_state: "async".into(),
            lag_bytes: None,
        });
        assert_eq!(heal(&inv, &nodes, &facts, &blocked).0.len(), 1);
        // Its host unreachable: nothing can be done there.
        let mut unreachable = facts.clone();
        unreachable.insert("pg-a".into(), Err("connect: refused".into()));
        assert_eq!(heal(&inv, &nodes, &unreachable, &blocked), (vec![], none.clone()));

        // Degraded (apply's held file), standby still catching up: nothing to do.
        let want = nodes.iter().find(|n| n.name == "pg1").unwrap();
        let on = want.files.iter().find(|f| f.name == SYNC_FILE).unwrap().content.clone();
        let held = hold_sync(&on, "pg1_standby");
        pg1(&mut facts).files.insert(SYNC_FILE.into(), held.clone().into_bytes());
        assert_eq!(heal(&inv, &nodes, &facts, &blocked), (vec![], none.clone()));
        // Streaming (caught up): synchronous replication back on.
        pg1(&mut facts).replicas[0].state = ReplicaState::Streaming;
        let (heals, blocked) = heal(&inv, &nodes, &facts, &none);
        assert!(blocked.is_empty());
        let [Heal::Restore { datanode, standby, steps }] = heals.as_slice() else {
            panic!("a restore: {heals:?}")
        };
        assert_eq!((datanode.as_str(), standby.as_str()), ("pg1", "pg1_standby"));
        let shown: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "pg1 on pg-a: update synchronous_standby.conf",
                "pg1 on pg-a: reload (synchronous_standby_names)",
                "pg1 on pg-a: await: pg1_standby is its synchronous standby again",
            ]
        );
        let Action::WriteFile { file, old, .. } = &steps[0].action else { panic!("a write") };
        assert_eq!((file.content.as_str(), old.as_deref()), (on.as_str(), Some(held.as_str())));
        let Action::Await { argv, .. } = &steps[2].action else { panic!("an await") };
        assert!(argv.last().unwrap().contains("application_name = 'pg1_standby'"), "{argv:?}");
        // A primary that is down is neither degraded nor restored.
        pg1(&mut facts).running = false;
        assert_eq!(heal(&inv, &nodes, &facts, &none), (vec![], none));
    }

    #[test]
    fn the_check_writes_on_postgresql_and_reads_the_setting_on_postgres_xc() {
        let inv = fixtures::postgresql();
        let (_, nodes) = desired(&inv, &Renderer::new(), "bin", None, None).unwrap();
        let argv = check(inv.cluster.flavor, &nodes[0]);
        assert!(argv[0].ends_with("/psql"), "{argv:?}");
        assert_eq!(argv.last().unwrap(), &sql::sync_off_then_write());
        let xc = fixtures::postgres_xc();
        let (_, nodes) = desired(&xc, &Renderer::new(), "bin", None, None).unwrap();
        assert_eq!(check(xc.cluster.flavor, &nodes[0]).last().unwrap(), sql::SYNC_OFF);
    }
}
