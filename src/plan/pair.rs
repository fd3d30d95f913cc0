//! A datanode and its standby as the inventory pairs them ([`pair`]), and which of the two
//! serves as primary now that the roles file may have swapped them ([`current`]). PURE: used by
//! failover, switchover, degrade and restart alike.

use crate::inventory::roles::Roles;
use crate::inventory::{Inventory, Node, Role};

/// A datanode and the standby that takes over from it.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    pub datanode: &'a Node,
    pub standby: &'a Node,
}

/// The pair `name` (a datanode, or its standby) belongs to.
pub fn pair<'a>(inv: &'a Inventory, name: &str) -> Result<Pair<'a>, String> {
    let node = inv.node(name).ok_or_else(|| {
        let datanodes: Vec<&str> = inv
            .nodes
            .iter()
            .filter(|n| n.role == Role::Datanode)
            .map(|n| n.name.as_str())
            .collect();
        format!("`{name}` is not a node of the inventory (datanodes: {})", datanodes.join(", "))
    })?;
    let datanode = match node.role {
        Role::Datanode => node,
        Role::Standby => node
            .primary
            .as_ref()
            .and_then(|p| inv.node(p.as_str()))
            .ok_or_else(|| format!("standby `{name}` has no primary in the inventory"))?,
        role => {
            return Err(format!("`{name}` is a {role}: only a datanode fails over to its standby"));
        }
    };
    let standby = inv
        .nodes
        .iter()
        .find(|n| n.role == Role::Standby && n.primary.as_ref() == Some(&datanode.name))
        .ok_or_else(|| format!("datanode `{}` has no standby to promote", datanode.name))?;
    Ok(Pair { datanode, standby })
}

/// The datanode's current primary and standby. `pair`: the inventory's datanode and standby.
/// `Err`: a failover left the old primary fenced, so there is no standby to switch to.
pub fn current<'a>(inv: &'a Inventory, roles: &Roles, pair: Pair<'a>) -> Result<Pair<'a>, String> {
    let Some(p) = roles.datanodes.get(pair.datanode.name.as_str()) else { return Ok(pair) };
    let node = |name: &str| {
        inv.node(name)
            .ok_or_else(|| format!("the roles file names `{name}`, which is not in the inventory"))
    };
    if !p.old_primary_follows {
        return Err(format!(
            "{} serves {} since a failover and {} is fenced, not its standby: rebuild {} as its \
             standby first",
            p.primary, pair.datanode.name, p.old_primary, p.old_primary
        ));
    }
    Ok(Pair { datanode: node(&p.primary)?, standby: node(&p.old_primary)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;

    #[test]
    fn a_datanode_or_its_standby_names_the_pair() {
        let inv = fixtures::postgres_xc();
        for name in ["dn1", "dn1_standby"] {
            let p = pair(&inv, name).unwrap();
            assert_eq!((p.datanode.name.as_str(), p.standby.name.as_str()), ("dn1", "dn1_standby"));
        }
        assert_eq!(pair(&inv, "dn2").unwrap().standby.name.as_str(), "dn2_replica");
        assert_eq!(
            pair(&inv, "coord1").unwrap_err(),
            "`coord1` is a coordinator: only a datanode fails over to its standby"
        );
        assert!(pair(&inv, "dn9").unwrap_err().contains("(datanodes: dn1, dn2)"));
        let inv = fixtures::postgresql();
        assert_eq!(pair(&inv, "pg2").unwrap_err(), "datanode `pg2` has no standby to promote");
    }
}
