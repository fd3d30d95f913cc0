//! PURE. Where everything lives in a lab directory, and the text of the files the lab writes.
//!
//! No I/O here: `mod.rs` and the I/O helpers decide when to read or write, this module only
//! names paths and renders or parses text (sshd_config, known_hosts, hosts.toml), so all of it
//! is unit-tested without a host.
//!
//! ```text
//! DIR/.pgxc-lab                 marker (only such directories are ever purged) and lock file
//! DIR/id_ed25519[.pub]          client keys, both listed in DIR/authorized_keys
//! DIR/id_rsa[.pub]
//! DIR/known_hosts               one line per host, OpenSSH format
//! DIR/hosts.toml                inventory fragment for the running hosts
//! DIR/netns                     with `up --netns`: the lab's network number N (below)
//! DIR/hosts/hK/                 host K: ssh_host_ed25519_key, sshd_config, sshd.pid, sshd.log,
//!                               install/ and data/ (owned by the cluster user)
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Largest host number: host K listens on `127.0.10.K`.
pub(crate) const MAX_HOSTS: usize = 254;

/// Largest host number in a lab of network namespaces: `198.18.N.254` is the bridge's.
pub(crate) const MAX_NETNS_HOSTS: usize = 253;

/// Port used when running as root: every host has its own address, so they can all use 22.
pub(crate) const ROOT_PORT: u16 = 22;

/// Port used as an ordinary user, who cannot bind ports below 1024.
pub(crate) const USER_PORT: u16 = 2222;

/// The port a lab uses when `--port` is not given and no host exists yet.
pub(crate) fn default_port(root: bool) -> u16 {
    if root { ROOT_PORT } else { USER_PORT }
}

/// Loopback address of host `k`.
pub(crate) fn address(k: usize) -> String {
    format!("127.0.10.{k}")
}

/// A lab whose hosts each have a network namespace of their own (`lab up --netns`): host K is
/// `198.18.N.K` on a veth pair whose other end is on the bridge `pxlNbr` (`198.18.N.254`), so
/// hosts reach each other and this machine from their own address, as on a real network.
/// 198.18.0.0/15 is the range set aside for network tests (RFC 2544); N tells labs apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net(pub u8);

impl Net {
    pub fn address(self, k: usize) -> String {
        format!("198.18.{}.{k}", self.0)
    }
    /// The bridge's address with its prefix: this machine's side of the lab network.
    pub fn bridge_cidr(self) -> String {
        format!("198.18.{}.254/24", self.0)
    }
    pub fn bridge(self) -> String {
        format!("pxl{}br", self.0)
    }
    /// The namespace of host `k` (`ip netns exec` takes it).
    pub fn namespace(self, k: usize) -> String {
        format!("pgxc-lab{}-h{k}", self.0)
    }
    /// The host's end of the veth pair is `eth0` inside its namespace; this is the bridge's end
    /// (at most 10 characters: interface names have at most 15).
    pub fn veth(self, k: usize) -> String {
        format!("pxl{}h{k}", self.0)
    }
    /// `DIR/netns`'s text.
    pub fn to_file(self) -> String {
        format!("{}\n", self.0)
    }
    pub fn parse(text: &str) -> Option<Net> {
        text.trim().parse().ok().map(Net)
    }
}

/// Name of host `k`, also its directory name under `DIR/hosts`.
pub(crate) fn host_name(k: usize) -> String {
    format!("h{k}")
}

/// Inverse of [`host_name`]: `"h12"` -> 12. Rejects anything `host_name` would not produce.
pub(crate) fn parse_host_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix('h')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let k: usize = digits.parse().ok()?;
    (1..=MAX_HOSTS).contains(&k).then_some(k)
}

/// Checks that `dir` can be written verbatim into sshd_config, known_hosts and TOML.
///
/// Rejecting awkward paths is simpler and safer than quoting them for three file formats.
pub(crate) fn check_dir_text(dir: &Path) -> Result<&str, String> {
    let text = dir.to_str().ok_or("the path is not valid UTF-8: choose another --dir")?;
    if !dir.is_absolute() {
        return Err("the path must be absolute".into());
    }
    if let Some(c) =
        text.chars().find(|c| c.is_whitespace() || c.is_control() || "\"'\\#".contains(*c))
    {
        return Err(format!(
            "the path contains {c:?}, which sshd_config and TOML would need quoted: \
             choose a --dir without spaces, quotes, backslashes or '#'"
        ));
    }
    Ok(text)
}

/// Paths of one lab directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub dir: PathBuf,
    /// Set for a lab of network namespaces.
    pub net: Option<Net>,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout { dir: dir.into(), net: None }
    }
    pub fn net_file(&self) -> PathBuf {
        self.dir.join("netns")
    }
    pub fn marker(&self) -> PathBuf {
        self.dir.join(".pgxc-lab")
    }
    pub fn id_ed25519(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    pub fn id_rsa(&self) -> PathBuf {
        self.dir.join("id_rsa")
    }
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    pub fn hosts_toml(&self) -> PathBuf {
        self.dir.join("hosts.toml")
    }
    pub fn hosts_dir(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    pub fn host(&self, k: usize) -> HostLayout {
        let dir = self.hosts_dir().join(host_name(k));
        match self.net {
            None => HostLayout { name: host_name(k), address: address(k), namespace: None, dir },
            Some(net) => HostLayout {
                name: host_name(k),
                address: net.address(k),
                namespace: Some(net.namespace(k)),
                dir,
            },
        }
    }
}

/// Paths and identity of one host of a lab.
#[derive(Debug, Clone)]
pub(crate) struct HostLayout {
    pub name: String,
    pub address: String,
    /// The network namespace sshd runs in (and so every command of the host).
    pub namespace: Option<String>,
    pub dir: PathBuf,
}

impl HostLayout {
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }
    pub fn install(&self) -> PathBuf {
        self.dir.join("install")
    }
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

/// The sshd_config of one host. Paths must have passed [`check_dir_text`].
pub(crate) fn sshd_config(host: &HostLayout, port: u16, authorized_keys: &Path) -> String {
    let mut out = String::new();
    // `writeln!` into a String cannot fail.
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{key} {value}");
    };
    line("# pgxc-deploy lab host", &host.name);
    line("ListenAddress", &host.address);
    line("Port", &port);
    line("HostKey", &host.host_key().display());
    line("PidFile", &host.pid_file().display());
    line("AuthorizedKeysFile", &authorized_keys.display());
    line("PasswordAuthentication", &"no");
    line("KbdInteractiveAuthentication", &"no");
    line("PubkeyAuthentication", &"yes");
    // Without PAM, sshd does not need a PAM stack and works as an ordinary user.
    line("UsePAM", &"no");
    // The lab directory may be group/world readable and owned by another user than the login.
    line("StrictModes", &"no");
    // Tests open many connections at once; the defaults (10:30:100) would drop some.
    line("MaxStartups", &1000);
    line("MaxSessions", &100);
    line("PermitRootLogin", &"prohibit-password");
    line("LogLevel", &"VERBOSE");
    line("Subsystem", &"sftp internal-sftp");
    line("UseDNS", &"no");
    line("PrintMotd", &"no");
    out
}

/// What `status` needs back from an sshd_config: where the host listens.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ListenOn {
    pub address: Option<String>,
    pub port: Option<u16>,
}

/// Reads `ListenAddress` and `Port` from sshd_config text (first occurrence wins, as in sshd).
pub(crate) fn parse_sshd_config(text: &str) -> ListenOn {
    let mut found = ListenOn::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else { continue };
        if key.eq_ignore_ascii_case("ListenAddress") && found.address.is_none() {
            found.address = Some(value.to_string());
        } else if key.eq_ignore_ascii_case("Port") && found.port.is_none() {
            found.port = value.parse().ok();
        }
    }
    found
}

/// The `type base64` part of an OpenSSH public key line, without its comment.
pub(crate) fn public_key_body(pub_line: &str) -> Option<String> {
    let mut words = pub_line.split_whitespace();
    let (kind, blob) = (words.next()?, words.next()?);
    kind.starts_with("ssh-").then(|| format!("{kind} {blob}"))
}

/// One known_hosts line. OpenSSH writes the bare address for port 22 and `[addr]:port` otherwise.
pub(crate) fn known_hosts_line(address: &str, port: u16, key_body: &str) -> String {
    if port == 22 {
        format!("{address} {key_body}\n")
    } else {
        format!("[{address}]:{port} {key_body}\n")
    }
}

/// One host as listed in hosts.toml.
pub(crate) struct TableHost<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub dir: &'a Path,
}

/// The `[ssh]` + `[hosts.*]` inventory fragment written to `DIR/hosts.toml`.
pub(crate) fn hosts_table(dir: &Path, user: &str, port: u16, hosts: &[TableHost<'_>]) -> String {
    let layout = Layout::new(dir);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Lab hosts started by `pgxc-deploy lab up` ({}). Paste [hosts.*] into an inventory.",
        dir.display()
    );
    out.push_str("[ssh]\n");
    let _ = writeln!(out, "user = {}", toml_string(user));
    let _ = writeln!(out, "port = {port}");
    let _ = writeln!(out, "identity_file = {}", toml_path(&layout.id_ed25519()));
    let _ = writeln!(out, "known_hosts = {}", toml_path(&layout.known_hosts()));
    for host in hosts {
        let _ = writeln!(out, "\n[hosts.{}]", host.name);
        let _ = writeln!(out, "address = {}", toml_string(host.address));
        let _ = writeln!(out, "install_prefix = {}", toml_path(&host.dir.join("install")));
        let _ = writeln!(out, "data_root = {}", toml_path(&host.dir.join("data")));
    }
    out
}

fn toml_path(path: &Path) -> String {
    toml_string(&path.to_string_lossy())
}

/// A TOML basic string. Lab paths are already restricted, but user names are not ours.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_of_namespaces_names_fit_and_addresses_follow_its_network() {
        let net = Net(255);
        assert_eq!(net.address(253), "198.18.255.253");
        assert_eq!(net.bridge_cidr(), "198.18.255.254/24");
        // Linux interface names have at most 15 bytes.
        assert!(net.veth(MAX_NETNS_HOSTS).len() <= 15 && net.bridge().len() <= 15);
        assert_eq!(Net::parse(&net.to_file()), Some(net));
        assert_eq!(Net::parse("256"), None);
        let mut layout = Layout::new("/tmp/lab");
        assert_eq!(layout.host(2).address, "127.0.10.2");
        assert_eq!(layout.host(2).namespace, None);
        layout.net = Some(Net(3));
        let host = layout.host(2);
        assert_eq!(
            (host.address.as_str(), host.namespace.as_deref()),
            ("198.18.3.2", Some("pgxc-lab3-h2"))
        );
        assert_eq!(host.dir, Path::new("/tmp/lab/hosts/h2"));
    }

    #[test]
    fn host_names_round_trip_and_reject_lookalikes() {
        assert_eq!(host_name(7), "h7");
        assert_eq!(address(200), "127.0.10.200");
        assert_eq!(parse_host_name("h7"), Some(7));
        assert_eq!(parse_host_name("h254"), Some(254));
        for bad in ["h0", "h07", "h255", "h", "x1", "h1a", "h-1", "H1"] {
            assert_eq!(parse_host_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn dir_text_is_checked() {
        assert_eq!(check_dir_text(Path::new("/tmp/pgxc-lab")), Ok("/tmp/pgxc-lab"));
        assert!(check_dir_text(Path::new("tmp/lab")).is_err());
        for bad in ["/tmp/a b", "/tmp/a\"b", "/tmp/a#b", "/tmp/a\\b", "/tmp/a'b", "/tmp/a\nb"] {
            assert!(check_dir_text(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn sshd_config_renders_every_setting() {
        let layout = Layout::new("/tmp/lab");
        let text = sshd_config(&layout.host(3), 2222, &layout.authorized_keys());
        let expected = "\
# pgxc-deploy lab host h3
ListenAddress 127.0.10.3
Port 2222
HostKey /tmp/lab/hosts/h3/ssh_host_ed25519_key
PidFile /tmp/lab/hosts/h3/sshd.pid
AuthorizedKeysFile /tmp/lab/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
MaxStartups 1000
MaxSessions 100
PermitRootLogin prohibit-password
LogLevel VERBOSE
Subsystem sftp internal-sftp
UseDNS no
PrintMotd no
";
        assert_eq!(text, expected);
        let parsed = parse_sshd_config(&text);
        assert_eq!(parsed, ListenOn { address: Some("127.0.10.3".into()), port: Some(2222) });
    }

    #[test]
    fn parse_sshd_config_tolerates_case_and_junk() {
        let parsed =
            parse_sshd_config("# Port 1\n\nport 22\nPort 23\nlistenaddress ::1\nHostKey\n");
        assert_eq!(parsed, ListenOn { address: Some("::1".into()), port: Some(22) });
        assert_eq!(parse_sshd_config("Port x"), ListenOn::default());
    }

    #[test]
    fn known_hosts_lines_follow_openssh() {
        let body = public_key_body("ssh-ed25519 AAAAC3Nz root@box\n").unwrap();
        assert_eq!(body, "ssh-ed25519 AAAAC3Nz");
        assert_eq!(known_hosts_line("127.0.10.1", 22, &body), "127.0.10.1 ssh-ed25519 AAAAC3Nz\n");
        assert_eq!(
            known_hosts_line("127.0.10.2", 2222, &body),
            "[127.0.10.2]:2222 ssh-ed25519 AAAAC3Nz\n"
        );
        assert_eq!(public_key_body("garbage"), None);
        assert_eq!(public_key_body(""), None);
    }

    #[test]
    fn hosts_table_matches_the_documented_format() {
        let dir = Path::new("/tmp/pgxc-lab");
        let h1 = dir.join("hosts/h1");
        let h2 = dir.join("hosts/h2");
        let hosts = [
            TableHost { name: "h1", address: "127.0.10.1", dir: &h1 },
            TableHost { name: "h2", address: "127.0.10.2", dir: &h2 },
        ];
        let expected = "\
# Lab hosts started by `pgxc-deploy lab up` (/tmp/pgxc-lab). Paste [hosts.*] into an inventory.
[ssh]
user = \"root\"
port = 22
identity_file = \"/tmp/pgxc-lab/id_ed25519\"
known_hosts = \"/tmp/pgxc-lab/known_hosts\"

[hosts.h1]
address = \"127.0.10.1\"
install_prefix = \"/tmp/pgxc-lab/hosts/h1/install\"
data_root = \"/tmp/pgxc-lab/hosts/h1/data\"

[hosts.h2]
address = \"127.0.10.2\"
install_prefix = \"/tmp/pgxc-lab/hosts/h2/install\"
data_root = \"/tmp/pgxc-lab/hosts/h2/data\"
";
        let text = hosts_table(dir, "root", 22, &hosts);
        assert_eq!(text, expected);
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["hosts"]["h2"]["address"].as_str(), Some("127.0.10.2"));
        assert_eq!(parsed["ssh"]["port"].as_integer(), Some(22));
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
        let parsed: toml::Table = toml::from_str(&format!("x = {}", toml_string("q\"\t"))).unwrap();
        assert_eq!(parsed["x"].as_str(), Some("q\"\t"));
    }
}
