//! Clusters on the lab hosts, shared by the integration tests: inventories for both flavors,
//! resetting a lab directory, psql against a node, waiting, and reading processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::*;

pub const PG_PREBUILT: &str = "/usr/lib/postgresql/15";

/// `[hosts.hK]` for a test whose installs and data live in their own directory `tag`.
pub fn test_hosts(tag: &str) -> String {
    test_hosts_at(tag, |k| format!("127.0.10.{k}"))
}

/// [`test_hosts`] with host `k` at `address(k)`.
pub fn test_hosts_at(tag: &str, address: impl Fn(usize) -> String) -> String {
    (1..=3)
        .map(|k| {
            let root = format!("{LAB_DIR}/hosts/h{k}/data/{tag}");
            let address = address(k);
            format!("[hosts.h{k}]\naddress = \"{address}\"\ninstall_prefix = \"{root}/install\"\ndata_root = \"{root}\"\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Stop every server left under the test's directories by an earlier run, then remove them.
pub fn reset(tag: &str) {
    lab();
    let roots: Vec<String> = (1..=3)
        .map(|k| format!("{LAB_DIR}/hosts/h{k}/data/{tag}"))
        .filter(|root| Path::new(root).exists())
        .collect();
    // Every host's gtm_proxies before any GTM: a proxy whose GTM is gone does not stop within
    // gtm_ctl's 60 s.
    for proxies in [true, false] {
        for root in &roots {
            stop_servers(root, proxies);
        }
    }
    for root in roots {
        std::fs::remove_dir_all(&root).unwrap_or_else(|e| panic!("remove {root}: {e}"));
    }
}

/// Stop (immediately) every gtm_proxy (`proxies`), or every other server, whose data directory
/// is right under `root`.
pub fn stop_servers(root: &str, proxies: bool) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for dir in entries.flatten().map(|e| e.path()) {
        let shown = dir.display().to_string();
        let (pid_file, argv): (&str, &[&str]) = match proxies {
            true => ("gtm_proxy.pid", &["gtm_ctl", "-Z", "gtm_proxy"]),
            false if dir.join("gtm.pid").exists() => ("gtm.pid", &["gtm_ctl", "-Z", "gtm"]),
            false => ("postmaster.pid", &["pg_ctl"]),
        };
        if dir.join(pid_file).exists() {
            let ctl = find_ctl(root, argv[0]);
            let mut args = vec![ctl.as_str()];
            args.extend(&argv[1..]);
            args.extend(["-D", &shown, "-m", "immediate", "stop"]);
            as_pgxc(&args);
        }
    }
}

/// A `pg_ctl`/`gtm_ctl` of the shipped install under `root` (wherever its layout put bin/).
pub fn find_ctl(root: &str, name: &str) -> String {
    let out = Command::new("find")
        .args([&format!("{root}/install"), "-name", name, "-type", "f"])
        .output()
        .unwrap();
    text(&out.stdout).lines().next().unwrap_or(name).to_string()
}

/// psql of the install shipped to lab host h1 in test directory `tag`.
pub fn lab_psql(tag: &str) -> String {
    find_ctl(&format!("{LAB_DIR}/hosts/h1/data/{tag}"), "psql")
}

/// Run a command locally as the lab's cluster account (the lab hosts share this machine).
pub fn as_pgxc(args: &[&str]) -> std::process::Output {
    Command::new("runuser").args(["-u", "pgxc", "--"]).args(args).output().expect("runuser")
}

/// Where the node whose data directory is `data_dir` has its Unix socket: the directory that
/// holds the data directory (its host's data_root).
pub fn socket_dir(data_dir: &str) -> &str {
    data_dir.rsplit_once('/').expect("an absolute data directory").0
}

/// `query` through psql on `node` (lab host `k`, `port`) of test directory `tag`.
pub fn on_node(tag: &str, k: usize, node: &str, port: u16, query: &str) -> String {
    sql(&lab_psql(tag), &node_dir(tag, k, node), port, query)
}

/// The server install that environment variable `var` names, or `None` after a SKIPPED line
/// for `test` that says how to get it (`how`).
pub fn install_home(var: &str, test: &str, how: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(home) if !home.is_empty() => Some(home),
        _ => {
            eprintln!("SKIPPED {test}: {var} is not set; {how}");
            None
        }
    }
}

/// Run SQL on a node through its Unix socket (beside its data directory); returns stdout.
pub fn sql(psql: &str, data_dir: &str, port: u16, query: &str) -> String {
    let out = psql_out(psql, data_dir, port, query, None);
    assert!(out.status.success(), "{query}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// One statement (X2's psql runs only the last `-c`) on a node through its Unix socket, as the
/// lab's cluster account, whatever its outcome. `within`: under `timeout SECONDS` (a commit
/// waiting for a synchronous standby ignores statement_timeout; 124: `timeout` ended it).
pub fn psql_out(
    psql: &str,
    data_dir: &str,
    port: u16,
    query: &str,
    within: Option<&str>,
) -> Output {
    let port = port.to_string();
    let mut args = within.map_or(Vec::new(), |secs| vec!["timeout", secs]);
    args.extend([psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", socket_dir(data_dir)]);
    args.extend(["-p", &port, "-U", "pgxc", "-d", "postgres", "-c", query]);
    as_pgxc(&args)
}

/// A PostgreSQL-flavor inventory over lab hosts h1-h3 in directory `tag`: trust, Debian's
/// binaries shipped as a prebuilt install, small shared_buffers; `settings` go under
/// `[settings.all]`, `nodes` (`[[datanodes]]` tables) last.
pub fn pg_toml(tag: &str, settings: &str, nodes: &str) -> String {
    format!(
        "[cluster]\nname = \"{tag}\"\nflavor = \"postgresql\"\nos_user = \"pgxc\"\n\n\
         [auth]\nmethod = \"trust\"\n\n[source]\nprebuilt = \"{PG_PREBUILT}\"\n\n\
         [settings.all]\nshared_buffers = \"16MB\"\n{settings}\n\n{}\n{}\n{nodes}",
        ssh_table(None),
        test_hosts(tag),
    )
}

/// `[auth]` of the Postgres-XC test inventories: md5 with the password in `xc-password` beside
/// the inventory (coordinators reach datanodes, standbys their primaries, with it).
pub const XC_MD5: &str = "method = \"md5\"\npassword_file = \"xc-password\"";

/// A Postgres-XC inventory over lab hosts h1-h3 in directory `tag`: the install at
/// `pgxc_home` shipped as it is, `auth` as the `[auth]` table's body, small shared_buffers,
/// then `nodes` (`[gtm]`, `[[coordinators]]`, `[[datanodes]]`).
pub fn xc_toml(tag: &str, pgxc_home: &str, auth: &str, nodes: &str) -> String {
    xc_toml_on(On::Loopback, tag, pgxc_home, auth, nodes)
}

/// [`xc_toml`] over the hosts of lab `on`.
pub fn xc_toml_on(on: On, tag: &str, pgxc_home: &str, auth: &str, nodes: &str) -> String {
    format!(
        "[cluster]\nname = \"{tag}\"\nflavor = \"postgres-xc\"\nos_user = \"pgxc\"\n\n\
         [auth]\n{auth}\n\n[source]\nprebuilt = \"{pgxc_home}\"\n\n\
         [settings.all]\nshared_buffers = \"16MB\"\n\n{}\n{nodes}",
        on.hosts(tag),
    )
}

/// Postgres-XC nodes from port `base` up: GTM (base + 14) and coord1 (base, pooler base + 15)
/// on h1, dn1 on h1 (base + 10) with a standby (synchronous or not) on h2 (base + 11), dn2 on
/// h2 (base + 10).
pub fn xc_pair_nodes(base: u16, synchronous: bool) -> String {
    let (dn, standby, gtm, pooler) = (base + 10, base + 11, base + 14, base + 15);
    let sync = if synchronous { "synchronous = true\n" } else { "" };
    format!(
        "[gtm]\nhost = \"h1\"\nport = {gtm}\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = {base}\npooler_port = {pooler}\n\n\
         [[datanodes]]\nname = \"dn1\"\nhost = \"h1\"\nport = {dn}\n\
         [datanodes.standby]\nhost = \"h2\"\nport = {standby}\n{sync}\n\
         [[datanodes]]\nname = \"dn2\"\nhost = \"h2\"\nport = {dn}\n"
    )
}

/// [`pg_toml`] with pg1 on h1 and its standby (synchronous or not) on h2, at `ports`, then
/// `more` nodes.
pub fn pair_toml(tag: &str, ports: (u16, u16), synchronous: bool, more: &str) -> String {
    let (primary, standby) = ports;
    let sync = if synchronous { "synchronous = true\n" } else { "" };
    let nodes = format!(
        "[[datanodes]]\nname = \"pg1\"\nhost = \"h1\"\nport = {primary}\n\
         [datanodes.standby]\nhost = \"h2\"\nport = {standby}\n{sync}{more}"
    );
    pg_toml(tag, "", &nodes)
}

pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three primaries with a standby each (pg2's synchronous), in lab directory `tag`.
pub fn cluster_inventory(
    dir: &Path,
    name: &str,
    tag: &str,
    ports: (u16, u16),
    extra: &str,
) -> String {
    let (primary_port, standby_port) = ports;
    let mut datanodes = String::new();
    for (k, standby) in [(1, 2), (2, 3), (3, 1)] {
        let sync = if k == 2 { "synchronous = true\n" } else { "" };
        datanodes.push_str(&format!(
            "[[datanodes]]\nname = \"pg{k}\"\nhost = \"h{k}\"\nport = {primary_port}\n\
             [datanodes.standby]\nhost = \"h{standby}\"\nport = {standby_port}\n{sync}\n"
        ));
    }
    let text = pg_toml(tag, "", &format!("{datanodes}{extra}"));
    write(dir, name, &text)
}

pub fn shown(out: &Output) -> String {
    format!("stdout:\n{}stderr:\n{}", text(&out.stdout), text(&out.stderr))
}

/// `status --json`: its exit code and its rows by node name.
pub fn status(inv: &str) -> (i32, BTreeMap<String, serde_json::Value>) {
    let out = pgxc(&["status", inv, "--json"]);
    let rows = json_lines(&out.stdout)
        .into_iter()
        .map(|row| (row["node"].as_str().unwrap().to_string(), row))
        .collect();
    (out.status.code().unwrap_or(-1), rows)
}

/// The postmaster's PID, from the first line of its postmaster.pid.
pub fn postmaster_pid(data_dir: &str) -> i32 {
    let pid = std::fs::read_to_string(format!("{data_dir}/postmaster.pid")).unwrap();
    pid.lines().next().unwrap().trim().parse().unwrap()
}

pub fn process_gone(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    // A killed process nobody reaps stays a zombie on this machine.
    status.is_empty() || status.lines().any(|l| l.starts_with("State:") && l.contains('Z'))
}

/// A program of the cluster's account that is no server: its PID (a thread reaps it).
pub fn impostor() -> i32 {
    let mut child = std::process::Command::new("runuser")
        .args(["-u", "pgxc", "--", "sh", "-c", "echo $$; exec sleep 600 >/dev/null"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runuser");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    std::thread::spawn(move || child.wait());
    line.trim().parse().unwrap()
}
