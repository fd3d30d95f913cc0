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
