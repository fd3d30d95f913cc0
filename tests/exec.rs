//! `pgxc-deploy exec` against real lab hosts.

use crate::support::*;

/// An inventory of lab hosts `hosts` (and no nodes), with a given known_hosts file.
fn hosts_inventory(
    dir: &std::path::Path,
    hosts: &[usize],
    known_hosts: Option<&std::path::Path>,
) -> String {
    let text = format!("{}\n{}", ssh_table(known_hosts), hosts_tables(hosts));
    write(dir, "hosts.toml", &text)
}

/// A Postgres-XC layout over h1-h3: gtm, two coordinators, two datanodes with standbys.
fn cluster_inventory(dir: &std::path::Path) -> String {
    let text = format!(
        r#"[cluster]
flavor = "postgres-xc"
os_user = "pgxc"

[auth]
method = "trust"

{}
{}
[gtm]
host = "h1"
port = 16666

[[coordinators]]
name = "coord1"
host = "h1"
port = 15432
pooler_port = 16667

[[coordinators]]
name = "coord2"
host = "h2"
port = 15432
pooler_port = 16668

[[datanodes]]
name = "dn1"
host = "h2"
port = 15433
[datanodes.standby]
host = "h3"
port = 15434

[[datanodes]]
name = "dn2"
host = "h3"
port = 15433
[datanodes.standby]
host = "h1"
port = 15434
"#,
        ssh_table(None),
        hosts_tables(&[1, 2, 3])
    );
    write(dir, "cluster.toml", &text)
}

/// The address each host's sshd saw us connect to, as the remote shell reports it.
const SERVER_ADDR: &str = r#"echo "$SSH_CONNECTION" | cut -d' ' -f3"#;

#[test]
fn runs_on_every_host_and_folds_identical_output() {
    let dir = tempdir();
    let inv = hosts_inventory(dir.path(), &[1, 2, 3], None);

    let out = pgxc(&["exec", &inv, "--json", "--", SERVER_ADDR]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    let got: Vec<(String, String)> = lines
        .iter()
        .map(|l| (l["host"].as_str().unwrap().into(), l["stdout"].as_str().unwrap().into()))
        .collect();
    let want: Vec<(String, String)> =
        (1..=3).map(|k| (format!("h{k}"), format!("127.0.10.{k}\n"))).collect();
    assert_eq!(got, want);

    let out = pgxc(&["exec", &inv, "-b", "--", "echo", "same"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "---------------\nh[1-3] (3)\n---------------\nsame\n");

    // By default, every line as it arrives, after its host's name; stderr kept apart.
    let out = pgxc(&["exec", &inv, "--", "echo one; echo two >&2; printf three"]);
    assert!(out.status.success(), "{}", shown(&out));
    let mut lines: Vec<&str> = text(&out.stdout).leak().lines().collect();
    lines.sort();
    assert_eq!(lines, ["h1: one", "h1: three", "h2: one", "h2: three", "h3: one", "h3: three"]);
    let mut errs: Vec<String> = text(&out.stderr).lines().map(String::from).collect();
    errs.sort();
    assert_eq!(errs, ["h1: two", "h2: two", "h3: two"]);
}

#[test]
fn runs_once_per_selected_node_with_its_environment() {
    let dir = tempdir();
    let inv = cluster_inventory(dir.path());
    let cmd =
        r#"echo "$PGXC_NODE|$PGXC_ROLE|$PGDATA|$PGPORT|$PGHOST|$PGUSER|$PGDATABASE|${PATH%%:*}""#;

    let out = pgxc(&["exec", &inv, "--on", "dn*", "--json", "--", cmd]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    let got: Vec<String> =
        lines.iter().map(|l| l["stdout"].as_str().unwrap().to_string()).collect();
    let data = |h: usize, n: &str| format!("{LAB_DIR}/hosts/h{h}/data/{n}");
    let bin = |h: usize| format!("{LAB_DIR}/hosts/h{h}/install/bin");
    let line = |node: &str, role: &str, h: usize, port: u16| {
        format!(
            "{node}|{role}|{}|{port}|{LAB_DIR}/hosts/h{h}/data|pgxc|postgres|{}\n",
            data(h, node),
            bin(h)
        )
    };
    // `dn*` matches the datanodes and their standbys (dn1_standby...), in inventory order.
    let want = vec![
        line("dn1", "datanode", 2, 15433),
        line("dn1_standby", "standby", 3, 15434),
        line("dn2", "datanode", 3, 15433),
        line("dn2_standby", "standby", 1, 15434),
    ];
    assert_eq!(got, want);
    let hosts: Vec<&str> = lines.iter().map(|l| l["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["h2", "h3", "h3", "h1"]);

    // Roles, ranges and host names, comma-joined; output in inventory order.
    let out = pgxc(&[
        "exec",
        &inv,
        "--on",
        "@standbys,coord[1-2],@gtm",
        "--json",
        "--",
        "echo $PGXC_NODE",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let nodes: Vec<String> =
        json_lines(&out.stdout).iter().map(|l| l["node"].as_str().unwrap().to_string()).collect();
    assert_eq!(nodes, ["gtm", "coord1", "coord2", "dn1_standby", "dn2_standby"]);
}

#[test]
fn a_selector_that_matches_nothing_is_a_usage_error() {
    let dir = tempdir();
    let inv = cluster_inventory(dir.path());
    let out = pgxc(&["exec", &inv, "--on", "dn9", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("dn9"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_failing_command_reports_its_exit_status_and_stderr() {
    let dir = tempdir();
    let inv = hosts_inventory(dir.path(), &[1, 2], None);
    let cmd =
        r#"case "$SSH_CONNECTION" in *" 127.0.10.2 "*) echo broken >&2; exit 3;; esac; echo fine"#;

    let out = pgxc(&["exec", &inv, "--json", "--", cmd]);
    assert_eq!(out.status.code(), Some(3));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["exit_code"], 0);
    assert_eq!(lines[0]["stdout"], "fine\n");
    assert_eq!(lines[1]["exit_code"], 3);
    assert_eq!(lines[1]["stderr"], "broken\n");
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(text(&out.stderr), "error: 1 of 2 targets failed: h2 (exit 3)\n");

    let out = pgxc(&["exec", &inv, "-b", "--", cmd]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("h2 (1): exit 3\n---------------\nbroken\n"), "{stdout}");
    let out = pgxc(&["exec", &inv, "--", cmd]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "h1: fine\n");
    assert_eq!(text(&out.stderr), "h2: broken\nerror: 1 of 2 targets failed: h2 (exit 3)\n");
}

#[test]
fn arguments_reach_the_remote_command_verbatim() {
    let dir = tempdir();
    let inv = hosts_inventory(dir.path(), &[1], None);
    let marker = dir.path().join("pwned");
    let evil = [
        "a b",
        "it's",
        "\"double\"",
        "`touch MARK`",
        "$(touch MARK)",
        "; touch MARK",
        "line1\nline2",
        "-n",
        "$HOME",
        "*",
        "",
    ]
    .map(|a| a.replace("MARK", &marker.display().to_string()));
    let mut args = vec!["exec", &inv, "--json", "--", "printf", "[%s]\\n"];
    args.extend(evil.iter().map(String::as_str));

    let out = pgxc(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want: String = evil.iter().map(|a| format!("[{a}]\n")).collect();
    assert_eq!(json_lines(&out.stdout)[0]["stdout"], want);
    assert!(!marker.exists(), "an argument was executed by the remote shell");
}

#[test]
fn shell_characters_in_the_inventory_are_rejected_before_connecting() {
    let dir = tempdir();
    let marker = dir.path().join("pwned");
    let m = marker.display();
    let cases = [
        format!("[hosts.h1]\naddress = \"127.0.10.1;touch {m}\"\n"),
        format!("[hosts.h1]\naddress = \"127.0.10.1\"\nuser = \"$(touch {m})\"\n"),
        format!("[hosts.\"h1;touch {m}\"]\naddress = \"127.0.10.1\"\n"),
        format!("[hosts.h1]\naddress = \"127.0.10.1\"\ndata_root = \"/x`touch {m}`\"\n"),
    ];
    for case in cases {
        let inv = write(dir.path(), "bad.toml", &format!("{}\n{case}", ssh_table(None)));
        let out = pgxc(&["exec", &inv, "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "{case}\n{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("bad.toml:"), "{}", text(&out.stderr));
        assert!(!marker.exists());
    }
}

#[test]
fn rsa_keys_authenticate_too() {
    let dir = tempdir();
    let text_inv = format!(
        "[ssh]\nport = {LAB_PORT}\nidentity_file = \"{LAB_DIR}/id_rsa\"\nknown_hosts = \"{LAB_DIR}/known_hosts\"\n\n{}",
        hosts_tables(&[1])
    );
    lab();
    let inv = write(dir.path(), "rsa.toml", &text_inv);
    let out = pgxc(&["exec", &inv, "--", "echo", "rsa"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn an_unknown_host_key_is_refused_unless_accept_new_learns_it() {
    let dir = tempdir();
    let known = dir.path().join("known_hosts");
    let inv = hosts_inventory(dir.path(), &[1, 2], Some(&known));

    let out = pgxc(&["exec", &inv, "--", "true"]);
    assert_eq!(out.status.code(), Some(255));
    let stdout = text(&out.stderr);
    let want = format!("host key of [127.0.10.1]:{LAB_PORT} is unknown (SHA256:");
    assert!(stdout.contains(&want), "{stdout}");
    assert!(stdout.contains("--accept-new"), "{stdout}");
    assert!(!known.exists() || std::fs::read_to_string(&known).unwrap().is_empty());

    let out = pgxc(&["exec", &inv, "--accept-new", "--", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let learned = std::fs::read_to_string(&known).unwrap();
    assert_eq!(learned.lines().filter(|l| !l.is_empty()).count(), 2, "{learned}");

    let out = pgxc(&["exec", &inv, "--", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_changed_host_key_is_refused_even_with_accept_new() {
    let dir = tempdir();
    let lab = lab();
    // Record h2's key under h1's address: h1 now presents a "changed" key.
    let real = std::fs::read_to_string(lab.join("known_hosts")).unwrap();
    let h2 = format!("[127.0.10.2]:{LAB_PORT} ");
    let h2_key = real.lines().find(|l| l.starts_with(&h2)).expect("h2 in known_hosts");
    let forged = h2_key.replacen("127.0.10.2", "127.0.10.1", 1);
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, format!("{forged}\n")).unwrap();
    let inv = hosts_inventory(dir.path(), &[1], Some(&known));

    for extra in [None, Some("--accept-new")] {
        let mut args = vec!["exec", inv.as_str()];
        args.extend(extra);
        args.extend(["--", "true"]);
        let out = pgxc(&args);
        assert_eq!(out.status.code(), Some(255));
        let stdout = text(&out.stderr);
        assert!(
            stdout.contains(&format!("HOST KEY CHANGED for [127.0.10.1]:{LAB_PORT}")),
            "{stdout}"
        );
        assert!(stdout.contains("line 1"), "{stdout}");
    }
    assert_eq!(std::fs::read_to_string(&known).unwrap(), format!("{forged}\n"));
}

#[test]
fn a_stopped_sshd_fails_only_its_host() {
    let dir = tempdir();
    let inv = hosts_inventory(dir.path(), &[1, 4, 2], None);
    kill("-TERM", sshd_pid(4));
    std::thread::sleep(std::time::Duration::from_millis(300));

    let out = pgxc(&["exec", &inv, "--json", "--", "echo", "up"]);
    // Bring h4 back before asserting, so a failure leaves the lab whole.
    let restart = lab_up();
    assert!(restart.status.success(), "{}", text(&restart.stderr));

    assert_eq!(out.status.code(), Some(255));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["stdout"], "up\n");
    assert_eq!(lines[2]["stdout"], "up\n");
    assert_eq!(lines[1]["host"], "h4");
    assert_eq!(lines[1]["error"]["step"], "connect");
    let msg = lines[1]["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("h4: cannot connect to 127.0.10.4:"), "{msg}");
    assert_eq!(text(&out.stderr), "error: 1 of 3 targets failed: h4 (connect failed)\n");
}

#[test]
fn a_hung_sshd_is_reported_after_the_connect_timeout() {
    let dir = tempdir();
    let inv = hosts_inventory(dir.path(), &[5, 1], None);
    let pid = sshd_pid(5);
    kill("-STOP", pid);
    let start = std::time::Instant::now();
    let out = pgxc(&["exec", &inv, "--connect-timeout", "2", "--json", "--", "echo", "up"]);
    let elapsed = start.elapsed();
    kill("-CONT", pid);

    assert_eq!(out.status.code(), Some(255));
    let lines = json_lines(&out.stdout);
    let msg = lines[0]["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("h5: no answer from 127.0.10.5:"), "{msg}");
    assert_eq!(lines[1]["stdout"], "up\n");
    // Not a timing assertion: only that the timeout, not a hang, ended the run.
    assert!(elapsed < std::time::Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn a_host_that_stops_answering_mid_command_fails_after_the_missed_keepalives() {
    let dir = tempdir();
    // h5 alone: exec ends when its last target does.
    let inv = hosts_inventory(dir.path(), &[5], None);
    let child = std::process::Command::new(bin())
        .args(["exec", &inv, "--json", "--", "sleep 101 || true"])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The sshd process that serves h5's connection: up from the remote `sleep` (whose
    // SSH_CONNECTION names h5's address) to the first sshd.
    let ppid = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
    };
    let find = || {
        let out = std::process::Command::new("pgrep").args(["-f", "^sleep 101"]).output().unwrap();
        text(&out.stdout).lines().filter_map(|p| p.parse::<i32>().ok()).find_map(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            if !text(&env).contains(" 127.0.10.5 ") {
                return None;
            }
            let mut up = ppid(pid)?;
            for _ in 0..4 {
                let cmd = std::fs::read_to_string(format!("/proc/{up}/cmdline")).ok()?;
                if cmd.starts_with("sshd") {
                    return Some(up);
                }
                up = ppid(up)?;
            }
            None
        })
    };
    let start = std::time::Instant::now();
    let mut served = None;
    while served.is_none() {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "no sleep 101 on h5");
        std::thread::sleep(std::time::Duration::from_millis(50));
        served = find();
    }
    let sshd = served.unwrap();
    kill("-STOP", sshd);
    let frozen = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let elapsed = frozen.elapsed();
    kill("-CONT", sshd);
    let _ = std::process::Command::new("pkill").args(["-f", "sleep 101"]).status();

    assert_eq!(out.status.code(), Some(255));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["host"], "h5");
    let msg = lines[0]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("h5: connection lost before the command finished"), "{msg}");
    // Not a timing assertion: only that the missed keepalives, not the 600 s command timeout,
    // ended it (3 x 10 s, see transport::KEEPALIVE_MAX).
    assert!(elapsed < std::time::Duration::from_secs(90), "{elapsed:?}");
}

#[test]
fn a_command_that_runs_too_long_is_cut_off() {
    let dir = tempdir();
    let inv = hosts_inventory(dir.path(), &[1], None);
    let out = pgxc(&["exec", &inv, "--command-timeout", "1", "--json", "--", "sleep", "20"]);
    assert_eq!(out.status.code(), Some(255));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["error"]["step"], "run");
    let msg = lines[0]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("command timed out after 1s"), "{msg}");
}

#[test]
fn an_invalid_inventory_exits_2_naming_file_line_and_column() {
    let dir = tempdir();
    let inv = write(dir.path(), "bad.toml", "[hosts.h1]\naddress = \"127.0.10.1\"\nbogus = 1\n");
    let out = pgxc(&["exec", &inv, "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with(&format!("{inv}:3:1: error:")), "{stderr}");
}

#[test]
fn the_shipped_inventories_are_valid() {
    let shipped = [
        ("local.toml", 7),
        ("local-ha.toml", 7),
        ("lab.toml", 7),
        ("local-postgresql.toml", 2),
        ("local-xl.toml", 5),
        ("local-opentenbase.toml", 6),
    ];
    for (name, nodes) in shipped {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories").join(name);
        let inv = pgxc_deploy::inventory::load(&path).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert!(inv.nodes.len() >= nodes, "{name}: {} nodes", inv.nodes.len());
    }
}

/// The OpenSSH client configuration (`[ssh] config`) supplies what the inventory leaves out
/// (user, port, key, known_hosts, a ProxyCommand), the inventory's own values win, and
/// `config = false` reads none.
#[test]
fn the_openssh_client_configuration_fills_in_what_the_inventory_leaves_out() {
    let dir = tempdir();
    lab();
    let d = dir.path().display();
    let marker = dir.path().join("proxied");
    let config = format!(
        "Host 127.0.10.2\n  ProxyCommand sh -c 'touch {d}/proxied; exec ssh -q -i {LAB_DIR}/id_ed25519 \
         -o UserKnownHostsFile={LAB_DIR}/known_hosts -o StrictHostKeyChecking=yes -p {LAB_PORT} \
         -W %h:%p root@127.0.10.1'\n\
         Host 127.0.10.*\n  User pgxc\n  Port {LAB_PORT}\n  IdentityFile {LAB_DIR}/id_ed25519\n  \
         UserKnownHostsFile {LAB_DIR}/known_hosts\n"
    );
    let config_path = write(dir.path(), "ssh_config", &config);
    let hosts = "[hosts.h1]\naddress = \"127.0.10.1\"\n[hosts.h2]\naddress = \"127.0.10.2\"\n\
                 [hosts.h3]\naddress = \"127.0.10.3\"\nuser = \"root\"\n";
    let inv = write(dir.path(), "c.toml", &format!("[ssh]\nconfig = \"{config_path}\"\n\n{hosts}"));
    let out = pgxc(&["exec", &inv, "--json", "--", "id -un"]);
    assert!(out.status.success(), "{}", shown(&out));
    let users: Vec<String> =
        json_lines(&out.stdout).iter().map(|l| l["stdout"].as_str().unwrap().into()).collect();
    assert_eq!(users, ["pgxc\n", "pgxc\n", "root\n"], "the inventory's user wins on h3");
    assert!(marker.exists(), "h2 was reached through its ProxyCommand");

    let off = write(dir.path(), "off.toml", &format!("[ssh]\nconfig = false\n\n{hosts}"));
    let out = pgxc(&["exec", &off, "--connect-timeout", "2", "--", "true"]);
    assert_eq!(out.status.code(), Some(255), "port 22, no key: {}", shown(&out));
}

/// `nodes` lists what a selector selects without contacting a host; `exec -x` leaves out
/// what its selector selects; ClusterShell's operators work in both.
#[test]
fn nodes_lists_a_selection_and_exec_excludes() {
    let out = pgxc(&["nodes", "inventories/lab.toml", "--on", "dn*!dn2&@datanodes"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(text(&out.stdout), "dn1\ndn3\n");
    let out = pgxc(&["nodes", "inventories/lab.toml", "--on", "@all", "-x", "@standbys,gtm"]);
    assert_eq!(text(&out.stdout), "coord1\ncoord2\ndn1\ndn2\ndn3\n", "{}", shown(&out));
    let out = pgxc(&["nodes", "inventories/lab.toml", "--on", "dn1&dn2"]);
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));

    let dir = tempdir();
    let inv = hosts_inventory(dir.path(), &[1, 2, 3], None);
    let out = pgxc(&["exec", &inv, "--on", "h[1-3]", "-x", "h2", "--json", "--", "true"]);
    assert!(out.status.success(), "{}", shown(&out));
    let hosts: Vec<String> =
        json_lines(&out.stdout).iter().map(|l| l["host"].as_str().unwrap().into()).collect();
    assert_eq!(hosts, ["h1", "h3"]);
}

/// `failover` and `switchover` ask on a terminal, and without one refuse unless `--yes`;
/// nothing connects before the answer.
#[test]
fn destructive_commands_ask_on_a_terminal_and_refuse_without_yes() {
    let dir = tempdir();
    let inv = write(dir.path(), "ask.toml", &pair_toml("asktest", (34842, 34843), false, ""));
    for verb in ["failover", "switchover"] {
        let out = pgxc(&[verb, &inv, "pg1"]);
        assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
        assert!(text(&out.stderr).contains("confirm with --yes"), "{}", shown(&out));
    }
    // On a terminal (script(1) gives it one): asked, answered no.
    let command = format!("{} failover {inv} pg1", bin());
    let mut asked = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    asked.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = asked.wait_with_output().unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("fail over pg1") && said.contains("[y/N]"), "{said}");
    assert!(said.contains("not confirmed; nothing was changed"), "{said}");
    assert_eq!(out.status.code(), Some(2), "{said}");
}
