//! The replication record: what pgxc-deploy last saw of each datanode's replication, kept
//! beside the inventory as `<dir>/<stem>.replication.toml` (like the roles file), so that a
//! failover after the primary's machine is gone still knows how far the primary had got and
//! whether its standby was synchronous. `status` (every refresh), `apply` and `degrade` write
//! it; `failover` reads it to refuse a standby that may lack acknowledged commits
//! ([`crate::plan::failover::data_loss`]); `clean --yes` removes it. Pure except [`load`] and
//! [`save`].
//!
//! ```toml
//! [datanodes.pg2]
//! primary = "pg2"                     # the node that served pg2 when seen
//! standby = "pg2_standby"
//! seen_at_unix = 1764236000
//! primary_lsn = "0/3000060"           # pg_current_wal_lsn() then
//! standby_lsn = "0/3000000"           # what the primary said the standby had replayed
//! streaming = true
//! synchronous = false                 # pg_stat_replication.sync_state was 'sync'
//! asynchronous_since_unix = 1764235900  # degrade switched synchronous replication off ...
//! asynchronous_from_lsn = "0/2000000"   # ... with the primary here
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::beside;

/// A WAL position (`pg_lsn`), as PostgreSQL prints it: `X/Y`, two hexadecimal halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Bytes from `earlier` to `self` (0 when `earlier` is not earlier).
    pub fn bytes_after(self, earlier: Lsn) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl FromStr for Lsn {
    type Err = String;
    fn from_str(text: &str) -> Result<Lsn, String> {
        let bad = || format!("`{text}` is not a WAL position (X/Y in hexadecimal)");
        let (hi, lo) = text.trim().split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Lsn, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Every datanode pair seen, by datanode name (the name coordinators know).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    #[serde(default)]
    pub datanodes: BTreeMap<String, Seen>,
}

/// The last sight of one pair, taken from its primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    pub primary: String,
    pub standby: String,
    pub seen_at_unix: u64,
    pub primary_lsn: Lsn,
    /// The primary's position less the standby's replay lag, when the standby had replied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_lsn: Option<Lsn>,
    pub streaming: bool,
    pub synchronous: bool,
    /// When synchronous replication was switched off for the pair (degrade), until the
    /// standby is seen to have caught up under synchronous replication again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asynchronous_since_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asynchronous_from_lsn: Option<Lsn>,
    /// The primary's position when it was first seen synchronous again: a standby that has
    /// this much has every commit of the asynchronous time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous_again_at: Option<Lsn>,
}

/// One look at a pair's primary: its position and what it said of the standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sight<'a> {
    pub datanode: &'a str,
    pub primary: &'a str,
    pub standby: &'a str,
    pub at_unix: u64,
    pub primary_lsn: Lsn,
    pub streaming: bool,
    pub synchronous: bool,
    pub lag_bytes: Option<u64>,
}

impl Record {
    /// Take in a look at a pair. A pair whose nodes changed (a failover, a switchover) starts
    /// afresh. A degraded pair stays so until the standby, synchronous again, has replayed
    /// past where the primary was when it became synchronous again.
    pub fn saw(&mut self, s: Sight<'_>) {
        let standby_lsn = s.lag_bytes.map(|lag| Lsn(s.primary_lsn.0.saturating_sub(lag)));
        let same = |e: &Seen| e.primary == s.primary && e.standby == s.standby;
        let earlier = self.datanodes.get(s.datanode).filter(|e| same(e)).cloned();
        let mut seen = Seen {
            primary: s.primary.into(),
            standby: s.standby.into(),
            seen_at_unix: s.at_unix,
            primary_lsn: s.primary_lsn,
            standby_lsn,
            streaming: s.streaming,
            synchronous: s.synchronous,
            asynchronous_since_unix: None,
            asynchronous_from_lsn: None,
            synchronous_again_at: None,
        };
        if let Some(e) = earlier.filter(|e| e.asynchronous_since_unix.is_some()) {
            seen.asynchronous_since_unix = e.asynchronous_since_unix;
            seen.asynchronous_from_lsn = e.asynchronous_from_lsn;
            if s.synchronous && s.streaming {
                let again = e.synchronous_again_at.unwrap_or(s.primary_lsn);
                if standby_lsn.is_some_and(|l| l >= again) && e.synchronous_again_at.is_some() {
                    seen.asynchronous_since_unix = None;
                    seen.asynchronous_from_lsn = None;
                } else {
                    seen.synchronous_again_at = Some(again);
                }
            }
        }
        self.datanodes.insert(s.datanode.to_string(), seen);
    }

    /// Synchronous replication was switched off for `datanode`'s pair at `at_unix`, its
    /// primary at `from` when known: kept from the first time until the standby has caught up
    /// again ([`Record::saw`]).
    pub fn degraded(
        &mut self,
        datanode: &str,
        primary: &str,
        standby: &str,
        at_unix: u64,
        from: Option<Lsn>,
    ) {
        let same = |e: &&Seen| e.primary == primary && e.standby == standby;
        let earlier = self.datanodes.get(datanode).filter(same).cloned();
        let mut seen = earlier.clone().unwrap_or(Seen {
            primary: primary.into(),
            standby: standby.into(),
            seen_at_unix: at_unix,
            primary_lsn: from.unwrap_or(Lsn(0)),
            standby_lsn: None,
            streaming: false,
            synchronous: false,
            asynchronous_since_unix: None,
            asynchronous_from_lsn: None,
            synchronous_again_at: None,
        });
        if let Some(from) = from.filter(|f| *f > seen.primary_lsn) {
            (seen.primary_lsn, seen.seen_at_unix) = (from, at_unix);
        }
        if seen.asynchronous_since_unix.is_none() {
            (seen.asynchronous_since_unix, seen.asynchronous_from_lsn) = (Some(at_unix), from);
        }
        (seen.synchronous, seen.synchronous_again_at) = (false, None);
        self.datanodes.insert(datanode.to_string(), seen);
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("record serialises");
        format!(
            "# Written by pgxc-deploy status, apply and degrade: what it last saw of each \
             datanode's\n# replication. failover reads it to refuse a standby that may lack \
             acknowledged commits.\n{body}"
        )
    }
}

pub fn path_for(inventory: &Path) -> PathBuf {
    beside::path_for(inventory, KIND)
}

/// Why the replication record cannot be used.
pub use super::beside::Error;

const KIND: &str = "replication";

pub fn load(inventory: &Path) -> Result<Record, Error> {
    beside::load(inventory, KIND, "replication record")
}

/// Write the record beside `inventory` (whole, renamed into place), unless it is unchanged.
pub fn save(inventory: &Path, record: &Record) -> Result<PathBuf, Error> {
    beside::save(inventory, KIND, &record.to_toml())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sight(at: u64, lsn: u64, streaming: bool, sync: bool, lag: Option<u64>) -> Sight<'static> {
        Sight {
            datanode: "pg2",
            primary: "pg2",
            standby: "pg2_standby",
            at_unix: at,
            primary_lsn: Lsn(lsn),
            streaming,
            synchronous: sync,
            lag_bytes: lag,
        }
    }

    #[test]
    fn lsn_reads_and_prints_as_postgresql_does() {
        assert_eq!("16/B374D848".parse::<Lsn>().unwrap(), Lsn(0x16_B374_D848));
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn(0));
        assert!("0/".parse::<Lsn>().is_err() && "x/1".parse::<Lsn>().is_err());
        assert!("'; drop table t; --".parse::<Lsn>().is_err());
        assert_eq!(Lsn(10).bytes_after(Lsn(4)), 6);
        assert_eq!(Lsn(4).bytes_after(Lsn(10)), 0);
    }

    #[test]
    fn a_degraded_pair_stays_so_until_the_standby_caught_up_synchronously() {
        let mut r = Record::default();
        r.saw(sight(1, 100, true, true, Some(0)));
        assert_eq!(r.datanodes["pg2"].standby_lsn, Some(Lsn(100)));
        r.degraded("pg2", "pg2", "pg2_standby", 2, Some(Lsn(200)));
        r.degraded("pg2", "pg2", "pg2_standby", 3, Some(Lsn(300)));
        let e = &r.datanodes["pg2"];
        assert_eq!((e.asynchronous_since_unix, e.asynchronous_from_lsn), (Some(2), Some(Lsn(200))));
        // Streaming again but asynchronous (not healed yet): still degraded.
        r.saw(sight(4, 400, true, false, Some(0)));
        assert_eq!(r.datanodes["pg2"].asynchronous_since_unix, Some(2));
        // Synchronous again at 500: degraded until the standby has replayed 500.
        r.saw(sight(5, 500, true, true, Some(100)));
        assert_eq!(r.datanodes["pg2"].synchronous_again_at, Some(Lsn(500)));
        r.saw(sight(6, 550, true, true, Some(100)));
        assert_eq!(r.datanodes["pg2"].asynchronous_since_unix, Some(2), "replayed only 450");
        r.saw(sight(7, 600, true, true, Some(50)));
        let e = &r.datanodes["pg2"];
        assert_eq!((e.asynchronous_since_unix, e.synchronous_again_at), (None, None));

        // A failover: the pair starts afresh.
        r.degraded("pg2", "pg2", "pg2_standby", 8, Some(Lsn(700)));
        r.saw(Sight { primary: "pg2_standby", standby: "pg2", ..sight(9, 800, true, false, None) });
        assert_eq!(r.datanodes["pg2"].asynchronous_since_unix, None);
    }

    #[test]
    fn beside_the_inventory_and_round_trips() {
        assert_eq!(path_for(Path::new("/a/lab.toml")), Path::new("/a/lab.replication.toml"));
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("lab.toml");
        assert_eq!(load(&inv).unwrap(), Record::default());
        let mut r = Record::default();
        r.degraded("pg2", "pg2", "pg2_standby", 2, Some(Lsn(0x1_0000_0200)));
        save(&inv, &r).unwrap();
        let text = std::fs::read_to_string(path_for(&inv)).unwrap();
        assert!(text.contains("primary_lsn = \"1/200\""), "{text}");
        assert_eq!(load(&inv).unwrap(), r);
    }
}
