//! The integration tests: one binary, one module per command. They run the built `pgxc-deploy`
//! against real lab hosts (OpenSSH sshd on 127.0.10.x); nothing is mocked.

mod support;

/// `apply` and `plan`: whole clusters on lab hosts, both flavors.
mod apply;
/// ProxyJump: hosts in a network namespace that only a jump host reaches.
mod bastion;
/// `remove`: a lost Postgres-XC coordinator taken out, so that DDL works again.
mod coordinator;
/// `apply` adding a Postgres-XC datanode to a running cluster, its tables spread over it.
mod datanode;
/// `exec`: fleet-wide commands, node environments, quoting, host keys, failures.
mod exec;
/// GTM standby, gtm_proxies, `failover`/`switchover INVENTORY gtm` (Postgres-XC).
mod gtm;
/// `status --watch --heal`: a primary blocked by its dead synchronous standby is degraded, then
/// switched back on once the standby streams.
mod heal;
/// Ctrl-C during apply (first: finish running steps; second: stop at once), and `-vv`.
mod interrupt;
/// Host keys with OpenSSH's known_hosts rules, against an sshd of its own.
mod known_hosts;
/// `lab`: the local sshd hosts themselves.
mod lab;
/// OpenTenBase (`flavor = "opentenbase"`): apply, forward ports, the node group, failover.
mod opentenbase;
/// `status`, `start`/`stop`, `clean`, `failover`: operating a cluster that apply deployed.
mod ops;
/// `restart --rolling`: under a write load, both flavors; a node that does not come back.
mod roll;
/// `switchover`: a planned hand-over that loses nothing; the old primary follows the new one.
mod switchover;
/// `degrade`: a synchronous standby dies, writes resume, apply restores synchronous replication.
mod sync;
/// The SSH transport library itself: session reuse, upload, ssh-agent.
mod transport;
/// Operating a Postgres-XC cluster: status, stop/start, failover through every coordinator.
mod xc_ops;
/// `degrade` on Postgres-XC: writes through the coordinator resume; apply restores sync.
mod xc_sync;
/// Postgres-XL 10 (`flavor = "postgres-xl"`): apply, registration on every node, rows spread.
mod xl;
