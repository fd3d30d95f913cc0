//! The roles file: what `failover` and `switchover` changed, kept beside the inventory so the
//! inventory stays the user's file. `<dir>/<stem>.roles.toml` for `<dir>/<stem>.toml`; absent
//! until a first failover. [`Roles::effective`] turns it and the inventory into the cluster as
//! it runs now (what apply deploys); `apply` marks a fenced old primary as following once it
//! has rebuilt it. Pure except [`load`] and [`save`], which read and write it.
//!
//! ```toml
//! # Written by pgxc-deploy failover, switchover and apply: the inventory's roles that changed.
//! # Every command reads it; keep it beside the inventory and do not edit it (switchover
//! # hands a datanode back to the inventory's primary).
//! [datanodes.pg1]
//! primary = "pg1_standby"      # the promoted standby now serves pg1
//! old_primary = "pg1"          # fenced: never started again as a primary
//! old_primary_fenced = true    # stopped by failover (false: its host was unreachable)
//! failed_over_at_unix = 1764236000
//!
//! [removed.coord2]             # a lost coordinator that `remove` took out of the cluster
//! stopped = false
//! removed_at_unix = 1764236200
//!
//! [gtm.gtm]                    # the same, for the GTM and its standby ([gtm.standby])
//! primary = "gtm_standby"      # the active GTM now
//! old_primary = "gtm"
//! old_primary_fenced = true
//! failed_over_at_unix = 1764236100
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Inventory, Role, beside};

/// Every failover recorded for a cluster, by datanode name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    #[serde(default)]
    pub datanodes: BTreeMap<String, Promotion>,
    /// The GTM's entry, under the inventory's GTM name: its standby promoted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gtm: BTreeMap<String, Promotion>,
    /// Coordinators that `remove` took out of the cluster, by name: dropped from every other
    /// coordinator's pgxc_node, stopped, left out of every command.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, Removed>,
}

/// A coordinator that `remove` took out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removed {
    /// Whether remove stopped it (false: its host was unreachable).
    pub stopped: bool,
    pub removed_at_unix: u64,
}

/// One datanode whose standby was promoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// The node (the inventory's standby) that is the datanode's primary now.
    pub primary: String,
    /// The inventory's primary, which must not run as a primary again.
    pub old_primary: String,
    /// Whether failover stopped it (false: its host was unreachable).
    pub old_primary_fenced: bool,
    /// A switchover made it a standby of the new primary: it runs, in recovery, and streams
    /// from `primary` (a failover leaves it fenced: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub old_primary_follows: bool,
    pub failed_over_at_unix: u64,
}

impl Roles {
    /// The datanode whose old primary is `node`, when `node` was failed over (or a switchover
    /// has not made it a standby yet): it must not run.
    pub fn fenced(&self, node: &str) -> Option<(&str, &Promotion)> {
        self.all()
            .find(|(_, p)| p.old_primary == node && !p.old_primary_follows)
            .map(|(d, p)| (d.as_str(), p))
    }

    /// The datanode whose old primary is `node`, when a switchover made it a standby of the new
    /// primary.
    pub fn follower(&self, node: &str) -> Option<(&str, &Promotion)> {
        self.all()
            .find(|(_, p)| p.old_primary == node && p.old_primary_follows)
            .map(|(d, p)| (d.as_str(), p))
    }

    /// The datanode `node` was promoted for, when it was.
    pub fn promoted(&self, node: &str) -> Option<(&str, &Promotion)> {
        self.all().find(|(_, p)| p.primary == node).map(|(d, p)| (d.as_str(), p))
    }

    /// Every entry, the datanodes' then the GTM's, as (inventory name, promotion).
    fn all(&self) -> impl Iterator<Item = (&String, &Promotion)> {
        self.datanodes.iter().chain(&self.gtm)
    }

    /// For tests: roles after `standby` took over `datanode`, by failover (`follows` false) or
    /// by switchover (the old primary follows the new one).
    #[cfg(test)]
    pub fn handed_over(datanode: &str, standby: &str, follows: bool) -> Roles {
        let promotion = Promotion {
            primary: standby.into(),
            old_primary: datanode.into(),
            old_primary_fenced: true,
            old_primary_follows: follows,
            failed_over_at_unix: 1,
        };
        Roles { datanodes: [(datanode.to_string(), promotion)].into(), ..Roles::default() }
    }

    /// `inv` as the cluster runs now. For every recorded datanode, the node that serves it is
    /// the datanode and the old primary its standby (fenced until apply rebuilds it, or
    /// following). Both keep their names, hosts, ports and data directories (a name is a place),
    /// and both serve the datanode's name ([`super::Node::datanode_name`]: coordinators and
    /// `pgxc_node_name` keep it); whichever is the standby now is synchronous when the
    /// inventory's standby is. `Err`: the file does not match the inventory. The coordinators
    /// `remove` took out and the datanodes (with their standbys) marked `state = "removed"` are
    /// left out: only apply deals with them.
    pub fn effective(&self, inv: &Inventory) -> Result<Inventory, String> {
        let mut now = self.effective_readding(inv)?;
        now.nodes.retain(|n| !self.removed.contains_key(n.name.as_str()) && !n.removed);
        Ok(now)
    }

    /// [`Roles::effective`], but with the coordinators `remove` took out still in: what apply
    /// deploys, rebuilding each from a running coordinator's catalog ([`Roles::to_rebuild`]);
    /// and with the datanodes marked `state = "removed"` still in, which apply takes out
    /// ([`crate::inventory::Inventory::without_removed`]).
    pub fn effective_readding(&self, inv: &Inventory) -> Result<Inventory, String> {
        let mut now = inv.clone();
        for (datanode, p) in &self.datanodes {
            let unknown = || {
                format!(
                    "the roles file names datanode `{datanode}`, which the inventory does not have"
                )
            };
            let d = inv.node(datanode).filter(|n| n.role == Role::Datanode).ok_or_else(unknown)?;
            let standby = inv
                .nodes
                .iter()
                .find(|n| n.role == Role::Standby && n.primary.as_ref() == Some(&d.name))
                .ok_or_else(|| format!("the roles file swaps datanode {datanode} with its standby, but the inventory gives it none"))?;
            let pair = [d.name.as_str(), standby.name.as_str()];
            let (new, old) = (p.primary.as_str(), p.old_primary.as_str());
            if new == old || !pair.contains(&new) || !pair.contains(&old) {
                return Err(format!(
                    "the roles file says {new} serves {datanode} in place of {old}, but the \
                     inventory's pair is {} and its standby {}",
                    pair[0], pair[1]
                ));
            }
            let new_name = if new == pair[0] { &d.name } else { &standby.name };
            let serves = Some(d.name.clone());
            for n in &mut now.nodes {
                if n.name.as_str() == new {
                    (n.role, n.primary, n.synchronous) = (Role::Datanode, None, false);
                    n.serves = serves.clone();
                } else if n.name.as_str() == old {
                    (n.role, n.primary) = (Role::Standby, Some(new_name.clone()));
                    (n.synchronous, n.serves) = (standby.synchronous, serves.clone());
                }
            }
            // Each datanode is followed by its standby.
            let at = |name: &str| now.nodes.iter().position(|n| n.name.as_str() == name);
            if let (Some(i), Some(j)) = (at(new), at(old))
                && i > j
            {
                now.nodes.swap(i, j);
            }
        }
        for (gtm, p) in &self.gtm {
            let unknown =
                || format!("the roles file names GTM `{gtm}`, which the inventory does not have");
            let g = inv.node(gtm).filter(|n| n.role == Role::Gtm).ok_or_else(unknown)?;
            let standby = inv.node_of(Role::GtmStandby).ok_or_else(|| {
                format!("the roles file swaps GTM {gtm} with its standby, but the inventory gives it none")
            })?;
            let pair = [g.name.as_str(), standby.name.as_str()];
            let (new, old) = (p.primary.as_str(), p.old_primary.as_str());
            if new == old || !pair.contains(&new) || !pair.contains(&old) {
                return Err(format!(
                    "the roles file says {new} is the active GTM in place of {old}, but the \
                     inventory's GTM is {} and its standby {}",
                    pair[0], pair[1]
                ));
            }
            let new_name = if new == pair[0] { &g.name } else { &standby.name };
            for n in &mut now.nodes {
                if n.name.as_str() == new {
                    (n.role, n.primary) = (Role::Gtm, None);
                } else if n.name.as_str() == old {
                    (n.role, n.primary) = (Role::GtmStandby, Some(new_name.clone()));
                }
            }
            // The active GTM first.
            let at = |name: &str| now.nodes.iter().position(|n| n.name.as_str() == name);
            if let (Some(i), Some(j)) = (at(new), at(old))
                && i > j
            {
                now.nodes.swap(i, j);
            }
        }
        // A coordinator taken out of the inventory after `remove` is gone for good: the next
        // apply that succeeds forgets it ([`Roles::rebuilt`]).
        for name in self.removed.keys() {
            if let Some(n) = inv.node(name).filter(|n| n.role != Role::Coordinator) {
                return Err(format!(
                    "the roles file says coordinator `{name}` was removed, but the inventory's \
                     `{name}` is a {}: give that node another name",
                    n.role
                ));
            }
        }
        Ok(now)
    }

    /// Old primaries that a failover fenced and that apply must rebuild as standbys.
    /// And the coordinators `remove` took out, which apply rebuilds from a running
    /// coordinator's catalog.
    pub fn to_rebuild(&self) -> Vec<&str> {
        let removed = self.removed.keys().map(String::as_str);
        self.all()
            .map(|(_, p)| p)
            .filter(|p| !p.old_primary_follows)
            .map(|p| p.old_primary.as_str())
            .chain(removed)
            .collect()
    }

    /// After apply rebuilt every fenced old primary as a standby: each follows now, and an
    /// entry that hands the datanode back to the inventory's own primary says nothing the
    /// inventory does not, so it goes.
    pub fn rebuilt(&mut self) {
        for p in self.datanodes.values_mut().chain(self.gtm.values_mut()) {
            p.old_primary_follows = true;
        }
        self.datanodes.retain(|datanode, p| &p.primary != datanode);
        self.gtm.retain(|gtm, p| &p.primary != gtm);
        self.removed.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.datanodes.is_empty() && self.gtm.is_empty() && self.removed.is_empty()
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("roles serialise");
        format!(
            "# Written by pgxc-deploy failover, switchover and apply: the inventory's roles that \
             changed.\n# Every command reads it; keep it beside the inventory and do not edit it \
             (switchover\n# hands a datanode back to the inventory's primary).\n{body}"
        )
    }
}

/// Where the roles file of `inventory` is.
pub fn path_for(inventory: &Path) -> PathBuf {
    beside::path_for(inventory, KIND)
}

/// Why the roles file cannot be used.
pub use super::beside::Error;

const KIND: &str = "roles";

/// The roles recorded beside `inventory` (none when there is no file).
pub fn load(inventory: &Path) -> Result<Roles, Error> {
    beside::load(inventory, KIND, "roles file")
}

/// Write the roles beside `inventory` (whole, renamed into place), unless they are unchanged.
pub fn save(inventory: &Path, roles: &Roles) -> Result<PathBuf, Error> {
    beside::save(inventory, KIND, &roles.to_toml())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::desired;
    use crate::plan::fixtures;
    use crate::plan::render::Renderer;

    #[test]
    fn effective_swaps_the_pair_in_place_and_keeps_the_datanode_name() {
        let inv = fixtures::postgres_xc();
        assert_eq!(Roles::default().effective(&inv).unwrap(), inv);
        let mut roles = Roles::handed_over("dn1", "dn1_standby", false);
        let now = roles.effective(&inv).unwrap();
        let (new, old) = (now.node("dn1_standby").unwrap(), now.node("dn1").unwrap());
        assert_eq!((new.role, new.primary.as_ref()), (Role::Datanode, None));
        assert_eq!((old.role, old.primary.as_ref()), (Role::Standby, Some(&new.name)));
        assert!(old.synchronous && !new.synchronous, "the standby now is the synchronous one");
        assert_eq!((old.host.as_str(), old.data_dir.as_str()), ("db2", "/var/lib/pgxc/dn1"));
        assert_eq!((new.datanode_name().as_str(), old.datanode_name().as_str()), ("dn1", "dn1"));
        let names: Vec<&str> = now.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names[3..5], ["dn1_standby", "dn1"], "a datanode before its standby");

        // Coordinators keep dn1 at the promoted node's address; both carry dn1's node name.
        let (_, nodes) = desired(&now, &Renderer::new(), "bin", None, None).unwrap();
        let coord = nodes.iter().find(|n| n.name == "coord1").unwrap();
        let dn1 = coord.pgxc_node.as_ref().unwrap().iter().find(|r| r.name == "dn1").unwrap();
        assert_eq!((dn1.host.as_str(), dn1.port), ("fd00::3", 15432));
        assert!(!coord.pgxc_node.as_ref().unwrap().iter().any(|r| r.name == "dn1_standby"));
        for name in ["dn1", "dn1_standby"] {
            let n = nodes.iter().find(|n| n.name == name).unwrap();
            let conf = &n.files.iter().find(|f| f.name == "postgresql.conf").unwrap().content;
            assert!(conf.contains("pgxc_node_name = 'dn1'"), "{name}: {conf}");
        }
        let new = nodes.iter().find(|n| n.name == "dn1_standby").unwrap();
        assert_eq!(new.sync_standby.as_deref(), Some("dn1"));

        assert_eq!(roles.to_rebuild(), ["dn1"]);
        roles.rebuilt();
        assert!(roles.to_rebuild().is_empty() && roles.follower("dn1").is_some());
        // Handed back to the inventory's primary: nothing left to record.
        let mut back = Roles::handed_over("dn1", "dn1", false);
        back.datanodes.get_mut("dn1").unwrap().old_primary = "dn1_standby".into();
        assert_eq!(back.effective(&inv).unwrap().node("dn1").unwrap().role, Role::Datanode);
        back.rebuilt();
        assert!(back.is_empty());

        let wrong = Roles::handed_over("dn1", "dn2", false);
        assert!(
            wrong.effective(&inv).unwrap_err().contains("pair is dn1 and its standby dn1_standby")
        );
        let unknown = Roles::handed_over("dn9", "dn1_standby", false);
        assert!(unknown.effective(&inv).unwrap_err().contains("`dn9`"));
    }

    #[test]
    fn beside_the_inventory_and_round_trips() {
        assert_eq!(path_for(Path::new("/a/b/lab.toml")), Path::new("/a/b/lab.roles.toml"));
        assert_eq!(path_for(Path::new("lab.toml")), Path::new("lab.roles.toml"));
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("lab.toml");
        assert!(load(&inv).unwrap().is_empty(), "no file: no failover");
        let mut roles = Roles::default();
        roles.datanodes.insert(
            "dn1".into(),
            Promotion {
                primary: "dn1_standby".into(),
                old_primary: "dn1".into(),
                old_primary_fenced: false,
                old_primary_follows: false,
                failed_over_at_unix: 17,
            },
        );
        save(&inv, &roles).unwrap();
        assert_eq!(load(&inv).unwrap(), roles);
        assert_eq!(roles.fenced("dn1").unwrap().0, "dn1");
        assert_eq!(roles.promoted("dn1_standby").unwrap().0, "dn1");
        assert!(roles.fenced("dn1_standby").is_none());
        std::fs::write(path_for(&inv), "[datanodes.dn1]\nprimary = 3\n").unwrap();
        assert!(matches!(load(&inv), Err(Error::Parse { .. })));
    }
}
