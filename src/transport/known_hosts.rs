//! Server host key checks against an OpenSSH known_hosts file.
//!
//! A known key is accepted; a changed key is always refused; an unknown key is refused unless the
//! user asked to learn new keys (`--accept-new`, OpenSSH's `StrictHostKeyChecking=accept-new`).
//! Parsing and matching (plain and hashed entries, `[addr]:port`) is russh's.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::known_hosts::{check_known_hosts_path, learn_known_hosts_path};
use russh::keys::{HashAlg, PublicKey};

use super::ErrorKind;

/// What to do with a key that known_hosts does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKeys {
    Refuse,
    Learn,
}

/// Serialises appends to known_hosts when many hosts are learned at once.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// Check `key`, presented by `addr:port`, against `file`. `Ok(())` means trusted.
pub fn verify(
    addr: &str,
    port: u16,
    key: &PublicKey,
    file: &Path,
    unknown: UnknownKeys,
) -> Result<(), ErrorKind> {
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let display = display_addr(addr, port);
    match check_known_hosts_path(addr, port, key, file) {
        Ok(true) => Ok(()),
        Err(russh::keys::Error::KeyChanged { line }) => Err(ErrorKind::HostKeyChanged {
            addr: display,
            fingerprint,
            known_hosts: file.to_path_buf(),
            line,
        }),
        Ok(false) | Err(_) if unknown == UnknownKeys::Refuse => {
            Err(ErrorKind::UnknownHostKey { addr: display, fingerprint, known_hosts: file.into() })
        }
        Ok(false) | Err(_) => {
            let _guard = LEARN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            learn_known_hosts_path(addr, port, key, file).map_err(|e| ErrorKind::LearnHostKey {
                addr: display,
                known_hosts: PathBuf::from(file),
                source: e.into(),
            })?;
            tracing::info!(host = addr, port, %fingerprint, "learned host key");
            Ok(())
        }
    }
}

fn display_addr(addr: &str, port: u16) -> String {
    if port == 22 { addr.to_string() } else { format!("[{addr}]:{port}") }
}
