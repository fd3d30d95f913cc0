//! ProxyJump: lab hosts that only a jump host reaches. A network namespace of its own
//! (`pgxcbast`) holds three target sshds on its loopback (127.0.20.1-3, the lab's host keys)
//! and the bastion's sshd on the namespace's end of a veth pair (10.251.0.2); from the test's
//! namespace only the bastion answers. `exec` and `apply` (a PostgreSQL primary and standby)
//! go through one bastion session per run; the bastion's log shows each `direct-tcpip`
//! request, the targets' logs show connections from inside the namespace only.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::*;

const NS: &str = "pgxcbast";
const BASTION: &str = "10.251.0.2";
const TAG: &str = "bastion";
const PORTS: (u16, u16) = (34742, 34743);

/// The namespace, its sshds (stopped, with every server started in the namespace, and the
/// namespace deleted, when dropped) and their logs' directory.
struct Hidden {
    dir: tempfile::TempDir,
    sshds: Vec<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
}

/// Kill every process of the namespace, then delete it (its veth goes with it).
fn remove_namespace() {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", NS]).output() {
        for pid in text(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", NS]).output();
}

impl Drop for Hidden {
    fn drop(&mut self) {
        for child in &mut self.sshds {
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_namespace();
    }
}

impl Hidden {
    fn start() -> Hidden {
        lab();
        remove_namespace();
        ip(&["netns", "add", NS]);
        ip(&["netns", "exec", NS, "ip", "link", "set", "lo", "up"]);
        ip(&["link", "add", "pgxcb0", "type", "veth", "peer", "name", "pgxcb1"]);
        ip(&["link", "set", "pgxcb1", "netns", NS]);
        ip(&["addr", "add", "10.251.0.1/30", "dev", "pgxcb0"]);
        ip(&["link", "set", "pgxcb0", "up"]);
        ip(&["netns", "exec", NS, "ip", "addr", "add", &format!("{BASTION}/30"), "dev", "pgxcb1"]);
        ip(&["netns", "exec", NS, "ip", "link", "set", "pgxcb1", "up"]);
        let dir = tempdir();
        let mut hidden = Hidden { dir, sshds: Vec::new() };
        hidden.sshd("bastion", BASTION, 1, "DEBUG1");
        for k in 1..=3 {
            hidden.sshd(&format!("h{k}"), &format!("127.0.20.{k}"), k, "VERBOSE");
        }
        hidden
    }

    /// An sshd in the namespace at `addr`:2200 with lab host `key`'s host key.
    fn sshd(&mut self, name: &str, addr: &str, key: usize, log_level: &str) {
        let config = self.dir.path().join(format!("{name}.sshd_config"));
        std::fs::write(
            &config,
            format!(
                "ListenAddress {addr}\nPort 2200\nHostKey {LAB_DIR}/hosts/h{key}/ssh_host_ed25519_key\n\
                 PidFile none\nAuthorizedKeysFile {LAB_DIR}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nMaxStartups 1000\nMaxSessions 100\n\
                 PermitRootLogin prohibit-password\nLogLevel {log_level}\nUseDNS no\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.log_path(name)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", NS, "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(&config)
            .stderr(log)
            .spawn()
            .unwrap();
        self.sshds.push(child);
        let start = Instant::now();
        loop {
            let listening = Command::new("ip")
                .args(["netns", "exec", NS, "ss", "-Hltn", &format!("src {addr}:2200")])
                .output()
                .map(|o| !text(&o.stdout).trim().is_empty())
                .unwrap_or(false);
            if listening {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{name}'s sshd does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }
}

/// known_hosts: the bastion (lab h1's key) and the hidden hosts (lab hK's keys).
fn known_hosts(dir: &Path) -> std::path::PathBuf {
    let lab = std::fs::read_to_string(format!("{LAB_DIR}/known_hosts")).unwrap();
    let key = |k: usize| {
        let line = lab.lines().find(|l| l.starts_with(&format!("[127.0.10.{k}]:"))).unwrap();
        line.split_once(' ').unwrap().1.to_string()
    };
    let mut text = format!("[{BASTION}]:2200 {}\n", key(1));
    for k in 1..=3 {
        text.push_str(&format!("[127.0.20.{k}]:2200 {}\n", key(k)));
    }
    let path = dir.join("known_hosts");
    std::fs::write(&path, text).unwrap();
    path
}

/// The PostgreSQL pair's inventory over the hidden hosts, through the bastion when `jump`.
fn inventory(dir: &Path, jump: bool) -> String {
    let known = known_hosts(dir);
    let jump = if jump { format!("proxy_jump = \"root@{BASTION}:2200\"\n") } else { String::new() };
    let text = pair_toml(TAG, PORTS, false, "").replace("127.0.10.", "127.0.20.").replace(
        &format!("known_hosts = \"{LAB_DIR}/known_hosts\"\n"),
        &format!("known_hosts = \"{}\"\n{jump}", known.display()),
    );
    assert_eq!(text.contains("proxy_jump"), !jump.is_empty(), "{text}");
    write(dir, if jump.is_empty() { "direct.toml" } else { "jump.toml" }, &text)
}

fn count(text: &str, what: &str) -> usize {
    text.matches(what).count()
}

#[test]
fn hosts_behind_a_jump_host_are_reached_through_it_for_exec_and_apply() {
    reset(TAG);
    let hidden = Hidden::start();
    let dir = tempdir();
    let (direct, jump) = (inventory(dir.path(), false), inventory(dir.path(), true));

    // Directly: nothing answers there.
    let out = pgxc(&["exec", &direct, "--connect-timeout", "3", "--", "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", shown(&out));
    assert!(text(&out.stderr).contains("cannot connect to 127.0.20.1:2200"), "{}", shown(&out));

    // Through the bastion: one login there, one direct-tcpip channel per host.
    let out = pgxc(&["exec", &jump, "--json", "--", "echo $SSH_CONNECTION"]);
    assert!(out.status.success(), "{}", shown(&out));
    let lines = json_lines(&out.stdout);
    for (k, line) in lines.iter().enumerate() {
        let seen = line["stdout"].as_str().unwrap();
        assert!(seen.contains(&format!(" 127.0.20.{} 2200", k + 1)), "{seen}");
    }
    let bastion = hidden.log("bastion");
    assert_eq!(count(&bastion, "Accepted publickey"), 1, "{bastion}");
    for k in 1..=3 {
        let target = format!("target 127.0.20.{k} port 2200");
        assert!(bastion.contains(&target), "no direct-tcpip to h{k}: {bastion}");
        let log = hidden.log(&format!("h{k}"));
        assert!(log.contains(&format!("on 127.0.20.{k} port 2200")), "{log}");
    }

    // apply through the bastion: the pair streams; a row written on the primary is read back.
    let out = pgxc(&["apply", &jump]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let (code, rows) = status(&jump);
    assert_eq!(code, 0, "{rows:?}");
    assert_eq!(rows["pg1_standby"]["role"], "standby", "{rows:?}");
    let sql = "psql -X -A -t -c 'create table t as select 7 as x' -c 'select x from t'";
    let out = pgxc(&["exec", &jump, "--on", "pg1", "--", sql]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("pg1: 7\n"), "{}", shown(&out));
    let out = pgxc(&["apply", &jump]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", shown(&out));
    assert!(
        count(&hidden.log("bastion"), "Accepted publickey") >= 4,
        "one bastion login per command"
    );
    reset(TAG);
}
