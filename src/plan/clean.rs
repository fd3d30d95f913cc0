//! What `clean` would delete: exactly the inventory's node data directories that apply
//! initialised (they carry [`INIT_MARKER`]) and the staging directories an interrupted init
//! left (`<data_dir>.pgxc-deploy-tmp`). Never an install prefix, never anything else. PURE:
//! `ops::clean` probes, stops the servers and runs the removals.

use std::collections::BTreeMap;

use super::state::{HostFacts, INIT_MARKER};
use super::step::{Action, Step};
use crate::inventory::{Inventory, NodeName};

/// What to remove for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub node: NodeName,
    pub host: String,
    /// The data directory, when it exists and apply initialised it.
    pub data_dir: Option<String>,
    /// The staging directory, when it exists.
    pub staging: Option<String>,
}

impl Removal {
    /// The step that removes it (the marker is checked again on the host).
    pub fn step(&self) -> Step {
        Step {
            host: self.host.clone(),
            node: Some(self.node.clone()),
            action: Action::Remove {
                data_dir: self.data_dir.clone(),
                staging: self.staging.clone(),
            },
        }
    }

    /// The paths, for listing.
    pub fn paths(&self) -> Vec<&str> {
        self.data_dir.iter().chain(&self.staging).map(String::as_str).collect()
    }
}

/// A directory `clean` will not delete, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub node: String,
    pub host: String,
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanPlan {
    /// In inventory order; nodes with nothing on disk have none.
    pub removals: Vec<Removal>,
    pub refused: Vec<Refusal>,
    /// Hosts that could not be probed, and why: nothing is known (or removed) there.
    pub unreachable: Vec<(String, String)>,
}

/// Decide what `clean` removes from what the probe found on each host.
pub fn clean_plan(
    inv: &Inventory,
    facts: &BTreeMap<String, Result<HostFacts, String>>,
) -> CleanPlan {
    let mut plan = CleanPlan::default();
    for (host, f) in facts {
        if let Err(why) = f {
            plan.unreachable.push((host.clone(), why.clone()));
        }
    }
    for node in &inv.nodes {
        let Some(Ok(h)) = facts.get(&node.host) else { continue };
        let Some(f) = h.nodes.get(node.name.as_str()) else { continue };
        let prefix = inv.host(&node.host).map(|h| h.install_prefix.as_str()).unwrap_or("/");
        let refuse = |path: &str, reason: String| Refusal {
            node: node.name.to_string(),
            host: node.host.clone(),
            path: path.to_string(),
            reason,
        };
        let mut removal = Removal {
            node: node.name.clone(),
            host: node.host.clone(),
            data_dir: None,
            staging: None,
        };
        let staging = format!("{}{}", node.data_dir, super::state::STAGING_SUFFIX);
        for (path, exists, initialised) in [
            (&node.data_dir, f.dir_exists, f.initialized),
            // A staging directory is pgxc-deploy's own by its name: it never has the marker.
            (&staging, f.staging, true),
        ] {
            if !exists {
                continue;
            }
            if holds(path, prefix) {
                plan.refused.push(refuse(path, format!("it holds the install prefix {prefix}")));
            } else if !initialised {
                plan.refused.push(refuse(
                    path,
                    format!(
                        "it has no {INIT_MARKER}, so pgxc-deploy did not create it; move it away \
                         or remove it yourself"
                    ),
                ));
            } else if path == &staging {
                removal.staging = Some(staging.clone());
            } else {
                removal.data_dir = Some(path.clone());
            }
        }
        if removal.data_dir.is_some() || removal.staging.is_some() {
            plan.removals.push(removal);
        }
    }
    plan
}

/// `dir` is `path` or one of its parents.
fn holds(dir: &str, path: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    let path = path.trim_end_matches('/');
    dir.is_empty() || path == dir || path.starts_with(&format!("{dir}/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;
    use crate::plan::state::NodeFacts;

    /// Facts for the PostgreSQL fixture (pg1 on pg-a, pg1_standby and pg2 on pg-b, data under
    /// /srv/pg), every data directory initialised.
    fn facts(inv: &Inventory) -> BTreeMap<String, Result<HostFacts, String>> {
        let mut facts: BTreeMap<String, Result<HostFacts, String>> = BTreeMap::new();
        for n in &inv.nodes {
            let f = NodeFacts { dir_exists: true, initialized: true, ..Default::default() };
            let host = facts.entry(n.host.clone()).or_insert_with(|| Ok(HostFacts::default()));
            host.as_mut().unwrap().nodes.insert(n.name.clone(), f);
        }
        facts
    }

    fn node(
        facts: &mut BTreeMap<String, Result<HostFacts, String>>,
        host: &str,
        name: &str,
    ) -> NodeFacts {
        facts.get_mut(host).unwrap().as_mut().unwrap().nodes.remove(name).unwrap()
    }

    fn put(
        facts: &mut BTreeMap<String, Result<HostFacts, String>>,
        host: &str,
        name: &str,
        f: NodeFacts,
    ) {
        facts.get_mut(host).unwrap().as_mut().unwrap().nodes.insert(name.into(), f);
    }

    #[test]
    fn every_initialised_data_directory_and_nothing_else() {
        let inv = fixtures::postgresql();
        let plan = clean_plan(&inv, &facts(&inv));
        let paths: Vec<&str> = plan.removals.iter().flat_map(|r| r.paths()).collect();
        assert_eq!(paths, ["/srv/pg/pg1", "/srv/pg/pg1_standby", "/srv/pg/pg2"]);
        assert!(plan.refused.is_empty() && plan.unreachable.is_empty());
        assert_eq!(plan.removals[0].step().to_string(), "pg1 on pg-a: remove /srv/pg/pg1");
    }

    #[test]
    fn refuses_a_directory_without_the_marker_but_takes_a_staging_directory() {
        let inv = fixtures::postgresql();
        let mut f = facts(&inv);
        let mut pg1 = node(&mut f, "pg-a", "pg1");
        pg1.initialized = false;
        pg1.staging = true;
        put(&mut f, "pg-a", "pg1", pg1);
        let mut pg2 = node(&mut f, "pg-b", "pg2");
        (pg2.dir_exists, pg2.initialized, pg2.staging) = (false, false, true);
        put(&mut f, "pg-b", "pg2", pg2);
        let plan = clean_plan(&inv, &f);
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].path, "/srv/pg/pg1");
        assert!(plan.refused[0].reason.starts_with("it has no .pgxc-deploy-initialized"));
        let paths: Vec<&str> = plan.removals.iter().flat_map(|r| r.paths()).collect();
        assert_eq!(
            paths,
            ["/srv/pg/pg1.pgxc-deploy-tmp", "/srv/pg/pg1_standby", "/srv/pg/pg2.pgxc-deploy-tmp"]
        );
    }

    #[test]
    fn never_an_install_prefix_and_says_which_hosts_it_could_not_see() {
        let mut inv = fixtures::postgresql();
        inv.hosts[0].install_prefix = "/srv/pg/pg1/install".into();
        let mut f = facts(&inv);
        f.insert("pg-b".into(), Err("connect: refused".into()));
        let plan = clean_plan(&inv, &f);
        assert!(plan.removals.is_empty());
        assert_eq!(plan.refused[0].reason, "it holds the install prefix /srv/pg/pg1/install");
        assert_eq!(plan.unreachable, [("pg-b".to_string(), "connect: refused".to_string())]);
        assert!(holds("/srv/pg/pg1", "/srv/pg/pg1"));
        assert!(!holds("/srv/pg/pg1", "/srv/pg/pg10"));
        assert!(!holds("/srv/pg/pg1", "/srv/pg"));
    }
}
