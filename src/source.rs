//! The inventory's `[source] prebuilt = DIR` turned into something to ship: a tar archive of the
//! install, its fingerprint, and where its binaries land under a host's install prefix. I/O
//! (local only: `pg_config` and `tar` on this machine); nothing here talks to hosts.
//!
//! An install is relocatable the way PostgreSQL computes its paths: `postgres` finds its share
//! and library directories relative to its own binary when they keep the same relative layout
//! as at build time. So the archive keeps the directories `pg_config` reports (bindir, sharedir,
//! pkglibdir) at their paths relative to their common prefix. For a `--prefix` build that is just
//! `bin/`, `share/`, `lib/`; for Debian's postgresql-15 (`/usr/lib/postgresql/15/bin`,
//! `/usr/share/postgresql/15`, ...) it is `lib/postgresql/15/bin`, `share/postgresql/15`, ...
//! libpq (from libdir) comes along, for psql and pg_basebackup.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};

use crate::inventory::{Build, Origin};

/// Where the parts of an install live, relative to the install prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// e.g. `bin` or `lib/postgresql/15/bin`.
    pub bin: String,
    /// Where libpq is, for LD_LIBRARY_PATH.
    pub lib: String,
}

/// The file under an install prefix where apply records the shipped install's [`Layout`], so
/// that commands on a deployed cluster find its binaries without the local install.
pub const LAYOUT_RECORD: &str = ".pgxc-deploy-layout";

impl Layout {
    /// The text of [`LAYOUT_RECORD`]: `bin=DIR` and `lib=DIR` lines.
    pub fn record(&self) -> String {
        format!("bin={}\nlib={}\n", self.bin, self.lib)
    }

    /// A layout read back from [`Layout::record`]'s text; `None` unless both lines are there and
    /// name relative directories inside the prefix.
    pub fn parse_record(text: &str) -> Option<Layout> {
        let value = |key: &str| {
            let v = text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))?;
            let inside = !v.is_empty()
                && !v.starts_with('/')
                && v.split('/').all(|part| !part.is_empty() && part != "..");
            inside.then(|| v.to_string())
        };
        Some(Layout { bin: value("bin")?, lib: value("lib")? })
    }
}

impl Default for Layout {
    /// A `configure --prefix` install.
    fn default() -> Layout {
        Layout { bin: "bin".into(), lib: "lib".into() }
    }
}

/// A packed install, ready to unpack under any host's install prefix.
#[derive(Debug, Clone)]
pub struct Package {
    pub layout: Layout,
    /// `tar` archive bytes (uncompressed: loopback and LAN links are faster than gzip).
    pub archive: Vec<u8>,
    /// SHA-256 of the archive, hex: an install whose recorded fingerprint matches is skipped.
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "prebuilt install {dir}: no {dir}/bin/pg_config; point [source] prebuilt at an install prefix (the directory holding bin/, lib/, share/)"
    )]
    NotAnInstall { dir: PathBuf },
    #[error("running {program}")]
    Run {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed { program: String, stderr: String },
}

/// Where the parts of the install at `dir` are, and which paths (relative to `root`) make it up.
struct Inspected {
    layout: Layout,
    root: String,
    members: Vec<String>,
}

/// Whether `dir` holds an install on this machine (its `bin/pg_config`).
pub fn is_install(dir: &Path) -> bool {
    dir.join("bin/pg_config").is_file()
}

/// The layout of the prebuilt install at `dir`, as it will be under any install prefix.
pub async fn layout_of(dir: &Path) -> Result<Layout, Error> {
    Ok(inspect(dir).await?.layout)
}

/// Pack the install at `dir`.
pub async fn pack_prebuilt(dir: &Path) -> Result<Package, Error> {
    pack(inspect(dir).await?).await
}

async fn pack(inspected: Inspected) -> Result<Package, Error> {
    let Inspected { layout, root, members } = inspected;
    let mut tar_args = vec!["-C".to_string(), root, "-cf".into(), "-".into()];
    // Stable order and owner, so an unchanged install packs to the same fingerprint.
    tar_args.extend(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"].map(String::from));
    tar_args.extend(members);
    let archive = run("tar", &tar_args, None).await?;
    let fingerprint = hex(&Sha256::digest(&archive));
    Ok(Package { layout, archive, fingerprint })
}

/// The fingerprint [`pack_prebuilt`] gives the install at `dir`, without packing it when this
/// machine packed it before and none of its files changed since (same names, sizes, modes and
/// modification times; kept in `~/.cache/pgxc-deploy/prebuilt/`): packing Debian's PostgreSQL
/// costs about 0.3 s of CPU, on every apply otherwise. The archive comes along when it had to
/// be packed. A cache that cannot be read or written only costs the packing.
pub async fn prebuilt_fingerprint(dir: &Path) -> Result<(Layout, String, Option<Vec<u8>>), Error> {
    let inspected = inspect(dir).await?;
    let signature = stat_signature(&inspected);
    let cache = cache_file(dir);
    let cached = cache.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
    if let (Some(signature), Some(cached)) = (&signature, cached)
        && let Some((seen, fingerprint)) = cached.trim().split_once(' ')
        && seen == signature
    {
        return Ok((inspected.layout, fingerprint.to_string(), None));
    }
    let Package { layout, archive, fingerprint } = pack(inspected).await?;
    if let (Some(file), Some(signature)) = (cache, signature) {
        let written = file.parent().map(std::fs::create_dir_all).transpose().and_then(|_| {
            let tmp = file.with_extension(format!("{}.tmp", std::process::id()));
            std::fs::write(&tmp, format!("{signature} {fingerprint}\n"))?;
            std::fs::rename(&tmp, &file)
        });
        if let Err(e) = written {
            tracing::debug!("cannot cache the install's fingerprint in {}: {e}", file.display());
        }
    }
    Ok((layout, fingerprint, Some(archive)))
}

/// Where the fingerprint of the install at `dir` is cached, when there is a home.
fn cache_file(dir: &Path) -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(cache) => PathBuf::from(cache),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    let key = sha256_hex(dir.as_os_str().as_encoded_bytes());
    Some(base.join("pgxc-deploy/prebuilt").join(key))
}

/// A digest of the name, size, mode and modification time of every file the archive would
/// hold (and of how it is packed), or `None` when one cannot be read.
fn stat_signature(inspected: &Inspected) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mut hasher = Sha256::new();
    hasher.update(format!("tar --sort=name --owner=0 --group=0 {}\n", inspected.root));
    let mut pending: Vec<PathBuf> =
        inspected.members.iter().map(|m| Path::new(&inspected.root).join(m)).collect();
    pending.sort();
    pending.reverse();
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).ok()?;
        hasher.update(path.as_os_str().as_encoded_bytes());
        let (len, mode, mtime, nsec) = (meta.len(), meta.mode(), meta.mtime(), meta.mtime_nsec());
        hasher.update(format!("\0{len}\0{mode:o}\0{mtime}.{nsec}\n"));
        if meta.is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&path)
                .ok()?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .ok()?;
            children.sort();
            pending.extend(children.into_iter().rev());
        }
    }
    Some(hex(&hasher.finalize()))
}

async fn inspect(dir: &Path) -> Result<Inspected, Error> {
    if !is_install(dir) {
        return Err(Error::NotAnInstall { dir: dir.to_path_buf() });
    }
    let pg_config = dir.join("bin/pg_config");
    let args = ["--bindir", "--sharedir", "--pkglibdir", "--libdir"];
    let out = run(&pg_config.display().to_string(), &args.map(String::from), None).await?;
    let text = String::from_utf8_lossy(&out);
    let paths: Vec<&str> = text.lines().collect();
    let [bindir, sharedir, pkglibdir, libdir] = paths[..] else {
        return Err(Error::Failed { program: "pg_config".into(), stderr: text.into_owned() });
    };
    let root = common_dir([bindir, sharedir, pkglibdir]);
    let rel = |p: &str| p.strip_prefix(&root).unwrap_or(p).trim_start_matches('/').to_string();

    let mut members: Vec<String> = vec![rel(bindir), rel(sharedir), rel(pkglibdir)];
    let lib = rel(libdir);
    if libdir.starts_with(&root) && !members.iter().any(|m| lib.starts_with(m.as_str())) {
        // Only libpq from a shared libdir such as /usr/lib/x86_64-linux-gnu.
        let entries = std::fs::read_dir(libdir)
            .map_err(|source| Error::Run { program: format!("reading {libdir}"), source })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("libpq.so"))
            .map(|n| format!("{lib}/{n}"))
            .collect();
        names.sort();
        members.extend(names);
    }
    members.dedup();
    Ok(Inspected { layout: Layout { bin: rel(bindir), lib }, root, members })
}

/// What a build from source needs from this machine: the source archive to upload (tarball or
/// local directory; `None` for git, which the build host clones), the patches, and the
/// fingerprint of everything that decides the result.
#[derive(Debug, Clone)]
pub struct BuildInputs {
    pub fingerprint: String,
    /// Uploaded as a file and unpacked on the build host.
    pub archive: Option<Vec<u8>>,
    /// `tar --strip-components` for `archive`: 1 for a release tarball's top directory.
    pub strip_components: u32,
    /// (file name, content), applied in order with `patch -p1`.
    pub patches: Vec<(String, Vec<u8>)>,
}

/// Read the local parts of a build from source.
pub async fn build_inputs(build: &Build) -> Result<BuildInputs, Error> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|source| Error::Run { program: format!("reading {}", path.display()), source })
    };
    let (archive, strip_components, origin) = match &build.origin {
        Origin::Git { url, rev } => (None, 0, format!("git {url} {rev}")),
        Origin::Tarball(path) => {
            let bytes = read(path)?;
            let origin = format!("tarball {}", hex(&Sha256::digest(&bytes)));
            (Some(bytes), 1, origin)
        }
        Origin::Dir(dir) => {
            let args = [
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--exclude=.git",
                "-C",
            ];
            let mut args: Vec<String> = args.map(String::from).to_vec();
            args.extend([dir.display().to_string(), "-cf".into(), "-".into(), ".".into()]);
            let bytes = run("tar", &args, None).await?;
            let origin = format!("dir {}", hex(&Sha256::digest(&bytes)));
            (Some(bytes), 0, origin)
        }
    };
    let mut patches = Vec::new();
    for path in &build.patches {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        patches.push((name, read(path)?));
    }
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    for arg in &build.configure_args {
        h.update(b"\0configure ");
        h.update(arg.as_bytes());
    }
    for (name, body) in &patches {
        h.update(b"\0patch ");
        h.update(name.as_bytes());
        h.update(Sha256::digest(body));
    }
    for line in &build.pre_configure {
        h.update(b"\0pre ");
        h.update(line.as_bytes());
    }
    Ok(BuildInputs { fingerprint: hex(&h.finalize()), archive, strip_components, patches })
}

/// The longest directory prefix shared by all `paths`.
fn common_dir<'a>(paths: impl IntoIterator<Item = &'a str>) -> String {
    let mut iter = paths.into_iter();
    let first: Vec<&str> = iter.next().unwrap_or("/").split('/').collect();
    let mut len = first.len();
    for p in iter {
        let parts: Vec<&str> = p.split('/').collect();
        len = len.min(first.iter().zip(&parts).take_while(|(a, b)| a == b).count());
    }
    let joined = first[..len].join("/");
    if joined.is_empty() { "/".into() } else { joined }
}

/// SHA-256 of `bytes`, hex: what an install archive is checked against on the host.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn run(program: &str, args: &[String], stdin: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let err = |source| Error::Run { program: program.to_string(), source };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err)?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(data).await.map_err(err)?;
    }
    let out = child.wait_with_output().await.map_err(err)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::Failed { program: program.to_string(), stderr });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_record_reads_back_and_refuses_paths_outside_the_prefix() {
        let debian = Layout { bin: "lib/postgresql/15/bin".into(), lib: "lib".into() };
        assert_eq!(Layout::parse_record(&debian.record()), Some(debian));
        assert_eq!(Layout::parse_record("lib=lib\n"), None);
        assert_eq!(Layout::parse_record("bin=/usr/bin\nlib=lib\n"), None);
        assert_eq!(Layout::parse_record("bin=../bin\nlib=lib\n"), None);
        assert_eq!(Layout::parse_record("bin=\nlib=lib\n"), None);
        assert_eq!(Layout::parse_record(""), None);
    }

    #[test]
    fn common_dir_of_install_paths() {
        assert_eq!(common_dir(["/opt/pgxc/bin", "/opt/pgxc/share", "/opt/pgxc/lib"]), "/opt/pgxc");
        let debian = [
            "/usr/lib/postgresql/15/bin",
            "/usr/share/postgresql/15",
            "/usr/lib/postgresql/15/lib",
        ];
        assert_eq!(common_dir(debian), "/usr");
        assert_eq!(common_dir(["/a/b", "/c"]), "/");
    }
}
