//! `pgxc-deploy apply` and `plan`, end to end on lab hosts with real servers: the PostgreSQL
//! flavor with Debian's postgresql-15 binaries shipped as a prebuilt install, and the
//! Postgres-XC flavor with the install at `$PGXC_HOME` (scripts/test builds it; unset, the test fails).

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn apply(inv: &str) -> std::process::Output {
    pgxc(&["apply", inv])
}

fn pg_inventory(dir: &Path, extra_settings: &str) -> String {
    let mut datanodes = String::new();
    for (k, standby) in [(1, 2), (2, 3), (3, 1)] {
        datanodes.push_str(&format!(
            "[[datanodes]]\nname = \"pg{k}\"\nhost = \"h{k}\"\nport = 25432\n\
             [datanodes.standby]\nhost = \"h{standby}\"\nport = 25433\n\n"
        ));
    }
    write(dir, "pg.toml", &pg_toml("pgtest", extra_settings, &datanodes))
}

#[test]
fn postgresql_flavor_deploys_streams_reapplies_as_a_no_op_and_reloads_a_changed_setting() {
    reset("pgtest");
    let dir = tempdir();
    let inv = pg_inventory(dir.path(), "");
    let data = |k: usize, node: &str| node_dir("pgtest", k, node);

    // `validate` contacts no host; `plan --detailed-exitcode`: 2 while changes are pending.
    let out = pgxc(&["validate", &inv]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(text(&out.stdout).ends_with(": valid (3 host(s), 6 node(s))\n"), "{}", shown(&out));
    let out = pgxc(&["plan", "--detailed-exitcode", &inv]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let lines = json_lines(&pgxc(&["plan", "--json", &inv]).stdout);
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["pending"], true, "{lines:?}");
    assert_eq!(summary["steps"].as_u64().unwrap() as usize, lines.len() - 1);
    assert!(lines.iter().any(|l| l["action"] == "init" && l["node"] == "pg1"), "{lines:?}");

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with("applied "), "{}", text(&out.stdout));
    let psql = lab_psql("pgtest");
    let out = pgxc(&["plan", "--detailed-exitcode", &inv]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let lines = json_lines(&pgxc(&["plan", "--json", &inv]).stdout);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["summary"]["pending"], false, "{lines:?}");
    let out = pgxc(&["plan", &inv]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    // An invalid inventory: 2 for validate (as for every command), 1 with --detailed-exitcode.
    let bad = write(
        dir.path(),
        "bad.toml",
        &std::fs::read_to_string(&inv).unwrap().replace("port = 25432", "port = 99999"),
    );
    let out = pgxc(&["validate", &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(text(&out.stderr).contains("bad.toml:"), "{}", shown(&out));
    let out = pgxc(&["plan", "--detailed-exitcode", &bad]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));

    // Standbys stream from their primary's real address (lab connections leave from
    // 127.0.0.1, so the address is checked in the standby's primary_conninfo).
    let replicas = sql(
        &psql,
        &data(1, "pg1"),
        25432,
        "select application_name, state from pg_stat_replication",
    );
    assert_eq!(replicas, "pg1_standby|streaming");
    let conninfo =
        std::fs::read_to_string(format!("{}/postgresql.conf", data(2, "pg1_standby"))).unwrap();
    assert!(conninfo.contains("host=127.0.10.1 port=25432"), "{conninfo}");

    // A row written on a primary is readable on its standby.
    sql(
        &psql,
        &data(1, "pg1"),
        25432,
        "create table t(id int); insert into t select generate_series(1, 100)",
    );
    wait_for("the row on the standby", || {
        let out = as_pgxc(&[
            &psql,
            "-X",
            "-A",
            "-t",
            "-h",
            socket_dir(&data(2, "pg1_standby")),
            "-p",
            "25433",
            "-U",
            "pgxc",
            "-d",
            "postgres",
            "-c",
            "select count(*) from t",
        ]);
        text(&out.stdout).trim() == "100"
    });
    assert_eq!(sql(&psql, &data(2, "pg1_standby"), 25433, "select pg_is_in_recovery()"), "t");

    // A second apply changes nothing and restarts nothing.
    let started = |k: usize, node: &str, port: u16| {
        sql(&psql, &data(k, node), port, "select pg_postmaster_start_time()")
    };
    let before = (started(1, "pg1", 25432), started(3, "pg2_standby", 25433));
    let out = apply(&inv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("nothing to do: pgtest already matches"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!((started(1, "pg1", 25432), started(3, "pg2_standby", 25433)), before);

    // While another holder has the cluster's lock on one host, apply refuses and changes
    // nothing; once it is gone, apply runs.
    let lock = format!("{LAB_DIR}/hosts/h2/data/pgtest/.pgxc-deploy.lock");
    std::fs::write(format!("{lock}.owner"), "apply by someone@elsewhere (pid 7)\n").unwrap();
    // `-o`: flock itself holds the lock (not its `sleep`), so killing it releases the lock.
    // It waits for the lock (no `-n`): the check below takes the lock for an instant too.
    let mut holder = Command::new("flock").args(["-o", &lock, "sleep", "60"]).spawn().unwrap();
    wait_for("the lock held", || {
        assert!(holder.try_wait().unwrap().is_none(), "the lock's holder ended early");
        let probe = Command::new("flock").args(["-n", &lock, "true"]).status().unwrap();
        !probe.success()
    });
    let out = apply(&inv);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: cannot lock pgtest; nothing was changed:"), "{stderr}");
    assert!(
        stderr.contains("h2: lock: locked by apply by someone@elsewhere (pid 7): another pgxc-deploy works on this cluster"),
        "{stderr}"
    );
    // Every other command that changes the cluster or its roles is refused the same way
    // (failover too, though it leaves unreachable hosts unlocked); status and exec only read.
    for args in [
        vec!["start"],
        vec!["stop"],
        vec!["restart", "--rolling"],
        vec!["clean", "--yes"],
        vec!["failover", "pg1", "--yes"],
        vec!["switchover", "pg1", "--yes"],
    ] {
        let mut argv = vec![args[0], inv.as_str()];
        argv.extend(&args[1..]);
        let out = pgxc(&argv);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}{stderr}", text(&out.stdout));
        assert!(
            stderr.contains("error: cannot lock pgtest; nothing was changed:"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("h2: lock: locked by apply by someone@elsewhere"),
            "{args:?}: {stderr}"
        );
    }
    let out = pgxc(&["status", &inv]);
    assert!(out.status.success(), "status while locked: {}", text(&out.stderr));
    let out = pgxc(&["exec", &inv, "--", "true"]);
    assert!(out.status.success(), "exec while locked: {}", text(&out.stderr));
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!((started(1, "pg1", 25432), started(3, "pg2_standby", 25433)), before);
    // A holder that is a pgxc-deploy of this machine which no longer runs (killed a moment ago,
    // its sshd sessions not yet ended) is waited for, not refused.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let this = std::fs::read_to_string("/etc/hostname").unwrap();
    let owner = format!("apply by someone@{} (pid {gone_pid})\n", this.trim());
    std::fs::write(format!("{lock}.owner"), owner).unwrap();
    let mut holder = Command::new("flock").args(["-o", &lock, "sleep", "2"]).spawn().unwrap();
    wait_for("the lock held", || {
        !Command::new("flock").args(["-n", &lock, "true"]).status().unwrap().success()
    });
    let out = apply(&inv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(holder.try_wait().unwrap().is_some(), "apply ran only once the holder ended");

    // A changed setting: plan shows the diff and a reload, apply writes and reloads it.
    let inv = pg_inventory(dir.path(), "work_mem = \"8MB\"");
    let out = pgxc(&["plan", &inv]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("+work_mem = '8MB'"), "{shown}");
    assert!(shown.contains("pg1 on h1: reload (work_mem)"), "{shown}");
    assert_eq!(sql(&psql, &data(1, "pg1"), 25432, "show work_mem"), "4MB", "plan changed nothing");
    let out = apply(&inv);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(sql(&psql, &data(1, "pg1"), 25432, "show work_mem"), "8MB");
    assert_eq!(sql(&psql, &data(3, "pg2_standby"), 25433, "show work_mem"), "8MB");
    assert_eq!(started(1, "pg1", 25432), before.0, "a reload, not a restart");

    reset("pgtest");
}

fn xc_inventory(dir: &Path, pgxc_home: &str) -> String {
    let mut nodes = String::from(
        "[gtm]\nhost = \"h1\"\nport = 26666\n\n\
         [[coordinators]]\nname = \"coord1\"\nhost = \"h1\"\nport = 25532\npooler_port = 26667\n\n\
         [[coordinators]]\nname = \"coord2\"\nhost = \"h2\"\nport = 25532\npooler_port = 26668\n\n",
    );
    for (k, standby) in [(1, 2), (2, 3), (3, 1)] {
        nodes.push_str(&format!(
            "[[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\nport = 25542\n\
             [datanodes.standby]\nhost = \"h{standby}\"\nport = 25543\n\n"
        ));
    }
    let text = xc_toml("xctest", pgxc_home, XC_MD5, &nodes);
    // md5 between nodes: coordinators reach datanodes, standbys their primaries, with it.
    write(dir, "xc-password", "xc s3cret\n");
    write(dir, "xc.toml", &text)
}

#[test]
fn postgres_xc_flavor_deploys_registers_every_node_and_distributes_rows() {
    let pgxc_home = pgxc_home();
    reset("xctest");
    let dir = tempdir();
    let inv = xc_inventory(dir.path(), &pgxc_home);
    let data = |k: usize, node: &str| node_dir("xctest", k, node);

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    let psql = lab_psql("xctest");
    assert!(
        sql(&psql, &data(1, "coord1"), 25532, "select pgxc_version()")
            .starts_with("Postgres-XC 1.")
    );

    // Every coordinator lists every coordinator and datanode at its real address, no standby.
    let want = "coord1|C|127.0.10.1|25532\ncoord2|C|127.0.10.2|25532\n\
                dn1|D|127.0.10.1|25542\ndn2|D|127.0.10.2|25542\ndn3|D|127.0.10.3|25542";
    let query = "select node_name, node_type, node_host, node_port from pgxc_node order by 1";
    assert_eq!(sql(&psql, &data(1, "coord1"), 25532, query), want);
    assert_eq!(sql(&psql, &data(2, "coord2"), 25532, query), want);

    // Rows spread over every datanode; both coordinators see them all.
    // One statement per query: sent as one string, `create ...; insert ... select` makes X2
    // (1.3devel) insert every row four times (seen by hand: 1200 rows, 300 distinct).
    let coord1 = data(1, "coord1");
    sql(&psql, &coord1, 25532, "create table t(id int) distribute by hash(id)");
    sql(&psql, &coord1, 25532, "insert into t select generate_series(1, 300)");
    assert_eq!(sql(&psql, &data(1, "coord1"), 25532, "select count(*) from t"), "300");
    assert_eq!(sql(&psql, &data(2, "coord2"), 25532, "select count(*) from t"), "300");
    let mut total = 0;
    for dn in ["dn1", "dn2", "dn3"] {
        let n: u32 = sql(
            &psql,
            &data(1, "coord1"),
            25532,
            &format!("execute direct on ({dn}) 'select count(*) from t'"),
        )
        .parse()
        .unwrap();
        assert!(n > 0, "{dn} holds no rows");
        total += n;
    }
    assert_eq!(total, 300);

    // Standbys stream from their datanode.
    let replicas = sql(
        &psql,
        &data(2, "dn2"),
        25542,
        "select application_name, state from pg_stat_replication",
    );
    assert_eq!(replicas, "dn2_standby|streaming");
    let recovery =
        std::fs::read_to_string(format!("{}/recovery.conf", data(3, "dn2_standby"))).unwrap();
    assert!(recovery.contains("host=127.0.10.2 port=25542"), "{recovery}");

    let out = apply(&inv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("nothing to do: xctest already matches"),
        "{}",
        text(&out.stdout)
    );

    // A new password: one coordinator's ALTER ROLE reaches every node. Clients need the new
    // one; a restarted standby streams from its datanode with it, and a restarted coordinator
    // reaches the datanodes with it.
    write(dir.path(), "xc-password", "xc n3w\n");
    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("coord1 on h1: ALTER ROLE: the inventory's new password"), "{said}");
    assert!(!said.contains("n3w"), "{said}");
    let tcp = |password: &str| {
        Command::new(format!("{PG_PREBUILT}/bin/psql"))
            .args(["-X", "-A", "-t", "-w", "-h", "127.0.10.2", "-p", "25532", "-U", "pgxc"])
            .args(["-d", "postgres", "-c", "select count(*) from t"])
            .env("PGPASSWORD", password)
            .env("PGPASSFILE", "/nonexistent")
            .output()
            .unwrap()
    };
    let new = tcp("xc n3w");
    assert_eq!(text(&new.stdout).trim(), "300", "{}", text(&new.stderr));
    assert!(!tcp("xc s3cret").status.success(), "the old password still connects");
    let out = pgxc(&["restart", &inv, "--rolling", "--on", "dn2_standby,coord2"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(sql(&psql, &data(2, "coord2"), 25532, "select count(*) from t"), "300");
    assert!(text(&apply(&inv).stdout).starts_with("nothing to do: xctest"));

    reset("xctest");
}

/// A build from source, once on h1 and shipped to h2: PostgreSQL's release tarball (CI passes
/// Debian's `postgresql-15_*.orig.tar.bz2` in `PGXC_TEST_PG_TARBALL`).
#[test]
fn postgresql_flavor_built_from_a_source_tarball_once_and_shipped() {
    // scripts/test downloads the tarball; a skipped test would verify nothing.
    let tarball = std::env::var("PGXC_TEST_PG_TARBALL").expect(
        "PGXC_TEST_PG_TARBALL is not set: run scripts/test, or set it to a PostgreSQL source \
         tarball (scripts/pg-source prints one)",
    );
    reset("srctest");
    let dir = tempdir();
    let toml = format!(
        "[cluster]\nname = \"srctest\"\nflavor = \"postgresql\"\nos_user = \"pgxc\"\n\n\
         [auth]\nmethod = \"trust\"\n\n\
         [source]\ntarball = \"{tarball}\"\nconfigure_args = [\"--without-readline\", \"--without-zlib\", \"--without-icu\"]\n\
         build = \"once\"\nbuild_host = \"h1\"\n\n\
         [settings.all]\nshared_buffers = \"16MB\"\n\n{}\n{}\n\
         [[datanodes]]\nname = \"src1\"\nhost = \"h1\"\nport = 27432\n\
         [datanodes.standby]\nhost = \"h2\"\nport = 27433\n",
        ssh_table(None),
        test_hosts("srctest"),
    );
    let inv = write(dir.path(), "src.toml", &toml);
    let root = |k: usize| format!("{LAB_DIR}/hosts/h{k}/data/srctest");

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("h1: build from source"), "{stderr}");
    assert!(stderr.contains("h2: install"), "{stderr}");
    assert!(Path::new(&format!("{}/.pgxc-deploy-build/build.log", root(1))).exists());
    assert!(
        !Path::new(&format!("{}/.pgxc-deploy-build", root(2))).exists(),
        "h2 got the build, not a build"
    );

    let psql = format!("{}/install/bin/psql", root(1));
    let replicas = sql(
        &psql,
        &format!("{}/src1", root(1)),
        27432,
        "select application_name, state from pg_stat_replication",
    );
    assert_eq!(replicas, "src1_standby|streaming");
    assert!(
        sql(&psql, &format!("{}/src1", root(1)), 27432, "select version()")
            .starts_with("PostgreSQL 15")
    );

    // Nothing is rebuilt or reinstalled the second time.
    let out = apply(&inv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("nothing to do: srctest already matches"),
        "{}",
        text(&out.stdout)
    );
    reset("srctest");
}

/// scram-sha-256 with the password in an environment variable: initdb sets it, the standby
/// streams with it (from the password file pgxc-deploy writes), clients need it, and it is
/// never printed nor left on a command line.
#[test]
fn postgresql_flavor_with_scram_passwords_streams_and_never_shows_the_password() {
    reset("pwtest");
    let dir = tempdir();
    let password = "s3cr:et pass\\word";
    let toml = format!(
        "[cluster]\nname = \"pwtest\"\nflavor = \"postgresql\"\nos_user = \"pgxc\"\n\n\
         [auth]\nmethod = \"scram-sha-256\"\npassword_env = \"PGXC_TEST_PASSWORD\"\n\n\
         [source]\nprebuilt = \"{PG_PREBUILT}\"\n\n[settings.all]\nshared_buffers = \"16MB\"\n\n\
         {}\n{}\n[[datanodes]]\nname = \"pw1\"\nhost = \"h1\"\nport = 26432\n\
         [datanodes.standby]\nhost = \"h2\"\nport = 26433\nsynchronous = true\n",
        ssh_table(None),
        test_hosts("pwtest"),
    );
    let inv = write(dir.path(), "pw.toml", &toml);
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env_remove("SSH_AUTH_SOCK")
            .env("PGXC_TEST_PASSWORD", password)
            .output()
            .unwrap()
    };

    let plan = run(&["plan", &inv]);
    let out = run(&["apply", &inv]);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    for shown in [&plan.stdout, &plan.stderr, &out.stdout, &out.stderr] {
        assert!(!text(shown).contains("s3cr"), "the password was printed:\n{}", text(shown));
    }
    assert!(text(&plan.stdout).contains("write the password file"), "{}", text(&plan.stdout));

    // The standby streams: it authenticated with scram-sha-256 through the password file.
    let root = |k: usize| format!("{LAB_DIR}/hosts/h{k}/data/pwtest");
    let psql = find_ctl(&root(1), "psql");
    let replicas =
        sql(&psql, &format!("{}/pw1", root(1)), 26432, "select state from pg_stat_replication");
    assert_eq!(replicas, "streaming");
    let passfile = format!("{}/.pgxc-deploy.pgpass", root(2));
    let mode = std::fs::metadata(&passfile).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    assert!(!Path::new(&format!("{}/pw1.pgxc-deploy-tmp.pgxc-deploy-pw", root(1))).exists());

    // exec on a node runs as the cluster's user: its psql gets in over the Unix socket (peer),
    // and over TCP to the standby's host with the password file.
    let out = run(&["exec", &inv, "--on", "pw1", "--", "psql -X -A -t -c 'select current_user'"]);
    assert!(out.status.success(), "exec psql: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("pgxc"), "{}", text(&out.stdout));
    let to_standby = "psql -X -A -t -h 127.0.10.2 -p 26433 -c 'select pg_is_in_recovery()'";
    let out = run(&["exec", &inv, "--on", "pw1", "--", to_standby]);
    assert!(out.status.success(), "exec psql -h: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains('t'), "{}", text(&out.stdout));

    // Over TCP, a client needs the password.
    let tcp = |pw: Option<&str>| {
        let mut c = Command::new(&psql);
        c.args([
            "-X",
            "-A",
            "-t",
            "-w",
            "-h",
            "127.0.10.1",
            "-p",
            "26432",
            "-U",
            "pgxc",
            "-d",
            "postgres",
        ]);
        c.args(["-c", "select 1"]).env_remove("PGPASSWORD").env("PGPASSFILE", "/nonexistent");
        if let Some(pw) = pw {
            c.env("PGPASSWORD", pw);
        }
        c.output().unwrap()
    };
    let refused = tcp(None);
    assert!(!refused.status.success(), "no password, yet connected");
    assert!(!tcp(Some("wrong")).status.success(), "a wrong password connected");
    let ok = tcp(Some(password));
    assert!(ok.status.success(), "{}", text(&ok.stderr));

    // A command run on a node finds the password too (PGPASSFILE), e.g. psql to the primary.
    let out = run(&[
        "exec",
        &inv,
        "--on",
        "pw1_standby",
        "--",
        "psql -X -A -t -w -h 127.0.10.1 -p 26432 -d postgres -c 'select 41 + 1'",
    ]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("42"), "{}", text(&out.stdout));

    let out = run(&["apply", &inv]);
    assert!(
        text(&out.stdout).starts_with("nothing to do: pwtest"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // A new password while the synchronous standby is dead (kill -9): plan shows the change;
    // apply gives it to the server (ALTER ROLE, before the password files, committed without
    // waiting for the standby), starts the standby again, which streams with the new password;
    // the old one stops working. The password is never printed.
    let standby_pid = postmaster_pid(&format!("{}/pw1_standby", root(2)));
    kill("-KILL", standby_pid);
    wait_for("the standby to die", || process_gone(standby_pid));
    let new_password = "n3w:pass";
    let with_new = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env_remove("SSH_AUTH_SOCK")
            .env("PGXC_TEST_PASSWORD", new_password)
            .output()
            .unwrap()
    };
    let plan = with_new(&["plan", &inv]);
    assert!(
        text(&plan.stdout).contains("pw1 on h1: ALTER ROLE: the inventory's new password"),
        "{}",
        text(&plan.stdout)
    );
    let out = with_new(&["apply", &inv]);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    for shown in [&plan.stdout, &plan.stderr, &out.stdout, &out.stderr] {
        assert!(!text(shown).contains("n3w"), "the password was printed:\n{}", text(shown));
    }
    let said = text(&out.stderr);
    let altered = said.find("== change the password").expect(&said);
    assert!(altered < said.find("== install").expect(&said), "ALTER ROLE first: {said}");
    assert!(tcp(Some(new_password)).status.success(), "the new password connects");
    assert!(!tcp(Some(password)).status.success(), "the old password still connects");
    let out = with_new(&["restart", &inv, "--rolling", "--on", "pw1_standby"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let replicas =
        sql(&psql, &format!("{}/pw1", root(1)), 26432, "select state from pg_stat_replication");
    assert_eq!(replicas, "streaming");
    let out = with_new(&["apply", &inv]);
    assert!(text(&out.stdout).starts_with("nothing to do: pwtest"), "{}", text(&out.stderr));

    // Without the variable, apply stops before contacting any host, naming the variable.
    let out = Command::new(bin())
        .args(["apply", &inv])
        .env_remove("PGXC_TEST_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("$PGXC_TEST_PASSWORD is not set"), "{}", text(&out.stderr));

    // clean takes the password files along with the last node of each host.
    let out = with_new(&["clean", &inv, "--yes"]);
    assert!(out.status.success(), "clean: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("h2: remove "), "{}", text(&out.stdout));
    for k in [1, 2] {
        let passfile = format!("{}/.pgxc-deploy.pgpass", root(k));
        assert!(!Path::new(&passfile).exists(), "{passfile} is left");
    }
    reset("pwtest");
}

/// A stand-in source tree with the shape of PostgreSQL's build (configure, make, make install)
/// that builds in a blink: it installs `bin/postgres` and records how it was built.
fn fake_source(dir: &Path, configure_fails: bool) {
    let configure = if configure_fails {
        "#!/bin/sh\necho 'checking for bison... no'\necho 'configure: error: no bison here' >&2\nexit 1\n"
            .to_string()
    } else {
        "#!/bin/sh\nprefix=${1#--prefix=}\nprintf 'PREFIX = %s\\n' \"$prefix\" > config.mk\n\
         shift\nprintf '%s\\n' \"$@\" > config.args\n"
            .to_string()
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("configure"), configure).unwrap();
    std::fs::write(
        dir.join("Makefile"),
        "include config.mk\nall:\n\tprintf '#!/bin/sh\\necho fake\\n' > postgres\n\tchmod +x postgres\n\
         install:\n\tmkdir -p \"$(PREFIX)/bin\"\n\tcp postgres \"$(PREFIX)/bin/\"\n\
         \tcp config.args greeting.txt \"$(PREFIX)/\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("greeting.txt"), "hello\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("configure"), std::fs::Permissions::from_mode(0o755))
        .unwrap();
}

/// `[source] git` built on every host: cloned at `rev`, patched, `pre_configure` run, configured
/// with the inventory's arguments; a second apply builds nothing; a failed build (a `dir`
/// source, built once) names the host and stage, shows the log's end and where the log is.
#[test]
fn builds_from_git_on_every_host_and_reports_a_failed_build_with_its_log() {
    reset("gittest");
    let dir = tempdir();
    // The lab's cluster user clones the repository: it must own it (git's safe.directory).
    let repo = format!("{LAB_DIR}/hosts/h1/data/gittest-src/repo");
    let _ = std::fs::remove_dir_all(format!("{LAB_DIR}/hosts/h1/data/gittest-src"));
    fake_source(Path::new(&repo), false);
    let git = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(&repo).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fake"]);
    git(&["tag", "v1"]);
    let status = Command::new("chown")
        .args(["-R", "pgxc", &format!("{LAB_DIR}/hosts/h1/data/gittest-src")])
        .status()
        .unwrap();
    assert!(status.success());
    let patch = write(
        dir.path(),
        "greeting.patch",
        "--- a/greeting.txt\n+++ b/greeting.txt\n@@ -1 +1 @@\n-hello\n+patched\n",
    );
    let toml = format!(
        "[cluster]\nname = \"gittest\"\nflavor = \"postgresql\"\nos_user = \"pgxc\"\n\n\
         [source]\ngit = \"{repo}\"\nrev = \"v1\"\nbuild = \"every-host\"\n\
         configure_args = [\"--with-x=a b\", \"CFLAGS=-O2 -fcommon\"]\npatches = [\"{patch}\"]\n\
         pre_configure = [\"echo pre >> greeting.txt\"]\n\n{}\n{}\n",
        ssh_table(None),
        test_hosts("gittest"),
    );
    let inv = write(dir.path(), "git.toml", &toml);
    let out = apply(&inv);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "apply:\n{}{stderr}", text(&out.stdout));
    for k in 1..=3 {
        assert!(stderr.contains(&format!("h{k}: build: done")), "{stderr}");
        assert!(stderr.contains(&format!("ok    h{k}: build from source")), "{stderr}");
        let install = format!("{LAB_DIR}/hosts/h{k}/data/gittest/install");
        let read = |f: &str| std::fs::read_to_string(format!("{install}/{f}")).unwrap();
        assert_eq!(read("greeting.txt"), "patched\npre\n");
        assert_eq!(read("config.args"), "--with-x=a b\nCFLAGS=-O2 -fcommon\n");
    }
    let out = apply(&inv);
    assert!(text(&out.stdout).starts_with("nothing to do: gittest"), "{}", text(&out.stderr));

    // A build that fails: the host, the stage, the end of the log and where the log is.
    let broken = dir.path().join("broken");
    fake_source(&broken, true);
    let toml = format!(
        "[cluster]\nname = \"gittest\"\nflavor = \"postgresql\"\nos_user = \"pgxc\"\n\n\
         [source]\ndir = \"{}\"\nbuild_host = \"h2\"\n\n{}\n{}\n",
        broken.display(),
        ssh_table(None),
        test_hosts("gittest"),
    );
    let inv = write(dir.path(), "broken.toml", &toml);
    let out = apply(&inv);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let log = format!("{LAB_DIR}/hosts/h2/data/gittest/.pgxc-deploy-build/build.log");
    assert!(stderr.contains("FAIL  h2: build from source"), "{stderr}");
    assert!(stderr.contains("build (configure): exit 1; the end of its log:"), "{stderr}");
    assert!(stderr.contains("configure: error: no bison here"), "{stderr}");
    assert!(stderr.contains(&format!("full log on h2: {log}")), "{stderr}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("checking for bison... no"));
    assert!(!stderr.contains("h1: install"), "nothing is shipped after a failed build: {stderr}");

    // A build that outlives `build_timeout`: apply gives up on it, naming the host and the log
    // (the build goes on, detached; it is ended here by its process group).
    let slow = dir.path().join("slow");
    fake_source(&slow, false);
    let toml = format!(
        "[cluster]\nname = \"gittest\"\nflavor = \"postgresql\"\nos_user = \"pgxc\"\n\n\
         [source]\ndir = \"{}\"\nbuild_host = \"h2\"\nbuild_timeout = 3\n\
         pre_configure = [\"sleep 30\"]\n\n{}\n{}\n",
        slow.display(),
        ssh_table(None),
        test_hosts("gittest"),
    );
    let inv = write(dir.path(), "slow.toml", &toml);
    let started = std::time::Instant::now();
    let out = apply(&inv);
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FAIL  h2: build from source"), "{stderr}");
    assert!(stderr.contains("still running after 3 s ([source] build_timeout)"), "{stderr}");
    assert!(stderr.contains(&format!("Look at its log ({log})")), "{stderr}");
    assert!(took < std::time::Duration::from_secs(20), "gave up after {took:?}");
    let pid = std::fs::read_to_string(format!(
        "{LAB_DIR}/hosts/h2/data/gittest/.pgxc-deploy-build/build.pid"
    ))
    .unwrap();
    let group = format!("-{}", pid.trim());
    let status = Command::new("kill").args(["-s", "KILL", "--", &group]).status().unwrap();
    assert!(status.success(), "kill the build's process group {group}");
    let _ = std::fs::remove_dir_all(format!("{LAB_DIR}/hosts/h1/data/gittest-src"));
    reset("gittest");
}

/// apply killed (SIGKILL) while it initialises: the half-made data directory is not mistaken
/// for done, its lock died with it, and the next apply converges.
#[test]
fn an_apply_killed_midway_is_finished_by_the_next_one() {
    reset("killtest");
    let dir = tempdir();
    let toml = pg_toml(
        "killtest",
        "",
        "[[datanodes]]\nname = \"k1\"\nhost = \"h1\"\nport = 27532\n\
         [datanodes.standby]\nhost = \"h2\"\nport = 27533\n",
    );
    let inv = write(dir.path(), "kill.toml", &toml);
    let root = format!("{LAB_DIR}/hosts/h1/data/killtest");
    let mut first = Command::new(bin())
        .args(["apply", &inv])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once initdb has started writing the staging directory.
    let staging = format!("{root}/k1.pgxc-deploy-tmp");
    wait_for("initdb to start", || Path::new(&staging).exists());
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!Path::new(&format!("{root}/k1/.pgxc-deploy-initialized")).exists());

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    let psql = find_ctl(&root, "psql");
    let replicas =
        sql(&psql, &format!("{root}/k1"), 27532, "select state from pg_stat_replication");
    assert_eq!(replicas, "streaming");
    assert!(!Path::new(&staging).exists(), "the staging directory was renamed into place");
    reset("killtest");
}

/// plan shows what it can when a host does not answer: the steps of the others, naming it;
/// apply refuses to start.
#[test]
fn plan_shows_the_hosts_that_answer_and_names_the_others() {
    let dir = tempdir();
    let gone = "\n[hosts.gone]\naddress = \"127.0.10.250\"\n\n[[datanodes]]\nname = \"pg2\"\n\
                host = \"gone\"\nport = 34942\n";
    let inv = write(dir.path(), "partial.toml", &pair_toml("partial", (34942, 34943), false, gone));
    let out = pgxc(&["plan", &inv, "--connect-timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("pg1 on h1: initialise"), "{}", shown(&out));
    assert!(!stdout.contains("pg2 on gone"), "{}", shown(&out));
    assert!(stdout.contains("partial plan: the steps of gone are not shown"), "{}", shown(&out));
    assert!(text(&out.stderr).contains("gone: connect:"), "{}", shown(&out));
    let out = pgxc(&["apply", &inv, "--connect-timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(text(&out.stderr).contains("nothing was changed"), "{}", shown(&out));
}

/// `apply --on` (Ansible's `--limit`): `plan --on pg2` shows pg2's steps and how many steps of
/// which nodes it leaves out; `apply --on 'pg2*'` brings up pg2 and its standby alone (pg1 not
/// initialised, h1 untouched); a plain apply does the rest, then nothing.
#[test]
fn apply_on_a_selection_changes_it_alone_and_a_plain_apply_the_rest() {
    const TAG: &str = "limittest";
    reset(TAG);
    let dir = tempdir();
    let pg2 = "[[datanodes]]\nname = \"pg2\"\nhost = \"h2\"\nport = 38432\n               [datanodes.standby]\nhost = \"h3\"\nport = 38433\n";
    let inv = write(dir.path(), "limit.toml", &pair_toml(TAG, (38432, 38433), false, pg2));
    let data = |k: usize, node: &str| node_dir(TAG, k, node);

    let out = pgxc(&["plan", &inv, "--on", "pg2"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("pg2 on h2: initialise"), "{}", shown(&out));
    assert!(!stdout.contains("on h1:") && !stdout.contains("pg2_standby on"), "{stdout}");
    let left_out = stdout.lines().find(|l| l.contains("step(s) on other nodes left out (--on)"));
    let left_out = left_out.unwrap_or_else(|| panic!("{stdout}"));
    for name in ["h1", "pg1", "pg1_standby", "pg2_standby"] {
        assert!(left_out.contains(name), "{left_out}");
    }
    // A host less one of its nodes, in JSON: pg2's steps and h2's own, the rest counted.
    let out = pgxc(&["plan", &inv, "--on", "h2", "-x", "pg1_standby", "--json"]);
    let lines = json_lines(&out.stdout);
    let (summary, steps) = lines.split_last().unwrap();
    assert!(summary["summary"]["limited_out"].as_u64().unwrap() > 0, "{lines:?}");
    assert_eq!(summary["summary"]["unlimited"], serde_json::json!([]), "{lines:?}");
    assert!(steps.iter().all(|s| s["node"] == "pg2" || s["node"].is_null()), "{lines:?}");
    assert!(steps.iter().all(|s| s["host"] == "h2"), "{lines:?}");
    // A selector that selects nothing: usage (2); a standby without its primary: refused (1).
    let out = pgxc(&["plan", &inv, "--on", "pg9"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(text(&out.stderr).contains("--on: selector `pg9` matches no node"), "{}", shown(&out));
    let out = pgxc(&["apply", &inv, "--on", "pg2_standby"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        text(&out.stderr).contains(
            "pg2_standby on h3: its primary pg2 is not initialised yet, and --on leaves pg2 out"
        ),
        "{}",
        shown(&out)
    );
    assert!(!Path::new(&data(2, "pg2")).exists(), "a refused apply changed nothing");

    let out = pgxc(&["apply", &inv, "--on", "pg2*"]);
    assert!(out.status.success(), "apply --on:\n{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("applied "), "{stdout}");
    assert!(stdout.contains("the selection (--on) of limittest is up"), "{stdout}");
    assert!(stdout.contains("step(s) on other nodes pending (h1, pg1, pg1_standby)"), "{stdout}");
    let psql = find_ctl(&format!("{LAB_DIR}/hosts/h2/data/{TAG}"), "psql");
    let replicas = sql(
        &psql,
        &data(2, "pg2"),
        38432,
        "select application_name, state from pg_stat_replication",
    );
    assert_eq!(replicas, "pg2_standby|streaming");
    let (_, rows) = status(&inv);
    assert_eq!(rows["pg1"]["state"], "not initialised", "{rows:?}");
    assert_eq!(rows["pg1_standby"]["state"], "not initialised", "{rows:?}");
    assert_eq!(rows["pg2_standby"]["running"], true, "{rows:?}");
    assert!(
        !Path::new(&format!("{LAB_DIR}/hosts/h1/data/{TAG}/install")).exists(),
        "h1 got its install"
    );
    let out = pgxc(&["apply", &inv, "--on", "pg2*"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        text(&out.stdout).starts_with("nothing to do on the selection (--on): it matches "),
        "{}",
        shown(&out)
    );

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}", shown(&out));
    assert!(text(&out.stdout).starts_with("applied "), "{}", shown(&out));
    assert!(text(&out.stdout).contains("limittest is up"), "{}", shown(&out));
    let (code, rows) = status(&inv);
    assert_eq!(code, 0, "{rows:?}");
    let out = apply(&inv);
    assert!(
        text(&out.stdout).starts_with("nothing to do: limittest already matches"),
        "{}",
        shown(&out)
    );
    reset(TAG);
}

/// `apply --on dn3` on a running Postgres-XC cluster that the inventory grows by dn3 and dn4:
/// dn3 joins, both coordinators register it (kept although outside the selection, and said)
/// and the table is spread over it through coord1; dn4 is neither set up nor registered until a
/// plain apply adds it.
#[test]
fn apply_on_a_new_postgres_xc_datanode_registers_it_on_every_coordinator() {
    const TAG: &str = "limitxc";
    let pgxc_home = pgxc_home();
    reset(TAG);
    let dir = tempdir();
    let inventory = |more: &str| {
        let mut nodes = "[gtm]\nhost = \"h3\"\nport = 38566\n\n".to_string();
        for k in 1..=2 {
            nodes.push_str(&format!(
                "[[coordinators]]\nname = \"coord{k}\"\nhost = \"h{k}\"\nport = 38532\n\
                 pooler_port = {}\n\n[[datanodes]]\nname = \"dn{k}\"\nhost = \"h{k}\"\n\
                 port = 38542\n\n",
                38550 + k
            ));
        }
        nodes.push_str(more);
        write(dir.path(), "xc.toml", &xc_toml(TAG, &pgxc_home, "method = \"trust\"", &nodes))
    };
    let inv = inventory("");
    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}", shown(&out));
    let psql = lab_psql(TAG);
    let through =
        |k: usize, query: &str| sql(&psql, &node_dir(TAG, k, &format!("coord{k}")), 38532, query);
    through(1, "create table t(id int) distribute by hash(id)");
    through(1, "insert into t select generate_series(1, 300)");

    let inv = inventory(
        "[[datanodes]]\nname = \"dn3\"\nhost = \"h3\"\nport = 38542\n\n\
         [[datanodes]]\nname = \"dn4\"\nhost = \"h3\"\nport = 38544\n",
    );
    let out = pgxc(&["plan", &inv, "--on", "dn3"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let stdout = text(&out.stdout);
    for line in [
        "kept although outside --on:",
        "  dn3 on h3: its join registers it with every running coordinator, selected or not",
        "  coord1 on h1: pgxc_node updated for dn3: every running coordinator must list the \
         selected nodes",
        "  coord2 on h2: pgxc_node updated for dn3: every running coordinator must list the \
         selected nodes",
        "  coord1 on h1: 1 table(s) redistributed through it (ADD NODE dn3): DDL goes through a \
         running coordinator",
        "step(s) on other nodes left out (--on): dn4",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    assert!(!stdout.contains("dn4 on h3"), "{stdout}");
    let lines = json_lines(&pgxc(&["plan", &inv, "--on", "dn3", "--json"]).stdout);
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["unlimited"].as_array().unwrap().len(), 4, "{summary}");
    assert!(summary["limited_out"].as_u64().unwrap() > 0, "{summary}");

    let out = pgxc(&["apply", &inv, "--on", "dn3"]);
    assert!(out.status.success(), "apply --on dn3:\n{}", shown(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("the selection (--on) of limitxc is up"), "{stdout}");
    assert!(stdout.contains("step(s) on other nodes pending (dn4)"), "{stdout}");
    let query = "select string_agg(node_name::text, ',' order by node_name) from pgxc_node";
    for k in [1, 2] {
        assert_eq!(through(k, query), "coord1,coord2,dn1,dn2,dn3", "coord{k}");
    }
    let on_dn3: u32 =
        through(1, "execute direct on (dn3) 'select count(*) from t'").parse().unwrap();
    assert!(on_dn3 > 0, "no row moved to dn3");
    assert_eq!(through(2, "select count(*) from t"), "300");
    assert!(!Path::new(&node_dir(TAG, 3, "dn4")).exists(), "dn4 was set up");

    let out = apply(&inv);
    assert!(out.status.success(), "apply:\n{}", shown(&out));
    for k in [1, 2] {
        assert_eq!(through(k, query), "coord1,coord2,dn1,dn2,dn3,dn4", "coord{k}");
    }
    assert_eq!(through(1, "select count(*) from t"), "300");
    let out = apply(&inv);
    assert!(
        text(&out.stdout).starts_with("nothing to do: limitxc already matches"),
        "{}",
        shown(&out)
    );
    reset(TAG);
}
