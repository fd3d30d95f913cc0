//! The network of a lab made with `lab up --netns`: a bridge on this machine, and per host a
//! network namespace joined to it by a veth pair. All of it through `ip` (iproute2), as root.
//!
//! A lab's network number N is claimed by creating its bridge `pxlNbr` (creating a link that
//! exists fails, so two labs never get the same N), whose alias names the lab directory: a
//! bridge with another lab's alias is never used. `down` keeps the network (the next `up`
//! starts sshd in the same namespaces); `down --purge` removes every namespace of the lab and
//! its bridge, which cuts off any server still running in them.

use std::path::Path;
use std::process::Output;

use super::command;
use super::error::{Error, Result};
use super::layout::{MAX_NETNS_HOSTS, Net};

const IP: Option<(&str, &str)> = Some(("ip", "iproute2"));

async fn ip(args: &[&str]) -> Result<Output> {
    command::output("ip", args, IP).await
}

/// Runs `ip ARGS` and fails with `what` and its stderr unless it succeeds.
async fn ip_ok(what: &str, args: &[&str]) -> Result<()> {
    command::check(ip(args).await?, || format!("{what}: ip {}", args.join(" "))).map(drop)
}

/// Claims a network number no other lab on this machine has: creates the first bridge
/// `pxlNbr` that does not exist yet, with `dir` as its alias, and its address.
pub(crate) async fn claim(dir: &Path) -> Result<Net> {
    for net in (0..=u8::MAX).map(Net) {
        let bridge = net.bridge();
        if ip(&["link", "add", &bridge, "type", "bridge"]).await?.status.success() {
            let what = format!("lab network {}", net.bridge_cidr());
            ip_ok(&what, &["link", "set", "dev", &bridge, "alias", &owner(dir)]).await?;
            ensure_bridge(net, dir).await?;
            return Ok(net);
        }
    }
    Err(Error::BadDir {
        dir: dir.to_path_buf(),
        reason: "every lab network 198.18.0-255.0/24 has a bridge already (`ip link show type \
                 bridge`): purge an old lab of namespaces"
            .to_string(),
    })
}

/// The alias that marks a bridge as the lab in `dir`'s.
fn owner(dir: &Path) -> String {
    format!("pgxc-deploy lab {}", dir.display())
}

/// The bridge of `net`, owned by the lab in `dir`, with its address, up. Made again if it is
/// gone (after a reboot); refused if another lab's.
pub(crate) async fn ensure_bridge(net: Net, dir: &Path) -> Result<()> {
    let bridge = net.bridge();
    let what = format!("lab network {}", net.bridge_cidr());
    let shown = ip(&["-d", "-o", "link", "show", "dev", &bridge]).await?;
    if !shown.status.success() {
        ip_ok(&what, &["link", "add", &bridge, "type", "bridge"]).await?;
        ip_ok(&what, &["link", "set", "dev", &bridge, "alias", &owner(dir)]).await?;
    } else if !String::from_utf8_lossy(&shown.stdout).contains(&format!("alias {}", owner(dir))) {
        return Err(Error::BadDir {
            dir: dir.to_path_buf(),
            reason: format!(
                "its network's bridge {bridge} belongs to another lab (`ip -d link show dev \
                 {bridge}` shows its alias): `pgxc-deploy lab down --purge --dir {}` and start \
                 this lab again",
                dir.display()
            ),
        });
    }
    let addresses = ip(&["-o", "addr", "show", "dev", &bridge]).await?;
    let cidr = net.bridge_cidr();
    if !String::from_utf8_lossy(&addresses.stdout).contains(&format!(" {cidr} ")) {
        ip_ok(&what, &["addr", "add", &cidr, "dev", &bridge]).await?;
    }
    ip_ok(&what, &["link", "set", &bridge, "up"]).await?;
    // With br_netfilter, traffic between the hosts crosses iptables' FORWARD chain, which a
    // Docker engine sets to drop; said when it does.
    let filtered = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables");
    let dropped = match command::output("iptables", ["-S", "FORWARD"], None).await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).contains("-P FORWARD DROP"),
        Err(_) => false,
    };
    if filtered.is_ok_and(|v| v.trim() == "1") && dropped {
        tracing::warn!(
            %bridge,
            "bridged traffic goes through iptables (net.bridge.bridge-nf-call-iptables = 1), \
             whose FORWARD chain drops by default: if lab hosts cannot reach each other, allow \
             it with `iptables -I FORWARD -i {bridge} -o {bridge} -j ACCEPT`"
        );
    }
    Ok(())
}

/// The ephemeral ports of a lab host's outgoing connections: above every port a lab cluster
/// listens on. A host's connections leave from its own address, so one from the usual range
/// (32768-60999) could take a node's port on it and make that node's start fail ("could not
/// bind ... Address already in use"; seen in tests/gtm.rs).
const EPHEMERAL_PORTS: &str = "61000 65535";

/// Host `k`'s namespace with `eth0` at its address on the bridge, `lo` up, and its ephemeral
/// ports [`EPHEMERAL_PORTS`]. A namespace left half-made by an interrupted `up` is made again.
pub(crate) async fn ensure_host(net: Net, k: usize, name: &str) -> Result<()> {
    debug_assert!((1..=MAX_NETNS_HOSTS).contains(&k));
    let (ns, veth, address) = (net.namespace(k), net.veth(k), net.address(k));
    let cidr = format!("{address}/24");
    let what = format!("{name}: network namespace {ns}");
    let ports = format!("echo {EPHEMERAL_PORTS} > /proc/sys/net/ipv4/ip_local_port_range");
    let shown = ip(&["-n", &ns, "-o", "addr", "show", "dev", "eth0"]).await?;
    let made = shown.status.success()
        && String::from_utf8_lossy(&shown.stdout).contains(&format!(" {cidr} "));
    if !made {
        remove_host(net, k).await?;
        ip_ok(&what, &["netns", "add", &ns]).await?;
        let peer = ["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns];
        ip_ok(&what, &peer).await?;
        ip_ok(&what, &["link", "set", &veth, "master", &net.bridge(), "up"]).await?;
        ip_ok(&what, &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]).await?;
        ip_ok(&what, &["-n", &ns, "link", "set", "eth0", "up"]).await?;
        ip_ok(&what, &["-n", &ns, "link", "set", "lo", "up"]).await?;
    }
    ip_ok(&what, &["netns", "exec", &ns, "sh", "-c", &ports]).await
}

/// Removes host `k`'s namespace (which takes its veth pair along), if there is one.
async fn remove_host(net: Net, k: usize) -> Result<()> {
    let (ns, veth) = (net.namespace(k), net.veth(k));
    if ip(&["netns", "pids", &ns]).await?.status.success() {
        ip_ok(&format!("remove network namespace {ns}"), &["netns", "del", &ns]).await?;
    }
    // A veth whose namespace went away by other means.
    if ip(&["link", "show", "dev", &veth]).await?.status.success() {
        ip_ok(&format!("remove interface {veth}"), &["link", "del", &veth]).await?;
    }
    Ok(())
}

/// Removes every namespace of `net` (those of hosts whose start failed too) and its bridge.
pub(crate) async fn remove(net: Net) -> Result<()> {
    let listed = ip(&["netns", "list"]).await?;
    let hosts: Vec<usize> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|ns| (1..=MAX_NETNS_HOSTS).find(|k| net.namespace(*k) == ns))
        .collect();
    for k in hosts {
        remove_host(net, k).await?;
    }
    let bridge = net.bridge();
    if ip(&["link", "show", "dev", &bridge]).await?.status.success() {
        ip_ok(&format!("remove bridge {bridge}"), &["link", "del", &bridge]).await?;
    }
    Ok(())
}
