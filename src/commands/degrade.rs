//! `pgxc-deploy degrade INVENTORY NODE`: a datanode's synchronous standby is dead and every
//! commit on the primary waits for it. Write the primary's synchronous_standby.conf with
//! `synchronous_standby_names` emptied (the text apply holds while a standby does not stream,
//! so a later apply switches it back on by itself once the standby streams again), reload,
//! and wait until a commit goes through. Safe to repeat: the file is written only when it
//! differs. Decisions in [`crate::plan::degrade`].

use std::io::Write;
use std::time::Instant;

use crate::cli::PairArgs;
use crate::executor::report;
use crate::executor::steps::StepContext;
use crate::inventory::{self, Flavor, roles};
use crate::plan::degrade;
use crate::plan::desired::{bin_dir, desired};
use crate::plan::diff::SYNC_FILE;

use super::failover::{chain, label, node_facts, run_one};
use super::{Error, Status, cluster, fleet};

pub async fn run(args: PairArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = inventory::load(&args.inventory)?;
    let roles = roles::load(&args.inventory).map_err(|e| Error::Usage(chain(&e)))?;
    let pair = degrade::pair(&inv, &roles, &args.node)
        .map_err(|e| Error::Usage(format!("degrade: {e}")))?;
    let (primary, standby) = (pair.datanode, pair.standby);
    let layout = cluster::layout(&inv).await?;
    let renderer = cluster::renderer(&inv)?;
    let (_, nodes) = desired(&inv, &renderer, &layout.bin, None, None)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let want = nodes.iter().find(|n| n.name == primary.name.as_str()).expect("desired node");
    let fleet = fleet::fleet(&inv, &args.ssh);
    let envs = cluster::host_envs(&inv, &layout);
    let cx = StepContext::plain(&fleet, envs.clone());
    let mut out = std::io::stdout().lock();

    let facts = cluster::probe_nodes_reading(
        &inv,
        &[primary, standby],
        &fleet,
        args.ssh.forks,
        &envs,
        &layout,
        &[SYNC_FILE],
    )
    .await;
    let host = inv.host(&primary.host).expect("validated inventory");
    let mut check = crate::plan::desired::psql(&inv, primary, &bin_dir(host, &layout.bin));
    let sql = match inv.cluster.flavor {
        // A Postgres-XC datanode takes writes only through a coordinator: check the setting.
        Flavor::PostgresXc => degrade::SYNC_OFF_SQL.to_string(),
        Flavor::Postgresql => degrade::write_check_sql(),
    };
    check.extend(["-v".into(), "ON_ERROR_STOP=1".into(), "-c".into(), sql]);
    let primary_facts = match node_facts(&facts, primary) {
        Ok(f) => f,
        Err(why) => {
            writeln!(
                out,
                "error: degrade {}: its host {} is unreachable: {why}",
                primary.name, primary.host
            )?;
            fleet.close().await;
            return Ok(Status::Failed);
        }
    };
    let streams = primary_facts.is_some_and(|f| {
        f.replicas
            .iter()
            .any(|r| r.application_name == standby.name.as_str() && r.state == "streaming")
    });
    let steps = match degrade::steps(want, standby.name.as_str(), primary_facts, check) {
        Ok(steps) => steps,
        Err(why) => {
            writeln!(
                out,
                "error: degrade {}: {} on {}: {why}",
                primary.name, primary.name, primary.host
            )?;
            fleet.close().await;
            return Ok(Status::Failed);
        }
    };
    if streams {
        writeln!(
            out,
            "note: {} streams from {}: its commits did not wait for a dead standby; \
             degrading anyway (the next apply switches synchronous replication back on)",
            label(standby),
            primary.name
        )?;
    }
    if steps.len() == 2 {
        report::lifecycle_node(
            &label(primary),
            "ok",
            &format!("{SYNC_FILE} already off until {} streams: reloading again", standby.name),
            &mut out,
        )?;
    }
    report::phase_header(&format!("degrade {}", primary.name), &mut out)?;
    let mut ok = true;
    for step in &steps {
        let outcome = run_one(step, &cx).await;
        report::progress(step, &outcome, &mut out)?;
        if outcome.result.is_err() {
            ok = false;
            break;
        }
    }
    fleet.close().await;
    if !ok {
        writeln!(
            out,
            "error: degrade {}: the step above failed on {}; fix its cause and run degrade again",
            primary.name, primary.host
        )?;
        return Ok(Status::Failed);
    }
    writeln!(
        out,
        "degrade {}: synchronous replication off on {} until {} streams again (then \
         `pgxc-deploy apply` switches it back on); commits went through {:.2} s after degrade \
         started",
        primary.name,
        label(primary),
        standby.name,
        started.elapsed().as_secs_f64()
    )?;
    Ok(Status::Ok)
}
