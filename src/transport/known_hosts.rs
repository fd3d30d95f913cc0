//! Server host key checks with OpenSSH's known_hosts rules (sshd(8) "SSH_KNOWN_HOSTS FILE
//! FORMAT", ssh(1) "VERIFYING HOST KEYS"), over the user's file and the system-wide one
//! (`/etc/ssh/ssh_known_hosts`, `[ssh] global_known_hosts`).
//!
//! - Lines: `[@marker] patterns keytype base64 [comment]`, fields separated by any run of
//!   blanks; `#` lines and blank lines are skipped. A line that cannot be read is an error that
//!   names the file and line: never "unknown key", which `--accept-new` would turn into trust.
//! - Patterns: comma-separated, `*` and `?` wildcards, `!` negates (a negated match excludes
//!   the line whatever else matches), `[host]:port` for another port than 22, or one hashed
//!   name (`|1|salt|hash`, HMAC-SHA1). Host names compare without case.
//! - `@revoked`: that key is refused for the hosts it names, always.
//! - `@cert-authority`: host certificates signed by that key are accepted for the hosts it
//!   names (a host certificate, valid now, whose principals name the host, or name nothing).
//! - Plain lines: the host's key is known when a line for it holds that key; changed when a
//!   line for it holds another key of the same type (always refused, naming the line); else
//!   unknown: refused, or with `--accept-new` (OpenSSH's `StrictHostKeyChecking=accept-new`)
//!   appended to the user's file.
//!
//! [`preferred`] orders the host key algorithms so that the ones already known for a host are
//! negotiated first (a host known only by its ECDSA key is asked for that one), and asks for
//! certificates when an authority is trusted for it.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey, PublicKeyOrCertificate};
use sha1::Sha1;

use super::ErrorKind;

/// What to do with a key that known_hosts does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKeys {
    Refuse,
    Learn,
}

/// The known_hosts files to read: the user's (learned keys are appended there) and the
/// system-wide one. A file that does not exist holds nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub user: PathBuf,
    pub global: PathBuf,
}

/// Serialises appends to known_hosts when many hosts are learned at once.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    CertAuthority,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    Patterns(Vec<String>),
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// One line of a known_hosts file.
#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    line: usize,
    marker: Option<Marker>,
    hosts: Hosts,
    key: KeyData,
}

/// Parse `text`, the content of `file`: its entries, or `(line, why)` for the first line that
/// cannot be read.
fn parse(text: &str, file: &Path) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = match first {
            "@cert-authority" => Some(Marker::CertAuthority),
            "@revoked" => Some(Marker::Revoked),
            m if m.starts_with('@') => return Err((n, format!("unknown marker `{m}`"))),
            _ => None,
        };
        if marker.is_some() {
            first = fields.next().ok_or((n, "no host patterns after the marker".to_string()))?;
        }
        let hosts = parse_hosts(first).map_err(|why| (n, why))?;
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            return Err((n, "no key type and key after the host patterns".into()));
        };
        let key = PublicKey::from_openssh(&format!("{kind} {blob}"))
            .map_err(|e| (n, format!("cannot read the `{kind}` key: {e}")))?;
        let key = key.key_data().clone();
        entries.push(Entry { file: file.to_path_buf(), line: n, marker, hosts, key });
    }
    Ok(entries)
}

fn parse_hosts(field: &str) -> Result<Hosts, String> {
    let Some(hashed) = field.strip_prefix("|1|") else {
        return Ok(Hosts::Patterns(field.split(',').map(str::to_lowercase).collect()));
    };
    let bad = || format!("malformed hashed host name `{field}`");
    let (salt, hash) = hashed.split_once('|').ok_or_else(bad)?;
    let salt = BASE64.decode(salt.as_bytes()).map_err(|_| bad())?;
    let hash = BASE64.decode(hash.as_bytes()).map_err(|_| bad())?;
    if hash.len() != 20 {
        return Err(bad());
    }
    Ok(Hosts::Hashed { salt, hash })
}

/// How OpenSSH names `addr:port` in known_hosts: the bare address for port 22, `[addr]:port`
/// otherwise.
pub fn host_name(addr: &str, port: u16) -> String {
    if port == 22 { addr.to_lowercase() } else { format!("[{}]:{port}", addr.to_lowercase()) }
}

impl Entry {
    /// Whether the line names `name` ([`host_name`]).
    fn names(&self, name: &str) -> bool {
        match &self.hosts {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else { return false };
                mac.update(name.as_bytes());
                mac.finalize().into_bytes().as_slice() == hash.as_slice()
            }
            Hosts::Patterns(patterns) => {
                let mut found = false;
                for p in patterns {
                    let (negated, p) = match p.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, p.as_str()),
                    };
                    if glob(p.as_bytes(), name.as_bytes()) {
                        if negated {
                            return false;
                        }
                        found = true;
                    }
                }
                found
            }
        }
    }
}

/// `*` and `?` wildcards, as OpenSSH's match_pattern.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

/// Every entry of `files`, in order (the user's file first).
fn load(files: &Files) -> Result<Vec<Entry>, ErrorKind> {
    let mut all = Vec::new();
    for file in [&files.user, &files.global] {
        let text = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ErrorKind::KnownHostsUnreadable {
                    path: file.clone(),
                    line: None,
                    why: e.to_string(),
                });
            }
        };
        let text = String::from_utf8(text).map_err(|_| ErrorKind::KnownHostsUnreadable {
            path: file.clone(),
            line: None,
            why: "not UTF-8 text".into(),
        })?;
        let entries = parse(&text, file).map_err(|(line, why)| {
            ErrorKind::KnownHostsUnreadable { path: file.clone(), line: Some(line), why }
        })?;
        all.extend(entries);
    }
    Ok(all)
}

/// Whether two keys are of the same type (RSA keys match whatever signature hash was
/// negotiated).
fn same_type(a: &KeyData, b: &KeyData) -> bool {
    a.algorithm() == b.algorithm()
}

/// Check the key or certificate `presented` by `addr:port` against `files`. `Ok(())` means
/// trusted (learned first, with `UnknownKeys::Learn`, when it was unknown).
pub fn verify(
    addr: &str,
    port: u16,
    presented: &PublicKeyOrCertificate,
    files: &Files,
    unknown: UnknownKeys,
) -> Result<(), ErrorKind> {
    let entries = load(files)?;
    let name = host_name(addr, port);
    let display = display_addr(addr, port);
    let mine: Vec<&Entry> = entries.iter().filter(|e| e.names(&name)).collect();
    let (key, cert) = match presented {
        PublicKeyOrCertificate::PublicKey { key, .. } => (key.key_data().clone(), None),
        PublicKeyOrCertificate::Certificate(cert) => (cert.public_key().clone(), Some(cert)),
    };
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();

    let revoked = |k: &KeyData| {
        mine.iter().find(|e| e.marker == Some(Marker::Revoked) && e.key == *k).copied()
    };
    let ca = cert.map(|c| c.signature_key().clone());
    if let Some(e) = revoked(&key).or_else(|| ca.as_ref().and_then(revoked)) {
        return Err(ErrorKind::HostKeyRevoked {
            addr: display,
            fingerprint,
            known_hosts: e.file.clone(),
            line: e.line,
        });
    }
    if let Some(cert) = cert {
        let authority = mine
            .iter()
            .find(|e| e.marker == Some(Marker::CertAuthority) && e.key == *cert.signature_key());
        if let Some(authority) = authority {
            return certificate_valid(cert, &authority.key, addr)
                .map_err(|why| ErrorKind::HostCertificateInvalid { addr: display.clone(), why });
        }
    }
    let plain: Vec<&&Entry> = mine.iter().filter(|e| e.marker.is_none()).collect();
    if plain.iter().any(|e| e.key == key) {
        return Ok(());
    }
    if let Some(e) = plain.iter().find(|e| same_type(&e.key, &key)) {
        return Err(ErrorKind::HostKeyChanged {
            addr: display,
            fingerprint,
            known_hosts: e.file.clone(),
            line: e.line,
        });
    }
    if unknown == UnknownKeys::Refuse {
        return Err(ErrorKind::UnknownHostKey {
            addr: display,
            fingerprint,
            known_hosts: files.user.clone(),
        });
    }
    let _guard = LEARN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    learn(&name, &key, &files.user).map_err(|e| ErrorKind::LearnHostKey {
        addr: display,
        known_hosts: files.user.clone(),
        source: std::sync::Arc::new(e),
    })?;
    tracing::info!(host = addr, port, %fingerprint, "learned host key");
    Ok(())
}

/// A host certificate signed by `authority` is valid for host `addr` now: `Err(why)` if not.
fn certificate_valid(cert: &Certificate, authority: &KeyData, addr: &str) -> Result<(), String> {
    if cert.cert_type() != CertType::Host {
        return Err("it presented a user certificate as its host key".into());
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p.eq_ignore_ascii_case(addr)) {
        return Err(format!("its certificate names {}, not {addr}", principals.join(", ")));
    }
    let fingerprint = authority.fingerprint(HashAlg::Sha256);
    cert.validate([&fingerprint]).map_err(|e| format!("its certificate is not valid now: {e}"))
}

/// Append `name keytype base64` to `file` (created with its directory when missing).
fn learn(name: &str, key: &KeyData, file: &Path) -> std::io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let line = PublicKey::from(key.clone()).to_openssh().map_err(std::io::Error::other)?;
    // A file whose last line has no newline would get the new key glued to it.
    let needs_newline =
        std::fs::read(file).map(|b| b.last().is_some_and(|c| *c != b'\n')).unwrap_or(false);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    let sep = if needs_newline { "\n" } else { "" };
    writeln!(f, "{sep}{name} {line}")
}

/// The host key algorithms to offer `addr:port`, most preferred first: those of the keys
/// `files` already hold for it, then the others of `defaults`; and the algorithms to ask
/// certificates for (when a `@cert-authority` line names the host). Files that cannot be
/// read give the defaults: [`verify`] reports them.
pub fn preferred(
    addr: &str,
    port: u16,
    files: &Files,
    defaults: &[Algorithm],
) -> (Vec<Algorithm>, Vec<Algorithm>) {
    let entries = load(files).unwrap_or_default();
    let name = host_name(addr, port);
    let mine: Vec<&Entry> = entries.iter().filter(|e| e.names(&name)).collect();
    let known = |a: &Algorithm, marker: Option<Marker>| {
        mine.iter().any(|e| e.marker == marker && family(&e.key.algorithm()) == family(a))
    };
    let (first, rest): (Vec<Algorithm>, Vec<Algorithm>) =
        defaults.iter().cloned().partition(|a| known(a, None));
    let certs = defaults.iter().filter(|a| known(a, Some(Marker::CertAuthority))).cloned();
    let certs = if mine.iter().any(|e| e.marker == Some(Marker::CertAuthority)) {
        // A CA of one type may sign host keys of any type: ask for every type, its own first.
        let (own, other): (Vec<Algorithm>, Vec<Algorithm>) =
            defaults.iter().cloned().partition(|a| certs.clone().any(|c| c == *a));
        own.into_iter().chain(other).collect()
    } else {
        Vec::new()
    };
    (first.into_iter().chain(rest).collect(), certs)
}

/// An algorithm's key type: RSA whatever its signature hash.
fn family(a: &Algorithm) -> Cow<'static, str> {
    match a {
        Algorithm::Rsa { .. } => "ssh-rsa".into(),
        other => other.as_str().to_string().into(),
    }
}

fn display_addr(addr: &str, port: u16) -> String {
    if port == 22 { addr.to_string() } else { format!("[{addr}]:{port}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{EcdsaCurve, PrivateKey};

    /// A new key pair of type `alg`, made with ssh-keygen.
    fn key(alg: Algorithm) -> PrivateKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (kind, bits) = match alg {
            Algorithm::Ed25519 => ("ed25519", "256"),
            Algorithm::Ecdsa { .. } => ("ecdsa", "256"),
            _ => ("rsa", "2048"),
        };
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-b", bits, "-N", "", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        PrivateKey::read_openssh_file(&path).unwrap()
    }

    fn line(patterns: &str, k: &PrivateKey) -> String {
        format!("{patterns} {}\n", k.public_key().to_openssh().unwrap())
    }

    fn files(user: &str, global: &str) -> (tempfile::TempDir, Files) {
        let dir = tempfile::tempdir().unwrap();
        let files =
            Files { user: dir.path().join("known_hosts"), global: dir.path().join("global") };
        std::fs::write(&files.user, user).unwrap();
        std::fs::write(&files.global, global).unwrap();
        (dir, files)
    }

    fn plain(k: &PrivateKey) -> PublicKeyOrCertificate {
        PublicKeyOrCertificate::PublicKey { key: k.public_key().clone(), hash_alg: None }
    }

    fn check(
        f: &Files,
        addr: &str,
        port: u16,
        k: &PublicKeyOrCertificate,
        u: UnknownKeys,
    ) -> String {
        match verify(addr, port, k, f, u) {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn known_changed_unknown_with_patterns_ports_negation_hashes_and_blanks() {
        let (a, b) = (key(Algorithm::Ed25519), key(Algorithm::Ed25519));
        let text = [
            "# a comment\n\n".to_string(),
            line("db1,10.0.0.1", &a),
            // Tabs and double spaces separate fields too.
            line("[db2]:2222", &a).replacen(' ', "\t", 1).replacen(' ', "  ", 1),
            line("*.lab,!bad.lab", &a),
            line("DB3", &b),
        ]
        .concat();
        let (_d, f) = files(&text, "");
        let refuse = UnknownKeys::Refuse;
        assert_eq!(check(&f, "db1", 22, &plain(&a), refuse), "ok");
        assert_eq!(check(&f, "10.0.0.1", 22, &plain(&a), refuse), "ok");
        assert_eq!(check(&f, "db2", 2222, &plain(&a), refuse), "ok");
        assert_eq!(check(&f, "x.lab", 22, &plain(&a), refuse), "ok");
        assert_eq!(check(&f, "db3", 22, &plain(&b), refuse), "ok", "names compare without case");
        assert!(check(&f, "bad.lab", 22, &plain(&a), refuse).contains("is unknown"));
        assert!(check(&f, "db2", 22, &plain(&a), refuse).contains("is unknown"), "another port");
        let changed = check(&f, "db1", 22, &plain(&b), refuse);
        assert!(changed.contains("HOST KEY CHANGED") && changed.contains("line 3"), "{changed}");

        // Hashed (ssh-keygen -H): HMAC-SHA1 of the name with the salt.
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[db9]:2200");
        let hashed =
            format!("|1|{}|{}", BASE64.encode(&salt), BASE64.encode(&mac.finalize().into_bytes()));
        let (_d, f) = files(&line(&hashed, &a), "");
        assert_eq!(check(&f, "db9", 2200, &plain(&a), refuse), "ok");
        assert!(check(&f, "db9", 22, &plain(&a), refuse).contains("is unknown"));
    }

    #[test]
    fn the_global_file_counts_and_a_key_is_learned_only_when_unknown() {
        let (a, b) = (key(Algorithm::Ed25519), key(Algorithm::Ed25519));
        let (_d, f) = files("", &line("db1", &a));
        assert_eq!(check(&f, "db1", 22, &plain(&a), UnknownKeys::Refuse), "ok");
        let changed = check(&f, "db1", 22, &plain(&b), UnknownKeys::Learn);
        assert!(changed.contains("HOST KEY CHANGED"), "{changed}");
        assert_eq!(std::fs::read_to_string(&f.user).unwrap(), "", "nothing learned");

        // Learned into the user's file, after a last line without its newline.
        std::fs::write(&f.user, line("other", &b).trim_end()).unwrap();
        assert_eq!(check(&f, "db2", 2222, &plain(&b), UnknownKeys::Learn), "ok");
        let learned = std::fs::read_to_string(&f.user).unwrap();
        assert!(
            learned.lines().nth(1).unwrap().starts_with("[db2]:2222 ssh-ed25519 "),
            "{learned}"
        );
        assert_eq!(check(&f, "db2", 2222, &plain(&b), UnknownKeys::Refuse), "ok");
    }

    #[test]
    fn a_revoked_key_is_refused_even_with_accept_new_and_a_bad_line_is_an_error() {
        let a = key(Algorithm::Ed25519);
        let revoked = format!("@revoked {}", line("*", &a));
        let (_d, f) = files(&[line("db1", &a), revoked].concat(), "");
        for u in [UnknownKeys::Refuse, UnknownKeys::Learn] {
            let said = check(&f, "db1", 22, &plain(&a), u);
            assert!(said.contains("REVOKED") && said.contains("line 2"), "{said}");
            let said = check(&f, "db2", 22, &plain(&a), u);
            assert!(said.contains("REVOKED"), "{said}");
        }
        assert!(!std::fs::read_to_string(&f.user).unwrap().contains("db2"));

        for (text, why) in [
            ("db1 ssh-ed25519 AAAAnotbase64!\n", "cannot read the `ssh-ed25519` key"),
            ("db1\n", "no key type and key"),
            ("@trusted db1 ssh-ed25519 AAAA\n", "unknown marker `@trusted`"),
            ("|1|x|y ssh-ed25519 AAAA\n", "malformed hashed host name"),
        ] {
            let written = format!("# ok\n{}{text}", line("db0", &a));
            let (_d, f) = files(&written, "");
            for u in [UnknownKeys::Refuse, UnknownKeys::Learn] {
                let said = check(&f, "db1", 22, &plain(&a), u);
                assert!(said.contains("known_hosts line 3") && said.contains(why), "{said}");
            }
            assert_eq!(std::fs::read_to_string(&f.user).unwrap(), written, "nothing learned");
        }
    }

    #[test]
    fn host_certificates_signed_by_a_trusted_authority_are_accepted() {
        use russh::keys::ssh_key::certificate::Builder;
        let (ca, host, other_ca) =
            (key(Algorithm::Ed25519), key(Algorithm::Ed25519), key(Algorithm::Ed25519));
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let cert = |signer: &PrivateKey, kind: CertType, principal: &str, until: u64| {
            let mut b = Builder::new(vec![9; 32], host.public_key(), now - 60, until).unwrap();
            b.cert_type(kind).unwrap();
            b.key_id("h").unwrap();
            b.valid_principal(principal).unwrap();
            PublicKeyOrCertificate::Certificate(b.sign(signer).unwrap())
        };
        let trust = format!("@cert-authority {}", line("*.lab", &ca));
        let (_d, f) = files(&trust, "");
        let r = UnknownKeys::Refuse;
        assert_eq!(
            check(&f, "db1.lab", 22, &cert(&ca, CertType::Host, "db1.lab", now + 600), r),
            "ok"
        );
        let said = check(&f, "db1.lab", 22, &cert(&ca, CertType::Host, "db2.lab", now + 600), r);
        assert!(said.contains("names db2.lab, not db1.lab"), "{said}");
        let said = check(&f, "db1.lab", 22, &cert(&ca, CertType::Host, "db1.lab", now - 10), r);
        assert!(said.contains("not valid now"), "{said}");
        let said = check(&f, "db1.lab", 22, &cert(&ca, CertType::User, "db1.lab", now + 600), r);
        assert!(said.contains("user certificate"), "{said}");
        // Another authority: the key inside is checked as a plain key.
        let said =
            check(&f, "db1.lab", 22, &cert(&other_ca, CertType::Host, "db1.lab", now + 600), r);
        assert!(said.contains("is unknown"), "{said}");
        // An authority for other hosts only.
        let said =
            check(&f, "db1.example", 22, &cert(&ca, CertType::Host, "db1.example", now + 600), r);
        assert!(said.contains("is unknown"), "{said}");
        // A revoked authority.
        let (_d, f) = files(&[trust.clone(), format!("@revoked {}", line("*", &ca))].concat(), "");
        let said = check(&f, "db1.lab", 22, &cert(&ca, CertType::Host, "db1.lab", now + 600), r);
        assert!(said.contains("REVOKED"), "{said}");
    }

    #[test]
    fn the_algorithms_already_known_for_a_host_are_offered_first() {
        let ecdsa = key(Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 });
        let rsa_ca = key(Algorithm::Rsa { hash: None });
        let text =
            [line("db1", &ecdsa), format!("@cert-authority {}", line("db2", &rsa_ca))].concat();
        let (_d, f) = files(&text, "");
        let defaults = russh::Preferred::DEFAULT.key.to_vec();
        let (keys, certs) = preferred("db1", 22, &f, &defaults);
        assert_eq!(keys[0], Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 });
        assert_eq!(keys.len(), defaults.len());
        assert!(certs.is_empty());
        let (keys, certs) = preferred("db2", 22, &f, &defaults);
        assert_eq!(keys, defaults, "nothing plain known");
        assert!(matches!(certs[0], Algorithm::Rsa { .. }), "{certs:?}");
        assert_eq!(certs.len(), defaults.len());
        assert_eq!(preferred("db3", 22, &f, &defaults), (defaults, Vec::new()));
    }
}
