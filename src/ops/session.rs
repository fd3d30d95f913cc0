//! [`Session`]: a deployed cluster as the operations work on it. What every operation used to
//! assemble for itself (and pass around as loose parameters): the inventory and the file it
//! came from, the install's layout on the hosts, the templates, the SSH fleet, how to run as
//! the cluster's user on each host, and how many hosts to work on at once.
//!
//! What a session does on the hosts (probe nodes, run a step, take the cluster lock) goes
//! through one seam, [`Hosts`]: over SSH in use ([`Ssh`]), scripted in the operations' unit
//! tests, which so cover each operation's decisions and order of steps without a host.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use crate::executor::steps::{HostEnv, StepContext, run_step};
use crate::executor::{self, Outcome, StepError, Target};
use crate::flavors::{self, NodeCommands};
use crate::inventory::roles::{self, Roles};
use crate::inventory::{Inventory, Node};
use crate::lock::ClusterLock;
use crate::observe::Facts;
use crate::plan::desired::{bin_dir, psql};
use crate::plan::render::Renderer;
use crate::plan::step::Step;
use crate::source::Layout;
use crate::transport::{Fleet, Output};

use super::cluster::{self, HostResults, LockScope, Probe};
use super::{Error, Status};

/// An inventory's cluster, open for operations. The fleet connects to a host on first use;
/// [`Session::close`] disconnects every host (each command calls it once, at its end).
pub struct Session {
    /// The inventory file: the roles file and the replication record live beside it.
    pub path: PathBuf,
    /// The inventory as loaded (as written, or with the roles file's swaps applied: the
    /// caller's choice, see [`cluster::load_now`]).
    pub inv: Inventory,
    pub layout: Layout,
    pub renderer: Renderer,
    pub fleet: Fleet,
    /// How to run as the cluster's user on each host, by host name.
    pub envs: BTreeMap<String, HostEnv>,
    /// How many hosts to work on at once.
    pub forks: usize,
    /// Where probes, steps and the lock go: [`Ssh`], or a stand-in in tests.
    pub hosts: Box<dyn Hosts>,
}

/// A lock refused: the refusal is reported already, and this is how the command ends.
pub type Refused = Result<Status, Error>;

/// What a [`Session`] does on the hosts: the seam between the operations and SSH.
pub trait Hosts: Send + Sync {
    /// One probe per host of `scope` (an inventory narrowed to the hosts and nodes to read),
    /// reading each node's managed files `files(node)` too, and (`sql`) what each running
    /// server's SQL tells.
    fn probe<'a>(
        &'a self,
        s: &'a Session,
        scope: &'a Inventory,
        files: &'a (dyn Fn(&str) -> Vec<String> + Sync),
        sql: bool,
    ) -> BoxFuture<'a, Facts>;

    /// Run one step on its host, with what `cx` gives steps (apply's has the install to ship,
    /// the build and the password; the others' [`Session::steps`]).
    fn run<'a>(
        &'a self,
        cx: &'a StepContext<'a>,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Output, StepError>>;

    /// Take the cluster lock for `what` on every host (`scope`) and run `probe` in the same
    /// login; see [`cluster::lock_and_probe`].
    fn lock_and_probe<'a>(
        &'a self,
        s: &'a Session,
        what: &'a str,
        scope: LockScope,
        probe: &'a Probe<'a>,
    ) -> BoxFuture<'a, Result<(Option<ClusterLock>, Facts), Refused>>;

    /// Take the cluster lock for `what`; see [`cluster::lock`]. `Ok(None)`: nothing to hold
    /// (a stand-in).
    fn lock<'a>(
        &'a self,
        s: &'a Session,
        what: &'a str,
        scope: LockScope,
    ) -> BoxFuture<'a, Result<Option<ClusterLock>, Refused>>;
}

/// What [`Session::lock_and_probe_now`] gives: the lock (released when dropped), the roles
/// file and the inventory with its swaps applied as they are under it, and the probe.
pub struct Locked {
    pub lock: Option<ClusterLock>,
    pub roles: Roles,
    pub now: Inventory,
    pub facts: HostResults,
}

/// Facts per host as the operations judge them: why a host could not be probed as
/// `step: message`.
fn judged(facts: Facts) -> HostResults {
    facts
        .into_iter()
        .map(|(h, f)| (h, f.map_err(|e| format!("{}: {}", e.step, e.message()))))
        .collect()
}

/// The hosts over SSH, through the session's fleet.
pub struct Ssh;

impl Hosts for Ssh {
    fn probe<'a>(
        &'a self,
        s: &'a Session,
        scope: &'a Inventory,
        files: &'a (dyn Fn(&str) -> Vec<String> + Sync),
        sql: bool,
    ) -> BoxFuture<'a, Facts> {
        Box::pin(cluster::probe(scope, &s.fleet, s.forks, &s.envs, &s.layout.bin, files, sql))
    }

    fn run<'a>(
        &'a self,
        cx: &'a StepContext<'a>,
        step: &'a Step,
    ) -> BoxFuture<'a, Result<Output, StepError>> {
        Box::pin(run_step(step, cx))
    }

    fn lock_and_probe<'a>(
        &'a self,
        s: &'a Session,
        what: &'a str,
        scope: LockScope,
        probe: &'a Probe<'a>,
    ) -> BoxFuture<'a, Result<(Option<ClusterLock>, Facts), Refused>> {
        Box::pin(async move {
            let (inv, bin) = (&s.inv, &s.layout.bin);
            let locked = cluster::lock_and_probe(inv, &s.fleet, &s.envs, what, scope, bin, probe);
            let (lock, facts) = locked.await?;
            Ok((Some(lock), facts))
        })
    }

    fn lock<'a>(
        &'a self,
        s: &'a Session,
        what: &'a str,
        scope: LockScope,
    ) -> BoxFuture<'a, Result<Option<ClusterLock>, Refused>> {
        Box::pin(
            async move { cluster::lock(&s.inv, &s.fleet, &s.envs, what, scope).await.map(Some) },
        )
    }
}

impl Session {
    /// Open `inv` (loaded from `path`) over `fleet`: read the install's layout (from the local
    /// install, else from the first host that recorded one) and the templates.
    pub async fn open(
        path: &Path,
        inv: Inventory,
        fleet: Fleet,
        forks: usize,
    ) -> Result<Session, Error> {
        let layout = cluster::layout(&inv, &fleet, inv.hosts.iter().map(|h| h.name.as_str()));
        let layout = match layout.await {
            Ok(layout) => layout,
            Err(e) => {
                fleet.close().await;
                return Err(e);
            }
        };
        Self::with_layout(path, inv, fleet, forks, layout).await
    }

    /// [`Session::open`] with a layout the caller read already.
    pub async fn with_layout(
        path: &Path,
        inv: Inventory,
        fleet: Fleet,
        forks: usize,
        layout: Layout,
    ) -> Result<Session, Error> {
        let renderer = match cluster::renderer(&inv) {
            Ok(renderer) => renderer,
            Err(e) => {
                fleet.close().await;
                return Err(e);
            }
        };
        let envs = cluster::host_envs(&inv, &layout);
        let path = path.to_path_buf();
        Ok(Session { path, inv, layout, renderer, fleet, envs, forks, hosts: Box::new(Ssh) })
    }

    /// Disconnect from every host (which also releases a lock held through the fleet).
    pub async fn close(&self) {
        self.fleet.close().await;
    }

    /// Take the cluster lock for `what`; see [`cluster::lock`]. A refusal is reported on stderr
    /// and closes the fleet. The lock is held until the value is dropped or released.
    pub async fn lock(&self, what: &str, scope: LockScope) -> Result<Option<ClusterLock>, Refused> {
        self.hosts.lock(self, what, scope).await
    }

    /// What steps run with: the fleet and the host environments (no install, build or
    /// password: operating a deployed cluster).
    pub fn steps(&self) -> StepContext<'_> {
        StepContext::plain(&self.fleet, self.envs.clone())
    }

    /// One probe per host that holds one of `nodes`, reading only those nodes.
    pub async fn probe(&self, nodes: &[&Node]) -> HostResults {
        self.probe_reading(nodes, &[]).await
    }

    /// [`Session::probe`], reading the content of the managed files `files` of each node too.
    pub async fn probe_reading(&self, nodes: &[&Node], files: &[&str]) -> HostResults {
        let files = |_: &str| files.iter().map(|f| f.to_string()).collect();
        self.probe_reading_each(nodes, &files).await
    }

    /// [`Session::probe`], reading each node's own managed files `files(node)`.
    pub async fn probe_reading_each(
        &self,
        nodes: &[&Node],
        files: &(dyn Fn(&str) -> Vec<String> + Sync),
    ) -> HostResults {
        self.probe_nodes(nodes, files, true).await
    }

    /// [`Session::probe_reading_each`] without asking any server SQL: whether each runs and
    /// accepts connections, and its files. What a GTM handover reads, while every server's
    /// new session waits for the lost GTM.
    pub async fn probe_without_sql(
        &self,
        nodes: &[&Node],
        files: &(dyn Fn(&str) -> Vec<String> + Sync),
    ) -> HostResults {
        self.probe_nodes(nodes, files, false).await
    }

    async fn probe_nodes(
        &self,
        nodes: &[&Node],
        files: &(dyn Fn(&str) -> Vec<String> + Sync),
        sql: bool,
    ) -> HostResults {
        let scope = self.narrowed(nodes);
        judged(self.hosts.probe(self, &scope, files, sql).await)
    }

    /// The inventory narrowed to `nodes` and their hosts: what a probe of them reads.
    fn narrowed(&self, nodes: &[&Node]) -> Inventory {
        Inventory {
            hosts: self
                .inv
                .hosts
                .iter()
                .filter(|h| nodes.iter().any(|n| n.host == h.name))
                .cloned()
                .collect(),
            nodes: nodes.iter().map(|n| (*n).clone()).collect(),
            ..self.inv.clone()
        }
    }

    /// Probe every host of the inventory, reading each node's managed files `files(node)`:
    /// per host its facts, or why it could not be probed.
    pub async fn probe_all(&self, files: &(dyn Fn(&str) -> Vec<String> + Sync)) -> Facts {
        self.hosts.probe(self, &self.inv, files, true).await
    }

    /// Take the cluster lock for `what` on every host and probe them in the same login.
    pub async fn lock_and_probe(
        &self,
        what: &str,
        files: &(dyn Fn(&str) -> Vec<String> + Sync),
    ) -> Result<(Option<ClusterLock>, Facts), Refused> {
        let probe = Probe { inv: &self.inv, files, sql: true };
        self.hosts.lock_and_probe(self, what, LockScope::Every, &probe).await
    }

    /// Under the cluster lock for `what` (`scope`): the roles file as it is then, the
    /// inventory with its swaps applied, and a probe of the nodes that `pick` names in it
    /// (their managed files `files(node)`, and SQL when `sql`), taken in the lock's own login:
    /// one shell start-up per host instead of two. The nodes are picked with the roles read
    /// before the lock; when another command changed them meanwhile, they are probed again.
    pub async fn lock_and_probe_now(
        &self,
        what: &str,
        scope: LockScope,
        pick: &(dyn Fn(&Inventory) -> Vec<Node> + Sync),
        files: &(dyn Fn(&str) -> Vec<String> + Sync),
        sql: bool,
    ) -> Result<Locked, Refused> {
        let now = |roles: &Roles| roles.effective(&self.inv).map_err(|e| Err(Error::Usage(e)));
        let before = roles::load(&self.path).map_err(|e| Err(Error::from(e)))?;
        let picked = pick(&now(&before)?);
        let scope_inv = self.narrowed(&picked.iter().collect::<Vec<_>>());
        let probe = Probe { inv: &scope_inv, files, sql };
        let (lock, facts) = self.hosts.lock_and_probe(self, what, scope, &probe).await?;
        // Read under the lock: another command may have changed the roles meanwhile.
        let roles = roles::load(&self.path).map_err(|e| Err(Error::from(e)))?;
        let now = now(&roles)?;
        let facts = match roles == before {
            true => judged(facts),
            false => self.probe_nodes(&pick(&now).iter().collect::<Vec<_>>(), files, sql).await,
        };
        Ok(Locked { lock, roles, now, facts })
    }

    /// Run `steps` at once (at most `forks`), reporting each on `out`; `Ok(false)` if one
    /// failed.
    pub async fn run(&self, steps: &[Step], out: &mut dyn Write) -> Result<bool, Error> {
        Ok(self.failed(steps, out).await?.is_empty())
    }

    /// Run `steps` at once, reporting each on `out`; the ones that failed.
    pub async fn failed(&self, steps: &[Step], out: &mut dyn Write) -> Result<Vec<Step>, Error> {
        self.failed_with(&self.steps(), steps, out).await
    }

    /// [`Session::failed`] with what `cx` gives steps (apply's install, build and password).
    pub async fn failed_with(
        &self,
        cx: &StepContext<'_>,
        steps: &[Step],
        out: &mut dyn Write,
    ) -> Result<Vec<Step>, Error> {
        let outcomes = self.outcomes_with(cx, steps).await;
        let mut failed = Vec::new();
        for (step, outcome) in steps.iter().zip(&outcomes) {
            crate::executor::report::progress(step, outcome, out)?;
            if outcome.result.is_err() {
                failed.push(step.clone());
            }
        }
        Ok(failed)
    }

    /// Run `steps` at once (at most `forks`): one outcome each, in order, not reported.
    pub async fn outcomes(&self, steps: &[Step]) -> Vec<Outcome> {
        self.outcomes_with(&self.steps(), steps).await
    }

    async fn outcomes_with(&self, cx: &StepContext<'_>, steps: &[Step]) -> Vec<Outcome> {
        let items = steps.iter().map(|s| (target(s), s)).collect();
        executor::run_items(items, self.forks, |_, step| self.hosts.run(cx, step)).await
    }

    /// Run one step (not reported: the caller says what its outcome means).
    pub async fn run_one(&self, step: &Step) -> Outcome {
        let cx = self.steps();
        let items = vec![(target(step), step)];
        executor::run_items(items, 1, |_, step| self.hosts.run(&cx, step)).await.remove(0)
    }

    /// The commands that start, stop, promote, ... `node`.
    pub fn commands(&self, node: &Node) -> Result<NodeCommands, Error> {
        let host = self.inv.host(&node.host).expect("validated inventory");
        flavors::of(self.inv.cluster.flavor)
            .commands(&self.inv, node, &bin_dir(host, &self.layout.bin))
            .map_err(|e| Error::Usage(format!("{} on {}: {e}", node.name, node.host)))
    }

    /// psql on `node`, as the cluster's user, with `sql` (stopping at its first error).
    pub fn psql_on(&self, node: &Node, sql: String) -> Vec<String> {
        let host = self.inv.host(&node.host).expect("validated inventory");
        let mut argv = psql(&self.inv, node, &bin_dir(host, &self.layout.bin));
        argv.extend(["-v".into(), "ON_ERROR_STOP=1".into(), "-c".into(), sql]);
        argv
    }
}

fn target(step: &Step) -> Target {
    Target { host: step.host.clone(), node: step.node.as_deref().map(String::from) }
}

/// `node on host`, as every line about a node names it.
pub fn label(node: &Node) -> String {
    format!("{} on {}", node.name, node.host)
}
