//! The network of a lab made with `lab up --netns`: a bridge on this machine, and per host a
//! network namespace joined to it by a veth pair. All of it through `ip` (iproute2), as root.
//!
//! `down` keeps the network (the next `up` starts sshd in the same namespaces), `down --purge`
//! removes it. A namespace outlives its name while a process still runs in it, so servers left
//! running on a purged lab keep working until they stop.

use std::process::Output;

use super::command;
use super::error::Result;
use super::layout::{MAX_NETNS_HOSTS, Net};

const IP: Option<(&str, &str)> = Some(("ip", "iproute2"));

async fn ip(args: &[&str]) -> Result<Output> {
    command::output("ip", args, IP).await
}

/// Runs `ip ARGS` and fails with `what` and its stderr unless it succeeds.
async fn ip_ok(what: &str, args: &[&str]) -> Result<()> {
    command::check(ip(args).await?, || format!("{what}: ip {}", args.join(" "))).map(drop)
}

/// A network number no other lab on this machine uses: the first N without a bridge `pxlNbr`.
pub(crate) async fn choose() -> Result<Net> {
    let out = command::check(ip(&["-o", "link", "show", "type", "bridge"]).await?, || {
        "list the bridges: ip -o link show type bridge".to_string()
    })?;
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let taken = |net: Net| {
        let bridge = net.bridge();
        listed.lines().any(|l| l.split(':').nth(1).is_some_and(|name| name.trim() == bridge))
    };
    (0..=u8::MAX).map(Net).find(|net| !taken(*net)).ok_or_else(|| super::Error::BadDir {
        dir: "/sys/class/net".into(),
        reason: "every lab network 198.18.0-255.0/24 has a bridge already: purge an old lab"
            .to_string(),
    })
}

/// The bridge of `net`, with its address, up.
pub(crate) async fn ensure_bridge(net: Net) -> Result<()> {
    let bridge = net.bridge();
    let what = format!("lab network {}", net.bridge_cidr());
    if !ip(&["link", "show", "dev", &bridge]).await?.status.success() {
        ip_ok(&what, &["link", "add", &bridge, "type", "bridge"]).await?;
    }
    let addresses = ip(&["-o", "addr", "show", "dev", &bridge]).await?;
    let cidr = net.bridge_cidr();
    if !String::from_utf8_lossy(&addresses.stdout).contains(&format!(" {cidr} ")) {
        ip_ok(&what, &["addr", "add", &cidr, "dev", &bridge]).await?;
    }
    ip_ok(&what, &["link", "set", &bridge, "up"]).await
}

/// Host `k`'s namespace with `eth0` at its address on the bridge, and `lo` up. A namespace
/// left half-made by an interrupted `up` is made again.
pub(crate) async fn ensure_host(net: Net, k: usize, name: &str) -> Result<()> {
    debug_assert!((1..=MAX_NETNS_HOSTS).contains(&k));
    let (ns, veth, address) = (net.namespace(k), net.veth(k), net.address(k));
    let shown = ip(&["-n", &ns, "-o", "addr", "show", "dev", "eth0"]).await?;
    if shown.status.success() && String::from_utf8_lossy(&shown.stdout).contains(&address) {
        return Ok(());
    }
    remove_host(net, k).await?;
    let what = format!("{name}: network namespace {ns}");
    let cidr = format!("{address}/24");
    ip_ok(&what, &["netns", "add", &ns]).await?;
    ip_ok(&what, &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])
        .await?;
    ip_ok(&what, &["link", "set", &veth, "master", &net.bridge(), "up"]).await?;
    ip_ok(&what, &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]).await?;
    ip_ok(&what, &["-n", &ns, "link", "set", "eth0", "up"]).await?;
    ip_ok(&what, &["-n", &ns, "link", "set", "lo", "up"]).await
}

/// Removes host `k`'s namespace (which takes its veth pair along), if there is one.
pub(crate) async fn remove_host(net: Net, k: usize) -> Result<()> {
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

/// Removes the bridge of `net`, if there is one.
pub(crate) async fn remove_bridge(net: Net) -> Result<()> {
    let bridge = net.bridge();
    if ip(&["link", "show", "dev", &bridge]).await?.status.success() {
        ip_ok(&format!("remove bridge {bridge}"), &["link", "del", &bridge]).await?;
    }
    Ok(())
}
