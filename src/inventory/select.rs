//! Selectors (`--on dn[1-3],@gtm,db2`) -> the hosts and nodes a command acts on.
//!
//! Commands call [`select`] after loading the inventory. A selector is terms joined by
//! ClusterShell's node-set operators, applied left to right (operators inside `[...]` belong
//! to ranges): `,` union, `!` difference (`dn*!dn2`, `@all!@standbys`), `&` intersection, `^`
//! symmetric difference. Each term is a role (`@datanodes`), a glob (`dn*`), a node-set range
//! (`dn[1-3]`, via the `nodeset` crate) or a plain node or host name. No I/O here.

use super::model::{Inventory, NodeName, Role};
use std::collections::BTreeSet;
use std::fmt;

/// One thing a command acts on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A host, by name: act on the machine (e.g. `exec`).
    Host(String),
    /// A node, by name: act on one server process.
    Node(NodeName),
}

/// Why a selector was refused. [`SelectError::hint`] says what would work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// A term, or a name that the range `range` expands to, is neither a node nor a host.
    NoMatch { term: String, range: Option<String>, nodes: Vec<String>, hosts: Vec<String> },
    /// `@something` that is not a role.
    UnknownRole { term: String },
    /// A glob or range that does not parse, or an empty term.
    Invalid { term: String, reason: String },
}

const ROLES: &str = "@gtm, @gtm_standby, @gtm_proxies, @coordinators, @datanodes, @standbys, @all";

impl SelectError {
    pub fn hint(&self) -> String {
        match self {
            SelectError::NoMatch { nodes, hosts, .. } => {
                format!("nodes: {}; hosts: {}", or_none(nodes), or_none(hosts))
            }
            SelectError::UnknownRole { .. } => format!("roles are {ROLES}"),
            SelectError::Invalid { .. } => {
                "join terms with `,` (or), `!` (but not), `&` (and), `^` (either, not both); a term is a name, a glob like `dn*`, a range like `dn[1-3]` or a role like @datanodes".to_string()
            }
        }
    }
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::NoMatch { term, range: None, .. } => {
                write!(f, "selector `{term}` matches no node or host")
            }
            SelectError::NoMatch { term, range: Some(range), .. } => {
                write!(f, "`{term}` (from selector `{range}`) is not a node or host")
            }
            SelectError::UnknownRole { term } => write!(f, "unknown role `{term}`"),
            SelectError::Invalid { term, reason } => {
                write!(f, "invalid selector `{term}`: {reason}")
            }
        }
    }
}

impl std::error::Error for SelectError {}

/// Resolve `selector` against `inv`. `None` selects every host. The result has no duplicates:
/// hosts in file order, then nodes in inventory order.
///
/// A glob only has to match something, but every name a range expands to must exist: `dn[1-4]`
/// with no `dn4` is more likely a mistake than a wish to skip it.
pub fn select(inv: &Inventory, selector: Option<&str>) -> Result<Vec<Target>, SelectError> {
    let Some(selector) = selector else {
        return Ok(inv.hosts.iter().map(|h| Target::Host(h.name.clone())).collect());
    };
    // Indexes into inv.hosts and inv.nodes; sets keep them unique and in inventory order.
    let mut picked = Picked::default();
    for (op, term) in split_terms(selector) {
        let term = term.trim();
        if term.is_empty() {
            return Err(SelectError::Invalid {
                term: selector.to_string(),
                reason: "empty term".to_string(),
            });
        }
        let set = term_set(inv, term)?;
        picked = match op {
            ',' => picked.union(&set),
            '!' => picked.difference(&set),
            '&' => picked.intersection(&set),
            _ => picked.symmetric_difference(&set),
        };
    }
    if picked.hosts.is_empty() && picked.nodes.is_empty() {
        return Err(no_match(inv, selector, None));
    }
    let hosts = picked.hosts.into_iter().map(|i| Target::Host(inv.hosts[i].name.clone()));
    let nodes = picked.nodes.into_iter().map(|i| Target::Node(inv.nodes[i].name.clone()));
    Ok(hosts.chain(nodes).collect())
}

/// [`select`], less what `exclude` selects (`-x`, ClusterShell's habit).
pub fn select_excluding(
    inv: &Inventory,
    selector: Option<&str>,
    exclude: Option<&str>,
) -> Result<Vec<Target>, SelectError> {
    let targets = select(inv, selector)?;
    let Some(exclude) = exclude else { return Ok(targets) };
    let excluded = select(inv, Some(exclude))?;
    let left: Vec<Target> = targets.into_iter().filter(|t| !excluded.contains(t)).collect();
    if left.is_empty() {
        let what = format!("{} excluding {exclude}", selector.unwrap_or("every host"));
        return Err(no_match(inv, &what, None));
    }
    Ok(left)
}

/// Hosts and nodes, as indexes into the inventory's lists.
#[derive(Debug, Default, Clone)]
struct Picked {
    hosts: BTreeSet<usize>,
    nodes: BTreeSet<usize>,
}

impl Picked {
    fn union(&self, o: &Picked) -> Picked {
        let hosts = self.hosts.union(&o.hosts).copied().collect();
        Picked { hosts, nodes: self.nodes.union(&o.nodes).copied().collect() }
    }
    fn difference(&self, o: &Picked) -> Picked {
        let hosts = self.hosts.difference(&o.hosts).copied().collect();
        Picked { hosts, nodes: self.nodes.difference(&o.nodes).copied().collect() }
    }
    fn intersection(&self, o: &Picked) -> Picked {
        let hosts = self.hosts.intersection(&o.hosts).copied().collect();
        Picked { hosts, nodes: self.nodes.intersection(&o.nodes).copied().collect() }
    }
    fn symmetric_difference(&self, o: &Picked) -> Picked {
        let hosts = self.hosts.symmetric_difference(&o.hosts).copied().collect();
        Picked { hosts, nodes: self.nodes.symmetric_difference(&o.nodes).copied().collect() }
    }
}

/// What one term selects. A glob only has to match something, but every name a range expands
/// to must exist: `dn[1-4]` with no `dn4` is more likely a mistake than a wish to skip it.
fn term_set(inv: &Inventory, term: &str) -> Result<Picked, SelectError> {
    let mut picked = Picked::default();
    if let Some(role) = term.strip_prefix('@') {
        let nodes =
            role_nodes(inv, role).ok_or_else(|| SelectError::UnknownRole { term: term.into() })?;
        picked.nodes.extend(nodes);
    } else if term.contains(['*', '?']) {
        let pattern = glob::Pattern::new(term).map_err(|e| SelectError::Invalid {
            term: term.to_string(),
            reason: e.msg.to_string(),
        })?;
        let matched_nodes = positions(inv.nodes.iter(), |n| pattern.matches(n.name.as_str()));
        let matched_hosts = positions(inv.hosts.iter(), |h| pattern.matches(&h.name));
        if matched_nodes.is_empty() && matched_hosts.is_empty() {
            return Err(no_match(inv, term, None));
        }
        picked.nodes.extend(matched_nodes);
        picked.hosts.extend(matched_hosts);
    } else if term.contains('[') {
        let set: nodeset::NodeSet = term.parse().map_err(|e: nodeset::NodeSetParseError| {
            SelectError::Invalid { term: term.to_string(), reason: e.to_string() }
        })?;
        for name in set.iter() {
            lookup(inv, &name, &mut picked.hosts, &mut picked.nodes)
                .ok_or_else(|| no_match(inv, &name, Some(term)))?;
        }
    } else {
        lookup(inv, term, &mut picked.hosts, &mut picked.nodes)
            .ok_or_else(|| no_match(inv, term, None))?;
    }
    Ok(picked)
}

/// Split at the operators `,` `!` `&` `^` that are not inside `[...]`: each term with the
/// operator before it (`,` for the first).
fn split_terms(selector: &str) -> Vec<(char, &str)> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let (mut start, mut op) = (0, ',');
    for (i, c) in selector.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' | '!' | '&' | '^' if depth == 0 => {
                terms.push((op, &selector[start..i]));
                (start, op) = (i + 1, c);
            }
            _ => {}
        }
    }
    terms.push((op, &selector[start..]));
    terms
}

fn role_nodes(inv: &Inventory, role: &str) -> Option<Vec<usize>> {
    let wanted = match role {
        "all" => None,
        "gtm" => Some(Role::Gtm),
        "gtm_standby" => Some(Role::GtmStandby),
        "gtm_proxies" => Some(Role::GtmProxy),
        "coordinators" => Some(Role::Coordinator),
        "datanodes" => Some(Role::Datanode),
        "standbys" => Some(Role::Standby),
        _ => return None,
    };
    Some(positions(inv.nodes.iter(), |n| wanted.is_none_or(|r| n.role == r)))
}

/// A node with this name, else a host with this name. `None` when neither exists.
fn lookup(
    inv: &Inventory,
    name: &str,
    hosts: &mut BTreeSet<usize>,
    nodes: &mut BTreeSet<usize>,
) -> Option<()> {
    if let Some(i) = inv.nodes.iter().position(|n| n.name.as_str() == name) {
        nodes.insert(i);
    } else {
        hosts.insert(inv.hosts.iter().position(|h| h.name == name)?);
    }
    Some(())
}

fn positions<T>(items: impl Iterator<Item = T>, keep: impl Fn(&T) -> bool) -> Vec<usize> {
    items.enumerate().filter(|(_, item)| keep(item)).map(|(i, _)| i).collect()
}

fn no_match(inv: &Inventory, term: &str, range: Option<&str>) -> SelectError {
    SelectError::NoMatch {
        term: term.to_string(),
        range: range.map(str::to_string),
        nodes: inv.nodes.iter().map(|n| n.name.to_string()).collect(),
        hosts: inv.hosts.iter().map(|h| h.name.clone()).collect(),
    }
}

fn or_none(names: &[String]) -> String {
    if names.is_empty() { "(none)".to_string() } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::validate::{test_env, validate};
    use std::path::Path;

    /// The full example: hosts db1..db3; nodes gtm, coord1, coord2, dn1, dn1_standby, dn2,
    /// dn2_replica.
    fn inventory() -> Inventory {
        let label = "tests/inventories/valid/full.toml";
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(label)).unwrap();
        validate(&text, Path::new(label), &test_env).unwrap()
    }

    /// Targets as short strings: hosts as `h:name`, nodes as their name.
    fn sel(selector: Option<&str>) -> Vec<String> {
        select(&inventory(), selector)
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Target::Host(h) => format!("h:{h}"),
                Target::Node(n) => n.to_string(),
            })
            .collect()
    }

    fn err(selector: &str) -> SelectError {
        select(&inventory(), Some(selector)).unwrap_err()
    }

    #[test]
    fn no_selector_is_every_host() {
        assert_eq!(sel(None), ["h:db1", "h:db2", "h:db3"]);
    }

    #[test]
    fn names() {
        assert_eq!(sel(Some("dn1")), ["dn1"]);
        assert_eq!(sel(Some("db2")), ["h:db2"]);
        assert_eq!(sel(Some(" dn2 , coord1 ")), ["coord1", "dn2"], "inventory order, trimmed");
        assert_eq!(
            select(&inventory(), Some("gtm")).unwrap(),
            [Target::Node(NodeName::new("gtm").unwrap())]
        );
    }

    #[test]
    fn roles() {
        assert_eq!(sel(Some("@gtm")), ["gtm"]);
        assert_eq!(sel(Some("@coordinators")), ["coord1", "coord2"]);
        assert_eq!(sel(Some("@datanodes")), ["dn1", "dn2"]);
        assert_eq!(sel(Some("@standbys")), ["dn1_standby", "dn2_replica"]);
        assert_eq!(
            sel(Some("@all")),
            ["gtm", "coord1", "coord2", "dn1", "dn1_standby", "dn2", "dn2_replica"]
        );
    }

    #[test]
    fn globs_match_nodes_and_hosts() {
        assert_eq!(sel(Some("dn*")), ["dn1", "dn1_standby", "dn2", "dn2_replica"]);
        assert_eq!(sel(Some("coord?")), ["coord1", "coord2"]);
        assert_eq!(sel(Some("d?[23]")), ["h:db2", "h:db3", "dn2"]);
        assert_eq!(sel(Some("*")).len(), 10);
    }

    /// ClusterShell's node-set operators, left to right; `-x` takes away.
    #[test]
    fn operators_and_exclusion() {
        assert_eq!(sel(Some("dn*!dn2")), ["dn1", "dn1_standby", "dn2_replica"]);
        assert_eq!(sel(Some("@all!@standbys!@gtm")), ["coord1", "coord2", "dn1", "dn2"]);
        assert_eq!(sel(Some("dn*&@standbys")), ["dn1_standby", "dn2_replica"]);
        assert_eq!(sel(Some("dn[1-2]^dn2,coord1")), ["coord1", "dn1"]);
        assert_eq!(sel(Some("db[1-3]!db2")), ["h:db1", "h:db3"]);
        let err = select(&inventory(), Some("dn1&dn2")).unwrap_err();
        assert!(err.to_string().contains("`dn1&dn2` matches no node or host"), "{err}");
        let excluded = |on, x| -> Vec<String> {
            let targets = select_excluding(&inventory(), on, Some(x)).unwrap();
            targets.iter().map(|t| format!("{t:?}")).collect()
        };
        assert_eq!(excluded(None, "db2").len(), 2, "every host but db2");
        assert_eq!(excluded(Some("@datanodes"), "dn1").len(), 1);
        assert!(select_excluding(&inventory(), Some("dn1"), Some("dn*")).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(sel(Some("dn[1-2]")), ["dn1", "dn2"]);
        assert_eq!(sel(Some("db[1,3]")), ["h:db1", "h:db3"]);
        assert_eq!(sel(Some("coord[2],dn[1]_standby")), ["coord2", "dn1_standby"]);
        assert_eq!(sel(Some("dn[1-2],db[1-2]")), ["h:db1", "h:db2", "dn1", "dn2"]);
    }

    #[test]
    fn zero_padded_ranges_expand_with_their_padding() {
        let text = "[hosts.db01]\naddress = \"10.0.0.1\"\n[hosts.db02]\naddress = \"10.0.0.2\"\n\
                    [hosts.db03]\naddress = \"10.0.0.3\"\n";
        let inv = validate(text, Path::new("pad.toml"), &test_env).unwrap();
        let targets = select(&inv, Some("db[02-03]")).unwrap();
        assert_eq!(targets, [Target::Host("db02".into()), Target::Host("db03".into())]);
    }

    #[test]
    fn mixes_are_deduplicated_hosts_first() {
        assert_eq!(
            sel(Some("dn2,db3,@datanodes,dn[1-2],db*,coord1")),
            ["h:db1", "h:db2", "h:db3", "coord1", "dn1", "dn2"]
        );
    }

    #[test]
    fn errors() {
        let e = err("dn9");
        assert_eq!(e.to_string(), "selector `dn9` matches no node or host");
        assert_eq!(
            e.hint(),
            "nodes: gtm, coord1, coord2, dn1, dn1_standby, dn2, dn2_replica; hosts: db1, db2, db3"
        );
        assert_eq!(err("dn1,zz*").to_string(), "selector `zz*` matches no node or host");
        assert_eq!(
            err("dn[1-3]").to_string(),
            "`dn3` (from selector `dn[1-3]`) is not a node or host"
        );

        let e = err("@datanode");
        assert_eq!(e.to_string(), "unknown role `@datanode`");
        assert_eq!(
            e.hint(),
            "roles are @gtm, @gtm_standby, @gtm_proxies, @coordinators, @datanodes, @standbys, @all"
        );

        assert!(matches!(err("dn1,,dn2"), SelectError::Invalid { .. }));
        assert!(matches!(err(""), SelectError::Invalid { .. }));
        assert!(matches!(err("dn[3-1]"), SelectError::Invalid { .. }));
        assert!(matches!(err("dn[1-"), SelectError::Invalid { .. }));
        assert!(matches!(err("[*"), SelectError::Invalid { .. }));
    }
}
