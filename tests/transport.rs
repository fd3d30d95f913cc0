//! The transport library against a real sshd: one session reused for many commands, atomic
//! upload with mode, stdin, and authentication through a real ssh-agent.

use std::process::Command;
use std::time::Duration;

use pgxc_deploy::shell::Become;
use pgxc_deploy::transport::known_hosts::Files;
use pgxc_deploy::transport::{Endpoint, ExitStatus, Session, UnknownKeys};

use crate::support::*;

fn endpoint(k: usize) -> Endpoint {
    let lab = lab();
    Endpoint {
        name: format!("h{k}"),
        address: format!("127.0.10.{k}"),
        port: LAB_PORT,
        user: "pgxc".into(),
        identity_files: vec![lab.join("id_ed25519")],
        identities_only: false,
        known_hosts: Files { user: lab.join("known_hosts"), global: lab.join("no-global") },
        unknown_keys: UnknownKeys::Refuse,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(30),
        via: None,
        proxy_command: None,
        keepalive: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn one_session_runs_many_commands_over_one_connection() {
    runtime().block_on(async {
        let session = Session::connect(&endpoint(2)).await.expect("connect");
        assert_eq!(session.kex(), "curve25519-sha256");
        // The client side of the TCP connection stays the same for every command.
        let mut ports = Vec::new();
        for _ in 0..5 {
            let out = session.run("echo \"$SSH_CONNECTION\" | cut -d' ' -f2").await.unwrap();
            assert!(out.status.success());
            ports.push(String::from_utf8(out.stdout).unwrap());
        }
        ports.dedup();
        assert_eq!(ports.len(), 1, "{ports:?}");
        let out = session.run("id -un").await.unwrap();
        assert_eq!(out.stdout, b"pgxc\n");
        let out = session.run("kill -9 $$").await.unwrap();
        assert_eq!(out.status, ExitStatus::Signal("KILL".into()));
        session.close().await;
    });
}

#[test]
fn upload_replaces_the_file_atomically_with_its_mode() {
    let dir = tempdir();
    // The pgxc account writes there.
    Command::new("chmod").arg("777").arg(dir.path()).status().unwrap();
    let path = dir.path().join("conf file's.txt").display().to_string();
    runtime().block_on(async {
        let session = Session::connect(&endpoint(1)).await.expect("connect");
        let out = session.upload(&path, b"first\n", 0o640, &Become::No).await.unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = session.upload(&path, b"second\n$(id)\n", 0o600, &Become::No).await.unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = session.run(&format!("stat -c %a {}", pgxc_deploy::shell::quote(&path))).await;
        assert_eq!(out.unwrap().stdout, b"600\n");
    });
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n$(id)\n");
    // Nothing temporary left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let missing = dir.path().join("no such dir/file").display().to_string();
    runtime().block_on(async {
        let session = Session::connect(&endpoint(1)).await.expect("connect");
        let out = session.upload(&missing, b"x", 0o600, &Become::No).await.unwrap();
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("No such file or directory"), "{}", text(&out.stderr));
    });
}

#[test]
fn ssh_agent_keys_authenticate_when_no_identity_file_is_named() {
    let dir = tempdir();
    let sock = dir.path().join("agent.sock");
    let agent =
        Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).spawn().expect("ssh-agent");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let key = lab().join("id_ed25519");
    let added = Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(added.status.success(), "{}", text(&added.stderr));

    let inv = write(
        dir.path(),
        "agent.toml",
        &format!(
            "[ssh]\nport = {LAB_PORT}\nknown_hosts = \"{LAB_DIR}/known_hosts\"\n\n{}",
            hosts_tables(&[3])
        ),
    );
    let out = Command::new(bin())
        .args(["exec", &inv, "--", "echo", "agent"])
        .env("SSH_AUTH_SOCK", &sock)
        .env("HOME", dir.path()) // no ~/.ssh keys to fall back on
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));

    // Without the agent and without keys, the error says what was missing.
    let out = Command::new(bin())
        .args(["exec", &inv, "--", "true"])
        .env_remove("SSH_AUTH_SOCK")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "no connection: as ssh exits");
    assert!(text(&out.stderr).contains("no identity"), "{}", text(&out.stderr));
}
