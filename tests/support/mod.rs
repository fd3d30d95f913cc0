//! Test fixture: one set of lab hosts (real sshd on 127.0.10.x) shared by the whole test binary,
//! started once, plus helpers to write inventories and run the built binary.
//!
//! Hosts h1-h3 are shared by tests that only read. Tests that break a host have one of their own
//! (h4: sshd stopped, h5: sshd frozen) and repair it before they end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod cluster;
mod load;
pub use cluster::*;
pub use load::*;

/// Where the test lab lives (also what `.ci/run` tears down afterwards).
pub const LAB_DIR: &str = "/tmp/pgxc-deploy-test-lab";
pub const LAB_HOSTS: usize = 6;
/// The test lab's sshd port: not 22, so it neither collides with a `lab up` on the default port
/// nor needs root to bind.
pub const LAB_PORT: u16 = 2200;

/// A second lab, whose hosts h1-h3 each have a network namespace of their own (`lab up
/// --netns`, as root): hosts reach each other from their own address, as on a real network. On
/// the loopback lab every host reaches another from 127.0.0.1, and a GTM standby registers with
/// the active GTM under the address it connects from, so the active could never reach it.
/// Installs and data still live under [`LAB_DIR`]'s host directories (one filesystem).
pub const NETNS_LAB_DIR: &str = "/tmp/pgxc-deploy-test-netns";

/// Which lab an inventory's hosts h1-h3 are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Loopback,
    Netns,
}

impl On {
    /// The address of host `k` (1-3).
    pub fn address(self, k: usize) -> String {
        match self {
            On::Loopback => format!("127.0.10.{k}"),
            On::Netns => netns_lab()[k - 1].clone(),
        }
    }

    /// The `[ssh]` table and `[hosts.h1]`-`[hosts.h3]` for a test in directory `tag`.
    pub fn hosts(self, tag: &str) -> String {
        match self {
            On::Loopback => format!("{}\n{}", ssh_table(None), test_hosts(tag)),
            On::Netns => {
                let lab = Path::new(NETNS_LAB_DIR);
                let ssh = format!(
                    "[ssh]\nport = {LAB_PORT}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n",
                    lab.join("id_ed25519").display(),
                    lab.join("known_hosts").display()
                );
                format!("{ssh}\n{}", test_hosts_at(tag, |k| self.address(k)))
            }
        }
    }
}

/// This machine's address on the namespace lab's network (the bridge's: `198.18.N.254`), which
/// the tests' clients connect from.
pub fn netns_lab_gateway() -> String {
    let h1 = &netns_lab()[0];
    format!("{}.254", h1.rsplit_once('.').expect("an IPv4 address").0)
}

/// Start the namespace lab once for this test process (and the loopback lab, which holds the
/// data); returns the addresses of h1-h3.
pub fn netns_lab() -> &'static [String] {
    static ADDRESSES: OnceLock<Vec<String>> = OnceLock::new();
    ADDRESSES.get_or_init(|| {
        lab();
        let port = LAB_PORT.to_string();
        let up = ["lab", "up", "--netns", "--hosts", "3", "--dir", NETNS_LAB_DIR, "--port", &port];
        let out = pgxc(&up);
        assert!(out.status.success(), "lab up --netns failed:\n{}", text(&out.stderr));
        let out = pgxc(&["lab", "status", "--dir", NETNS_LAB_DIR, "--json"]);
        let hosts = json_lines(&out.stdout);
        hosts.iter().map(|h| h["address"].as_str().expect("an address").to_string()).collect()
    })
}

/// The path of the built `pgxc-deploy` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pgxc-deploy")
}

/// Start the lab once for this test process; every later call returns at once.
pub fn lab() -> &'static Path {
    static LAB: OnceLock<PathBuf> = OnceLock::new();
    LAB.get_or_init(|| {
        let out = lab_up();
        assert!(out.status.success(), "lab up failed:\n{}", text(&out.stderr));
        PathBuf::from(LAB_DIR)
    })
}

/// `lab up` on the test lab: starts whatever is not running (again).
pub fn lab_up() -> Output {
    let (hosts, port) = (LAB_HOSTS.to_string(), LAB_PORT.to_string());
    pgxc(&["lab", "up", "--hosts", &hosts, "--dir", LAB_DIR, "--port", &port])
}

/// The installed Postgres-XC the Postgres-XC tests deploy: `PGXC_HOME`, which scripts/test sets
/// to the Postgres-X2 that scripts/server-install builds. Without it those tests fail: a test
/// that is skipped verifies nothing.
pub fn pgxc_home() -> String {
    match std::env::var("PGXC_HOME") {
        Ok(home) if !home.is_empty() => home,
        _ => panic!(
            "PGXC_HOME is not set: the Postgres-XC tests need an installed Postgres-XC. Run \
             scripts/test (it builds Postgres-X2 once), or PGXC_HOME=$(scripts/server-install x2) \
             cargo test"
        ),
    }
}

/// The data directory of `node` on lab host `k` in test directory `tag`.
pub fn node_dir(tag: &str, k: usize, node: &str) -> String {
    format!("{LAB_DIR}/hosts/h{k}/data/{tag}/{node}")
}

/// Run pgxc-deploy with `args`.
pub fn pgxc(args: &[&str]) -> Output {
    Command::new(bin()).args(args).env_remove("SSH_AUTH_SOCK").output().expect("run pgxc-deploy")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory for one test's files.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("pgxc-it-").tempdir().expect("tempdir")
}

/// The `[ssh]` table pointing at the lab's key and known_hosts.
pub fn ssh_table(known_hosts: Option<&Path>) -> String {
    let lab = lab();
    let known = known_hosts.map(Path::to_path_buf).unwrap_or_else(|| lab.join("known_hosts"));
    format!(
        "[ssh]\nport = {LAB_PORT}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n",
        lab.join("id_ed25519").display(),
        known.display()
    )
}

/// `[hosts.hK]` tables for the given lab host numbers.
pub fn hosts_tables(hosts: &[usize]) -> String {
    hosts
        .iter()
        .map(|k| {
            let root = format!("{}/hosts/h{k}", LAB_DIR);
            format!(
                "[hosts.h{k}]\naddress = \"127.0.10.{k}\"\ninstall_prefix = \"{root}/install\"\n\
                 data_root = \"{root}/data\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Write `text` as `name` in `dir` and return its path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

/// The PID of lab host `k`'s sshd.
pub fn sshd_pid(k: usize) -> i32 {
    let file = format!("{LAB_DIR}/hosts/h{k}/sshd.pid");
    let pid = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    pid.trim().parse().expect("pid")
}

/// Send `signal` (e.g. "-STOP") to a process.
pub fn kill(signal: &str, pid: i32) {
    let status = Command::new("kill").arg(signal).arg(pid.to_string()).status().expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Parse `--json` output: one object per line.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    text(stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

/// The live (not zombie) processes whose working directory is `dir`: a server's processes.
pub fn processes_in(dir: &str) -> Vec<i32> {
    let Ok(want) = std::fs::canonicalize(dir) else { return Vec::new() };
    let entries = std::fs::read_dir("/proc").expect("read /proc");
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == want))
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            !status.lines().any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .collect()
}
