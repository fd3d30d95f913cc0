//! What `switchover` decides, as values: which node is a datanode's primary and which its
//! standby right now (the roles file may have swapped them), whether the standby may take over
//! without losing anything, the old primary's final checkpoint, and the files that make the old
//! primary a standby of the new one. PURE: `ops::switchover` probes and runs the steps.
//!
//! No data loss: the primary stops cleanly (`-m fast`), which sends all its WAL to the
//! connected standby and ends with a shutdown checkpoint; the standby is promoted only once it
//! has replayed that checkpoint record. The old primary then follows the new one on the new
//! timeline, with nothing of its own to rewind.

use super::render::{RenderError, Renderer};
use super::state::NodeFacts;
use super::step::FileContent;
use crate::flavors;
use crate::inventory::{Inventory, Node, Role};

/// Why `standby` cannot take over from `primary` without losing anything, or `None`.
pub fn refusal<'a>(
    primary: &'a Node,
    standby: &'a Node,
    primary_facts: Option<&NodeFacts>,
    standby_facts: Option<&NodeFacts>,
) -> Option<Refusal<'a>> {
    let Some(p) = primary_facts.filter(|f| f.running) else {
        return Some(Refusal::PrimaryNotRunning { primary });
    };
    if p.in_recovery != Some(false) {
        return Some(Refusal::PrimaryInRecovery { primary });
    }
    let Some(s) = standby_facts.filter(|f| f.running) else {
        return Some(Refusal::StandbyNotRunning { standby });
    };
    if s.in_recovery != Some(true) {
        return Some(Refusal::StandbyIsPrimary { standby });
    }
    if !p.streams_to(standby.name.as_str()) {
        return Some(Refusal::NotStreaming { primary, standby });
    }
    None
}

/// Why a switchover must not start ([`refusal`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal<'a> {
    PrimaryNotRunning {
        primary: &'a Node,
    },
    PrimaryInRecovery {
        primary: &'a Node,
    },
    StandbyNotRunning {
        standby: &'a Node,
    },
    StandbyIsPrimary {
        standby: &'a Node,
    },
    /// The standby does not stream from the primary: the primary's last WAL would not reach it.
    NotStreaming {
        primary: &'a Node,
        standby: &'a Node,
    },
}

impl std::fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::PrimaryNotRunning { primary } => write!(
                f,
                "the primary {} is not running: a switchover hands over from a running primary \
                 (use failover when it is lost)",
                primary.name
            ),
            Refusal::PrimaryInRecovery { primary } => {
                write!(f, "{} is in recovery: it is not a primary", primary.name)
            }
            Refusal::StandbyNotRunning { standby } => {
                write!(f, "its standby {} is not running", standby.name)
            }
            Refusal::StandbyIsPrimary { standby } => {
                write!(f, "{} is not in recovery: it is a primary already", standby.name)
            }
            Refusal::NotStreaming { primary, standby } => write!(
                f,
                "{} does not stream from {}: the primary's last WAL would not reach it",
                standby.name, primary.name
            ),
        }
    }
}

/// The "Latest checkpoint location" pg_controldata prints, validated as an `X/Y` position (it
/// goes into SQL).
pub fn checkpoint_lsn(controldata: &str) -> Option<String> {
    let line = controldata.lines().find(|l| l.starts_with("Latest checkpoint location:"))?;
    let lsn = line.split_once(':')?.1.trim();
    let (hi, lo) = lsn.split_once('/')?;
    let hex = |s: &str| !s.is_empty() && s.len() <= 8 && s.chars().all(|c| c.is_ascii_hexdigit());
    (hex(hi) && hex(lo)).then(|| lsn.to_string())
}

/// The "Latest checkpoint's TimeLineID" pg_controldata prints: the timeline of its final
/// checkpoint record.
pub fn checkpoint_timeline(controldata: &str) -> Option<u32> {
    let line = controldata.lines().find(|l| l.starts_with("Latest checkpoint's TimeLineID:"))?;
    line.split_once(':')?.1.trim().parse().ok()
}

/// Whether the pg_controldata output says the server was shut down cleanly (not in
/// production, crashed or in recovery).
pub fn shut_down_cleanly(controldata: &str) -> bool {
    controldata
        .lines()
        .any(|l| l.starts_with("Database cluster state:") && l.trim_end().ends_with("shut down"))
}

/// SQL that fails until the standby has replayed the record at `lsn`.
pub fn replayed_sql(inv: &Inventory, lsn: &str) -> String {
    super::sql::replayed(&flavors::of(inv.cluster.flavor).replayed_past_sql(lsn))
}

/// What must hold before `standby` is promoted in place of `old`, whose final checkpoint
/// record starts at `lsn` on `timeline`: an argv that fails until it holds, and what it checks
/// in words. SQL on a standby that answers it (`psql_c` makes the argv that runs SQL there: it
/// replayed the record); else pg_waldump on its own WAL (`bin_dir`: the record is there, and
/// promoting replays it).
pub fn final_checkpoint_check(
    inv: &Inventory,
    psql_c: &dyn Fn(String) -> Vec<String>,
    bin_dir: &str,
    (standby, old): (&Node, &Node),
    (timeline, lsn): (u32, &str),
) -> (Vec<String>, String) {
    let flavor = flavors::of(inv.cluster.flavor);
    if flavor.standby_answers_sql() {
        let argv = psql_c(replayed_sql(inv, lsn));
        return (argv, format!("it replayed {}'s final checkpoint {lsn}", old.name));
    }
    (
        flavor.wal_holds_argv(bin_dir, &standby.data_dir, timeline, lsn),
        format!("its WAL holds {}'s final checkpoint {lsn} (promoting replays it)", old.name),
    )
}

/// The files that make `old` a standby of `new`, rendered as apply would render them for an
/// inventory where `new` is the datanode and `old` its standby: standby.signal and
/// postgresql.conf (primary_conninfo) on PostgreSQL 12+, recovery.conf on 9.4-based Postgres-XC
/// (its postgresql.conf stays: it holds the datanode's pgxc_node_name).
pub fn follow_files(
    inv: &Inventory,
    renderer: &Renderer,
    old: &Node,
    new: &Node,
) -> Result<Vec<FileContent>, RenderError> {
    let swapped = swapped(inv, old, new);
    let old = swapped.node(old.name.as_str()).expect("swapped keeps every node");
    let recovery_conf = flavors::of(inv.cluster.flavor).features().recovery_conf;
    Ok(renderer
        .node_files(&swapped, old)?
        .into_iter()
        .filter(|f| !(recovery_conf && f.name == "postgresql.conf"))
        .map(|f| FileContent { name: f.name.to_string(), content: f.contents, mode: f.mode })
        .collect())
}

/// `inv` with `new` as the datanode and `old` as its standby.
fn swapped(inv: &Inventory, old: &Node, new: &Node) -> Inventory {
    let mut swapped = inv.clone();
    for n in &mut swapped.nodes {
        if n.name == old.name {
            (n.role, n.primary) = (Role::Standby, Some(new.name.clone()));
        } else if n.name == new.name {
            (n.role, n.primary, n.synchronous) = (Role::Datanode, None, false);
        }
    }
    swapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::roles::{Promotion, Roles};
    use crate::plan::fixtures;
    use crate::plan::pair::{current, pair};
    use crate::plan::state::Replica;
    use crate::plan::state::ReplicaState;

    fn up(in_recovery: bool) -> NodeFacts {
        NodeFacts {
            initialized: true,
            running: true,
            alive: true,
            in_recovery: Some(in_recovery),
            ..Default::default()
        }
    }

    #[test]
    fn the_roles_file_says_who_is_primary_now() {
        let inv = fixtures::postgresql();
        let p = pair(&inv, "pg1").unwrap();
        let mut roles = Roles::default();
        assert_eq!(current(&inv, &roles, p).unwrap().datanode.name.as_str(), "pg1");
        let mut promotion = Promotion {
            primary: "pg1_standby".into(),
            old_primary: "pg1".into(),
            old_primary_fenced: true,
            old_primary_follows: true,
            failed_over_at_unix: 1,
        };
        roles.datanodes.insert("pg1".into(), promotion.clone());
        let now = current(&inv, &roles, p).unwrap();
        assert_eq!((now.datanode.name.as_str(), now.standby.name.as_str()), ("pg1_standby", "pg1"));
        promotion.old_primary_follows = false;
        roles.datanodes.insert("pg1".into(), promotion);
        assert!(current(&inv, &roles, p).unwrap_err().contains("pg1 is fenced"));
    }

    #[test]
    fn only_a_streaming_standby_of_a_running_primary_takes_over() {
        let inv = fixtures::postgresql();
        let (p, s) = (inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        let mut primary = up(false);
        let standby = up(true);
        assert_eq!(
            refusal(p, s, Some(&primary), Some(&standby)),
            Some(Refusal::NotStreaming { primary: p, standby: s })
        );
        let refused = refusal(p, s, Some(&primary), Some(&standby)).unwrap();
        assert!(refused.to_string().contains("does not stream"));
        primary.replicas.push(Replica {
            application_name: "pg1_standby".into(),
            state: ReplicaState::Streaming,
            sync_state: "sync".into(),
            lag_bytes: Some(0),
        });
        assert_eq!(refusal(p, s, Some(&primary), Some(&standby)), None);
        assert!(refusal(p, s, None, Some(&standby)).unwrap().to_string().contains("use failover"));
        let refused = refusal(p, s, Some(&primary), Some(&up(false))).unwrap();
        assert!(refused.to_string().contains("a primary already"));
    }

    #[test]
    fn reads_the_final_checkpoint_and_renders_the_old_primary_as_a_standby() {
        let out = "pg_control version number:            1300\n\
                   Database cluster state:               shut down\n\
                   Latest checkpoint location:           0/3000028\n";
        assert_eq!(checkpoint_lsn(out).as_deref(), Some("0/3000028"));
        let tli =
            "Latest checkpoint's TimeLineID:       3\nLatest checkpoint's PrevTimeLineID:   2\n";
        assert_eq!(checkpoint_timeline(tli), Some(3));
        assert_eq!(checkpoint_timeline(out), None);
        assert!(shut_down_cleanly(out));
        assert!(!shut_down_cleanly("Database cluster state:               in production\n"));
        assert_eq!(checkpoint_lsn("Latest checkpoint location: 0/30'; drop"), None);
        let inv = fixtures::postgresql();
        assert_eq!(
            replayed_sql(&inv, "0/3000028"),
            "select 1 / (pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/3000028') > 0)::int"
        );

        let (old, new) = (inv.node("pg1").unwrap(), inv.node("pg1_standby").unwrap());
        let psql = |sql: String| vec!["psql".to_string(), "-c".to_string(), sql];
        let (argv, what) = final_checkpoint_check(&inv, &psql, "/b", (new, old), (1, "0/3000028"));
        assert_eq!(argv[..2], ["psql", "-c"]);
        assert_eq!(what, "it replayed pg1's final checkpoint 0/3000028");
        // A Postgres-XL standby refuses SQL: its WAL is read instead.
        let mut xl = fixtures::postgres_xc();
        xl.cluster.flavor = crate::inventory::Flavor::PostgresXl;
        let (dn1, dn1_standby) = (xl.node("dn1").unwrap(), xl.node("dn1_standby").unwrap());
        let (argv, what) =
            final_checkpoint_check(&xl, &psql, "/b", (dn1_standby, dn1), (2, "0/3000028"));
        assert_eq!(
            argv.join(" "),
            "/b/pg_waldump -p /data/pgxc/dn1_standby/pg_wal -t 2 -s 0/3000028 -n 1"
        );
        assert!(what.starts_with("its WAL holds dn1's final checkpoint"), "{what}");

        let files = follow_files(&inv, &Renderer::new(), old, new).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["postgresql.conf", "pg_hba.conf", "standby.signal"]);
        let conf = &files[0].content;
        let new_host = inv.host(&new.host).unwrap();
        assert!(conf.contains(&format!("host={} port={}", new_host.address, new.port)), "{conf}");
        assert!(conf.contains("application_name=pg1"), "{conf}");

        let xc = fixtures::postgres_xc();
        let (old, new) = (xc.node("dn1").unwrap(), xc.node("dn1_standby").unwrap());
        let files = follow_files(&xc, &Renderer::new(), old, new).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["pg_hba.conf", "recovery.conf"]);
        assert!(files[1].content.contains("standby_mode = 'on'"));
    }
}
