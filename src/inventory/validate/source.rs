//! `[source]`: where the server's install comes from, and how it is built.

use super::Checker;
use crate::inventory::model::{Build, BuildMode, Host, Origin, Source};
use crate::inventory::raw::{RawBuildMode, RawSource};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

const DEFAULT_REV: &str = "master";
/// How long apply waits for a build by default: two hours.
const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
const KINDS_HINT: &str = "keep exactly one of `prebuilt`, `git`, `tarball` and `dir`";

impl Checker<'_> {
    /// `None` when `[source]` names no kind (reported here).
    pub(super) fn source(
        &mut self,
        spanned: &Spanned<RawSource>,
        hosts: &[Host],
        base_dir: &Path,
        home: Option<&Path>,
    ) -> Option<Source> {
        let s = spanned.get_ref();
        let mut kinds: Vec<(&str, &Spanned<String>)> =
            [("prebuilt", &s.prebuilt), ("git", &s.git), ("tarball", &s.tarball), ("dir", &s.dir)]
                .into_iter()
                .filter_map(|(key, value)| value.as_ref().map(|v| (key, v)))
                .collect();
        kinds.sort_by_key(|(_, value)| value.span().start);
        let Some(&(kind, value)) = kinds.first() else {
            self.error(
                spanned.span(),
                "[source] needs one of `prebuilt`, `git`, `tarball` or `dir`".to_string(),
                "`prebuilt = \"/path/to/install\"` ships a built install tree as it is; `git`, `tarball` or `dir` build from source",
            );
            return None;
        };
        for (other, value) in &kinds[1..] {
            self.error(
                value.span(),
                format!("[source] has both `{kind}` and `{other}`"),
                KINDS_HINT,
            );
        }

        if kind == "prebuilt" {
            for (key, span) in build_keys(s) {
                self.error(
                    span,
                    format!("`{key}` is only for builds from source"),
                    &format!("`prebuilt` ships an install tree as it is; remove `{key}`, or build from `git`, `tarball` or `dir`"),
                );
            }
            return Some(Source::Prebuilt { path: self.local_path(value, kind, base_dir, home) });
        }

        let origin = match kind {
            "git" => {
                self.check_git_word(value, "git url", "write the repository's URL, such as `https://github.com/postgres-x2/postgres-x2.git`");
                let rev = match &s.rev {
                    Some(rev) => {
                        self.check_git_word(
                            rev,
                            "rev",
                            "write a branch, tag or commit, such as `master`",
                        );
                        rev.get_ref().clone()
                    }
                    None => DEFAULT_REV.to_string(),
                };
                Origin::Git { url: value.get_ref().clone(), rev }
            }
            "tarball" => Origin::Tarball(self.local_path(value, kind, base_dir, home)),
            _ => Origin::Dir(self.local_path(value, kind, base_dir, home)),
        };
        if let (Some(rev), false) = (&s.rev, kind == "git") {
            self.error(
                rev.span(),
                "`rev` is only for `git`".to_string(),
                &format!("a {kind} is built as it is; remove `rev`"),
            );
        }

        let configure_args = strings(s.configure_args.as_ref());
        for arg in s.configure_args.iter().flat_map(|a| a.get_ref()) {
            let value = arg.get_ref();
            if value.contains(['\n', '\0']) {
                self.error(
                    arg.span(),
                    "a configure argument contains a newline or NUL".to_string(),
                    "write each argument on one line",
                );
            } else if value == "--prefix" || value.starts_with("--prefix=") {
                self.error(
                    arg.span(),
                    "`--prefix` is set by pgxc-deploy".to_string(),
                    "pgxc-deploy passes `--prefix` from `install_prefix`; set `install_prefix` in [cluster] or [hosts.*] instead",
                );
            }
        }
        let patches = s
            .patches
            .iter()
            .flat_map(|p| p.get_ref())
            .map(|patch| self.local_path(patch, "patches", base_dir, home))
            .collect();
        for line in s.pre_configure.iter().flat_map(|l| l.get_ref()) {
            if line.get_ref().contains('\0') {
                self.error(
                    line.span(),
                    "a pre_configure line contains NUL".to_string(),
                    "write shell command lines without NUL characters",
                );
            }
        }

        let mode = match s.build.as_ref().map(|b| *b.get_ref()) {
            Some(RawBuildMode::EveryHost) => BuildMode::EveryHost,
            Some(RawBuildMode::Once) | None => BuildMode::Once,
        };
        let build_host = match &s.build_host {
            Some(host) => {
                let host_names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
                if !host_names.contains(&host.get_ref().as_str()) {
                    self.unknown_host(host, &host_names);
                }
                if mode == BuildMode::EveryHost {
                    self.error(
                        host.span(),
                        "`build_host` is only used with `build = \"once\"`".to_string(),
                        "with `build = \"every-host\"` every host builds; remove `build_host`",
                    );
                }
                host.get_ref().clone()
            }
            None => hosts.first().map(|h| h.name.clone()).unwrap_or_default(),
        };
        let make_jobs = match &s.make_jobs {
            Some(jobs) if *jobs.get_ref() == 0 => {
                self.error(
                    jobs.span(),
                    "make_jobs must be greater than 0".to_string(),
                    "write a number of parallel jobs such as `make_jobs = 4`, or remove it to use the build host's CPU count",
                );
                None
            }
            jobs => jobs.as_ref().map(|j| *j.get_ref()),
        };

        let timeout = match &s.build_timeout {
            Some(t) if *t.get_ref() == 0 => {
                self.error(
                    t.span(),
                    "build_timeout must be greater than 0".to_string(),
                    "write the most seconds apply waits for a build, such as `build_timeout = 7200`",
                );
                DEFAULT_BUILD_TIMEOUT
            }
            Some(t) => Duration::from_secs(*t.get_ref()),
            None => DEFAULT_BUILD_TIMEOUT,
        };

        Some(Source::Build(Build {
            origin,
            configure_args,
            patches,
            pre_configure: strings(s.pre_configure.as_ref()),
            mode,
            build_host,
            make_jobs,
            timeout,
        }))
    }

    /// A git URL or revision, passed to git as one argument: not empty, and nothing git could
    /// take for an option or a second argument.
    fn check_git_word(&mut self, value: &Spanned<String>, what: &str, hint: &str) {
        let v = value.get_ref();
        let problem = if v.is_empty() {
            Some("is empty".to_string())
        } else if v.starts_with('-') {
            Some("starts with `-`".to_string())
        } else {
            v.chars()
                .find(|c| c.is_whitespace() || c.is_control())
                .map(|c| format!("contains {}", crate::inventory::model::describe_char(c)))
        };
        if let Some(problem) = problem {
            self.error(value.span(), format!("{what} `{v}` {problem}"), hint);
        }
    }
}

/// The keys that only make sense when building from source, with where they are written.
fn build_keys(s: &RawSource) -> Vec<(&'static str, Range<usize>)> {
    let mut keys = vec![
        ("rev", s.rev.as_ref().map(Spanned::span)),
        ("configure_args", s.configure_args.as_ref().map(Spanned::span)),
        ("patches", s.patches.as_ref().map(Spanned::span)),
        ("pre_configure", s.pre_configure.as_ref().map(Spanned::span)),
        ("build", s.build.as_ref().map(Spanned::span)),
        ("build_host", s.build_host.as_ref().map(Spanned::span)),
        ("make_jobs", s.make_jobs.as_ref().map(Spanned::span)),
    ];
    keys.sort_by_key(|(_, span)| span.as_ref().map(|s| s.start));
    keys.into_iter().filter_map(|(key, span)| span.map(|s| (key, s))).collect()
}

fn strings(list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
    list.iter().flat_map(|l| l.get_ref()).map(|s| s.get_ref().clone()).collect()
}

#[cfg(test)]
mod tests {
    use crate::inventory::model::{BuildMode, Origin, Source};
    use crate::inventory::parse_with_env;
    use std::path::{Path, PathBuf};

    const HOSTS: &str = "[hosts.db1]\naddress = \"db1\"\n[hosts.db2]\naddress = \"db2\"\n";

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/tester".into()),
            "PGXC_HOME" => Some("/opt/pgxc-build".into()),
            _ => None,
        }
    }

    fn source(table: &str) -> Result<Option<Source>, Vec<String>> {
        let text = format!("{HOSTS}[source]\n{table}");
        match parse_with_env(&text, Path::new("inv/test.toml"), &env) {
            Ok(inv) => Ok(inv.source),
            Err(err) => Err(err.diagnostics.iter().map(|d| d.message.clone()).collect()),
        }
    }

    fn build(table: &str) -> crate::inventory::model::Build {
        match source(table) {
            Ok(Some(Source::Build(build))) => build,
            other => panic!("{table}: {other:?}"),
        }
    }

    #[test]
    fn prebuilt_paths() {
        let path = |v: &str| match source(&format!("prebuilt = \"{v}\"\n")) {
            Ok(Some(Source::Prebuilt { path })) => path,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(path("$PGXC_HOME"), PathBuf::from("/opt/pgxc-build"));
        assert_eq!(path("~/pgxc"), PathBuf::from("/home/tester/pgxc"));
        assert_eq!(path("build/install"), PathBuf::from("inv/build/install"));
    }

    #[test]
    fn origins_and_defaults() {
        let b = build("git = \"https://example.com/pgxc.git\"\n");
        assert_eq!(
            b.origin,
            Origin::Git { url: "https://example.com/pgxc.git".into(), rev: "master".into() }
        );
        assert_eq!((b.mode, b.build_host.as_str(), b.make_jobs), (BuildMode::Once, "db1", None));
        assert!(b.configure_args.is_empty() && b.patches.is_empty() && b.pre_configure.is_empty());
        let b = build("tarball = \"postgresql-15.18.tar.bz2\"\nbuild = \"every-host\"\n");
        assert_eq!(b.origin, Origin::Tarball(PathBuf::from("inv/postgresql-15.18.tar.bz2")));
        assert_eq!(b.mode, BuildMode::EveryHost);
        let b = build("dir = \"../postgres-x2\"\nbuild_host = \"db2\"\n");
        assert_eq!(b.origin, Origin::Dir(PathBuf::from("inv/../postgres-x2")));
        assert_eq!(b.build_host, "db2");
    }

    #[test]
    fn rules() {
        let cases = [
            ("make_jobs = 2\n", "[source] needs one of `prebuilt`, `git`, `tarball` or `dir`"),
            ("dir = \"src\"\nrev = \"v1\"\n", "`rev` is only for `git`"),
            (
                "dir = \"src\"\nconfigure_args = [\"--prefix=/x\"]\n",
                "`--prefix` is set by pgxc-deploy",
            ),
            (
                "dir = \"src\"\nbuild = \"every-host\"\nbuild_host = \"db2\"\n",
                "`build_host` is only used with `build = \"once\"`",
            ),
            ("git = \"--upload-pack=x\"\n", "git url `--upload-pack=x` starts with `-`"),
            ("git = \"u\"\nrev = \"a b\"\n", "rev `a b` contains a space"),
            ("dir = \"src\"\nbuild_host = \"db9\"\n", "unknown host `db9`"),
            ("prebuilt = \"x\"\nmake_jobs = 3\n", "`make_jobs` is only for builds from source"),
        ];
        for (table, message) in cases {
            assert_eq!(source(table), Err(vec![message.to_string()]), "{table}");
        }
        let every =
            source("prebuilt = \"x\"\ngit = \"u\"\ndir = \"d\"\nrev = \"r\"\n").unwrap_err();
        assert_eq!(
            every,
            [
                "[source] has both `prebuilt` and `git`",
                "[source] has both `prebuilt` and `dir`",
                "`rev` is only for builds from source",
            ]
        );
    }
}
