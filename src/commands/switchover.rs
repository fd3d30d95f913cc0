//! `pgxc-deploy switchover INVENTORY NODE`: a planned hand-over from a datanode's primary to
//! its streaming standby, losing nothing, after which the old primary streams from the new
//! one. In order, each step only after the previous one succeeded: refuse unless the primary
//! runs and the standby streams from it; stop the primary cleanly (`-m fast`: its last WAL
//! reaches the connected standby); wait until the standby has replayed the primary's final
//! checkpoint (pg_controldata); promote the standby and record the roles beside the inventory,
//! re-point every coordinator and check writes (what failover does, shared with it); write
//! the old primary's standby settings, start it, and wait until it streams from the new
//! primary. Decisions in [`crate::plan::switchover`].
//!
//! Run again on the same datanode, it switches back (the roles file says who is primary now).
//! The hand-over itself is [`hand_over`], which `restart --rolling --switchover` runs too.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::PairArgs;
use crate::executor::report;
use crate::executor::steps::{HostEnv, StepContext};
use crate::flavors::StopMode;
use crate::inventory::roles::Roles;
use crate::inventory::{Inventory, Node, roles};
use crate::plan::desired::{bin_dir, psql};
use crate::plan::diff::streamed_mark;
use crate::plan::pair::{self, Pair};
use crate::plan::render::Renderer;
use crate::plan::restart;
use crate::plan::step::{Action, FileContent, Step};
use crate::plan::switchover;
use crate::source::Layout;
use crate::transport::Fleet;

use super::failover::{commands, finish, label, node_facts, promote, record, run_one};
use super::{Error, Status, cluster, fleet};

pub async fn run(args: PairArgs) -> Result<Status, Error> {
    let started = Instant::now();
    let inv = cluster::load(&args.inventory)?;
    let mut roles = roles::load(&args.inventory).map_err(Error::from)?;
    let usage = |e: String| Error::Usage(format!("switchover: {e}"));
    let pair = pair::pair(&inv, &args.node).map_err(usage)?;
    pair::current(&inv, &roles, pair).map_err(usage)?;
    let datanode = pair.datanode.name.as_str();
    let fleet = fleet::fleet(&inv, &args.ssh);
    let layout = cluster::layout(&inv, &fleet, inv.hosts.iter().map(|h| h.name.as_str())).await?;
    let renderer = cluster::renderer(&inv)?;
    let envs = cluster::host_envs(&inv, &layout);
    let _lock =
        match cluster::lock(&inv, &fleet, &envs, "switchover", cluster::LockScope::Every).await {
            Ok(lock) => lock,
            Err(status) => return status,
        };
    // Read again under the lock: another command may have changed the roles meanwhile.
    roles = roles::load(&args.inventory).map_err(Error::from)?;
    if let Err(e) = pair::current(&inv, &roles, pair) {
        fleet.close().await;
        return Err(usage(e));
    }
    let deployed = Deployed {
        inventory: &args.inventory,
        inv: &inv,
        layout: &layout,
        renderer: &renderer,
        fleet: &fleet,
        envs: &envs,
        forks: args.ssh.forks,
    };
    let mut out = std::io::stdout();
    let handed = hand_over(&deployed, &mut roles, pair, started, &mut out).await;
    fleet.close().await;
    match handed? {
        Ok(done) => {
            let (new, old) = (done.new, done.old);
            let address = inv.host(&new.host).map(|h| h.address.as_str()).unwrap_or_default();
            writeln!(
                out,
                "switchover {datanode}: {} on {} ({address}:{}) is the primary, {} streams from \
                 it; writes accepted {:.2} s after switchover started ({:.2} s in all)",
                new.name,
                new.host,
                new.port,
                old.name,
                done.first_write.as_secs_f64(),
                started.elapsed().as_secs_f64()
            )?;
            Ok(Status::Ok)
        }
        Err(why) => {
            report::refused("switchover", datanode, &why, &mut out)?;
            Ok(Status::Failed)
        }
    }
}

/// A deployed cluster, as a hand-over needs it: `switchover` makes one for a single datanode,
/// `restart --rolling --switchover` one for the whole roll.
pub(super) struct Deployed<'a> {
    /// The inventory file: the roles file lives beside it.
    pub inventory: &'a Path,
    pub inv: &'a Inventory,
    pub layout: &'a Layout,
    pub renderer: &'a Renderer,
    pub fleet: &'a Fleet,
    pub envs: &'a BTreeMap<String, HostEnv>,
    pub forks: usize,
}

/// A hand-over that went through: `new` is the datanode's primary, `old` streams from it.
pub(super) struct HandedOver<'a> {
    pub old: &'a Node,
    pub new: &'a Node,
    /// From `started` until the datanode took writes on `new` (its checks passed).
    pub first_write: Duration,
}

/// Hand `pair`'s datanode over from its current primary to its current standby (the roles
/// file says which is which; `roles` is updated and saved), printing each step to `out`.
/// `Ok(Err(why))`: a step failed, and `why` says what state it left and what to do next;
/// `Err`: the roles file or the output could not be written.
pub(super) async fn hand_over<'a>(
    d: &Deployed<'a>,
    roles: &mut Roles,
    pair: Pair<'a>,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Result<HandedOver<'a>, String>, Error> {
    let (inv, layout, fleet, forks) = (d.inv, d.layout, d.fleet, d.forks);
    let now = match pair::current(inv, roles, pair) {
        Ok(now) => now,
        Err(why) => return Ok(Err(why)),
    };
    let datanode = pair.datanode.name.as_str();
    let (old, new) = (now.datanode, now.standby);
    let envs = d.envs;
    let cx = StepContext::plain(fleet, envs.clone());
    let psql_on = |node: &Node, sql: String| {
        let host = inv.host(&node.host).expect("validated inventory");
        let mut argv = psql(inv, node, &bin_dir(host, &layout.bin));
        argv.extend(["-v".into(), "ON_ERROR_STOP=1".into(), "-c".into(), sql]);
        argv
    };
    let step = |node: &Node, action| Step {
        host: node.host.clone(),
        node: Some(node.name.to_string()),
        action,
    };

    macro_rules! fail {
        ($($arg:tt)*) => {{
            return Ok(Err(format!($($arg)*)));
        }};
    }

    let facts = cluster::probe_nodes(inv, &[old, new], fleet, forks, envs, layout).await;
    let of = |n: &Node| node_facts(&facts, n).ok().flatten();
    if let Some(why) = switchover::refusal(old, new, of(old), of(new)) {
        fail!("refusing to switch from {} to {}: {why}; nothing was changed", old.name, new.name);
    }

    // A clean stop: the primary sends its last WAL to the connected standby, then writes a
    // shutdown checkpoint. The step polls `status` until the server is gone (10x a second;
    // 9.4's `pg_ctl -w` looks once a second, which kept X2 datanodes down a second longer).
    report::phase_header(&format!("stop {}", old.name), out)?;
    let old_commands = commands(inv, old, layout)?;
    let host = inv.host(&old.host).expect("validated inventory");
    let stop = step(
        old,
        Action::Stop {
            argv: restart::no_wait(&old_commands.stop_in(StopMode::Fast)),
            status: old_commands.status.clone(),
            remove: Vec::new(),
            // Its final checkpoint, read in the same round trip.
            then: vec![
                format!("{}/pg_controldata", bin_dir(host, &layout.bin)),
                old.data_dir.clone(),
            ],
        },
    );
    let outcome = run_one(&stop, &cx).await;
    report::progress(&stop, &outcome, out)?;
    let text = match outcome.result {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(_) => fail!(
            "{} did not stop cleanly: nothing was promoted; see {}/server.log on {} (`pgxc-deploy \
             start INVENTORY --on {}` starts it again if it stopped)",
            old.name,
            old.data_dir,
            old.host,
            old.name
        ),
    };
    let lsn = match switchover::checkpoint_lsn(&text) {
        Some(lsn) if switchover::shut_down_cleanly(&text) => lsn,
        _ => fail!(
            "cannot read a clean shutdown's checkpoint from pg_controldata on {}: nothing was \
             promoted; start {} again (`pgxc-deploy start INVENTORY --on {}`)",
            old.host,
            old.name,
            old.name
        ),
    };

    // Promote once the standby has replayed that checkpoint: nothing the primary wrote is lost.
    report::phase_header(&format!("promote {}", new.name), out)?;
    let replayed = (
        psql_on(new, switchover::replayed_sql(inv, &lsn)),
        format!("it replayed {}'s final checkpoint {lsn}", old.name),
    );
    if !promote(inv, new, layout, fleet, forks, envs, &cx, Some(replayed), out).await? {
        fail!(
            "{} on {} is still a standby (it did not replay up to {}'s final checkpoint {lsn}, or \
             the promote failed: see the step above) and {} is stopped: see {}/server.log, then \
             start {} again (`pgxc-deploy start INVENTORY --on {}`) or run failover",
            new.name,
            new.host,
            old.name,
            old.name,
            new.data_dir,
            old.name,
            old.name
        );
    }
    record(d.inventory, roles, datanode, new, old, true, out)?;
    // The coordinators are given every datanode where it is served now: another one may have
    // been handed over before (by this roll, or an earlier switchover), and the inventory's
    // addresses would move it back.
    let serving = roles.effective(inv).map_err(Error::Usage)?;
    let writable = finish(&serving, pair.datanode, new, layout, &cx, forks, out).await?;
    let first_write = started.elapsed();

    // The old primary follows: it wrote nothing the new primary lacks (clean stop, replayed),
    // so it needs no rewind.
    report::phase_header(&format!("{} follows {}", old.name, new.name), out)?;
    let files = switchover::follow_files(inv, d.renderer, old, new)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let mut follow: Vec<Step> = files
        .into_iter()
        .map(|file| {
            let data_dir = old.data_dir.clone();
            step(old, Action::WriteFile { data_dir, file, old: Some(String::new()) })
        })
        .collect();
    follow.push(step(
        old,
        Action::Start { argv: old_commands.start.clone(), ready: old_commands.ready.clone() },
    ));
    follow.push(step(
        new,
        Action::Await {
            argv: psql_on(new, switchover::streams_sql(old.name.as_str())),
            what: format!("{} streams from it", old.name),
            tenths: 600,
        },
    ));
    let mut follows = true;
    for s in &follow {
        let outcome = run_one(s, &cx).await;
        report::progress(s, &outcome, out)?;
        if outcome.result.is_err() {
            follows = false;
            break;
        }
    }
    if !follows {
        // It may run as something else than a streaming standby: stop it, it stays fenced.
        let fence = step(
            old,
            Action::Stop {
                argv: old_commands.stop_in(StopMode::Immediate),
                status: old_commands.status.clone(),
                remove: Vec::new(),
                then: Vec::new(),
            },
        );
        let outcome = run_one(&fence, &cx).await;
        report::progress(&fence, &outcome, out)?;
        fail!(
            "{} is the primary now, but {} cannot follow it (if its server.log says its timeline \
             is not a child of the new one, it diverged): it is stopped and recorded as fenced. \
             Next: `pgxc-deploy apply INVENTORY` rebuilds it as {}'s standby (pg_rewind, else \
             pg_basebackup)",
            new.name,
            old.name,
            new.name
        );
    }

    // Seen streaming: a later failover may promote it. Should the record fail, the hand-over
    // still stands; the next apply records it.
    let mark = step(old, streamed_mark(&old.data_dir));
    let outcome = run_one(&mark, &cx).await;
    report::progress(&mark, &outcome, out)?;

    if new.name == pair.datanode.name {
        // Back to the inventory's roles: nothing to remember, and the primary gets its own
        // files again (a switchover had written a standby's), reloaded now that its standby
        // streams (its synchronous_standby.conf may make commits wait for it).
        roles.datanodes.remove(datanode);
    } else if let Some(p) = roles.datanodes.get_mut(datanode) {
        p.old_primary_follows = true;
    }
    let path = roles::save(d.inventory, roles).map_err(|source| Error::Unrecorded {
        done: format!("{} serves {datanode} now and {} is its standby", new.name, old.name),
        source,
    })?;
    report::lifecycle_node(
        &label(old),
        "ok",
        &format!("standby of {} (recorded in {})", new.name, path.display()),
        out,
    )?;
    if new.name == pair.datanode.name {
        let files =
            d.renderer.node_files(inv, new).map_err(|e| Error::Usage(format!("templates: {e}")))?;
        let mut own: Vec<Step> = files
            .into_iter()
            .map(|f| {
                let file =
                    FileContent { name: f.name.to_string(), content: f.contents, mode: f.mode };
                step(
                    new,
                    Action::WriteFile {
                        data_dir: new.data_dir.clone(),
                        file,
                        old: Some(String::new()),
                    },
                )
            })
            .collect();
        if let Some(argv) = commands(inv, new, layout)?.reload {
            own.push(step(new, Action::Reload { argv, settings: Vec::new() }));
        }
        for s in &own {
            let outcome = run_one(s, &cx).await;
            report::progress(s, &outcome, out)?;
            if outcome.result.is_err() {
                fail!(
                    "{} is the primary and {} streams from it, but {}'s own configuration could \
                     not be restored: run apply",
                    new.name,
                    old.name,
                    new.name
                );
            }
        }
    }
    if !writable {
        fail!(
            "{} is promoted and {} streams from it, but the checks above failed: fix their cause \
             and run failover {datanode} (it redoes only those steps)",
            new.name,
            old.name
        );
    }
    Ok(Ok(HandedOver { old, new, first_write }))
}
