//! What `degrade` decides, as values: which primary's commits wait for a synchronous standby,
//! and the steps that let them through (write its synchronous_standby.conf with
//! `synchronous_standby_names` emptied, reload, wait until a commit no longer waits). PURE:
//! `commands::degrade` probes and runs the steps.
//!
//! The file written is exactly the one apply holds while a standby does not stream
//! ([`hold_sync`]), so a later `apply` recognises it and switches synchronous replication back
//! on by itself once the standby streams again.

use super::diff::{DesiredNode, SYNC_FILE, hold_sync};
use super::failover::{self, Pair};
use super::state::NodeFacts;
use super::step::{Action, FileContent, Step};
use crate::inventory::Inventory;
use crate::inventory::roles::Roles;

/// The datanode `name` (a datanode or its standby) names and its synchronous standby, or why
/// there is nothing to degrade.
pub fn pair<'a>(inv: &'a Inventory, roles: &Roles, name: &str) -> Result<Pair<'a>, String> {
    let pair = failover::pair(inv, name).map_err(|e| {
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
    if let Some(p) = roles.datanodes.get(pair.datanode.name.as_str()) {
        return Err(format!(
            "{} is served by {} since a failover or switchover (roles file): synchronous \
             replication is not set up between them, there is nothing to degrade",
            pair.datanode.name, p.primary
        ));
    }
    Ok(pair)
}

/// SQL that fails unless this session's `synchronous_standby_names` is empty: run in a new
/// session after the reload, it tells that the server has read the new file.
pub const SYNC_OFF_SQL: &str =
    "select 1 / (current_setting('synchronous_standby_names') = '')::int";

/// A new session sees synchronous replication off, then commits a write (given up after 5 s).
/// A commit cancelled while it waits for a standby only warns, so the first statement is what
/// makes this fail while the old setting holds.
pub fn write_check_sql() -> String {
    format!(
        "{SYNC_OFF_SQL}; set statement_timeout = '5s'; \
         create temp table pgxc_deploy_degrade_check (x int); \
         insert into pgxc_deploy_degrade_check values (1)"
    )
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
    use crate::plan::desired::desired;
    use crate::plan::fixtures;
    use crate::plan::render::Renderer;

    #[test]
    fn only_a_datanode_with_a_synchronous_standby_is_degraded() {
        let inv = fixtures::postgresql();
        let roles = Roles::default();
        for name in ["pg1", "pg1_standby"] {
            let p = pair(&inv, &roles, name).unwrap();
            assert_eq!((p.datanode.name.as_str(), p.standby.name.as_str()), ("pg1", "pg1_standby"));
        }
        assert_eq!(
            pair(&inv, &roles, "pg2").unwrap_err(),
            "datanode `pg2` has no standby: commits wait for nobody"
        );
        let xc = fixtures::postgres_xc();
        let err = pair(&xc, &roles, "coord1").unwrap_err();
        assert!(err.ends_with("only a datanode has one"), "{err}");
        let async_standby = xc.nodes.iter().find(|n| !n.synchronous && n.primary.is_some());
        if let Some(s) = async_standby {
            let err = pair(&xc, &roles, s.name.as_str()).unwrap_err();
            assert!(err.contains("asynchronously"), "{err}");
        }
        let roles = Roles::handed_over("pg1", "pg1_standby", false);
        assert!(pair(&inv, &roles, "pg1").unwrap_err().contains("served by pg1_standby"));
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
        assert!(write_check_sql().starts_with(SYNC_OFF_SQL));
    }
}
