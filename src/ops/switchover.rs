//! Switchover (`pgxc-deploy switchover INVENTORY NODE`): a planned hand-over from a datanode's primary to
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

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::executor::report;
use crate::flavors::{StopMode, StopWait};
use crate::inventory::roles::Roles;
use crate::inventory::{Inventory, Node, roles};
use crate::plan::desired::bin_dir;
use crate::plan::diff::streamed_mark;
use crate::plan::pair::{self, Pair};
use crate::plan::sql;
use crate::plan::step::{Action, FileContent, Step};
use crate::plan::switchover;

use super::cluster::LockScope;
use super::failover::{finish, node_facts, promote, record};
use super::session::{Session, label};
use super::{Error, Status};

/// Refuse up front, before connecting, a switchover that the inventory and the roles file
/// beside it (`path`) already rule out.
pub fn precheck(path: &Path, inv: &Inventory, node: &str) -> Result<(), Error> {
    let roles = roles::load(path).map_err(Error::from)?;
    let usage = |e: String| Error::Usage(format!("switchover: {e}"));
    let pair = pair::pair(inv, node).map_err(usage)?;
    pair::current(inv, &roles, pair).map_err(usage)?;
    Ok(())
}

/// Switch `node`'s datanode over to its standby under the cluster lock (every host), and say
/// how it ended. `started`: when the command started, for the last line.
pub async fn switchover(
    s: &Session,
    node: &str,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let inv = &s.inv;
    let usage = |e: String| Error::Usage(format!("switchover: {e}"));
    let pair = pair::pair(inv, node).map_err(usage)?;
    let datanode = pair.datanode.name.as_str();
    let _lock = match s.lock("switchover", LockScope::Every).await {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    // Read again under the lock: another command may have changed the roles meanwhile.
    let mut roles = roles::load(&s.path).map_err(Error::from)?;
    pair::current(inv, &roles, pair).map_err(usage)?;
    match hand_over(s, &mut roles, pair, started, out).await? {
        Ok(done) => {
            let (new, old) = (done.new, done.old);
            let address = inv.host(&new.host).map(|h| h.address.as_str()).unwrap_or_default();
            let (first_write, elapsed) = (done.first_write, started.elapsed());
            report::switched_over(datanode, new, old, address, first_write, elapsed, out)?;
            Ok(Status::Ok)
        }
        Err(why) => {
            report::refused("switchover", datanode, &why, out)?;
            Ok(Status::Failed)
        }
    }
}

/// A hand-over that went through: `new` is the datanode's primary, `old` streams from it.
pub struct HandedOver<'a> {
    pub old: &'a Node,
    pub new: &'a Node,
    /// From `started` until the datanode took writes on `new` (its checks passed).
    pub first_write: Duration,
}

/// Hand `pair`'s datanode over from its current primary to its current standby (the roles
/// file says which is which; `roles` is updated and saved), printing each step to `out`.
/// `Ok(Err(why))`: a step failed, and `why` says what state it left and what to do next;
/// `Err`: the roles file or the output could not be written.
pub async fn hand_over<'a>(
    s: &'a Session,
    roles: &mut Roles,
    pair: Pair<'a>,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Result<HandedOver<'a>, String>, Error> {
    let (inv, layout) = (&s.inv, &s.layout);
    let now = match pair::current(inv, roles, pair) {
        Ok(now) => now,
        Err(why) => return Ok(Err(why)),
    };
    let datanode = pair.datanode.name.as_str();
    let (old, new) = (now.datanode, now.standby);
    let step = |node: &Node, action| Step {
        host: node.host.clone(),
        node: Some(node.name.clone()),
        action,
    };

    macro_rules! fail {
        ($($arg:tt)*) => {{
            return Ok(Err(format!($($arg)*)));
        }};
    }

    let facts = s.probe(&[old, new]).await;
    let of = |n: &Node| node_facts(&facts, n).ok().flatten();
    if let Some(why) = switchover::refusal(old, new, of(old), of(new)) {
        fail!("refusing to switch from {} to {}: {why}; nothing was changed", old.name, new.name);
    }

    // A clean stop: the primary sends its last WAL to the connected standby, then writes a
    // shutdown checkpoint. The step polls `status` until the server is gone (10x a second;
    // 9.4's `pg_ctl -w` looks once a second, which kept X2 datanodes down a second longer).
    report::phase_header(&format!("stop {}", old.name), out)?;
    let old_commands = s.commands(old)?;
    let host = inv.host(&old.host).expect("validated inventory");
    let stop = step(
        old,
        Action::Stop {
            argv: old_commands.stop.argv(StopMode::Fast, StopWait::NoWait),
            mode: StopMode::Fast,
            data_dir: old_commands.data_dir.clone(),
            status: old_commands.status.clone(),
            remove: Vec::new(),
            // Its final checkpoint, read in the same round trip.
            then: vec![
                format!("{}/pg_controldata", bin_dir(host, &layout.bin)),
                old.data_dir.clone(),
            ],
        },
    );
    let outcome = s.run_one(&stop).await;
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
    let checkpoint = switchover::checkpoint_lsn(&text).zip(switchover::checkpoint_timeline(&text));
    let (lsn, timeline) = match checkpoint {
        Some(checkpoint) if switchover::shut_down_cleanly(&text) => checkpoint,
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
    let new_host = inv.host(&new.host).expect("validated inventory");
    let replayed = switchover::final_checkpoint_check(
        inv,
        &|sql| s.psql_on(new, sql),
        &bin_dir(new_host, &layout.bin),
        (new, old),
        (timeline, &lsn),
    );
    if !promote(s, new, Some(replayed), out).await? {
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
    record(&s.path, roles, datanode, new, old, true, out)?;
    // The coordinators are given every datanode where it is served now: another one may have
    // been handed over before (by this roll, or an earlier switchover), and the inventory's
    // addresses would move it back.
    let serving = roles.effective(inv).map_err(Error::Usage)?;
    let writable = finish(s, &serving, pair.datanode, new, out).await?;
    let first_write = started.elapsed();

    // The old primary follows: it wrote nothing the new primary lacks (clean stop, replayed),
    // so it needs no rewind.
    report::phase_header(&format!("{} follows {}", old.name, new.name), out)?;
    let files = switchover::follow_files(inv, &s.renderer, old, new)
        .map_err(|e| Error::Usage(format!("templates: {e}")))?;
    let mut follow: Vec<Step> = files
        .into_iter()
        .map(|file| {
            let data_dir = old.data_dir.clone();
            step(old, Action::WriteFile { data_dir, file, old: Some(String::new()) })
        })
        .collect();
    follow.push(step(old, Action::start(&old_commands)));
    follow.push(step(
        new,
        Action::Await {
            argv: s.psql_on(new, sql::streaming(old.name.as_str())),
            what: format!("{} streams from it", old.name),
            tenths: 600,
        },
    ));
    let mut follows = true;
    for st in &follow {
        let outcome = s.run_one(st).await;
        report::progress(st, &outcome, out)?;
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
                argv: old_commands.stop.argv(StopMode::Immediate, StopWait::Wait),
                mode: StopMode::Immediate,
                data_dir: old_commands.data_dir.clone(),
                status: old_commands.status.clone(),
                remove: Vec::new(),
                then: Vec::new(),
            },
        );
        let outcome = s.run_one(&fence).await;
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
    let outcome = s.run_one(&mark).await;
    report::progress(&mark, &outcome, out)?;

    if new.name == pair.datanode.name {
        // Back to the inventory's roles: nothing to remember, and the primary gets its own
        // files again (a switchover had written a standby's), reloaded now that its standby
        // streams (its synchronous_standby.conf may make commits wait for it).
        roles.datanodes.remove(datanode);
    } else if let Some(p) = roles.datanodes.get_mut(datanode) {
        p.old_primary_follows = true;
    }
    let path = roles::save(&s.path, roles).map_err(|source| Error::Unrecorded {
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
            s.renderer.node_files(inv, new).map_err(|e| Error::Usage(format!("templates: {e}")))?;
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
        if let Some(argv) = s.commands(new)?.reload {
            own.push(step(new, Action::Reload { argv, settings: Vec::new() }));
        }
        for st in &own {
            let outcome = s.run_one(st).await;
            report::progress(st, &outcome, out)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::ops::scripted::{self, Scripted, World, healthy, streaming};
    use crate::plan::fixtures;

    const CONTROLDATA: &str = "Database cluster state:               shut down\n\
                               Latest checkpoint location:           0/3000028\n\
                       Latest checkpoint's TimeLineID:       1\n";

    /// Switch `node` over in a session on `world`; its status, what it printed, the stand-in.
    async fn switch(
        inv: &Inventory,
        script: impl FnOnce(&Scripted),
        world: World,
        node: &str,
    ) -> (Status, String, Scripted, tempfile::TempDir) {
        let op =
            async |s: &Session, out: &mut Vec<u8>| switchover(s, node, Instant::now(), out).await;
        let ran = scripted::run(inv, world, script, op).await;
        (ran.status, ran.out, ran.hosts, ran.dir)
    }

    fn pair_streaming(inv: &Inventory) -> World {
        let mut world = healthy(inv);
        streaming(&mut world, inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        world
    }

    #[tokio::test]
    async fn the_standby_is_promoted_only_after_the_clean_stop_and_the_old_primary_follows() {
        let inv = fixtures::postgresql();
        let (status, out, hosts, dir) =
            switch(&inv, |h| h.prints("pg1: stop", CONTROLDATA), pair_streaming(&inv), "pg1").await;
        assert_eq!(status, Status::Ok, "{out}");
        assert_eq!(
            hosts.log(),
            [
                "lock switchover",
                "pg1: stop (fast)",
                "pg1_standby: promote once it replayed pg1's final checkpoint 0/3000028",
                "pg1_standby: check: it takes writes",
                "pg1: update postgresql.conf",
                "pg1: update pg_hba.conf",
                "pg1: update standby.signal",
                "pg1: start",
                "pg1_standby: await: pg1 streams from it",
                "pg1: create .pgxc-deploy-streamed",
            ]
        );
        assert!(out.contains("switchover pg1: pg1_standby on pg-b"), "{out}");
        let roles = crate::inventory::roles::load(&dir.path().join("lab.toml")).unwrap();
        assert_eq!(roles.datanodes["pg1"].primary, "pg1_standby");
        assert!(roles.datanodes["pg1"].old_primary_follows);
    }

    #[tokio::test]
    async fn a_primary_that_does_not_stop_cleanly_leaves_its_standby_unpromoted() {
        let inv = fixtures::postgresql();
        let (status, out, hosts, dir) =
            switch(&inv, |h| h.fail_while("pg1: stop", |_| true), pair_streaming(&inv), "pg1")
                .await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock switchover", "pg1: stop (fast)"]);
        assert!(out.contains("pg1 did not stop cleanly: nothing was promoted"), "{out}");
        assert!(!dir.path().join("lab.roles.toml").exists());
    }

    #[tokio::test]
    async fn a_stop_that_was_not_a_clean_shutdown_promotes_nothing() {
        let inv = fixtures::postgresql();
        let crashed = "Database cluster state:               in production\n\
                       Latest checkpoint location:           0/3000028\n\
                       Latest checkpoint's TimeLineID:       1\n";
        let (status, out, hosts, _dir) =
            switch(&inv, |h| h.prints("pg1: stop", crashed), pair_streaming(&inv), "pg1").await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock switchover", "pg1: stop (fast)"]);
        assert!(out.contains("cannot read a clean shutdown's checkpoint"), "{out}");
    }

    #[tokio::test]
    async fn a_standby_that_does_not_stream_is_refused_before_the_primary_stops() {
        let inv = fixtures::postgresql();
        let (status, out, hosts, _dir) = switch(&inv, |_| {}, healthy(&inv), "pg1").await;
        assert_eq!(status, Status::Failed);
        assert_eq!(hosts.log(), ["lock switchover"]);
        assert!(out.contains("pg1_standby does not stream from pg1"), "{out}");
    }
}
