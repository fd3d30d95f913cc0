//! Host keys checked with OpenSSH's known_hosts rules, against a real sshd of its own
//! (127.0.10.200, port 2290) that has an ed25519 and an ECDSA host key and an ed25519 host
//! certificate signed by a test authority: a host known only by its ECDSA key, the global
//! file, `@revoked` (refused even with `--accept-new`), a line separated by tabs, a line that
//! cannot be read (an error naming file:line, nothing learned), wildcard and negated patterns,
//! and `@cert-authority`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::*;

const ADDR: &str = "127.0.10.200";
const PORT: u16 = 2290;

/// The sshd: its directory, and its process (stopped when dropped).
struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(args: &[&str]) {
    let out = Command::new("ssh-keygen").args(args).output().unwrap();
    assert!(out.status.success(), "ssh-keygen {args:?}: {}", text(&out.stderr));
}

impl Sshd {
    fn start() -> Sshd {
        lab();
        let dir = tempdir();
        let d = dir.path().display().to_string();
        for (name, kind) in [("ed", "ed25519"), ("ecdsa", "ecdsa"), ("ca", "ed25519")] {
            keygen(&["-q", "-t", kind, "-N", "", "-f", &format!("{d}/{name}")]);
        }
        // A host certificate for the ed25519 key, valid for a day, for ADDR.
        let (ca, host) = (format!("{d}/ca"), format!("{d}/ed.pub"));
        keygen(&["-q", "-s", &ca, "-I", "kh", "-h", "-n", ADDR, "-V", "-5m:+1d", &host]);
        let config = format!(
            "ListenAddress {ADDR}\nPort {PORT}\nHostKey {d}/ed\nHostKey {d}/ecdsa\n\
             HostCertificate {d}/ed-cert.pub\nPidFile none\nAuthorizedKeysFile {LAB_DIR}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nLogLevel DEBUG1\nUseDNS no\n"
        );
        std::fs::write(dir.path().join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &format!("{d}/sshd_config")])
            .stderr(std::fs::File::create(dir.path().join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect((ADDR, PORT)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "sshd does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd { dir, child }
    }

    /// A known_hosts line for `patterns` with the public key in file `name` of its directory.
    fn line(&self, patterns: &str, name: &str) -> String {
        let public = std::fs::read_to_string(self.dir.path().join(format!("{name}.pub"))).unwrap();
        let mut fields = public.split_whitespace();
        format!("{patterns} {} {}\n", fields.next().unwrap(), fields.next().unwrap())
    }
}

/// `exec -- true` on the sshd with `user` and `global` as the known_hosts files: exit code and
/// stdout + stderr.
fn exec(dir: &Path, user: &str, global: &str, accept_new: bool) -> (i32, String) {
    let (known, global_file): (PathBuf, PathBuf) = (dir.join("known_hosts"), dir.join("global"));
    std::fs::write(&known, user).unwrap();
    std::fs::write(&global_file, global).unwrap();
    let inv = format!(
        "[ssh]\nport = {PORT}\nuser = \"pgxc\"\nidentity_file = \"{LAB_DIR}/id_ed25519\"\n\
         known_hosts = \"{}\"\nglobal_known_hosts = \"{}\"\n\n[hosts.k]\naddress = \"{ADDR}\"\n",
        known.display(),
        global_file.display()
    );
    let inv = write(dir, "k.toml", &inv);
    let mut args = vec!["exec", inv.as_str()];
    if accept_new {
        args.push("--accept-new");
    }
    args.extend(["--", "true"]);
    let out = pgxc(&args);
    (out.status.code().unwrap_or(-1), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn host_keys_follow_openssh_known_hosts_rules_against_a_real_sshd() {
    let sshd = Sshd::start();
    let dir = tempdir();
    let d = dir.path();
    let name = format!("[{ADDR}]:{PORT}");
    let known = |dir: &Path| std::fs::read_to_string(dir.join("known_hosts")).unwrap();

    // Known only by its ECDSA key: that algorithm is negotiated.
    let (code, said) = exec(d, &sshd.line(&name, "ecdsa"), "", false);
    assert_eq!(code, 0, "{said}");
    // Known from the global file only.
    let (code, said) = exec(d, "", &sshd.line(&name, "ed"), false);
    assert_eq!(code, 0, "{said}");
    // Fields separated by a tab and by two spaces.
    let spaced = sshd.line(&name, "ed").replacen(' ', "\t", 1).replacen(' ', "  ", 1);
    let (code, said) = exec(d, &spaced, "", false);
    assert_eq!(code, 0, "{said}");
    // Wildcards, and a negation that excludes the host.
    let (code, said) = exec(d, &sshd.line("[127.0.10.*]:2290", "ed"), "", false);
    assert_eq!(code, 0, "{said}");
    let negated = sshd.line(&format!("[127.0.10.*]:2290,!{name}"), "ed");
    let (code, said) = exec(d, &negated, "", false);
    assert_eq!(code, 255, "{said}");
    assert!(said.contains(&format!("host key of {name} is unknown")), "{said}");

    // Revoked: refused, with --accept-new too, and nothing learned.
    let revoked = [sshd.line(&name, "ed"), format!("@revoked {}", sshd.line("*", "ed"))].concat();
    for accept_new in [false, true] {
        let (code, said) = exec(d, &revoked, "", accept_new);
        assert_eq!(code, 255, "{said}");
        assert!(said.contains("is REVOKED by") && said.contains("line 2"), "{said}");
    }
    let only_revoked = format!("@revoked {}", sshd.line("*", "ed"));
    let (code, said) = exec(d, &only_revoked, "", true);
    assert_eq!(code, 255, "{said}");
    assert!(said.contains("is REVOKED"), "{said}");
    assert_eq!(known(d), only_revoked, "nothing learned");

    // A line that cannot be read: an error naming it, never "unknown", nothing learned.
    let broken = format!("# keys\n{}garbage-without-a-key\n", sshd.line("other", "ecdsa"));
    let (code, said) = exec(d, &broken, "", true);
    assert_eq!(code, 255, "{said}");
    assert!(said.contains("known_hosts line 3") && !said.contains("unknown ("), "{said}");
    assert_eq!(known(d), broken, "nothing learned");

    // A trusted authority: the host certificate is accepted.
    let ca = format!("@cert-authority {}", sshd.line("127.0.10.*", "ca"));
    let (code, said) = exec(d, "", &ca.replace("127.0.10.*", "[127.0.10.*]:2290"), false);
    assert_eq!(code, 0, "{said}");
    let log = std::fs::read_to_string(sshd.dir.path().join("sshd.log")).unwrap();
    assert!(log.contains("ssh-ed25519-cert-v01@openssh.com"), "the certificate was used: {log}");
    // An authority for other hosts only: unknown.
    let (code, said) = exec(d, &format!("@cert-authority {}", sshd.line("db*", "ca")), "", false);
    assert_eq!(code, 255, "{said}");
    assert!(said.contains("is unknown"), "{said}");
    // --accept-new still learns a plain key that is unknown.
    let (code, said) = exec(d, "", "", true);
    assert_eq!(code, 0, "{said}");
    assert!(known(d).starts_with(&format!("{name} ssh-ed25519 ")), "{}", known(d));
}
