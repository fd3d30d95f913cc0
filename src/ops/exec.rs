//! `exec`: an ad-hoc command on every selected host, or once per selected node with that
//! node's environment ([`crate::remote::exec`]), at most `forks` at once.

use crate::executor::{self, Outcome, StepError, Target};
use crate::inventory::roles::Roles;
use crate::inventory::{self, Inventory};
use crate::remote;
use crate::source::Layout;
use crate::transport::Fleet;

use super::{Error, cluster};

/// Where `on` (a selector, every host without it) runs a command: hosts, and nodes where their
/// role is served now (`inv`: the cluster as it runs now, `roles` the roles file).
pub fn targets(
    inv: &Inventory,
    roles: &Roles,
    on: Option<&str>,
    exclude: Option<&str>,
) -> Result<Vec<Target>, Error> {
    let selected = inventory::select_excluding(inv, on, exclude)
        .map_err(|e| Error::Usage(format!("--on: {e}\n  hint: {}", e.hint())))?;
    // A datanode named as such means the node serving it now; one a role or a pattern selected
    // is that node itself.
    let operators = [',', '!', '&', '^'];
    let named: Vec<&str> = on.map_or(Vec::new(), |on| on.split(operators).map(str::trim).collect());
    let mut targets: Vec<Target> = Vec::new();
    for t in selected.iter().map(|t| target(inv, roles, &named, t)) {
        // `dn1` and `@datanodes` both select dn1's promoted standby: once.
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    Ok(targets)
}

/// Called with each whole line a target prints, as it arrives (`true`: stderr; the line
/// without its newline).
pub type OnLine<'a> = dyn Fn(&Target, bool, &[u8]) + Send + Sync + 'a;

/// Run `command` on `targets` over `fleet`, at most `forks` at once: one outcome per target, in
/// order. With `lines`, every line is handed to it as it arrives too (a last line without a
/// newline when the command ends).
pub async fn exec(
    inv: &Inventory,
    fleet: &Fleet,
    targets: Vec<Target>,
    command: &[String],
    forks: usize,
    lines: Option<&OnLine<'_>>,
) -> Result<Vec<Outcome>, Error> {
    // Only a command run on a node needs the install's directories (PATH, LD_LIBRARY_PATH).
    let node_hosts: Vec<&str> =
        targets.iter().filter(|t| t.node.is_some()).map(|t| t.host.as_str()).collect();
    let layout = match node_hosts.is_empty() {
        true => Layout::default(),
        false => cluster::layout(inv, fleet, node_hosts).await?,
    };
    let envs = cluster::host_envs(inv, &layout);
    Ok(executor::run_all(targets, forks, |target| {
        let node = target.node.as_deref().and_then(|n| inv.node(n));
        let script = remote::exec::script(inv, &layout, node, command);
        // On a node: as the cluster's user, as its servers run (psql then authenticates the
        // way pg_hba expects of it: peer on the Unix socket), in /.
        let script = match &target.node {
            Some(_) => envs[&target.host].as_user.wrap(&script),
            None => script,
        };
        async move {
            let session =
                fleet.session(&target.host).await.map_err(|e| StepError::new("connect", e))?;
            let Some(lines) = lines else {
                return session.run(&script).await.map_err(|e| StepError::new("run", e));
            };
            let split = LineSplitter::default();
            let on_data = |stderr: bool, data: &[u8]| {
                split.feed(stderr, data, &mut |err, line| lines(&target, err, line))
            };
            let ran = session.run_streaming(&script, &on_data).await;
            split.finish(&mut |err, line| lines(&target, err, line));
            ran.map_err(|e| StepError::new("run", e))
        }
    })
    .await)
}

/// Cuts a target's stdout and stderr into lines, each kept apart until its newline comes.
#[derive(Default)]
struct LineSplitter {
    pending: std::sync::Mutex<[Vec<u8>; 2]>,
}

impl LineSplitter {
    fn feed(&self, stderr: bool, data: &[u8], emit: &mut dyn FnMut(bool, &[u8])) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let buf = &mut pending[usize::from(stderr)];
        buf.extend_from_slice(data);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            emit(stderr, &line[..end]);
        }
    }

    /// What is left without a newline.
    fn finish(&self, emit: &mut dyn FnMut(bool, &[u8])) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (i, buf) in pending.iter_mut().enumerate() {
            if !buf.is_empty() {
                emit(i == 1, buf);
                buf.clear();
            }
        }
    }
}

/// A selected node is run where its role is served now: after a failover, the datanode's name
/// (when `named`, one of the selector's terms) means its promoted standby (the roles file
/// beside the inventory says which).
fn target(inv: &Inventory, roles: &Roles, named: &[&str], t: &inventory::Target) -> Target {
    match t {
        inventory::Target::Host(host) => Target { host: host.clone(), node: None },
        inventory::Target::Node(name) => {
            let served =
                roles.datanodes.get(name.as_str()).filter(|_| named.contains(&name.as_str()));
            let name = served.map_or(name.as_str(), |p| &p.primary);
            let node = inv.node(name).expect("selected nodes and recorded primaries exist");
            Target { host: node.host.clone(), node: Some(name.to_string()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_into_lines_kept_apart_per_stream() {
        let split = LineSplitter::default();
        let mut seen = Vec::new();
        let mut emit =
            |err: bool, line: &[u8]| seen.push((err, String::from_utf8_lossy(line).into_owned()));
        split.feed(false, b"a\nb", &mut emit);
        split.feed(true, b"e1\n", &mut emit);
        split.feed(false, b"c\n\nd", &mut emit);
        split.finish(&mut emit);
        let want = [(false, "a"), (true, "e1"), (false, "bc"), (false, ""), (false, "d")];
        assert_eq!(seen, want.map(|(e, l)| (e, l.to_string())));
    }
}
