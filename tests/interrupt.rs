//! Ctrl-C and verbose output during apply, on PostgreSQL-flavor clusters that apply deploys on
//! lab hosts (tags `inttest`, `inttest2`, `vvtest`; ports 27632-27653). The first Ctrl-C lets
//! the running steps finish, starts nothing new, says what was left and exits 130, and a
//! re-apply finishes the cluster; a second Ctrl-C ends apply at once. `-vv` (russh's debug
//! logs on stderr from every task) never blocks a command. An apply killed with SIGKILL at any
//! moment leaves nothing running on the hosts that the next apply trips over (`killtest2`).

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A primary with a standby on another host, and a second primary.
fn inventory(dir: &Path, tag: &str, port: u16) -> String {
    let nodes = format!(
        "[[datanodes]]\nname = \"{tag}1\"\nhost = \"h1\"\nport = {port}\n\
         [datanodes.standby]\nhost = \"h2\"\nport = {}\n\n\
         [[datanodes]]\nname = \"{tag}2\"\nhost = \"h3\"\nport = {port}\n",
        port + 1
    );
    write(dir, &format!("{tag}.toml"), &pg_toml(tag, "", &nodes))
}

/// `pgxc-deploy ARGS` in the background, its output going to files in `dir` (a pipe nobody
/// reads would fill up with -vv logs and block it).
fn spawn(dir: &Path, name: &str, args: &[&str]) -> Child {
    let out = File::create(dir.join(format!("{name}.out"))).unwrap();
    let err = File::create(dir.join(format!("{name}.err"))).unwrap();
    Command::new(bin())
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

/// Wait up to `limit` for `child` to exit: its exit code, or `None` (then it is killed).
fn exit_within(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// Wait until initdb has started writing a staging directory of `tag` on h1.
fn wait_for_initdb(tag: &str) {
    let staging = format!("{LAB_DIR}/hosts/h1/data/{tag}/{tag}1.pgxc-deploy-tmp");
    wait_for_path(&staging);
}

fn wait_for_path(path: &str) {
    let start = Instant::now();
    while !Path::new(path).exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "{path} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Applied twice: the second finds nothing to do, and the standby streams.
fn assert_converges(inv: &str, tag: &str, port: u16) {
    let out = pgxc(&["apply", inv]);
    assert!(out.status.success(), "re-apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    let out = pgxc(&["apply", inv]);
    assert!(text(&out.stdout).starts_with("nothing to do"), "{}", text(&out.stdout));
    let root = format!("{LAB_DIR}/hosts/h1/data/{tag}");
    let psql = find_ctl(&root, "psql");
    let state =
        sql(&psql, &format!("{root}/{tag}1"), port, "select state from pg_stat_replication");
    assert_eq!(state, "streaming");
}

#[test]
fn ctrl_c_lets_running_steps_finish_starts_nothing_new_and_a_reapply_finishes() {
    let tag = "inttest";
    reset(tag);
    let dir = tempdir();
    let inv = inventory(dir.path(), tag, 27632);
    let mut apply = spawn(dir.path(), "apply", &["apply", &inv]);
    wait_for_initdb(tag);
    kill("-INT", apply.id() as i32);
    let code = exit_within(&mut apply, Duration::from_secs(60));
    let err = read(dir.path(), "apply.err");
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted: starting no new steps"), "{err}");
    assert!(err.contains("not run: ") && err.contains("Run apply again"), "{err}");
    // The running initdb finished and was put in place; no server was started.
    let root = format!("{LAB_DIR}/hosts/h1/data/{tag}");
    assert!(Path::new(&format!("{root}/{tag}1/.pgxc-deploy-initialized")).exists(), "{err}");
    assert!(!Path::new(&format!("{root}/{tag}1/postmaster.pid")).exists(), "{err}");

    assert_converges(&inv, tag, 27632);
    reset(tag);
}

#[test]
fn a_second_ctrl_c_ends_apply_at_once() {
    let tag = "inttest2";
    reset(tag);
    let dir = tempdir();
    let inv = inventory(dir.path(), tag, 27642);
    let mut apply = spawn(dir.path(), "apply", &["apply", &inv]);
    wait_for_initdb(tag);
    kill("-INT", apply.id() as i32);
    std::thread::sleep(Duration::from_millis(100));
    kill("-INT", apply.id() as i32);
    let code = exit_within(&mut apply, Duration::from_secs(3));
    let err = read(dir.path(), "apply.err");
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted again: stopping now"), "{err}");
    // The initdb it left running on the host ends by itself; then a re-apply converges.
    let start = Instant::now();
    while Command::new("pgrep").args(["-f", &format!("initdb.*{tag}")]).status().unwrap().success()
    {
        assert!(start.elapsed() < Duration::from_secs(60), "initdb still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_converges(&inv, tag, 27642);
    reset(tag);
}

#[test]
fn verbose_apply_and_plan_end_while_debug_logs_flow() {
    let tag = "vvtest";
    reset(tag);
    let dir = tempdir();
    let inv = inventory(dir.path(), tag, 27652);
    let out = pgxc(&["apply", &inv]);
    assert!(out.status.success(), "apply:\n{}{}", text(&out.stdout), text(&out.stderr));
    for command in ["apply", "plan"] {
        let mut run = spawn(dir.path(), command, &["-vv", command, &inv]);
        let code = exit_within(&mut run, Duration::from_secs(60));
        let (out, err) = (
            read(dir.path(), &format!("{command}.out")),
            read(dir.path(), &format!("{command}.err")),
        );
        assert_eq!(code, Some(0), "-vv {command} hung or failed:\n{out}\n{}", tail(&err));
        assert!(err.contains("DEBUG"), "-vv shows debug logs: {}", tail(&err));
    }
    assert!(read(dir.path(), "apply.out").starts_with("nothing to do"));
    reset(tag);
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn an_apply_killed_at_any_moment_leaves_nothing_running_and_the_next_converges() {
    let tag = "killtest2";
    let dir = tempdir();
    let inv = inventory(dir.path(), tag, 27662);
    // Every 0.5 s until an apply from nothing is done (about 7 s here).
    for tenth in (5..=70).step_by(5) {
        reset(tag);
        let mut apply = spawn(dir.path(), "apply", &["apply", &inv]);
        std::thread::sleep(Duration::from_millis(tenth * 100));
        apply.kill().unwrap();
        apply.wait().unwrap();
        // At once: the steps it left must end by themselves before this apply's steps start.
        let out = pgxc(&["apply", &inv]);
        assert!(
            out.status.success(),
            "re-apply after a kill at {:.1} s:\n{}{}\nthe killed apply said:\n{}",
            tenth as f64 / 10.0,
            text(&out.stdout),
            text(&out.stderr),
            read(dir.path(), "apply.err")
        );
        let out = pgxc(&["apply", &inv]);
        assert!(
            text(&out.stdout).starts_with("nothing to do"),
            "after a kill at {:.1} s: {}{}",
            tenth as f64 / 10.0,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    reset(tag);
}
