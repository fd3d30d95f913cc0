//! `pgxc-deploy apply INVENTORY` and `pgxc-deploy plan INVENTORY`: observe every host (one
//! probe each), compute the plan, and either print it (plan) or run it phase by phase (apply),
//! then verify the cluster from the servers themselves.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use crate::cli::ApplyArgs;
use crate::executor::steps::{HostEnv, StepContext, run_step};
use crate::executor::{self, Target, report};
use crate::inventory::{self, Inventory, Role, Source};
use crate::plan::desired::desired;
use crate::plan::diff::{DesiredNode, plan};
use crate::plan::state::HostFacts;
use crate::source::{self, Package};
use crate::transport::Fleet;

use super::{Error, Status, cluster, fleet};

pub async fn run(args: ApplyArgs, dry_run: bool) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = inventory::load(&args.inventory)?;
    cluster::refuse_after_failover(&inv, &args.inventory, if dry_run { "plan" } else { "apply" })?;
    let package = match &inv.source {
        Some(Source::Prebuilt { path }) => Some(source::pack_prebuilt(path).await?),
        Some(Source::Build(_)) => {
            return Err(Error::Usage(
                "[source]: building from source (git, tarball, dir) is not implemented yet; \
                 build it yourself and use `prebuilt = \"<install prefix>\"`"
                    .into(),
            ));
        }
        None => None,
    };
    let layout = package.as_ref().map(|p| p.layout.clone()).unwrap_or_default();
    let renderer = cluster::renderer(&inv)?;
    let (hosts, nodes) =
        desired(&inv, &renderer, &layout.bin, package.as_ref().map(|p| p.fingerprint.as_str()))
            .map_err(|e| Error::Usage(format!("templates: {e}")))?;

    let fleet = fleet::fleet(&inv, &args.ssh);
    let envs = cluster::host_envs(&inv, &layout);
    let mut err = std::io::stderr().lock();
    let facts = match probe(&inv, &fleet, &args, &envs, &nodes, &layout.bin).await {
        Ok(facts) => facts,
        Err(failed) => {
            writeln!(
                err,
                "error: cannot read the state of {} host(s); nothing was changed:",
                failed.len()
            )?;
            for (host, e) in failed {
                writeln!(err, "  {host}: {}: {}", e.step, e.message)?;
            }
            fleet.close().await;
            return Ok(Status::Failed);
        }
    };
    let plan = plan(&hosts, &nodes, &facts);
    let mut out = std::io::stdout().lock();

    if dry_run {
        report::plan(&plan, &mut out)?;
        writeln!(out, "{}", summary_line(&plan, &inv))?;
        fleet.close().await;
        return Ok(Status::Ok);
    }
    if plan.is_empty() {
        writeln!(
            out,
            "nothing to do: {} already matches {} ({:.2} s)",
            inv.cluster.name,
            args.inventory.display(),
            started.elapsed().as_secs_f64()
        )?;
        fleet.close().await;
        return Ok(Status::Ok);
    }

    let cx = StepContext {
        fleet: &fleet,
        hosts: envs.clone(),
        archive: package.as_ref().map(|p: &Package| p.archive.as_slice()),
    };
    writeln!(err, "apply: {} step(s) in {} phase(s)", plan.step_count(), plan.phases.len())?;
    for phase in &plan.phases {
        writeln!(err, "== {}", phase.name)?;
        let items: Vec<(Target, usize)> = phase
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (Target { host: s.host.clone(), node: s.node.clone() }, i))
            .collect();
        let outcomes = executor::run_items(items, args.ssh.forks, |_, i| {
            let (step, cx) = (&phase.steps[i], &cx);
            async move { run_step(step, cx).await }
        })
        .await;
        for (step, outcome) in phase.steps.iter().zip(&outcomes) {
            report::progress(step, outcome, &mut err)?;
        }
        if outcomes.iter().any(|o| o.result.is_err()) {
            writeln!(
                err,
                "error: phase `{}` failed; later phases were not run. Fix the cause and run apply again: it resumes from what is done.",
                phase.name
            )?;
            fleet.close().await;
            return Ok(Status::Failed);
        }
    }

    // Verify from the servers themselves: running, registered, streaming.
    let facts = match probe(&inv, &fleet, &args, &envs, &nodes, &layout.bin).await {
        Ok(facts) => facts,
        Err(failed) => {
            for (host, e) in failed {
                writeln!(err, "error: verify: {host}: {}: {}", e.step, e.message)?;
            }
            fleet.close().await;
            return Ok(Status::Failed);
        }
    };
    fleet.close().await;
    let problems = verify(&inv, &nodes, &facts);
    for p in &problems {
        writeln!(err, "error: verify: {p}")?;
    }
    if !problems.is_empty() {
        return Ok(Status::Failed);
    }
    writeln!(
        out,
        "applied {} step(s): {} is up ({:.1} s)",
        plan.step_count(),
        inv.cluster.name,
        started.elapsed().as_secs_f64()
    )?;
    Ok(Status::Ok)
}

type ProbeFailures = Vec<(String, executor::StepError)>;

async fn probe(
    inv: &Inventory,
    fleet: &Fleet,
    args: &ApplyArgs,
    envs: &BTreeMap<String, HostEnv>,
    nodes: &[DesiredNode],
    bin_rel: &str,
) -> Result<BTreeMap<String, HostFacts>, ProbeFailures> {
    let files = |node: &str| -> Vec<String> {
        nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.files.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default()
    };
    let facts = cluster::probe(inv, fleet, args.ssh.forks, envs, bin_rel, &files).await;
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
    if failed.is_empty() { Ok(ok) } else { Err(failed) }
}

/// What is wrong with the cluster after apply, read from the servers.
fn verify(
    inv: &Inventory,
    nodes: &[DesiredNode],
    facts: &BTreeMap<String, HostFacts>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for n in nodes {
        let Some(f) = facts.get(&n.host).and_then(|h| h.nodes.get(&n.name)) else {
            problems.push(format!("{} on {}: no facts", n.name, n.host));
            continue;
        };
        if !f.running {
            problems.push(format!(
                "{} on {}: not accepting connections (see {}/server.log)",
                n.name, n.host, n.data_dir
            ));
            continue;
        }
        if let Some(want) = &n.pgxc_node {
            let (mut want, mut have) = (want.clone(), f.pgxc_node.clone());
            want.sort();
            have.sort();
            if want != have {
                problems.push(format!(
                    "{} on {}: pgxc_node is {:?}, the inventory says {:?}",
                    n.name, n.host, have, want
                ));
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
            let streaming = pf.is_some_and(|pf| {
                pf.replicas.iter().any(|r| r.application_name == n.name && r.state == "streaming")
            });
            if !streaming {
                problems.push(format!(
                    "{} on {}: not streaming from {} (pg_stat_replication on the primary)",
                    n.name, n.host, primary.name
                ));
            }
            if f.in_recovery != Some(true) {
                problems.push(format!("{} on {}: not in recovery", n.name, n.host));
            }
        }
    }
    problems
}

fn summary_line(plan: &crate::plan::step::Plan, inv: &Inventory) -> String {
    if plan.is_empty() {
        format!("nothing to do: {} matches its inventory", inv.cluster.name)
    } else {
        format!(
            "apply would run {} step(s) in {} phase(s); nothing was changed",
            plan.step_count(),
            plan.phases.len()
        )
    }
}
