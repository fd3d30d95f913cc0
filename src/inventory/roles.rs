//! The roles file: what `failover` changed, kept beside the inventory so the inventory stays
//! the user's file. `<dir>/<stem>.roles.toml` for `<dir>/<stem>.toml`; absent until a first
//! failover. Pure except [`load`] and [`save`], which read and write it.
//!
//! ```toml
//! # Written by pgxc-deploy failover or switchover: the inventory's roles that changed. Keep it beside the
//! # inventory; delete an entry only once the old primary has been rebuilt as a standby.
//! [datanodes.pg1]
//! primary = "pg1_standby"      # the promoted standby now serves pg1
//! old_primary = "pg1"          # fenced: never started again as a primary
//! old_primary_fenced = true    # stopped by failover (false: its host was unreachable)
//! failed_over_at_unix = 1764236000
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Every failover recorded for a cluster, by datanode name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    #[serde(default)]
    pub datanodes: BTreeMap<String, Promotion>,
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
        self.datanodes
            .iter()
            .find(|(_, p)| p.old_primary == node && !p.old_primary_follows)
            .map(|(d, p)| (d.as_str(), p))
    }

    /// The datanode whose old primary is `node`, when a switchover made it a standby of the new
    /// primary.
    pub fn follower(&self, node: &str) -> Option<(&str, &Promotion)> {
        self.datanodes
            .iter()
            .find(|(_, p)| p.old_primary == node && p.old_primary_follows)
            .map(|(d, p)| (d.as_str(), p))
    }

    /// The datanode `node` was promoted for, when it was.
    pub fn promoted(&self, node: &str) -> Option<(&str, &Promotion)> {
        self.datanodes.iter().find(|(_, p)| p.primary == node).map(|(d, p)| (d.as_str(), p))
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
        Roles { datanodes: [(datanode.to_string(), promotion)].into() }
    }

    pub fn is_empty(&self) -> bool {
        self.datanodes.is_empty()
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("roles serialise");
        format!(
            "# Written by pgxc-deploy failover or switchover: the inventory's roles that changed. Keep it beside \
             the\n# inventory; delete an entry only once the old primary has been rebuilt as a \
             standby.\n{body}"
        )
    }
}

/// Where the roles file of `inventory` is.
pub fn path_for(inventory: &Path) -> PathBuf {
    let stem = inventory.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    inventory.with_file_name(format!("{stem}.roles.toml"))
}

/// Why the roles file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a roles file pgxc-deploy wrote: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The roles recorded beside `inventory` (none when there is no file).
pub fn load(inventory: &Path) -> Result<Roles, Error> {
    let path = path_for(inventory);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            toml::from_str(&text).map_err(|e| Error::Parse { path, message: e.to_string() })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Roles::default()),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Write the roles beside `inventory` (a new file renamed into place).
pub fn save(inventory: &Path, roles: &Roles) -> Result<PathBuf, Error> {
    let path = path_for(inventory);
    let tmp = path.with_extension("toml.tmp");
    let write = |source| Error::Write { path: path.clone(), source };
    std::fs::write(&tmp, roles.to_toml()).map_err(write)?;
    std::fs::rename(&tmp, &path).map_err(write)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
