//! Runs plan [`Step`]s on their hosts: each [`Action`] becomes remote scripts (written by
//! [`crate::remote::steps`] and [`crate::remote::build`], run as the cluster's user) and
//! uploads over the host's one session. A step fails with the step's name and the end of what
//! the remote command printed on stderr.

use std::collections::BTreeMap;

use std::time::{Duration, Instant};

use super::{Cause, StepError, report};
use crate::inventory::Build;
use crate::plan::sql;
use crate::plan::state::{INIT_MARKER, PgxcNodeRow};
use crate::plan::step::{Action, Rejoin, Step};
use crate::remote::build::{self, Poll};
use crate::remote::steps;
use crate::secret::Secret;
use crate::shell::{Become, Script};
use crate::source::{BuildInputs, Layout};
use crate::transport::{ExitStatus, Fleet, Output, Session};

/// What running steps on a host needs besides the step itself.
#[derive(Debug, Clone)]
pub struct HostEnv {
    pub as_user: Become,
    pub install_prefix: String,
    /// Where node data directories go (and builds from source happen).
    pub data_root: String,
    /// The install's library directory (for its libpq), put on LD_LIBRARY_PATH.
    pub lib_dir: String,
    /// The host's password file, exported as PGPASSFILE to every command (and so to every
    /// server started): standbys, pg_basebackup and coordinators read their password there.
    pub passfile: Option<String>,
}

/// An install to ship: its archive, and where its binaries and libraries are in it.
#[derive(Debug, Clone)]
pub struct Shipment<'a> {
    pub archive: &'a [u8],
    pub layout: &'a Layout,
    /// SHA-256 of `archive`, hex.
    pub sha256: String,
}

/// Everything steps share during one apply.
pub struct StepContext<'a> {
    pub fleet: &'a Fleet,
    pub hosts: BTreeMap<String, HostEnv>,
    /// The install to ship, for [`Action::ShipInstall`].
    pub archive: Option<Shipment<'a>>,
    /// The build from source and its local inputs, for [`Action::Build`].
    pub build: Option<(&'a Build, &'a BuildInputs)>,
    /// The cluster's password and its OS user, for [`Action::WritePassfile`] and initdb.
    pub password: Option<(&'a Secret, &'a str)>,
}

impl<'a> StepContext<'a> {
    /// For steps that need no install, build or password (operating a deployed cluster).
    pub fn plain(fleet: &'a Fleet, hosts: BTreeMap<String, HostEnv>) -> StepContext<'a> {
        StepContext { fleet, hosts, archive: None, build: None, password: None }
    }
}

/// How many lines of a failed command's stderr an error shows.
const TAIL_LINES: usize = 15;

/// The whole install under `host`'s install prefix, as a tar archive (to ship a build to the
/// other hosts).
pub async fn fetch_install(host: &str, cx: &StepContext<'_>) -> Result<Vec<u8>, StepError> {
    let env = cx.hosts.get(host).expect("the build host is in the context");
    let session = cx.fleet.session(host).await.map_err(|e| StepError::new("connect", e))?;
    let remote = Remote { session: &session, env };
    Ok(remote.run("fetch install", &steps::pack_install(&env.install_prefix), None).await?.stdout)
}

/// Run one step to completion, shown on the live line while it runs.
pub async fn run_step(step: &Step, cx: &StepContext<'_>) -> Result<Output, StepError> {
    let live = report::running(step.to_string());
    let started = Instant::now();
    let done = run_action(step, cx, &live).await;
    if let (Action::Redistribute(r), Ok(_)) = (&step.action, &done) {
        redistributed(r.bytes, started.elapsed());
    }
    done
}

/// Bytes moved by the redistributions of this run so far, and the time they took: their pace
/// gives the next one's expected time (the live line's ETA).
static MOVED: std::sync::Mutex<(u64, Duration)> = std::sync::Mutex::new((0, Duration::ZERO));

fn redistributed(bytes: Option<u64>, took: Duration) {
    if let Some(bytes) = bytes {
        let mut moved = MOVED.lock().unwrap_or_else(|e| e.into_inner());
        moved.0 += bytes;
        moved.1 += took;
    }
}

/// How long moving `bytes` should take at the pace of the redistributions before it.
fn expected_redistribution(bytes: Option<u64>) -> Option<Duration> {
    let (moved, took) = *MOVED.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = bytes?;
    (moved > 0).then(|| took.mul_f64(bytes as f64 / moved as f64))
}

async fn run_action(
    step: &Step,
    cx: &StepContext<'_>,
    live: &report::Running,
) -> Result<Output, StepError> {
    let env = cx.hosts.get(&step.host).expect("every step's host is in the context");
    let session = cx.fleet.session(&step.host).await.map_err(|e| StepError::new("connect", e))?;
    let remote = Remote { session: &session, env };
    match &step.action {
        Action::Build { fingerprint } => {
            let (build, inputs) = cx.build.expect("a build step comes with its inputs");
            run_build(&remote, &step.host, build, inputs, fingerprint, live).await
        }
        Action::WritePassfile { path } => {
            let (secret, user) = cx.password.expect("a password file step comes with a password");
            let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
            remote.run("password file", &steps::make_dir(parent), None).await?;
            remote.upload(path, &secret.pgpass(user), 0o600).await
        }
        Action::SetPassword { psql, scram } => {
            let (secret, user) = cx.password.expect("a password change comes with a password");
            let sql = secret.alter_role_sql(user, *scram);
            let run = steps::psql_stdin(psql, true);
            remote.run("password", &run, Some(sql.as_bytes())).await.map_err(|e| {
                e.hinted(
                    "the password files still hold the old password; if the node is down, start \
                     it (`pgxc-deploy start INVENTORY`), then apply again: it repeats the change",
                )
            })
        }
        Action::ShipInstall { fingerprint } => {
            let shipment = cx.archive.as_ref().expect("an install step comes with its archive");
            let script = steps::ship_install(
                &env.install_prefix,
                &shipment.sha256,
                &shipment.layout.record(),
                fingerprint,
            );
            remote.run("install", &script, Some(shipment.archive)).await
        }
        Action::Init { argv, pwfile, data_dir, staging, files, foreign } => {
            if *foreign {
                return Err(StepError::found(
                    "init",
                    format!(
                        "{data_dir} exists but pgxc-deploy did not create it (no {INIT_MARKER}); \
                         move it away or remove it, then run apply again"
                    ),
                ));
            }
            let parent =
                data_dir.rsplit_once('/').map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
            // initdb's password file: written just before, removed just after.
            let pwfile = pwfile.as_deref();
            if let Some(pwfile) = pwfile {
                let (secret, _) = cx.password.expect("initdb --pwfile comes with a password");
                remote.run("init", &steps::make_dir(parent), None).await?;
                remote.upload(pwfile, &secret.pwfile(), 0o600).await?;
            }
            let prepare = steps::prepare_init(argv, staging, parent);
            let prepared = remote.run_watching("init", &prepare, &|share| live.done(share)).await;
            if let Some(pwfile) = pwfile {
                remote.run("init", &steps::remove_pwfile(pwfile), None).await?;
            }
            prepared?;
            upload_files(&remote, staging, files).await?;
            remote.run("init", &steps::finish_init(staging, data_dir), None).await
        }
        Action::JoinNode(join) => {
            let script = crate::shell::Script::new().lines(steps::join_node(join));
            let joined = remote.run("join", &script, None).await;
            joined.map_err(|e| with_log_hint(e, &join.log))
        }
        Action::Rejoin(rejoin) => {
            let Rejoin { stop, status, rewind, init, data_dir, staging, files } = &**rejoin;
            let node = step.node.as_deref().unwrap_or_default();
            // Stop it if it runs (stale PID files are cleared first: they name no server).
            let stop = steps::stop_if_running(data_dir, stop, status);
            remote.run("rebuild: stop", &stop, None).await?;
            if let Some(rewind) = rewind {
                let script = steps::rewind(&rewind.checkpoint, &rewind.rewind, data_dir);
                match remote.run("rebuild: pg_rewind", &script, None).await {
                    Ok(out) => {
                        upload_files(&remote, data_dir, files).await?;
                        let said = [out.stderr, out.stdout].concat();
                        let said = String::from_utf8_lossy(&said);
                        // The last line pg_rewind said (not the single-user checkpoint's
                        // prompt).
                        let said_line =
                            |l: &&str| !l.trim().is_empty() && !l.starts_with("backend>");
                        let last = said.lines().rfind(said_line).unwrap_or("");
                        report::note(&step.host, node, &format!("rewound with pg_rewind ({last})"));
                        return Ok(ok_output());
                    }
                    Err(e) => report::note(
                        &step.host,
                        node,
                        &format!(
                            "pg_rewind did not work ({}); copying the new primary with pg_basebackup instead",
                            e.message().lines().last().unwrap_or_default().trim()
                        ),
                    ),
                }
            }
            let parent =
                data_dir.rsplit_once('/').map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
            let prepare = steps::prepare_init(init, staging, parent);
            remote
                .run_watching("rebuild: pg_basebackup", &prepare, &|share| live.done(share))
                .await?;
            upload_files(&remote, staging, files).await?;
            remote.run("rebuild", &steps::finish_rebuild(staging, data_dir), None).await?;
            report::note(&step.host, node, "copied from the new primary with pg_basebackup");
            Ok(ok_output())
        }
        Action::WriteFile { data_dir, file, .. } => {
            remote
                .upload(&format!("{data_dir}/{}", file.name), file.content.as_bytes(), file.mode)
                .await
        }
        Action::Start { argv, data_dir, log, ready } => {
            let started = remote.run("start", &steps::start(data_dir, argv, ready), None).await;
            started.map_err(|e| with_log_hint(e, log))
        }
        Action::Stop { argv, data_dir, status, remove, then, .. } => {
            remote.run("stop", &steps::stop(data_dir, argv, status, remove, then), None).await
        }
        Action::RemoveFile { path } => remote.run("remove", &steps::remove_file(path), None).await,
        Action::KillLeftovers { data_dir } => {
            remote.run("fence", &steps::fence(data_dir), None).await
        }
        Action::Remove { data_dir, staging } => {
            let script = steps::remove_script(data_dir.as_deref(), staging.as_deref());
            remote.run("remove", &script, None).await
        }
        Action::Promote { argv, data_dir, primary, after } => {
            let after = after.as_ref().map(|(argv, what)| (argv.as_slice(), what.as_str()));
            remote.run("promote", &steps::promote(data_dir, argv, primary, after), None).await
        }
        Action::Check { argv, .. } => remote.run("check", &steps::run(argv), None).await,
        Action::Redistribute(r) => {
            if let Some(expected) = expected_redistribution(r.bytes) {
                live.expect(expected);
            }
            let script = crate::shell::Script::new().lines(steps::redistribute(r));
            remote.run("redistribute", &script, None).await
        }
        Action::Reload { argv, .. } => remote.run("reload", &steps::run(argv), None).await,
        Action::Restart { stop, data_dir, status, start, log, ready, .. } => {
            let script = steps::restart_script(data_dir, stop, status, start, ready);
            remote.run("restart", &script, None).await.map_err(|e| with_log_hint(e, log))
        }
        Action::Await { argv, what, tenths } => {
            remote.run("await", &steps::wait_for(argv, what, *tenths), None).await
        }
        Action::Register { psql, want, fresh_sql } => {
            let node = step.node.as_deref().unwrap_or_default();
            let out = remote.run("register", &steps::read_pgxc_node(psql), None).await?;
            let have = parse_pgxc_node(&out.stdout).map_err(|message| {
                StepError::found("register", format!("cannot read pgxc_node: {message}"))
            })?;
            // A fresh coordinator lists only itself: its template's SQL registers the rest
            // (a Postgres-XL datanode has none: the statements from what it lists do).
            let fresh = have.len() == 1 && have[0].name == node && !fresh_sql.is_empty();
            let sql = if fresh { fresh_sql.clone() } else { sql::registration(node, want, &have) };
            let run = steps::psql_stdin(psql, false);
            remote.run("register", &run, Some(sql.as_bytes())).await
        }
    }
}

/// Write `files` into `dir`, each atomically with its mode.
async fn upload_files(
    remote: &Remote<'_>,
    dir: &str,
    files: &[crate::plan::step::FileContent],
) -> Result<(), StepError> {
    for file in files {
        remote.upload(&format!("{dir}/{}", file.name), file.content.as_bytes(), file.mode).await?;
    }
    Ok(())
}

/// A step's output when it has nothing to show.
fn ok_output() -> Output {
    Output { stdout: vec![], stderr: vec![], status: ExitStatus::Code(0) }
}

/// How often a running build is polled.
const BUILD_POLL: Duration = Duration::from_secs(2);

/// Upload a build's inputs, start it detached and poll it until it ends, showing each new
/// stage. A failure shows the end of the log and where the whole log is on the host.
async fn run_build(
    remote: &Remote<'_>,
    host: &str,
    build: &Build,
    inputs: &BuildInputs,
    fingerprint: &str,
    live: &report::Running,
) -> Result<Output, StepError> {
    let prefix = &remote.env.install_prefix;
    let dir = &build::build_dir(&remote.env.data_root);
    let attach = build::attach_script(dir, fingerprint);
    let attached = remote.run("build", &attach, None).await?;
    if String::from_utf8_lossy(&attached.stdout).trim() == "attached" {
        report::build_stage(host, "still running from an earlier apply: waiting for it");
    } else {
        if let Some(archive) = &inputs.archive {
            remote.upload(&build::archive_path(dir), archive, 0o600).await?;
        }
        for (i, (_, body)) in inputs.patches.iter().enumerate() {
            remote.upload(&build::patch_path(dir, i), body, 0o600).await?;
        }
        let (strip, patches) = (inputs.strip_components, inputs.patches.len());
        let script = build::build_script(build, prefix, dir, fingerprint, strip, patches);
        remote.upload(&build::script_path(dir), script.as_bytes(), 0o600).await?;
        let launch = build::launch_script(dir, fingerprint);
        remote.run("build", &launch, None).await?;
    }
    let started = Instant::now();
    let mut shown = String::new();
    loop {
        let poll = build::poll_script(dir);
        let polled = remote.run("build", &poll, None);
        if started.elapsed() > build.timeout {
            return Err(StepError::found(
                format!("build ({shown})"),
                format!(
                    "still running after {} s ([source] build_timeout); it goes on, detached, \
                     on {host}. Look at its log ({}); if it is only slow, raise build_timeout \
                     and apply again (it waits for the same build)",
                    build.timeout.as_secs(),
                    build::log_path(dir)
                ),
            ));
        }
        let polled = String::from_utf8_lossy(&polled.await?.stdout).into_owned();
        if let Some(share) = build::parse_share(&polled) {
            live.done(share);
        }
        let (stage, ended) = match build::parse_poll(&polled) {
            Poll::Running { stage } => (stage, None),
            Poll::Ended { status, stage } => (stage, Some(status)),
            Poll::Vanished { stage } => (stage, Some(-1)),
        };
        if !stage.is_empty() && stage != shown {
            let secs = started.elapsed().as_secs();
            report::build_stage(host, &format!("{stage} ({}m{:02}s)", secs / 60, secs % 60));
            shown = stage;
        }
        match ended {
            Some(0) => {
                return Ok(Output { stdout: vec![], stderr: vec![], status: ExitStatus::Code(0) });
            }
            Some(status) => {
                let tail = build::tail_script(dir);
                let tail = remote.run("build", &tail, None);
                let tail = tail.await.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
                let how = if status < 0 {
                    "stopped from outside".to_string()
                } else {
                    format!("exit {status}")
                };
                return Err(StepError::found(
                    format!("build ({shown})"),
                    format!(
                        "{how}; the end of its log:\n{}\n  full log on {host}: {}",
                        tail.unwrap_or_default().trim_end(),
                        build::log_path(dir)
                    ),
                ));
            }
            None if crate::interrupt::interrupted() => {
                return Err(StepError::found(
                    format!("build ({shown})"),
                    format!(
                        "interrupted: the build goes on, detached, on {host} (log: {}); \
                         apply again waits for it",
                        build::log_path(dir)
                    ),
                ));
            }
            None => tokio::time::sleep(BUILD_POLL).await,
        }
    }
}

/// Point a failed start at the server's log.
fn with_log_hint(err: StepError, log: &str) -> StepError {
    err.hinted(format!("see the server's log on the host: {log}"))
}

/// A coordinator's pgxc_node as psql printed it; a row that does not parse is an error, as in
/// the probe (registering against a misread catalog could create a node that exists).
fn parse_pgxc_node(out: &[u8]) -> Result<Vec<PgxcNodeRow>, String> {
    let text = String::from_utf8_lossy(out);
    let rows = text.lines().filter(|l| !l.is_empty());
    rows.map(|l| PgxcNodeRow::parse(l).map_err(|e| format!("{e}: {l:?}"))).collect()
}

/// One host's session, running scripts as the cluster's user with the install's environment.
struct Remote<'a> {
    session: &'a Session,
    env: &'a HostEnv,
}

impl Remote<'_> {
    async fn run(
        &self,
        step: &str,
        script: &Script,
        stdin: Option<&[u8]>,
    ) -> Result<Output, StepError> {
        let script =
            steps::in_host_env(script, &self.env.lib_dir, self.env.passfile.as_deref()).to_string();
        let command = self.env.as_user.wrap_guarded(&script, &self.env.data_root);
        let out = self
            .session
            .run_with_stdin(&command, stdin)
            .await
            .map_err(|e| StepError::new(step, e))?;
        check(step, out)
    }

    /// Like [`Remote::run`], handing `share` what a pg_basebackup `--progress` line on stderr
    /// says is done ([`basebackup_share`]).
    async fn run_watching(
        &self,
        step: &str,
        script: &Script,
        share: &(dyn Fn(f64) + Send + Sync),
    ) -> Result<Output, StepError> {
        let script =
            steps::in_host_env(script, &self.env.lib_dir, self.env.passfile.as_deref()).to_string();
        let command = self.env.as_user.wrap_guarded(&script, &self.env.data_root);
        let on_data = |stderr: bool, data: &[u8]| {
            if let Some(done) = stderr.then(|| basebackup_share(data)).flatten() {
                share(done);
            }
        };
        let out = self.session.run_streaming(&command, &on_data).await;
        check(step, out.map_err(|e| StepError::new(step, e))?)
    }

    async fn upload(&self, path: &str, content: &[u8], mode: u32) -> Result<Output, StepError> {
        let out = self.session.upload(path, content, mode, &self.env.as_user).await;
        check("write", out.map_err(|e| StepError::new("write", e))?)
    }
}

/// The share done that the last `DONE/TOTAL kB (P%)` line of pg_basebackup's `--progress` in
/// `data` says (at most 99%: the WAL to the end of the backup follows).
fn basebackup_share(data: &[u8]) -> Option<f64> {
    let text = String::from_utf8_lossy(data);
    text.split(['\n', '\r']).rev().find_map(|line| {
        let (counts, _) = line.split_once(" kB")?;
        let (done, total) = counts.trim().split_once('/')?;
        let (done, total): (f64, f64) = (done.parse().ok()?, total.parse().ok()?);
        (total > 0.0).then(|| (done / total).min(0.99))
    })
}

/// A non-zero exit is a failed step; its message is the end of stderr (or stdout).
fn check(step: &str, out: Output) -> Result<Output, StepError> {
    if out.status == ExitStatus::Code(0) {
        return Ok(out);
    }
    let text = if out.stderr.is_empty() { &out.stdout } else { &out.stderr };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    Err(StepError::new(step, Cause::Exit { status: out.status, tail }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_basebackup_progress_lines_give_the_share_done() {
        let data = b"1024/4096 kB (25%), 0/1 tablespace\n2048/4096 kB (50%), 0/1 tablespace\n";
        assert_eq!(basebackup_share(data), Some(0.5));
        assert_eq!(basebackup_share(b"\r4096/4096 kB (100%), 1/1 tablespace"), Some(0.99));
        assert_eq!(basebackup_share(b"pg_basebackup: error: could not connect\n"), None);
        assert_eq!(basebackup_share(b"0/0 kB (100%)\n"), None);
    }

    #[test]
    fn the_register_step_refuses_a_pgxc_node_it_cannot_read_instead_of_dropping_rows() {
        let rows =
            parse_pgxc_node(b"coord1 C 127.0.10.1 5432 f f\ndn1 D 127.0.10.2 15432 t t\n").unwrap();
        assert_eq!(rows.len(), 2);
        let err = parse_pgxc_node(b"coord1 C 127.0.10.1 5432 f f\ndn1 D 127.0.10.2\n").unwrap_err();
        assert_eq!(err, "bad pgxc_node row: \"dn1 D 127.0.10.2\"");
    }
}
