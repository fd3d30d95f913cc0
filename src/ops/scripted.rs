//! A scripted stand-in for the hosts ([`Hosts`]), for the operations' unit tests: the test
//! sets what the hosts hold (a "world" of probe facts), which steps fail and while what is
//! true, and what a step changes; the stand-in answers probes from that world and records
//! every step run and every lock taken, in order. No host, no SSH: the decisions and the
//! sequencing of an operation are tested here, end-to-end behaviour in tests/.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::executor::StepError;
use crate::executor::steps::StepContext;
use crate::inventory::{Inventory, Node};
use crate::lock::ClusterLock;
use crate::observe::Facts;
use crate::plan::render::Renderer;
use crate::plan::state::{HostFacts, NodeFacts, Replica, ReplicaState};
use crate::plan::step::{Action, Step};
use crate::source::Layout;
use crate::transport::{ExitStatus, Fleet, Output};

use super::cluster::{HostResults, LockScope, Probe};
use super::session::{Hosts, Refused, Session};
use super::{Error, Status};

/// What the hosts hold: per host its facts, or why it cannot be reached.
pub type World = HostResults;

type Predicate = Box<dyn Fn(&World) -> bool + Send + Sync>;
type Effect = Box<dyn Fn(&mut World) + Send + Sync>;

/// The script and the record of one test.
#[derive(Default)]
pub struct Script {
    pub world: World,
    /// Steps (by [`what`] prefix) that fail while their predicate holds.
    fails: Vec<(String, Predicate)>,
    /// What a step (by [`what`] prefix) changes when it succeeds.
    effects: Vec<(String, Effect)>,
    /// What a step (by [`what`] prefix) prints when it succeeds.
    outputs: Vec<(String, String)>,
    /// Every step run ([`what`]), and `lock <what>` for each lock taken, in order.
    pub log: Vec<String>,
}

/// The stand-in; clones share one script.
#[derive(Clone, Default)]
pub struct Scripted(pub Arc<Mutex<Script>>);

impl Scripted {
    /// A stand-in whose hosts hold `world`.
    pub fn new(world: World) -> Scripted {
        Scripted(Arc::new(Mutex::new(Script { world, ..Script::default() })))
    }

    /// Steps whose [`what`] starts with `prefix` fail while `when` holds of the world.
    pub fn fail_while(&self, prefix: &str, when: impl Fn(&World) -> bool + Send + Sync + 'static) {
        self.0.lock().unwrap().fails.push((prefix.to_string(), Box::new(when)));
    }

    /// Steps whose [`what`] starts with `prefix` change the world with `effect`.
    pub fn on(&self, prefix: &str, effect: impl Fn(&mut World) + Send + Sync + 'static) {
        self.0.lock().unwrap().effects.push((prefix.to_string(), Box::new(effect)));
    }

    /// Steps whose [`what`] starts with `prefix` print `stdout` when they succeed.
    pub fn prints(&self, prefix: &str, stdout: &str) {
        self.0.lock().unwrap().outputs.push((prefix.to_string(), stdout.to_string()));
    }

    /// What the world shows of `scope`'s hosts now (a host the script does not name cannot be
    /// reached).
    fn probe_now(&self, scope: &Inventory) -> Facts {
        let script = self.0.lock().unwrap();
        let fact = |host: &str| match script.world.get(host) {
            Some(Ok(facts)) => Ok(facts.clone()),
            Some(Err(why)) => Err(StepError::found("connect", why.clone())),
            None => Err(StepError::found("connect", "not in the script")),
        };
        scope.hosts.iter().map(|h| (h.name.clone(), fact(&h.name))).collect()
    }

    /// What ran, in order.
    pub fn log(&self) -> Vec<String> {
        self.0.lock().unwrap().log.clone()
    }

    /// A session on `inv` (kept as if beside `path`) whose hosts are this stand-in.
    pub fn session(&self, path: &Path, inv: Inventory) -> Session {
        let layout = Layout { bin: "bin".into(), lib: "lib".into() };
        Session {
            path: path.to_path_buf(),
            inv,
            layout,
            renderer: Renderer::new(),
            fleet: Fleet::new(Vec::new()),
            envs: BTreeMap::new(),
            forks: 4,
            hosts: Box::new(self.clone()),
        }
    }
}

/// How one operation ended on the stand-in: its status, what it printed, the stand-in (its
/// log), and the directory of the inventory's side files (roles, replication record).
pub struct Ran {
    pub status: Status,
    pub out: String,
    pub hosts: Scripted,
    pub dir: tempfile::TempDir,
}

/// Run `op` in a session on `inv` (as if in a fresh directory) whose hosts hold `world`, after
/// `script` set what fails and what steps change.
pub async fn run(
    inv: &Inventory,
    world: World,
    script: impl FnOnce(&Scripted),
    op: impl AsyncFnOnce(&Session, &mut Vec<u8>) -> Result<Status, Error>,
) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let hosts = Scripted::new(world);
    script(&hosts);
    let s = hosts.session(&dir.path().join("lab.toml"), inv.clone());
    let mut out = Vec::new();
    let status = op(&s, &mut out).await.unwrap();
    Ran { status, out: String::from_utf8(out).unwrap(), hosts, dir }
}

/// How the log names a step: `node: step` (a register step as `node: register`).
pub fn what(step: &Step) -> String {
    let node = step.node.as_deref().unwrap_or(&step.host);
    match &step.action {
        Action::Register { .. } => format!("{node}: register"),
        // A step shows as `node on host: what it does`.
        _ => {
            let shown = step.to_string();
            format!("{node}: {}", shown.split_once(": ").map_or(shown.as_str(), |(_, w)| w))
        }
    }
}

impl Hosts for Scripted {
    fn probe<'a>(
        &'a self,
        _: &'a Session,
        scope: &'a Inventory,
        _: &'a (dyn Fn(&str) -> Vec<String> + Sync),
        _: bool,
    ) -> BoxFuture<'a, Facts> {
        let facts = self.probe_now(scope);
        Box::pin(async move { facts })
    }

    fn run<'a>(
        &'a self,
        _: &'a StepContext<'a>,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Output, StepError>> {
        let mut guard = self.0.lock().unwrap();
        let script = &mut *guard;
        let what = what(step);
        script.log.push(what.clone());
        let fails = script.fails.iter().any(|(p, when)| what.starts_with(p) && when(&script.world));
        let result = if fails {
            Err(StepError::found("scripted", format!("{what} failed")))
        } else {
            for (_, effect) in script.effects.iter().filter(|(p, _)| what.starts_with(p)) {
                effect(&mut script.world);
            }
            let stdout = script.outputs.iter().find(|(p, _)| what.starts_with(p));
            let stdout = stdout.map(|(_, text)| text.as_bytes().to_vec()).unwrap_or_default();
            Ok(Output { stdout, stderr: Vec::new(), status: ExitStatus::Code(0) })
        };
        Box::pin(async move { result })
    }

    fn lock<'a>(
        &'a self,
        _: &'a Session,
        what: &'a str,
        _: LockScope,
    ) -> BoxFuture<'a, Result<Option<ClusterLock>, Refused>> {
        self.0.lock().unwrap().log.push(format!("lock {what}"));
        Box::pin(async { Ok(None) })
    }

    fn lock_and_probe<'a>(
        &'a self,
        _: &'a Session,
        what: &'a str,
        _: LockScope,
        probe: &'a Probe<'a>,
    ) -> BoxFuture<'a, Result<(Option<ClusterLock>, Facts), Refused>> {
        self.0.lock().unwrap().log.push(format!("lock {what}"));
        let facts = self.probe_now(probe.inv);
        Box::pin(async move { Ok((None, facts)) })
    }
}

/// A world where every host of `inv` answers and every node is initialised and running (since
/// a start time): a standby in recovery and seen streaming, the others out of recovery (a
/// primary's standbys are not listed as streaming: see [`streaming`]).
pub fn healthy(inv: &Inventory) -> World {
    let mut world: World =
        inv.hosts.iter().map(|h| (h.name.clone(), Ok(HostFacts::default()))).collect();
    for n in &inv.nodes {
        let facts = NodeFacts {
            dir_exists: true,
            initialized: true,
            running: true,
            alive: true,
            start_time: Some("2026-12-06 09:00:00.000000+00".into()),
            in_recovery: Some(n.primary.is_some()),
            streamed: n.primary.is_some(),
            ..NodeFacts::default()
        };
        *node_mut(&mut world, n).expect("every host answers") = facts;
    }
    world
}

/// In `world`, `primary` (running, not in recovery) streams to `standby`.
pub fn streaming(world: &mut World, primary: &Node, standby: &Node) {
    let facts = node_mut(world, primary).expect("the primary's host answers");
    facts.in_recovery = Some(false);
    facts.replicas.push(Replica {
        application_name: standby.name.to_string(),
        state: ReplicaState::Streaming,
        sync_state: if standby.synchronous { "sync" } else { "async" }.into(),
        lag_bytes: Some(0),
    });
}

/// `node`'s facts in `world`, to change (its host must answer).
pub fn node_mut<'w>(world: &'w mut World, node: &Node) -> Option<&'w mut NodeFacts> {
    let host = world.get_mut(&node.host)?.as_mut().ok()?;
    Some(host.nodes.entry(node.name.clone()).or_default())
}
