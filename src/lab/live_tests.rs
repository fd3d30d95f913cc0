//! Runs the lab for real: sshd, ssh-keygen and the OpenSSH client, on 127.0.10.1-3 port 42022.
//!
//! Ignored by default because it starts processes and, as root, creates the `pgxc` user:
//! `cargo test --lib lab::live_tests -- --ignored`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use super::*;

/// Away from 22 and 2222, so a lab the user is running does not get in the way.
const PORT: u16 = 42022;

async fn ssh_hostname(dir: &Path, key: &str, user: &str, address: &str) -> Result<(), String> {
    let out = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(dir.join(key))
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", dir.join("known_hosts").display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5"])
        .args(["-p", &PORT.to_string(), &format!("{user}@{address}"), "hostname"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{user}@{address} with {key}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Stops the lab even when an assertion fails, so no sshd outlives the test.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.0.exists() {
            return;
        }
        // Drop may run inside the test's runtime, which cannot be re-entered: use a thread.
        let dir = self.0.clone();
        let stopped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.map(|rt| rt.block_on(down(&dir, true)).map(|_| ()))
        })
        .join();
        if !matches!(stopped, Ok(Ok(Ok(())))) {
            eprintln!("could not clean up the lab in {}", self.0.display());
        }
    }
}

#[tokio::test]
#[ignore = "starts real sshd processes on 127.0.10.1-3; run with --ignored"]
async fn up_login_status_down_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let me = users::invoking().unwrap();
    let dir = tmp.path().join("lab");
    let opts = UpOptions { dir: dir.clone(), hosts: 3, port: Some(PORT) };

    let _cleanup = Cleanup(dir.clone());
    let set_mode =
        |mode| std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    if me.is_root() {
        // pgxc could not reach the keys through a 0700 directory: `up` must say so.
        set_mode(0o700);
        let err = up(&opts).await.unwrap_err();
        assert!(matches!(err, Error::BadDir { .. }), "{err}");
        assert!(err.to_string().contains("chmod o+x"), "{err}");
    }
    set_mode(0o755);

    let lab = up(&opts).await.unwrap();
    assert_eq!(lab.hosts.len(), 3);
    assert!(lab.hosts.iter().all(|h| h.running && h.port == PORT && h.pid.is_some()));
    assert_eq!(std::fs::read_to_string(dir.join("hosts.toml")).unwrap(), hosts_table(&lab));
    let known_hosts = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    assert!(known_hosts.starts_with(&format!("[127.0.10.1]:{PORT} ssh-ed25519 ")));

    let mut logins = vec![lab.user.clone()];
    if lab.cluster_user != lab.user {
        logins.push(lab.cluster_user.clone());
    }
    for user in &logins {
        for key in ["id_ed25519", "id_rsa"] {
            ssh_hostname(&dir, key, user, "127.0.10.2").await.unwrap();
        }
    }

    // Idempotent: the same daemons are kept.
    let again = up(&opts).await.unwrap();
    assert_eq!(again.hosts, lab.hosts);
    assert_eq!(status(&dir).unwrap().hosts, lab.hosts);

    // A stranger whose PID sits in a stale pid file must survive `down`.
    let mut stranger = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let down_lab = down(&dir, false).await.unwrap();
    assert!(down_lab.hosts.iter().all(|h| !h.running && h.pid.is_none()));
    for host in &lab.hosts {
        let pid = host.pid.unwrap();
        assert!(!sshd::is_lab_sshd(pid, &host.dir.join("sshd_config")), "{} alive", host.name);
    }
    std::fs::write(dir.join("hosts/h1/sshd.pid"), stranger.id().to_string()).unwrap();
    down(&dir, false).await.unwrap();
    assert!(stranger.try_wait().unwrap().is_none(), "down killed an unrelated process");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    assert!(!dir.join("hosts/h1/sshd.pid").exists());

    // Keys survive `down`, so the old known_hosts still works after the next `up`.
    up(&opts).await.unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("known_hosts")).unwrap(), known_hosts);
    ssh_hostname(&dir, "id_ed25519", &lab.user, "127.0.10.3").await.unwrap();

    down(&dir, true).await.unwrap();
    assert!(!dir.exists());
    assert!(matches!(status(&dir), Err(Error::NoLab { .. })));
}
