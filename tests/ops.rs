//! `status`, `start`/`stop`, `clean` and `failover` on a PostgreSQL-flavor cluster that
//! `apply` deploys on lab hosts: three primaries, each with a streaming standby on another host (pg2's
//! synchronous). Its own directory (`opstest`) and ports (28432, 28433), so it runs beside the
//! apply tests; `failover` on a second such cluster (`opsfailover`, 28442, 28443).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::*;

const TAG: &str = "opstest";
const PRIMARY_PORT: u16 = 28432;
const STANDBY_PORT: u16 = 28433;

/// The cluster; `extra` is appended (more hosts and nodes).
fn inventory(dir: &Path, name: &str, extra: &str) -> String {
    cluster_inventory(dir, name, TAG, (PRIMARY_PORT, STANDBY_PORT), extra)
}

fn data(k: usize, node: &str) -> String {
    node_dir(TAG, k, node)
}

#[test]
fn status_start_stop_and_clean_on_a_deployed_postgresql_cluster() {
    reset(TAG);
    let dir = tempdir();
    let inv = inventory(dir.path(), "ops.toml", "");
    // On a terminal (script(1) gives it one), a live line under the step lines shows what
    // runs and for how long; it is cleared before each line, so every line starts a line.
    let command = format!("{} apply {inv}", bin());
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("SSH_AUTH_SOCK")
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(out.status.success(), "apply on a terminal: {said}");
    assert!(said.contains("\r\x1b[K  ..    "), "{said:?}");
    assert!(said.contains("  ok    pg1_standby on h2: initialise"), "{said:?}");
    for line in said.split("\x1b[K").filter(|l| l.starts_with("  ..    ")) {
        let live = line.split(['\r', '\n']).next().unwrap();
        assert!(live.ends_with("s)") || live.ends_with(" more running"), "{live:?} in {said:?}");
    }
    // Elsewhere (here a pipe) nothing of it.
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "re-apply: {}", shown(&out));
    assert!(!text(&out.stderr).contains('\x1b'), "{}", shown(&out));

    // `--watch 1` refreshes every second until interrupted (SIGINT, as Ctrl-C sends).
    let watch = std::process::Command::new(bin())
        .args(["status", &inv, "--watch", "1"])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    kill("-INT", watch.id() as i32);
    let out = watch.wait_with_output().unwrap();
    let watched = text(&out.stdout);
    assert!(watched.matches("== status at ").count() >= 2, "{watched}");
    assert!(watched.matches("pg1_standby").count() >= 2, "{watched}");

    // Healthy: every node running, every standby streaming with a numeric lag.
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows.len(), 6);
    for (name, row) in &rows {
        assert_eq!(row["state"], "running", "{name}: {row}");
        assert_eq!(row["healthy"], true, "{name}: {row}");
        assert_eq!(row["drift"], serde_json::json!([]), "{name}: {row}");
        if name.ends_with("_standby") {
            assert_eq!(row["in_recovery"], true, "{name}");
            assert_eq!(row["replication"]["state"], "streaming", "{name}: {row}");
            assert!(row["replication"]["lag_bytes"].is_u64(), "{name}: {row}");
        } else {
            assert_eq!(row["in_recovery"], false, "{name}");
            assert_eq!(row["replication"], serde_json::Value::Null);
        }
    }
    assert_eq!(rows["pg2_standby"]["replication"]["sync_state"], "sync");
    let out = pgxc(&["status", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    let table = text(&out.stdout);
    assert!(table.starts_with("NODE "), "{table}");
    assert!(table.contains("127.0.10.2:28433"), "{table}");
    assert!(table.contains("streaming (sync)"), "{table}");
    assert!(table.contains("opstest: 6 nodes, 0 unhealthy"), "{table}");

    // Operating the cluster needs no install on this machine (only apply ships one): with the
    // prebuilt directory gone, status and exec find Debian's layout (lib/postgresql/15/bin)
    // in the record apply left under each install prefix.
    let elsewhere = format!("{}/not-here", dir.path().display());
    let moved = std::fs::read_to_string(&inv).unwrap().replace(
        &format!("prebuilt = \"{}\"", PG_PREBUILT),
        &format!("prebuilt = \"{elsewhere}\""),
    );
    let moved = write(dir.path(), "moved.toml", &moved);
    assert!(text(&std::fs::read(&moved).unwrap()).contains("not-here"));
    let (code, rows) = status(&moved);
    assert_eq!(code, 0, "{rows:#?}");
    assert!(rows.values().all(|r| r["healthy"] == true), "{rows:#?}");
    let out = pgxc(&["exec", &moved, "--on", "pg1", "--", "psql -X -A -t -c 'select 42'"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("42"), "{}", shown(&out));
    // apply still needs it, and says where it looked.
    let out = pgxc(&["plan", &moved]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains(&format!("prebuilt install {elsewhere}")),
        "{}",
        shown(&out)
    );

    // A host that cannot be reached (nothing listens there) shows its node as down and hides
    // nothing else.
    let root = format!("{LAB_DIR}/hosts/h1/data/{TAG}");
    let with_dead_host = inventory(
        dir.path(),
        "dead-host.toml",
        &format!(
            "[hosts.hx]\naddress = \"127.0.10.250\"\ninstall_prefix = \"{root}/install\"\n\
             data_root = \"{root}/hx\"\n\n[[datanodes]]\nname = \"pg4\"\nhost = \"hx\"\n\
             port = {PRIMARY_PORT}\n"
        ),
    );
    let (code, rows) = status(&with_dead_host);
    assert_eq!((code, rows.len()), (1, 7), "{rows:#?}");
    let pg4 = rows["pg4"]["state"].as_str().unwrap();
    assert!(pg4.starts_with("down (host unreachable: connect: "), "{pg4}");
    assert!(rows.iter().all(|(n, r)| n == "pg4" || r["healthy"] == true), "{rows:#?}");

    // kill -9 one primary's postmaster: status fails, shows it down and still shows the rest.
    let pid = postmaster_pid(&data(1, "pg1"));
    kill("-KILL", pid);
    wait_for("pg1's postmaster to die", || process_gone(pid));
    let (code, rows) = status(&inv);
    assert_eq!(code, 1, "{rows:#?}");
    assert_eq!(rows.len(), 6);
    assert_eq!(rows["pg1"]["state"], "down", "{}", rows["pg1"]);
    assert_eq!(rows["pg1"]["healthy"], false);
    assert_eq!(rows["pg1_standby"]["state"], "running");
    for name in ["pg2", "pg2_standby", "pg3", "pg3_standby"] {
        assert_eq!(rows[name]["healthy"], true, "{name}: {}", rows[name]);
    }
    let out = pgxc(&["status", &inv]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stdout).contains("pg1 on h1: not running"), "{}", shown(&out));

    // stop: reverse order (standbys first), the killed pg1 is already stopped.
    let before: BTreeMap<String, String> = rows
        .iter()
        .filter_map(|(n, r)| Some((n.clone(), r["start_time"].as_str()?.to_string())))
        .collect();
    assert_eq!(before.len(), 5);
    let out = pgxc(&["stop", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.starts_with("== stop standbys\n"), "{said}");
    assert!(said.contains("pg1 on h1: already stopped"), "{said}");
    assert!(said.contains("pg2 on h2: stop (fast)"), "{said}");
    assert!(said.contains("stopped 5, 1 already stopped"), "{said}");

    // As after a reboot: the PIDs in pg1's leftover postmaster.pid and in one written for
    // pg2_standby belong to other programs of the cluster's account now.
    let impostors = [impostor(), impostor()];
    let pg1_pid_file = format!("{}/postmaster.pid", data(1, "pg1"));
    let left = std::fs::read_to_string(&pg1_pid_file).unwrap();
    let rest = left.split_once('\n').unwrap().1;
    std::fs::write(&pg1_pid_file, format!("{}\n{rest}", impostors[0])).unwrap();
    let standby = data(3, "pg2_standby");
    std::fs::write(format!("{standby}/postmaster.pid"), format!("{}\n{standby}\n", impostors[1]))
        .unwrap();
    let (code, rows) = status(&inv);
    assert_eq!(code, 1);
    assert!(rows.values().all(|r| r["state"] == "down"), "{rows:#?}");

    // start: everything back, every server restarted, the other programs untouched.
    let out = pgxc(&["start", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.starts_with("== start datanodes\n"), "{said}");
    assert!(said.contains("started 6, 0 already running"), "{said}");
    for pid in impostors {
        assert!(!process_gone(pid), "the program with PID {pid} still runs");
        kill("-KILL", pid);
    }
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    for (name, old) in &before {
        let now = rows[name]["start_time"].as_str().unwrap();
        assert_ne!(now, old, "{name} was restarted");
    }
    let start_times: Vec<_> = rows.values().map(|r| r["start_time"].clone()).collect();

    // start again: a no-op.
    let out = pgxc(&["start", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("started 0, 6 already running"), "{}", shown(&out));
    let (_, rows) = status(&inv);
    assert_eq!(rows.values().map(|r| r["start_time"].clone()).collect::<Vec<_>>(), start_times);

    // --on: one standby, immediately; then start brings just it back.
    let out = pgxc(&["stop", &inv, "--on", "pg3_standby", "--mode", "immediate"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("pg3_standby on h1: stop (immediate)"), "{}", shown(&out));
    let (code, rows) = status(&inv);
    assert_eq!((code, rows["pg3_standby"]["state"].as_str()), (1, Some("down")));
    assert_eq!(rows.values().filter(|r| r["state"] == "running").count(), 5);
    let out = pgxc(&["start", &inv, "--on", "h1"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("started 1, 1 already running"), "{}", shown(&out));
    assert_eq!(status(&inv).0, 0);
    let out = pgxc(&["stop", &inv, "--on", "pg9"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));

    // clean refuses, before stopping anything, a data directory apply did not initialise.
    let marker = format!("{}/.pgxc-deploy-initialized", data(1, "pg3_standby"));
    std::fs::remove_file(&marker).unwrap();
    let out = pgxc(&["clean", &inv, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!(
            "pg3_standby on h1: {}: it has no .pgxc-deploy-initialized",
            data(1, "pg3_standby")
        )),
        "{said}"
    );
    assert!(said.contains("nothing was stopped or deleted"), "{said}");
    assert_eq!(status(&inv).0, 0, "everything still runs");
    as_pgxc(&["touch", &marker]);

    // clean without --yes lists per host, a staging directory included, and deletes nothing.
    let staging = format!("{}.pgxc-deploy-tmp", data(2, "pg2"));
    assert!(as_pgxc(&["mkdir", &staging]).status.success());
    let out = pgxc(&["clean", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("nothing was changed; add --yes"), "{said}");
    assert!(
        said.contains(&format!("h2:\n  {}  (pg1_standby)\n", data(2, "pg1_standby"))),
        "{said}"
    );
    assert!(said.contains(&format!("  {staging}  (pg2)\n")), "{said}");
    let h1 =
        format!("h1:\n  {}  (pg1)\n  {}  (pg3_standby)\n", data(1, "pg1"), data(1, "pg3_standby"));
    assert!(said.contains(&h1), "one block per host: {said}");
    let dirs: Vec<String> = [
        (1, "pg1"),
        (2, "pg1_standby"),
        (2, "pg2"),
        (3, "pg2_standby"),
        (3, "pg3"),
        (1, "pg3_standby"),
    ]
    .iter()
    .map(|(k, n)| data(*k, n))
    .collect();
    for d in &dirs {
        assert!(said.contains(&format!("  {d}  (")), "{d} listed: {said}");
        assert!(Path::new(d).exists(), "{d} still there");
    }
    assert_eq!(status(&inv).0, 0, "nothing stopped");

    // clean --yes: every server stopped, exactly the data directories gone, installs kept.
    let out = pgxc(&["clean", &inv, "--yes"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).contains("removed 6 node directories"), "{}", shown(&out));
    for d in dirs.iter().chain([&staging]) {
        assert!(!Path::new(d).exists(), "{d} removed");
    }
    for k in 1..=3 {
        let root = format!("{LAB_DIR}/hosts/h{k}/data/{TAG}");
        assert!(Path::new(&format!("{root}/install/.pgxc-deploy-install")).exists(), "h{k}");
        assert!(find_ctl(&root, "postgres").ends_with("/bin/postgres"), "h{k}'s install");
    }
    let (code, rows) = status(&inv);
    assert_eq!(code, 1);
    assert!(rows.values().all(|r| r["state"] == "not initialised"), "{rows:#?}");
    let out = pgxc(&["clean", &inv, "--yes"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).starts_with("nothing to delete\n"), "{}", shown(&out));

    reset(TAG);
}

const FAILOVER_TAG: &str = "opsfailover";
const FAILOVER_PORTS: (u16, u16) = (28442, 28443);

/// SQL on a node of the failover test's cluster.
fn fsql(k: usize, node: &str, port: u16, query: &str) -> String {
    let root = format!("{LAB_DIR}/hosts/h{k}/data/{FAILOVER_TAG}");
    let psql = find_ctl(&root, "psql");
    sql(&psql, &format!("{root}/{node}"), port, query)
}

#[test]
fn failover_promotes_a_streamed_standby_keeps_committed_rows_and_fences_the_old_primary() {
    reset(FAILOVER_TAG);
    let dir = tempdir();
    let inv = cluster_inventory(dir.path(), "fo.toml", FAILOVER_TAG, FAILOVER_PORTS, "");
    let (primary, standby) = FAILOVER_PORTS;
    let fdata = |k: usize, node: &str| node_dir(FAILOVER_TAG, k, node);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));

    // A standby that is not running (so not known to be consistent) is never promoted.
    let out = pgxc(&["stop", &inv, "--on", "pg3_standby"]);
    assert!(out.status.success(), "{}", shown(&out));
    let pid = postmaster_pid(&fdata(3, "pg3"));
    kill("-KILL", pid);
    wait_for("pg3's postmaster to die", || process_gone(pid));
    let out = pgxc(&["failover", "--yes", &inv, "pg3"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains("refusing to promote pg3_standby on h1: it is not running"),
        "{}",
        shown(&out)
    );
    assert!(text(&out.stdout).contains("nothing was changed"), "{}", shown(&out));
    assert!(!dir.path().join("fo.roles.toml").exists());
    assert!(Path::new(&format!("{}/standby.signal", fdata(1, "pg3_standby"))).exists());

    // apply recorded that every standby streamed; one without that record, started after its
    // primary died (it asks to stream, and gets nothing), is never promoted either.
    let marker = |k: usize, node: &str| format!("{}/.pgxc-deploy-streamed", fdata(k, node));
    for (k, node) in [(2, "pg1_standby"), (3, "pg2_standby"), (1, "pg3_standby")] {
        assert!(Path::new(&marker(k, node)).exists(), "{node} streamed");
    }
    std::fs::remove_file(marker(1, "pg3_standby")).unwrap();
    let out = pgxc(&["start", &inv, "--on", "pg3_standby"]);
    assert!(out.status.success(), "{}", shown(&out));
    // With --json: the lines for people on stderr, JSON lines on stdout, the refusal a note,
    // a failed summary last.
    let out = pgxc(&["failover", "--yes", "--json", &inv, "pg3"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let never = "refusing to promote pg3_standby on h1: pgxc-deploy never saw it stream from its \
                 primary";
    assert!(text(&out.stderr).contains(never), "{}", shown(&out));
    let lines = json_lines(&out.stdout);
    let notes: Vec<&str> = lines.iter().filter_map(|l| l["note"]["text"].as_str()).collect();
    assert!(notes.iter().any(|n| n.contains(never)), "{lines:?}");
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["command"], "failover", "{lines:?}");
    assert_eq!((&summary["ok"], &summary["exit_code"]), (&false.into(), &1.into()), "{lines:?}");
    assert_eq!(fsql(1, "pg3_standby", standby, "select pg_is_in_recovery()"), "t");
    assert!(!dir.path().join("fo.roles.toml").exists());

    // Rows committed on pg1 and replayed on its standby survive pg1's death.
    fsql(1, "pg1", primary, "create table t (id int)");
    fsql(1, "pg1", primary, "insert into t select generate_series(1, 1000)");
    wait_for("the rows on the standby", || {
        let (_, rows) = status(&inv);
        rows["pg1_standby"]["replication"]["lag_bytes"] == 0
    });
    let pid = postmaster_pid(&fdata(1, "pg1"));
    kill("-KILL", pid);
    wait_for("pg1's postmaster to die", || process_gone(pid));

    let out = pgxc(&["failover", "--yes", &inv, "pg1"]);
    assert!(out.status.success(), "failover: {}", shown(&out));
    let said = text(&out.stdout);
    assert!(said.contains("pg1 on h1: already down"), "{said}");
    assert!(said.contains("pg1_standby on h2: promote"), "{said}");
    assert!(said.contains("pg1_standby on h2: check: it takes writes"), "{said}");
    assert!(said.contains("pg1_standby on h2 (127.0.10.2:28443) is the primary"), "{said}");
    assert_eq!(fsql(2, "pg1_standby", standby, "select count(*) from t"), "1000");
    fsql(2, "pg1_standby", standby, "insert into t values (1001)");
    assert_eq!(fsql(2, "pg1_standby", standby, "select count(*) from t"), "1001");

    // The new roles are recorded beside the inventory, and every command respects them.
    let roles = std::fs::read_to_string(dir.path().join("fo.roles.toml")).unwrap();
    assert!(
        roles.contains("[datanodes.pg1]\nprimary = \"pg1_standby\"\nold_primary = \"pg1\""),
        "{roles}"
    );
    let (_, rows) = status(&inv);
    assert_eq!(rows["pg1_standby"]["promoted_for"], "pg1");
    assert_eq!(rows["pg1_standby"]["healthy"], true, "{}", rows["pg1_standby"]);
    assert_eq!(rows["pg1"]["fenced"], true);
    assert_eq!(rows["pg1"]["healthy"], false);
    let out = pgxc(&["start", &inv, "--on", "pg1"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stdout).contains("pg1 on h1: fenced: failover made pg1_standby"),
        "{}",
        shown(&out)
    );
    assert!(
        !Path::new(&format!("{}/postmaster.pid", fdata(1, "pg1"))).exists()
            || process_gone(postmaster_pid(&fdata(1, "pg1")))
    );
    let out = pgxc(&["failover", "--yes", "--json", &inv, "pg1"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains("pg1 already failed over to pg1_standby"),
        "{}",
        shown(&out)
    );
    let lines = json_lines(&out.stdout);
    let steps: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("action").is_some()).collect();
    assert!(!steps.is_empty(), "{lines:?}");
    for step in &steps {
        assert_eq!(step["ok"], true, "{step}");
        assert!(
            step["host"].is_string() && step["text"].is_string() && step["elapsed_ms"].is_u64()
        );
    }
    assert!(
        steps.iter().any(|s| s["text"]
            .as_str()
            .is_some_and(|t| t.contains("pg1_standby on h2: check: it takes writes"))),
        "{lines:?}"
    );
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["ok"], true, "{lines:?}");
    assert_eq!(summary["steps"], steps.len(), "{lines:?}");
    assert_eq!(summary["error"], serde_json::Value::Null, "{lines:?}");

    // plan shows the rebuild; apply rewinds the fenced pg1 into a standby of pg1_standby (the
    // templates set wal_log_hints), with the row written after the failover, and starts pg3
    // (killed above) and pg3_standby again.
    let out = pgxc(&["plan", &inv]);
    assert!(out.status.success(), "plan: {}", shown(&out));
    assert!(
        text(&out.stdout).contains("pg1 on h1: rebuild the fenced old primary as a standby"),
        "{}",
        shown(&out)
    );
    let out = pgxc(&["apply", "--json", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert!(text(&out.stderr).contains("pg1 on h1: rewound with pg_rewind"), "{}", shown(&out));
    let lines = json_lines(&out.stdout);
    let rewound = |l: &serde_json::Value| {
        let note = &l["note"];
        (note["host"] == "h1" && note["node"] == "pg1")
            && note["text"].as_str().is_some_and(|t| t.starts_with("rewound with pg_rewind"))
    };
    assert!(lines.iter().any(rewound), "{lines:?}");
    let rebuild = lines.iter().find(|l| {
        l["text"]
            .as_str()
            .is_some_and(|t| t.contains("pg1 on h1: rebuild the fenced old primary as a standby"))
    });
    let rebuild = rebuild.unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!((&rebuild["ok"], &rebuild["node"]), (&true.into(), &"pg1".into()), "{rebuild}");
    assert!(rebuild["phase"].is_string(), "{rebuild}");
    assert_eq!(lines.last().unwrap()["summary"]["command"], "apply", "{lines:?}");
    let roles = std::fs::read_to_string(dir.path().join("fo.roles.toml")).unwrap();
    assert!(roles.contains("old_primary_follows = true"), "{roles}");
    assert_eq!(fsql(1, "pg1", primary, "select pg_is_in_recovery()"), "t");
    // pg1 streams (recorded); pg1_standby, a primary now, and pg3_standby, which apply found
    // streaming from pg3 again, too.
    assert!(Path::new(&marker(1, "pg1")).exists());
    assert!(!Path::new(&marker(2, "pg1_standby")).exists());
    assert!(Path::new(&marker(1, "pg3_standby")).exists());
    wait_for("pg1 to replay everything", || {
        let (_, rows) = status(&inv);
        rows["pg1"]["replication"]["lag_bytes"] == 0
    });
    assert_eq!(fsql(1, "pg1", primary, "select count(*) from t"), "1001");
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:#?}");
    assert_eq!(rows["pg1"]["follows"], "pg1_standby", "{}", rows["pg1"]);
    assert!(
        rows.values().all(|r| r["drift"].as_array().is_some_and(|d| d.is_empty())),
        "{rows:#?}"
    );
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply: {}", shown(&out));
    assert!(text(&out.stdout).contains("nothing to do"), "{}", shown(&out));

    reset(FAILOVER_TAG);
}
