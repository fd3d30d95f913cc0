//! `pgxc-deploy lab`: the fixture itself, checked with the real OpenSSH client.

use std::process::Command;

use crate::support::*;

#[test]
fn lab_hosts_accept_the_openssh_client_with_the_lab_key() {
    let lab = lab();
    for k in 1..=3 {
        let out = Command::new("ssh")
            .args(["-i", &lab.join("id_ed25519").display().to_string()])
            .args(["-o", &format!("UserKnownHostsFile={}", lab.join("known_hosts").display())])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-p", &LAB_PORT.to_string()])
            .arg(format!("127.0.10.{k}"))
            .arg("echo ok")
            .output()
            .expect("run ssh");
        assert!(out.status.success(), "h{k}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "ok\n");
    }
}

#[test]
fn lab_status_lists_running_hosts_and_hosts_toml_is_an_inventory() {
    let lab = lab();
    let out = pgxc(&["lab", "status", "--dir", LAB_DIR]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| l.ends_with("running")).count(), LAB_HOSTS, "{stdout}");
    let out = pgxc(&["lab", "status", "--dir", LAB_DIR, "--json"]);
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), LAB_HOSTS, "{}", text(&out.stdout));
    assert!(rows.iter().all(|r| r["running"] == true && r["port"] == LAB_PORT), "{rows:?}");

    let hosts = lab.join("hosts.toml").display().to_string();
    let out = pgxc(&["exec", &hosts, "--on", "h[1-2]", "-b", "--", "echo", "hi"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "---------------\nh[1-2] (2)\n---------------\nhi\n");
}

/// `lab up --netns`: each host in a network namespace of its own, reached over the bridge with
/// the real OpenSSH client, and reaching another host from its own address (on the loopback lab
/// every host reaches another from 127.0.0.1).
#[test]
fn lab_of_network_namespaces_hosts_reach_each_other_from_their_own_address() {
    let addresses = netns_lab();
    assert!(addresses.iter().all(|a| a.starts_with("198.18.")), "{addresses:?}");
    let lab = std::path::Path::new(NETNS_LAB_DIR);
    for (from, to) in [(2, 1), (1, 3)] {
        let out = Command::new("ssh")
            .args(["-i", &lab.join("id_ed25519").display().to_string()])
            .args(["-o", &format!("UserKnownHostsFile={}", lab.join("known_hosts").display())])
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-p", &LAB_PORT.to_string()])
            .arg(&addresses[from - 1])
            // The route, and a real connection over the bridge: the other host's sshd banner.
            .arg(format!(
                "cat /proc/sys/net/ipv4/ip_local_port_range && ip -o route get {to_address} && bash -c 'exec 3<>/dev/tcp/{to_address}/{LAB_PORT} \
                 && head -c 7 <&3'",
                to_address = addresses[to - 1]
            ))
            .output()
            .expect("run ssh");
        assert!(out.status.success(), "h{from}: {}", text(&out.stderr));
        let said = text(&out.stdout);
        assert!(said.contains(&format!(" src {} ", addresses[from - 1])), "h{from}: {said}");
        assert!(said.ends_with("SSH-2.0"), "h{from} -> h{to}: {said}");
        // Outgoing connections never take a port a lab node could listen on.
        assert!(said.starts_with("61000\t65535\n"), "h{from}: {said}");
    }
}
