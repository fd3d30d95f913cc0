//! What `failover` decides, as values: which standby serves a datanode, whether it may be
//! promoted (never one that is not a complete, streamed copy), whether the old primary can be
//! fenced, and what every coordinator's pgxc_node must say afterwards. PURE:
//! `ops::failover` probes, runs the steps one after the other and re-reads the state when
//! a step's outcome is unknown.

use super::state::{NodeFacts, PgxcNodeRow, ReplicaState};
use super::step::{Action, Step};
use crate::flavors::{NodeCommands, StopMode, StopWait};
use std::collections::BTreeMap;

use super::pair::Pair;
use super::state::HostFacts;
use crate::inventory::replication::{Lsn, Seen, Sight};
use crate::inventory::roles::Roles;
use crate::inventory::{Inventory, Node, Role};

/// What `failover` of a datanode does, given the roles file.
#[derive(Debug, Clone, Copy)]
pub enum Takeover<'a> {
    /// Fence `current.datanode` (the node serving the datanode now) and promote
    /// `current.standby`. With no roles entry, the inventory's pair; after a switchover, the
    /// other way round: the promoted standby is fenced and the inventory's datanode, which
    /// follows it, is promoted back.
    Promote { datanode: &'a Node, current: Pair<'a> },
    /// A failover already happened: `primary` serves the datanode and `fenced` is fenced, not
    /// a standby. There is nothing left to promote; only the coordinator part can be redone.
    Done { datanode: &'a Node, primary: &'a Node, fenced: &'a Node },
}

/// What failing over the inventory's `pair` means now (see [`Takeover`]).
pub fn takeover<'a>(
    inv: &'a Inventory,
    roles: &Roles,
    pair: Pair<'a>,
) -> Result<Takeover<'a>, String> {
    let datanode = pair.datanode;
    let Some(p) = roles.datanodes.get(datanode.name.as_str()) else {
        return Ok(Takeover::Promote { datanode, current: pair });
    };
    if p.old_primary_follows {
        let current = super::pair::current(inv, roles, pair)?;
        return Ok(Takeover::Promote { datanode, current });
    }
    let node = |name: &str| {
        inv.node(name)
            .ok_or_else(|| format!("the roles file names `{name}`, which is not in the inventory"))
    };
    Ok(Takeover::Done { datanode, primary: node(&p.primary)?, fenced: node(&p.old_primary)? })
}

/// After a failover (`Takeover::Done`): why failover must refuse, changing nothing, or `None`
/// when the primary it recorded runs out of recovery (failover then redoes the coordinator
/// part and the check, as after a partial failure). `facts`: that primary's probe.
pub fn again_refusal<'a>(
    datanode: &'a Node,
    primary: &'a Node,
    fenced: &'a Node,
    facts: Result<Option<&NodeFacts>, String>,
) -> Option<AlreadyFailedOver<'a>> {
    let state = match facts {
        Err(why) => PrimaryState::Unreachable(why),
        Ok(Some(f)) if f.running && f.in_recovery == Some(false) => return None,
        Ok(Some(f)) if f.running => PrimaryState::InRecovery,
        Ok(Some(_)) => PrimaryState::NotRunning,
        Ok(None) => PrimaryState::NotReported,
    };
    Some(AlreadyFailedOver { datanode, primary, fenced, state })
}

/// Why failover refuses after a failover: no standby is left, and the primary it recorded
/// does not run as a primary.
#[derive(Debug, Clone, PartialEq)]
pub struct AlreadyFailedOver<'a> {
    pub datanode: &'a Node,
    pub primary: &'a Node,
    pub fenced: &'a Node,
    /// How the recorded primary was seen.
    pub state: PrimaryState,
}

/// How the primary a failover recorded was seen, when it does not run as a primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimaryState {
    /// Its host could not be probed: why.
    Unreachable(String),
    InRecovery,
    NotRunning,
    NotReported,
}

impl std::fmt::Display for AlreadyFailedOver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            PrimaryState::Unreachable(why) => {
                format!("its host {} is unreachable: {why}", self.primary.host)
            }
            PrimaryState::InRecovery => "in recovery".to_string(),
            PrimaryState::NotRunning => "not running".to_string(),
            PrimaryState::NotReported => "not reported by the probe".to_string(),
        };
        write!(
            f,
            "{datanode} already failed over to {primary} (roles file), and {fenced} is fenced, \
             not a standby: there is no standby left to promote. {primary} on {host} is \
             {state}: start it again (`pgxc-deploy start INVENTORY --on {primary}`), or rebuild \
             {fenced} as its standby first (not implemented yet); nothing was changed",
            datanode = self.datanode.name,
            primary = self.primary.name,
            fenced = self.fenced.name,
            host = self.primary.host,
        )
    }
}

/// Why `standby` must not be promoted, or `None` when it may. `facts`: its probe (or why its
/// host could not be probed); `primary`: its primary's, when that was read.
///
/// A standby may be promoted when apply's init marker says its clone completed, it runs and
/// accepts connections in hot standby (so it replayed up to a consistent point: at least the
/// end of its base backup), it is in recovery, and it has streamed: its primary lists it as
/// streaming, or pgxc-deploy saw it stream since it became a standby
/// ([`super::state::STREAMED_MARKER`]). The server itself cannot tell: the position it
/// reports as received is set as soon as it asks to stream, before anything arrives.
pub fn refusal<'a>(
    standby: &'a Node,
    facts: Result<Option<&NodeFacts>, String>,
    primary: Option<&NodeFacts>,
) -> Option<NotPromotable<'a>> {
    let f = match facts {
        Err(why) => return Some(NotPromotable::Unreachable { standby, why }),
        Ok(None) => return Some(NotPromotable::NotReported),
        Ok(Some(f)) => f,
    };
    if !f.initialized {
        return Some(if f.staging || f.dir_exists {
            NotPromotable::Cloning { standby }
        } else {
            NotPromotable::NeverCloned { standby }
        });
    }
    if !f.running {
        // Only a hot standby that accepts connections has replayed up to a consistent point.
        return Some(NotPromotable::NotRunning { standby });
    }
    if f.in_recovery != Some(true) {
        return Some(NotPromotable::Primary);
    }
    let streams = primary.is_some_and(|p| p.streams_to(standby.name.as_str()));
    if !f.streamed && !streams {
        return Some(NotPromotable::NeverStreamed { standby });
    }
    None
}

/// Why a standby must not be promoted ([`refusal`]).
#[derive(Debug, Clone, PartialEq)]
pub enum NotPromotable<'a> {
    /// Its host could not be probed: why.
    Unreachable {
        standby: &'a Node,
        why: String,
    },
    NotReported,
    /// Its clone has not completed.
    Cloning {
        standby: &'a Node,
    },
    /// It has no data directory.
    NeverCloned {
        standby: &'a Node,
    },
    NotRunning {
        standby: &'a Node,
    },
    /// It is out of recovery: a primary already.
    Primary,
    /// Neither its primary nor pgxc-deploy ever saw it stream.
    NeverStreamed {
        standby: &'a Node,
    },
}

impl std::fmt::Display for NotPromotable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotPromotable::Unreachable { standby, why } => {
                write!(f, "its host {} is unreachable: {why}", standby.host)
            }
            NotPromotable::NotReported => f.write_str("the probe did not report it"),
            NotPromotable::Cloning { standby } => {
                write!(f, "it is still being cloned ({} is not complete)", standby.data_dir)
            }
            NotPromotable::NeverCloned { standby } => {
                write!(f, "{} does not exist: it was never cloned", standby.data_dir)
            }
            NotPromotable::NotRunning { standby } => write!(
                f,
                "it is not running: start it (`pgxc-deploy start INVENTORY --on {}`) and let it \
                 catch up first",
                standby.name
            ),
            NotPromotable::Primary => f.write_str("it is not in recovery: it is a primary already"),
            NotPromotable::NeverStreamed { standby } => write!(
                f,
                "pgxc-deploy never saw it stream from its primary (no {marker} in {dir}; apply \
                 and switchover write it once it streams), so it may lack what the primary \
                 committed since it was cloned. If you know it is complete, create \
                 {dir}/{marker} on {host} and run failover again",
                marker = super::state::STREAMED_MARKER,
                dir = standby.data_dir,
                host = standby.host,
            ),
        }
    }
}

/// What to do about the old primary before promoting its standby.
#[derive(Debug, Clone, PartialEq)]
pub enum Fence {
    /// Its server may run: stop it immediately.
    Stop(Step),
    /// Its host answered and no server process runs.
    Down,
    /// Its host cannot be reached (the usual case of an unplanned failover): nothing can be
    /// done there; it must not come back as a primary.
    Unreachable(String),
}

pub fn fence(
    node: &Node,
    commands: &NodeCommands,
    facts: Result<Option<&NodeFacts>, String>,
) -> Fence {
    match facts {
        Err(why) => Fence::Unreachable(why),
        Ok(Some(f)) if !f.running && !f.alive => Fence::Down,
        Ok(_) => Fence::Stop(Step {
            host: node.host.clone(),
            node: Some(node.name.clone()),
            action: Action::Stop {
                argv: commands.stop.argv(StopMode::Immediate, StopWait::Wait),
                mode: StopMode::Immediate,
                data_dir: commands.data_dir.clone(),
                status: commands.status.clone(),
                remove: Vec::new(),
                then: Vec::new(),
            },
        }),
    }
}

/// After the old primary's server is stopped (or found down): kill whatever of it still runs.
pub fn kill_leftovers(node: &Node) -> Step {
    Step {
        host: node.host.clone(),
        node: Some(node.name.clone()),
        action: Action::KillLeftovers { data_dir: node.data_dir.clone() },
    }
}

/// Promote `standby`, waiting until it leaves recovery. `psql`: psql argv on it. `after`:
/// an argv to poll until it succeeds before promoting, and what it waits for.
pub fn promote(
    standby: &Node,
    commands: &NodeCommands,
    psql: &[String],
    after: Option<(Vec<String>, String)>,
) -> Step {
    let mut primary = psql.to_vec();
    primary.extend(["-c".to_string(), super::sql::PRIMARY_CHECK.to_string()]);
    Step {
        host: standby.host.clone(),
        node: Some(standby.name.clone()),
        action: Action::Promote {
            argv: commands.promote.clone(),
            data_dir: commands.data_dir.clone(),
            primary,
            after,
        },
    }
}

/// A coordinator's desired pgxc_node with `datanode` moved to the node `new` (on `address`):
/// its port, and its forward port (OpenTenBase).
pub fn repointed(
    want: &[PgxcNodeRow],
    datanode: &str,
    address: &str,
    new: &Node,
) -> Vec<PgxcNodeRow> {
    want.iter()
        .map(|row| {
            if row.name == datanode {
                let (port, forward) = (new.port, new.forward_port.unwrap_or(0));
                PgxcNodeRow { host: address.to_string(), port, forward, ..row.clone() }
            } else {
                row.clone()
            }
        })
        .collect()
}

/// What the probe shows of every pair whose primary runs out of recovery: its position and
/// what it says of its standby, to keep in the replication record.
pub fn sightings<'a>(
    inv: &'a Inventory,
    facts: &'a BTreeMap<String, Result<HostFacts, String>>,
    at_unix: u64,
) -> Vec<Sight<'a>> {
    let node_facts = |n: &Node| facts.get(&n.host)?.as_ref().ok()?.nodes.get(n.name.as_str());
    inv.nodes
        .iter()
        .filter(|s| s.role == Role::Standby)
        .filter_map(|s| {
            let primary = inv.node(s.primary.as_ref()?.as_str())?;
            let f = node_facts(primary).filter(|f| f.running && f.in_recovery == Some(false))?;
            let replica = f.replicas.iter().find(|r| r.application_name == s.name.as_str());
            Some(Sight {
                datanode: s.datanode_name().as_str(),
                primary: primary.name.as_str(),
                standby: s.name.as_str(),
                at_unix,
                primary_lsn: f.wal?,
                streaming: replica.is_some_and(|r| r.state == ReplicaState::Streaming),
                synchronous: replica.is_some_and(|r| r.sync_state == "sync"),
                lag_bytes: replica.and_then(|r| r.lag_bytes),
            })
        })
        .collect()
}

/// What promoting a standby may lose of what its primary acknowledged, as far as pgxc-deploy
/// can tell ([`data_loss`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// A synchronous standby that never stopped being one: nothing acknowledged is missing.
    None,
    /// Commits may be missing, and how many bytes of WAL at least, where known.
    May { refuse: bool, why: String },
}

/// What [`data_loss`] weighs: the pair as it is now and as it was last seen.
#[derive(Debug, Clone, Copy)]
pub struct LossFacts<'a> {
    pub primary: &'a Node,
    pub standby: &'a Node,
    /// Whether the pair replicates synchronously (the inventory's standby is synchronous).
    pub synchronous: bool,
    /// The last sight of the pair, when it was taken of these two nodes.
    pub seen: Option<&'a Seen>,
    /// The primary's position now, when it runs (it is about to be fenced).
    pub primary_now: Option<Lsn>,
    /// Whether the primary's host file says synchronous replication is off (degraded), when
    /// its host answered.
    pub degraded_on_host: bool,
    /// The most WAL the standby has: received or replayed, whichever is further.
    pub standby_has: Option<Lsn>,
    pub maximum_lag: u64,
    pub now_unix: u64,
}

/// Whether promoting `f.standby` may lose commits `f.primary` acknowledged, and whether that
/// is reason to refuse without `--accept-data-loss`. A synchronous standby loses nothing
/// unless synchronous replication was switched off (degrade) and it has not caught up since
/// it was switched back on. An asynchronous one always may (the documented trade); it is
/// refused when it was not streaming when last seen, or when it was, or is now, behind the
/// last known primary position by more than `maximum_lag_on_failover`.
pub fn data_loss(f: LossFacts<'_>) -> Loss {
    let seen = f.seen.filter(|s| s.primary == f.primary.name.as_str());
    let known = f.primary_now.max(seen.map(|s| s.primary_lsn));
    let behind = known.zip(f.standby_has).map(|(k, s)| k.bytes_after(s));
    let has = match f.standby_has {
        Some(lsn) => format!("{} has WAL up to {lsn}", f.standby.name),
        None => format!("{}'s WAL position could not be read", f.standby.name),
    };
    let ago = |at: u64| duration(f.now_unix.saturating_sub(at));
    let last = match (f.primary_now, seen) {
        (Some(lsn), _) => format!("{} is at {lsn} now", f.primary.name),
        (None, Some(s)) => format!(
            "{} was at {} when last seen {} ago",
            f.primary.name,
            s.primary_lsn,
            ago(s.seen_at_unix)
        ),
        (None, None) => format!("pgxc-deploy never saw {}'s position", f.primary.name),
    };
    let behind_text = match behind {
        Some(b) if f.primary_now.is_some() => format!("{b} bytes behind"),
        Some(0) => "how much it wrote since is unknown".to_string(),
        Some(b) => format!("at least {b} bytes behind, plus what it wrote since"),
        None => "behind by an unknown amount".to_string(),
    };
    if f.synchronous {
        let async_since = seen.and_then(|s| s.asynchronous_since_unix);
        if async_since.is_none() && !f.degraded_on_host {
            return Loss::None;
        }
        let again = seen.and_then(|s| s.synchronous_again_at);
        if let (Some(again), Some(has)) = (again, f.standby_has)
            && has >= again
            && !f.degraded_on_host
        {
            return Loss::None;
        }
        let since = match (async_since, seen.and_then(|s| s.asynchronous_from_lsn)) {
            (Some(at), Some(lsn)) => format!(" since {} ago (from WAL position {lsn})", ago(at)),
            (Some(at), None) => format!(" since {} ago", ago(at)),
            _ => " (its synchronous_standby.conf says so)".to_string(),
        };
        return Loss::May {
            refuse: true,
            why: format!(
                "{primary} has not replicated synchronously to {standby}{since}, so commits it \
                 acknowledged meanwhile may be missing there: {has}; {last} ({behind_text})",
                primary = f.primary.name,
                standby = f.standby.name,
            ),
        };
    }
    let not_streaming = seen.filter(|s| !s.streaming).map(|s| {
        format!("{} was not streaming when last seen {} ago", f.standby.name, ago(s.seen_at_unix))
    });
    let lag = behind.or_else(|| seen.and_then(|s| Some(s.primary_lsn.bytes_after(s.standby_lsn?))));
    let over = lag.filter(|l| *l > f.maximum_lag).map(|l| {
        format!("{l} bytes behind is more than maximum_lag_on_failover ({})", f.maximum_lag)
    });
    let reasons: Vec<String> = not_streaming.into_iter().chain(over).collect();
    let refusal = (!reasons.is_empty()).then(|| reasons.join(", and "));
    Loss::May {
        refuse: refusal.is_some(),
        why: format!(
            "{standby} is an asynchronous standby: what {primary} committed beyond the WAL \
             {standby} has is lost{reason}: {has}; {last} ({behind_text})",
            standby = f.standby.name,
            primary = f.primary.name,
            reason = refusal.map(|r| format!(", and {r}")).unwrap_or_default(),
        ),
    }
}

/// `s` seconds as people read it: `42 s`, `3 min 5 s`, `2 h 1 min`.
fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flavors;
    use crate::plan::fixtures;
    use crate::plan::pair::pair;
    use crate::plan::state::Replica;

    fn loss(primary: &str, standby: &str, seen: Option<&Seen>, now: Option<u64>, has: u64) -> Loss {
        let inv = fixtures::postgres_xc();
        data_loss(LossFacts {
            primary: inv.node(primary).unwrap(),
            standby: inv.node(standby).unwrap(),
            synchronous: inv.node(standby).unwrap().synchronous,
            seen,
            primary_now: now.map(Lsn),
            degraded_on_host: false,
            standby_has: Some(Lsn(has)),
            maximum_lag: 1 << 20,
            now_unix: 1000,
        })
    }

    fn seen(primary: &str, standby: &str, lsn: u64, lag: u64, streaming: bool) -> Seen {
        Seen {
            primary: primary.into(),
            standby: standby.into(),
            seen_at_unix: 990,
            primary_lsn: Lsn(lsn),
            standby_lsn: Some(Lsn(lsn - lag)),
            streaming,
            synchronous: false,
            asynchronous_since_unix: None,
            asynchronous_from_lsn: None,
            synchronous_again_at: None,
        }
    }

    #[test]
    fn a_synchronous_standby_loses_nothing_unless_it_was_degraded_since() {
        let mut s = seen("dn1", "dn1_standby", 5000, 0, true);
        assert_eq!(loss("dn1", "dn1_standby", Some(&s), None, 5000), Loss::None);
        assert_eq!(loss("dn1", "dn1_standby", None, None, 0), Loss::None);
        (s.asynchronous_since_unix, s.asynchronous_from_lsn) = (Some(700), Some(Lsn(4000)));
        let Loss::May { refuse: true, why } = loss("dn1", "dn1_standby", Some(&s), None, 4000)
        else {
            panic!("degraded: refused");
        };
        assert!(why.contains("since 5 min 0 s ago (from WAL position 0/FA0)"), "{why}");
        assert!(why.contains("dn1_standby has WAL up to 0/FA0"), "{why}");
        assert!(why.contains("at least 1000 bytes behind"), "{why}");
        let Loss::May { why, .. } = loss("dn1", "dn1_standby", Some(&s), None, 5000) else {
            panic!("degraded: refused");
        };
        assert!(why.contains("how much it wrote since is unknown"), "{why}");
        // Synchronous again at 4500: complete once it has that much.
        s.synchronous_again_at = Some(Lsn(4500));
        assert!(matches!(loss("dn1", "dn1_standby", Some(&s), None, 4400), Loss::May { .. }));
        assert_eq!(loss("dn1", "dn1_standby", Some(&s), None, 4500), Loss::None);
        // A sight of the pair with another primary (before a failover) is not this one's.
        (s.synchronous_again_at, s.primary) = (None, "dn1_standby".into());
        assert_eq!(loss("dn1", "dn1_standby", Some(&s), None, 0), Loss::None);
    }

    #[test]
    fn an_asynchronous_standby_is_refused_when_it_was_too_far_behind_or_not_streaming() {
        let s = seen("dn2", "dn2_replica", 10 << 20, 100, true);
        let Loss::May { refuse: false, why } =
            loss("dn2", "dn2_replica", Some(&s), None, s.standby_lsn.unwrap().0)
        else {
            panic!("within the limit: stated, not refused");
        };
        assert!(why.contains("asynchronous") && why.contains("at least 100 bytes behind"), "{why}");
        assert!(why.contains("when last seen 10 s ago"), "{why}");
        let far = loss("dn2", "dn2_replica", Some(&s), None, 8 << 20);
        assert!(
            matches!(&far, Loss::May { refuse: true, why } if why.contains("2097152 bytes behind is more than maximum_lag_on_failover (1048576)")),
            "{far:?}"
        );
        let live = loss("dn2", "dn2_replica", None, Some(3 << 20), 1 << 20);
        assert!(
            matches!(&live, Loss::May { refuse: true, why } if why.contains("dn2 is at 0/300000 now")),
            "{live:?}"
        );
        let stopped = seen("dn2", "dn2_replica", 10 << 20, 0, false);
        let quiet = loss("dn2", "dn2_replica", Some(&stopped), None, 10 << 20);
        assert!(
            matches!(&quiet, Loss::May { refuse: true, why } if why.contains("not streaming when last seen")),
            "{quiet:?}"
        );
        let unknown = loss("dn2", "dn2_replica", None, None, 0);
        assert!(
            matches!(&unknown, Loss::May { refuse: false, why } if why.contains("never saw")),
            "{unknown:?}"
        );
    }

    fn streaming_standby() -> NodeFacts {
        NodeFacts {
            dir_exists: true,
            initialized: true,
            running: true,
            alive: true,
            in_recovery: Some(true),
            streamed: true,
            ..Default::default()
        }
    }

    #[test]
    fn never_promotes_a_standby_that_is_not_a_complete_streamed_copy() {
        let inv = fixtures::postgresql();
        let s = inv.node("pg1_standby").unwrap();
        assert_eq!(refusal(s, Ok(Some(&streaming_standby())), None), None);

        let mut cloning = streaming_standby();
        (cloning.initialized, cloning.running, cloning.staging) = (false, false, true);
        assert_eq!(
            refusal(s, Ok(Some(&cloning)), None).unwrap().to_string(),
            "it is still being cloned (/srv/pg/pg1_standby is not complete)"
        );

        let mut never = streaming_standby();
        never.streamed = false;
        assert_eq!(
            refusal(s, Ok(Some(&never)), None).unwrap().to_string(),
            "pgxc-deploy never saw it stream from its primary (no .pgxc-deploy-streamed in \
             /srv/pg/pg1_standby; apply and switchover write it once it streams), so it may lack \
             what the primary committed since it was cloned. If you know it is complete, create \
             /srv/pg/pg1_standby/.pgxc-deploy-streamed on pg-b and run failover again"
        );
        // ... unless its primary, still up, shows it streaming.
        let primary = NodeFacts {
            running: true,
            replicas: vec![Replica {
                application_name: "pg1_standby".into(),
                state: ReplicaState::Streaming,
                sync_state: "async".into(),
                lag_bytes: Some(0),
            }],
            ..Default::default()
        };
        assert_eq!(refusal(s, Ok(Some(&never)), Some(&primary)), None);

        let mut down = streaming_standby();
        (down.running, down.alive) = (false, false);
        let refused = refusal(s, Ok(Some(&down)), None).unwrap();
        assert!(refused.to_string().starts_with("it is not running"));
        let mut promoted = streaming_standby();
        promoted.in_recovery = Some(false);
        let refused = refusal(s, Ok(Some(&promoted)), None).unwrap();
        assert!(refused.to_string().contains("a primary already"));
        assert_eq!(
            refusal(s, Err("connect: refused".into()), None).unwrap().to_string(),
            "its host pg-b is unreachable: connect: refused"
        );
    }

    #[test]
    fn fences_a_reachable_old_primary_immediately() {
        let inv = fixtures::postgresql();
        let pg1 = inv.node("pg1").unwrap();
        let c = flavors::of(inv.cluster.flavor).commands(&inv, pg1, "/b").unwrap();
        let up = NodeFacts { running: true, alive: true, ..Default::default() };
        assert_eq!(fence(pg1, &c, Ok(Some(&up))).to_string_step(), "pg1 on pg-a: stop (immediate)");
        let hung = NodeFacts { alive: true, ..Default::default() };
        assert!(matches!(fence(pg1, &c, Ok(Some(&hung))), Fence::Stop(_)));
        assert_eq!(fence(pg1, &c, Ok(Some(&NodeFacts::default()))), Fence::Down);
        assert_eq!(fence(pg1, &c, Err("x".into())), Fence::Unreachable("x".into()));
    }

    impl Fence {
        fn to_string_step(&self) -> String {
            match self {
                Fence::Stop(step) => step.to_string(),
                other => format!("{other:?}"),
            }
        }
    }

    #[test]
    fn promote_waits_for_the_end_of_recovery_and_coordinators_point_at_the_standby() {
        let inv = fixtures::postgres_xc();
        let s = inv.node("dn1_standby").unwrap();
        let c = flavors::of(inv.cluster.flavor).commands(&inv, s, "/b").unwrap();
        let step = promote(s, &c, &["psql".to_string()], None);
        let Action::Promote { argv, primary, .. } = &step.action else { panic!("a promote step") };
        assert_eq!(argv.join(" "), "/b/pg_ctl -D /data/pgxc/dn1_standby promote");
        assert_eq!(primary.join(" "), format!("psql -c {}", crate::plan::sql::PRIMARY_CHECK));

        let row = |name: &str, host: &str, port| PgxcNodeRow {
            name: name.into(),
            kind: crate::plan::state::NodeKind::Datanode,
            host: host.into(),
            port,
            primary: false,
            preferred: false,
            forward: 0,
        };
        let want = [row("dn1", "db2.example.com", 15432), row("dn2", "fd00::3", 15433)];
        assert_eq!(
            repointed(&want, "dn1", "fd00::3", s),
            [row("dn1", "fd00::3", 15432), row("dn2", "fd00::3", 15433)]
        );
        // OpenTenBase: the forward port moves with it.
        let otb = fixtures::opentenbase();
        let s = otb.node("dn1_standby").unwrap();
        let moved = PgxcNodeRow { forward: 15434, ..row("dn1", "fd00::3", 15432) };
        let want = [PgxcNodeRow { forward: 15434, ..row("dn1", "db2.example.com", 15432) }];
        assert_eq!(repointed(&want, "dn1", "fd00::3", s), [moved]);
        assert_eq!(
            crate::plan::sql::primary_through_coordinator("dn1"),
            "execute direct on (dn1) 'select 1 / (not pg_is_in_recovery())::int'"
        );
    }

    #[test]
    fn after_a_switchover_failover_promotes_the_inventory_s_datanode_back() {
        use crate::inventory::roles::Roles;
        let inv = fixtures::postgresql();
        let p = pair(&inv, "pg1_standby").unwrap();
        let names = |t: Takeover| match t {
            Takeover::Promote { datanode, current } => format!(
                "promote {} fencing {} for {}",
                current.standby.name, current.datanode.name, datanode.name
            ),
            Takeover::Done { datanode, primary, fenced } => {
                format!("done: {} serves {}, {} fenced", primary.name, datanode.name, fenced.name)
            }
        };
        let t = takeover(&inv, &Roles::default(), p).unwrap();
        assert_eq!(names(t), "promote pg1_standby fencing pg1 for pg1");
        // Switched over: pg1_standby is the primary, pg1 follows it.
        let switched = Roles::handed_over("pg1", "pg1_standby", true);
        assert_eq!(
            names(takeover(&inv, &switched, p).unwrap()),
            "promote pg1 fencing pg1_standby for pg1"
        );
        // Failed over: nothing left to promote.
        let failed = Roles::handed_over("pg1", "pg1_standby", false);
        assert_eq!(
            names(takeover(&inv, &failed, p).unwrap()),
            "done: pg1_standby serves pg1, pg1 fenced"
        );
        // Failed over after a switchover: pg1 serves itself, pg1_standby fenced.
        let mut back = Roles::handed_over("pg1", "pg1_standby", false);
        let entry = back.datanodes.get_mut("pg1").unwrap();
        (entry.primary, entry.old_primary) = ("pg1".into(), "pg1_standby".into());
        assert_eq!(
            names(takeover(&inv, &back, p).unwrap()),
            "done: pg1 serves pg1, pg1_standby fenced"
        );
        assert_eq!(back.promoted("pg1").unwrap().0, "pg1");
        assert_eq!(back.fenced("pg1_standby").unwrap().0, "pg1");
        assert!(back.fenced("pg1").is_none() && back.follower("pg1").is_none());
        let mut unknown = back.clone();
        unknown.datanodes.get_mut("pg1").unwrap().old_primary = "gone".into();
        assert!(takeover(&inv, &unknown, p).unwrap_err().contains("`gone`"));
    }

    #[test]
    fn again_after_a_failover_refuses_unless_the_recorded_primary_runs_out_of_recovery() {
        let inv = fixtures::postgresql();
        let (pg1, standby) = (inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        let primary = NodeFacts { running: true, in_recovery: Some(false), ..Default::default() };
        assert_eq!(again_refusal(pg1, standby, pg1, Ok(Some(&primary))), None);
        let down = NodeFacts::default();
        let why = again_refusal(pg1, standby, pg1, Ok(Some(&down))).unwrap().to_string();
        assert!(
            why.starts_with(
                "pg1 already failed over to pg1_standby (roles file), and pg1 is fenced, not a \
                 standby: there is no standby left to promote. pg1_standby on pg-b is not running"
            ),
            "{why}"
        );
        assert!(why.ends_with("nothing was changed"), "{why}");
        let standby_again =
            NodeFacts { running: true, in_recovery: Some(true), ..Default::default() };
        assert!(
            again_refusal(pg1, standby, pg1, Ok(Some(&standby_again)))
                .unwrap()
                .to_string()
                .contains("is in recovery")
        );
        assert!(
            again_refusal(pg1, standby, pg1, Err("refused".into()))
                .unwrap()
                .to_string()
                .contains("unreachable: refused")
        );
    }
}
