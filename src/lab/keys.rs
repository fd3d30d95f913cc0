//! Key pairs of the lab, made with `ssh-keygen`: one ed25519 host key per host, and the client
//! keys (ed25519 and RSA-3072) that every host accepts.
//!
//! Keys are generated once: an existing pair is kept, so known_hosts stays valid across
//! `lab down` / `lab up`.

use std::path::{Path, PathBuf};

use super::command;
use super::error::Result;
use super::files;
use super::layout;

const MISSING: Option<(&str, &str)> = Some(("ssh-keygen", "openssh-client"));

/// The kinds of key the lab makes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Ed25519,
    /// 3072 bits, so tests can check RSA authentication (rsa-sha2-*).
    Rsa,
}

impl Kind {
    fn args(self) -> &'static [&'static str] {
        match self {
            Kind::Ed25519 => &["-t", "ed25519"],
            Kind::Rsa => &["-t", "rsa", "-b", "3072"],
        }
    }
}

/// `path` with `.pub` appended.
pub(crate) fn pub_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Makes sure the key pair at `path` exists; returns true if it had to be generated.
pub(crate) async fn ensure(path: &Path, kind: Kind, comment: &str) -> Result<bool> {
    let public = pub_path(path);
    match (path.exists(), public.exists()) {
        (true, true) => return Ok(false),
        (true, false) => {
            // Keep the private key (a host key may already be in someone's known_hosts).
            let out = command::output(
                "ssh-keygen",
                ["-y".as_ref(), "-f".as_ref(), path.as_os_str()],
                MISSING,
            )
            .await?;
            let out = command::check(out, || format!("ssh-keygen -y -f {}", path.display()))?;
            let line = String::from_utf8_lossy(&out.stdout);
            files::write(&public, &format!("{} {comment}\n", line.trim()), 0o644)?;
            return Ok(false);
        }
        // ssh-keygen would ask before overwriting; a lone public key is useless anyway.
        _ => files::remove_opt(&public)?,
    }
    let mut args: Vec<&std::ffi::OsStr> = kind.args().iter().map(|a| a.as_ref()).collect();
    args.extend(["-N", "", "-q", "-C", comment, "-f"].map(std::ffi::OsStr::new));
    args.push(path.as_os_str());
    let out = command::output("ssh-keygen", args, MISSING).await?;
    command::check(out, || format!("ssh-keygen for {}", path.display()))?;
    files::set_mode(&public, 0o644)?;
    Ok(true)
}

/// The `type base64` part of the public key of the pair at `path`.
pub(crate) fn public_body(path: &Path) -> Result<String> {
    let public = pub_path(path);
    let text = files::read_opt(&public)?.unwrap_or_default();
    layout::public_key_body(&text).ok_or_else(|| super::Error::Io {
        action: "parse the OpenSSH public key in",
        path: public,
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })
}
