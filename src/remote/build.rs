//! The remote scripts that build the server from source on a build host. PURE: it only writes
//! the scripts and parses what the poll prints; the executor uploads the inputs and runs them as
//! the cluster's user.
//!
//! Everything happens in `<data_root>/.pgxc-deploy-build/`: the source is unpacked (or cloned)
//! into `src/`, patches applied, the `pre_configure` lines run, then configure / make / make
//! install with all output in `build.log`, which stays on the host. The build runs detached
//! (`setsid`), so neither the command timeout nor a dropped SSH connection cuts it short; the
//! executor polls it, showing its stage, until it writes its exit status. A re-run of apply
//! while the same build still runs waits for it instead of starting another. The install's
//! fingerprint is recorded last, so an interrupted build is never mistaken for done.

use crate::inventory::{Build, Origin};
use crate::shell::{Cmd, Lines, Script};

use crate::plan::state::INSTALL_MARKER;

/// The build directory under a host's data root (which the cluster's user owns, unlike, often,
/// the install prefix's parent).
pub fn build_dir(data_root: &str) -> String {
    format!("{data_root}/.pgxc-deploy-build")
}

/// Where the uploaded source archive lands in build directory `dir`.
pub fn archive_path(dir: &str) -> String {
    format!("{dir}/source.tar")
}

/// Where patch number `i` lands.
pub fn patch_path(dir: &str, i: usize) -> String {
    format!("{dir}/patches/{i}.patch")
}

/// The build log on the host.
pub fn log_path(dir: &str) -> String {
    format!("{dir}/build.log")
}

/// Where the build script is uploaded.
pub fn script_path(dir: &str) -> String {
    format!("{dir}/build.sh")
}

/// Lines of the log a failed build shows.
pub const LOG_TAIL: usize = 30;

/// The whole build as one POSIX shell script, run detached by [`launch_script`]. `strip` is
/// `tar --strip-components` for an uploaded archive. Stages are logged as `== NAME` lines; the
/// exit status lands in `build.status` when the script ends, however it ends.
pub fn build_script(
    build: &Build,
    prefix: &str,
    dir: &str,
    fingerprint: &str,
    strip: u32,
    patches: usize,
) -> String {
    let b = dir;
    let src = format!("{b}/src");
    let mut lines = Lines::new()
        // Constant: stop at the first failure.
        .raw("set -e")
        .cmd(Cmd::new("cd").arg(b))
        // Absolute: the script changes directory into the source tree.
        .set("status_file", format!("{b}/build.status"))
        // Constant: the exit status, however the script ends.
        .raw("trap 'echo $? > \"$status_file\"' EXIT")
        // Constant redirections around the quoted log path.
        .cmd(Cmd::new("exec").raw(">").arg(log_path(dir)).raw("2>&1 </dev/null"))
        // Constant stage markers (`== NAME`), which the poll reads.
        .raw("echo '== fetch source'")
        .cmd(Cmd::new("rm").arg("-rf").arg(&src))
        .cmd(Cmd::new("mkdir").arg("-p").arg(&src));
    match &build.origin {
        Origin::Git { url, rev } => {
            lines = lines
                .cmd(
                    Cmd::new("git")
                        .args(["clone", "--quiet", "--no-checkout", "--", url])
                        .arg(&src),
                )
                .cmd(Cmd::new("git").arg("-C").arg(&src).args(["checkout", "--quiet", rev, "--"]));
        }
        Origin::Tarball(_) | Origin::Dir(_) => {
            let tar = Cmd::new("tar").arg("-xf").arg(archive_path(dir)).arg("-C").arg(&src);
            lines = lines.cmd(tar.arg(format!("--strip-components={strip}")));
        }
    }
    lines = lines.cmd(Cmd::new("cd").arg(&src));
    if patches > 0 || !build.pre_configure.is_empty() {
        lines = lines.raw("echo '== patch'");
    }
    for i in 0..patches {
        lines = lines.cmd(Cmd::new("patch").args(["-p1", "-i"]).arg(patch_path(dir, i)));
    }
    for line in &build.pre_configure {
        // Not a constant: the inventory's own shell lines, run as written (their author is the
        // operator, as with `exec`), each in a subshell of its own.
        lines = lines.raw(&format!("( {line}\n)"));
    }
    lines = lines
        .raw("echo '== configure'")
        .cmd(Cmd::new("./configure").arg(format!("--prefix={prefix}")).args(&build.configure_args));
    lines = lines.raw("echo '== make'");
    // Generated headers first: Postgres-XC's parallel make races on utils/errcodes.h.
    lines = lines.raw("make -C src/backend submake-errcodes >/dev/null 2>&1 || true");
    lines = match build.make_jobs {
        Some(n) => lines.cmd(Cmd::new("make").arg(format!("-j{n}"))),
        // Constant: as many jobs as the build host has processors.
        None => lines.raw("make -j$(nproc 2>/dev/null || echo 2)"),
    };
    let marker = format!("{prefix}/{INSTALL_MARKER}");
    lines
        .raw("echo '== make install'")
        // Constant.
        .raw("make install")
        .cmd(Cmd::new("printf").arg("%s").arg(fingerprint).raw(">").arg(marker))
        .raw("echo '== done'")
        .to_string()
        + "\n"
}

/// Whether the build of `fingerprint` already runs (an earlier apply was interrupted while it
/// built): prints `attached` and leaves it be; otherwise stops a build of something else, if
/// any, and prints `new`. Creates the build directory.
pub fn attach_script(dir: &str, fingerprint: &str) -> Script {
    let lines = Lines::new().set("b", dir).set("want", fingerprint).raw(
        // Constant.
        "mkdir -p \"$b\"/patches && cd \"$b\" || exit 1\n\
         if [ -f build.pid ] && kill -0 \"$(cat build.pid)\" 2>/dev/null; then\n\
         \x20 if [ \"$(cat build.fingerprint 2>/dev/null)\" = \"$want\" ]; then echo attached; exit 0; fi\n\
         \x20 kill -TERM -- \"-$(cat build.pid)\" 2>/dev/null; sleep 1\n\
         fi\n\
         rm -f build.status build.pid build.fingerprint\n\
         echo new",
    );
    Script::new().lines(lines)
}

/// Start the uploaded build script detached, in a session of its own.
pub fn launch_script(dir: &str, fingerprint: &str) -> Script {
    let lines = Lines::new().set("b", dir).set("want", fingerprint).raw(
        // Constant.
        "cd \"$b\" || exit 1\n\
         printf %s \"$want\" > build.fingerprint\n\
         setsid sh build.sh >/dev/null 2>&1 </dev/null &\n\
         echo $! > build.pid",
    );
    Script::new().lines(lines)
}

/// Read a running build's state: `alive yes|no`, then `status N` once it ended (read after
/// `alive`: the script writes its status before it exits, so a dead build without one was
/// killed), and `stage NAME` (the last `== NAME` line of its log).
pub fn poll_script(dir: &str) -> Script {
    let lines = Lines::new().set("b", dir).raw(
        // Constant.
        "cd \"$b\" || exit 1\n\
         if kill -0 \"$(cat build.pid 2>/dev/null)\" 2>/dev/null; then echo alive yes; else echo alive no; fi\n\
         [ -f build.status ] && echo \"status $(cat build.status)\"\n\
         stage=$(grep '^== ' build.log 2>/dev/null | tail -n 1 | cut -c4-)\n\
         echo \"stage $stage\"\n\
         [ \"$stage\" = make ] && echo \"objects $(find src -name '*.o' | wc -l) $(find src -name '*.c' \
         ! -path '*/contrib/*' ! -path '*/test/*' ! -path '*win32*' ! -path '*/tools/*' | wc -l)\"\n\
         exit 0",
    );
    Script::new().lines(lines)
}

/// The end of the log, for a failed build.
pub fn tail_script(dir: &str) -> Script {
    Script::new().cmd(Cmd::new("tail").arg("-n").arg(LOG_TAIL.to_string()).arg(log_path(dir)))
}

/// What [`poll_script`] printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Running {
        stage: String,
    },
    Ended {
        status: i32,
        stage: String,
    },
    /// No status and no process: killed from outside (or the host rebooted).
    Vanished {
        stage: String,
    },
}

/// During `make`, the share of the build done, from what [`poll_script`] printed: the objects
/// compiled so far against the C files that a build compiles about once each (it leaves out
/// contrib, tests, tools and Windows ports), at most 99%. An estimate for the live line's ETA.
pub fn parse_share(out: &str) -> Option<f64> {
    let counts = out.lines().find_map(|l| l.strip_prefix("objects "))?;
    let (done, all) = counts.split_once(' ')?;
    let (done, all): (f64, f64) = (done.trim().parse().ok()?, all.trim().parse().ok()?);
    (all > 0.0).then(|| (done / all).min(0.99))
}

pub fn parse_poll(out: &str) -> Poll {
    let (mut status, mut stage, mut alive) = (None, String::new(), false);
    for line in out.lines() {
        match line.split_once(' ') {
            Some(("status", s)) => status = s.trim().parse().ok().or(Some(-1)),
            Some(("stage", s)) => stage = s.trim().to_string(),
            Some(("alive", s)) => alive = s.trim() == "yes",
            _ => {}
        }
    }
    match (status, alive) {
        (Some(status), _) => Poll::Ended { status, stage },
        (None, true) => Poll::Running { stage },
        (None, false) => Poll::Vanished { stage },
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::BuildMode;
    use std::path::PathBuf;

    fn build(origin: Origin) -> Build {
        Build {
            origin,
            configure_args: vec!["CFLAGS=-O2 -fcommon".into(), "--without-readline".into()],
            patches: vec![PathBuf::from("fix.patch")],
            pre_configure: vec!["sed -i 's/a/b/' x.y".into()],
            mode: BuildMode::Once,
            build_host: "h1".into(),
            make_jobs: Some(2),
            timeout: std::time::Duration::from_secs(7200),
        }
    }

    #[test]
    fn script_quotes_every_value_and_runs_user_lines_as_written() {
        let s = build_script(
            &build(Origin::Tarball("pg.tar.bz2".into())),
            "/opt/pg x",
            "/d x/b",
            "f00",
            1,
            1,
        );
        assert!(
            s.contains("tar -xf '/d x/b/source.tar' -C '/d x/b/src' --strip-components=1\n"),
            "{s}"
        );
        assert!(s.contains("patch -p1 -i '/d x/b/patches/0.patch'\n"), "{s}");
        assert!(s.contains("( sed -i 's/a/b/' x.y\n)\n"), "{s}");
        assert!(
            s.contains(
                "./configure '--prefix=/opt/pg x' 'CFLAGS=-O2 -fcommon' --without-readline\n"
            ),
            "{s}"
        );
        assert!(s.contains("make -j2\n"), "{s}");
        assert!(s.contains("printf %s f00 > '/opt/pg x/.pgxc-deploy-install'\n"), "{s}");
    }

    #[test]
    fn git_sources_are_cloned_and_checked_out() {
        let origin = Origin::Git { url: "https://example.com/x.git".into(), rev: "v1.0".into() };
        let s = build_script(
            &build(origin),
            "/opt/pgxc",
            "/var/lib/pgxc/.pgxc-deploy-build",
            "f00",
            0,
            0,
        );
        assert!(s.contains("git clone --quiet --no-checkout -- https://example.com/x.git /var/lib/pgxc/.pgxc-deploy-build/src"), "{s}");
        assert!(
            s.contains("git -C /var/lib/pgxc/.pgxc-deploy-build/src checkout --quiet v1.0 --"),
            "{s}"
        );
        assert!(!s.contains("patch -p1"));
    }

    #[test]
    fn poll_output_parses_into_running_ended_or_vanished() {
        assert_eq!(parse_poll("stage make\nalive yes\n"), Poll::Running { stage: "make".into() });
        assert_eq!(
            parse_poll("status 2\nstage configure\nalive no\n"),
            Poll::Ended { status: 2, stage: "configure".into() }
        );
        assert_eq!(parse_poll("stage \nalive no\n"), Poll::Vanished { stage: String::new() });
        assert_eq!(parse_share("alive yes\nstage make\nobjects 250 1000\n"), Some(0.25));
        assert_eq!(parse_share("objects 1200 1000\n"), Some(0.99));
        assert_eq!(parse_share("alive yes\nstage configure\n"), None);
    }

    /// The real scripts under /bin/sh: a build that fails in configure records its status and
    /// stage, keeps its log, and writes no install marker.
    #[test]
    fn a_failed_build_records_its_status_stage_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("{}/the install", dir.path().display());
        let bdir = build_dir(&format!("{}/data root", dir.path().display()));
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("configure"),
            "#!/bin/sh\necho checking things\necho 'configure: error: no bison' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join("configure"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::create_dir_all(&bdir).unwrap();
        let sh = |script: String| {
            let out = std::process::Command::new("/bin/sh").arg("-c").arg(script).output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let tar = std::process::Command::new("tar")
            .arg("-cf")
            .arg(archive_path(&bdir))
            .arg("-C")
            .arg(&src)
            .arg(".")
            .status()
            .unwrap();
        assert!(tar.success());
        let mut b = build(Origin::Dir(src.clone()));
        b.patches.clear();
        b.pre_configure.clear();
        std::fs::write(script_path(&bdir), build_script(&b, &prefix, &bdir, "f00", 0, 0)).unwrap();
        assert_eq!(sh(attach_script(&bdir, "f00").to_string()), "new\n");
        sh(launch_script(&bdir, "f00").to_string());
        let polled = (0..100)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                parse_poll(&sh(poll_script(&bdir).to_string()))
            })
            .find(|p| !matches!(p, Poll::Running { .. }))
            .expect("the build ends");
        assert_eq!(polled, Poll::Ended { status: 1, stage: "configure".into() });
        assert!(sh(tail_script(&bdir).to_string()).contains("configure: error: no bison"));
        assert!(!std::path::Path::new(&format!("{prefix}/{INSTALL_MARKER}")).exists());
    }

    /// A build directory and a fingerprint with quotes, spaces and `$` reach the scripts as they
    /// are: the same build is attached to, another one stops it.
    #[test]
    fn attach_launch_and_poll_take_any_directory_and_fingerprint() {
        let root = tempfile::tempdir().unwrap();
        let bdir = build_dir(&root.path().join("it's a \"root\" $HOME").display().to_string());
        let sh = |script: Script| {
            let out =
                std::process::Command::new("/bin/sh").arg("-c").arg(script.to_string()).output();
            String::from_utf8_lossy(&out.unwrap().stdout).into_owned()
        };
        let fingerprint = "f'0 $0";
        assert_eq!(sh(attach_script(&bdir, fingerprint)), "new\n");
        std::fs::write(script_path(&bdir), "echo '== wait' > build.log; exec sleep 30\n").unwrap();
        sh(launch_script(&bdir, fingerprint));
        let fp = std::fs::read_to_string(format!("{bdir}/build.fingerprint")).unwrap();
        assert_eq!(fp, fingerprint);
        let running = (0..100)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                parse_poll(&sh(poll_script(&bdir)))
            })
            .find(|p| p == &Poll::Running { stage: "wait".into() });
        assert!(running.is_some(), "the build runs and logs its stage");
        assert_eq!(sh(attach_script(&bdir, fingerprint)), "attached\n");
        assert_eq!(sh(attach_script(&bdir, "another")), "new\n", "another build stops it");
        assert_eq!(parse_poll(&sh(poll_script(&bdir))), Poll::Vanished { stage: "wait".into() });
    }
}
