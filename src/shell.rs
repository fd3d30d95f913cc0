//! Remote command lines, built from values. PURE: no I/O.
//!
//! SSH `exec` takes one string that the remote user's shell parses, so quoting is our job. Every
//! remote command line in pgxc-deploy is produced here: [`Cmd`] quotes each argument with
//! [`quote`], and [`Script`] joins commands and exports environment variables. [`Lines`] is for
//! remote scripts with their own control flow (loops, traps, background groups): values enter
//! it as quoted shell variables and functions, so that its loops and conditions are constant
//! text. The only unquoted text is what [`Cmd::raw`] / [`Script::raw`] / [`Lines::raw`] take,
//! and every caller of those says why.

use std::fmt;

/// Quote `s` for a POSIX shell so that it is read back as exactly one word, verbatim.
///
/// Words made only of characters no shell treats specially are left as they are (easier to
/// read in logs); everything else is wrapped in single quotes, inside which only `'` itself
/// needs care: it becomes `'\''`.
pub fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// One command: a program and its arguments, each quoted when rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    words: Vec<String>,
}

impl Cmd {
    /// A command running `program` (quoted like any argument).
    pub fn new(program: impl AsRef<str>) -> Cmd {
        Cmd { words: vec![quote(program.as_ref())] }
    }

    /// Append one argument, quoted.
    pub fn arg(mut self, arg: impl AsRef<str>) -> Cmd {
        self.words.push(quote(arg.as_ref()));
        self
    }

    /// Append several arguments, each quoted.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.words.extend(args.into_iter().map(|a| quote(a.as_ref())));
        self
    }

    /// Append shell text unquoted (redirections, `"$VAR"`). Callers pass only constants.
    pub fn raw(mut self, text: &str) -> Cmd {
        self.words.push(text.to_string());
        self
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words.join(" "))
    }
}

/// Several commands run in order, stopping at the first failure, with an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    env: Vec<(String, String)>,
    path_prepend: Option<String>,
    lines: Vec<String>,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    /// Export `name=value` before the commands run. `name` must be a valid variable name.
    pub fn env(mut self, name: &str, value: impl AsRef<str>) -> Script {
        assert!(is_var_name(name), "invalid environment variable name {name:?}");
        self.env.push((name.to_string(), value.as_ref().to_string()));
        self
    }

    /// Put `dir` first on PATH (remote shells are non-interactive and read no profile).
    pub fn path_prepend(mut self, dir: impl AsRef<str>) -> Script {
        self.path_prepend = Some(dir.as_ref().to_string());
        self
    }

    /// Run `cmd` (after the previous ones succeeded).
    pub fn cmd(mut self, cmd: Cmd) -> Script {
        self.lines.push(cmd.to_string());
        self
    }

    /// Run shell text as it is: the user's own command line given to `exec` as one argument.
    pub fn raw(mut self, text: &str) -> Script {
        self.lines.push(text.to_string());
        self
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, value) in &self.env {
            parts.push(format!("export {name}={}", quote(value)));
        }
        if let Some(dir) = &self.path_prepend {
            parts.push(format!("export PATH={}:\"$PATH\"", quote(dir)));
        }
        match self.lines.len() {
            0 => {}
            1 => parts.push(self.lines[0].clone()),
            // A group, so that `a && b` is not split by a newline inside a user's line.
            _ => parts.push(
                self.lines.iter().map(|l| format!("{{ {l}\n}}")).collect::<Vec<_>>().join(" && "),
            ),
        }
        f.write_str(&parts.join("; "))
    }
}

/// Shell lines run one after another whatever each one's status, as a script file runs (unlike
/// [`Script`], which stops at the first failure): for scripts with their own control flow.
/// Values enter only quoted, as variables ([`Lines::set`]), functions ([`Lines::function`])
/// or commands ([`Lines::cmd`]), so the loops and conditions around them ([`Lines::raw`]) are
/// constant text that refers to them (`"$d"`, `is_ready`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    lines: Vec<String>,
}

impl Lines {
    pub fn new() -> Lines {
        Lines::default()
    }

    /// `name=value`: set the shell variable `name` (not exported) to `value`, quoted.
    pub fn set(mut self, name: &str, value: impl AsRef<str>) -> Lines {
        assert!(is_var_name(name), "invalid shell variable name {name:?}");
        self.lines.push(format!("{name}={}", quote(value.as_ref())));
        self
    }

    /// Define the shell function `name` as `cmd`, so that constant text can run `cmd` where a
    /// line cannot go (`until is_ready >/dev/null 2>&1; do`).
    pub fn function(mut self, name: &str, cmd: Cmd) -> Lines {
        assert!(is_var_name(name), "invalid shell function name {name:?}");
        self.lines.push(format!("{name}() {{\n{cmd}\n}}"));
        self
    }

    /// Run `cmd` on a line of its own.
    pub fn cmd(mut self, cmd: Cmd) -> Lines {
        self.lines.push(cmd.to_string());
        self
    }

    /// Shell text as it is: constant control flow and redirections. Callers pass only constants.
    pub fn raw(mut self, text: &str) -> Lines {
        self.lines.push(text.to_string());
        self
    }

    /// The lines of `other`, after these.
    pub fn lines(mut self, other: Lines) -> Lines {
        self.lines.extend(other.lines);
        self
    }
}

impl fmt::Display for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

impl Script {
    /// Run `lines` (after the previous commands succeeded); the script goes on if the last of
    /// them succeeded.
    pub fn lines(mut self, lines: Lines) -> Script {
        self.lines.push(lines.to_string());
        self
    }
}

/// How a command reaches the account that owns the cluster ("become", in Ansible's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Become {
    /// The login user is the cluster's user.
    No,
    /// Logged in as root: `runuser` needs no password and no sudo configuration.
    Runuser(String),
    /// Logged in as another account: `sudo -n` (fails instead of prompting for a password).
    Sudo(String),
}

impl Become {
    /// What it takes for `login` to run commands as `owner`.
    pub fn for_users(login: &str, owner: &str) -> Become {
        match login {
            l if l == owner => Become::No,
            "root" => Become::Runuser(owner.to_string()),
            _ => Become::Sudo(owner.to_string()),
        }
    }

    /// `script` wrapped so that it runs as the cluster's user, in a POSIX shell.
    pub fn wrap(&self, script: &str) -> String {
        let cmd = match self {
            Become::No => return script.to_string(),
            Become::Runuser(user) => Cmd::new("runuser").arg("-u").arg(user),
            Become::Sudo(user) => Cmd::new("sudo").arg("-n").arg("-u").arg(user),
        };
        // The login user's working directory (/root) is often closed to the cluster's user.
        cmd.arg("--").arg("sh").arg("-c").arg(format!("cd / && {script}")).to_string()
    }
}

/// The steps lock under a host's data root: every step a pgxc-deploy runs there holds it shared
/// for as long as it runs; the cluster lock waits until it can take it alone, so a command
/// never starts while steps of an earlier one (killed, its connection lost) still run.
pub const STEPS_LOCK: &str = ".pgxc-deploy.steps";

/// How often a guarded step checks that its SSH connection is still there.
const GUARD_POLL: &str = "0.1";

impl Become {
    /// [`Become::wrap`], for a plan step: `script` also ends with the SSH connection. Without a
    /// terminal sshd leaves a command running when its client goes away (the command is
    /// orphaned), so a killed apply would leave initdb and the like running while the next
    /// apply redoes their work. Here the script runs in a process group of its own, and a
    /// watcher kills that group once the sshd process of the connection (the login shell's
    /// parent, passed in as `$1`) is gone. While it runs it holds [`STEPS_LOCK`] under
    /// `data_root` shared; the script itself does not inherit it (a server it starts would hold
    /// it forever; a data root that does not exist yet is not locked).
    pub fn wrap_guarded(&self, script: &str, data_root: &str) -> String {
        let lock = format!("{data_root}/{STEPS_LOCK}");
        let guard = format!(
            "sshd=$1\n\
             if {{ command exec 8>>{lock}; }} 2>/dev/null; then flock -s 8; fi\n\
             exec 3<&0\n\
             setsid sh -c {script} <&3 3<&- 8>&- &\n\
             child=$!\n\
             exec 3<&-\n\
             (while kill -0 \"$child\" 2>/dev/null; do\n\
             \x20 [ -d \"/proc/$sshd\" ] || {{ kill -KILL \"-$child\"; exit 0; }}\n\
             \x20 sleep {GUARD_POLL}\n\
             done) </dev/null >/dev/null 2>&1 8>&- &\n\
             watch=$!\n\
             wait \"$child\"\n\
             status=$?\n\
             kill \"$watch\" 2>/dev/null\n\
             exit \"$status\"",
            lock = quote(&lock),
            script = quote(script),
        );
        // `$PPID` is the login shell's parent, the connection's sshd: expanded there, unquoted.
        let as_user = match self {
            Become::No => Cmd::new("sh").arg("-c").arg(&guard),
            Become::Runuser(user) => Cmd::new("runuser").arg("-u").arg(user),
            Become::Sudo(user) => Cmd::new("sudo").arg("-n").arg("-u").arg(user),
        };
        let cmd = match self {
            Become::No => as_user,
            _ => as_user.arg("--").arg("sh").arg("-c").arg(format!("cd / && {guard}")),
        };
        cmd.arg("guard").raw("\"$PPID\"").to_string()
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guarded script under /bin/sh, as the login shell: its parent plays sshd.
    fn run_guarded(script: &str, root: &str, stdin: &[u8]) -> std::process::Output {
        use std::io::Write as _;
        let guarded = Become::No.wrap_guarded(script, root);
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(guarded)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn a_guarded_script_keeps_its_input_output_and_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let out = run_guarded("cat; echo err >&2; exit 3", &root, b"hello\n");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        assert_eq!(out.status.code(), Some(3));
        // Ended: nobody holds the steps lock.
        let lock = format!("{root}/{STEPS_LOCK}");
        let free = std::process::Command::new("flock").args(["-n", &lock, "true"]).status();
        assert!(free.unwrap().success());
    }

    #[test]
    fn a_guarded_script_ends_with_its_connection_and_holds_the_steps_lock_until_then() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let pid_file = format!("{root}/pid");
        let script = format!("echo $$ > {pid_file}; exec sleep 30");
        let guarded = Become::No.wrap_guarded(&script, &root);
        // `sshd`: a shell whose child runs the guarded line (not exec'd: `; :` follows).
        let mut sshd = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("sh -c \"$0\"; :")
            .arg(guarded)
            .spawn()
            .unwrap();
        let wait = |what: &str, check: &dyn Fn() -> bool| {
            let start = std::time::Instant::now();
            while !check() {
                assert!(start.elapsed().as_secs() < 10, "timed out waiting for {what}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        };
        wait("the script to start", &|| {
            std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
        });
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
        let lock = format!("{root}/{STEPS_LOCK}");
        let lock_free = || {
            std::process::Command::new("flock")
                .args(["-n", &lock, "true"])
                .status()
                .unwrap()
                .success()
        };
        assert!(!lock_free(), "a running step holds the steps lock");
        sshd.kill().unwrap();
        sshd.wait().unwrap();
        let running = || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|s| !s.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
        };
        wait("the script to be killed", &|| !running());
        wait("the steps lock to be free", &lock_free);
    }

    #[test]
    fn quote_table() {
        let cases = [
            ("", "''"),
            ("plain", "plain"),
            ("/usr/local/pgsql/bin", "/usr/local/pgsql/bin"),
            ("-n", "-n"),
            ("a b", "'a b'"),
            ("it's", "'it'\\''s'"),
            ("\"double\"", "'\"double\"'"),
            ("`id`", "'`id`'"),
            ("$(id)", "'$(id)'"),
            ("$HOME", "'$HOME'"),
            ("a;b", "'a;b'"),
            ("a\nb", "'a\nb'"),
            ("*", "'*'"),
            ("~", "'~'"),
            ("a|b&c>d<e", "'a|b&c>d<e'"),
            ("\\", "'\\'"),
            ("''", "''\\'''\\'''"),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want, "quote({input:?})");
        }
    }

    /// Round trip through a real /bin/sh: every word comes back verbatim.
    #[test]
    fn quote_round_trips_through_sh() {
        let words = ["a b", "it's", "`id`", "$(id)", ";", "a\nb", "-n", "", "'\"'", "*", "\\n"];
        let cmd = Cmd::new("printf").arg("%s\\0").args(words);
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(cmd.to_string()).output();
        let out = out.expect("run /bin/sh");
        let got: Vec<&str> =
            std::str::from_utf8(&out.stdout).unwrap().split_terminator('\0').collect();
        assert_eq!(got, words);
    }

    #[test]
    fn script_exports_env_and_path() {
        let s = Script::new()
            .env("PGDATA", "/data/dn 1")
            .env("PGPORT", "15432")
            .path_prepend("/opt/pgxc/bin")
            .cmd(Cmd::new("pg_ctl").arg("status"));
        assert_eq!(
            s.to_string(),
            "export PGDATA='/data/dn 1'; export PGPORT=15432; \
             export PATH=/opt/pgxc/bin:\"$PATH\"; pg_ctl status"
        );
    }

    #[test]
    fn script_joins_commands_stopping_at_first_failure() {
        let s = Script::new().cmd(Cmd::new("false")).cmd(Cmd::new("echo").arg("not reached"));
        assert_eq!(s.to_string(), "{ false\n} && { echo 'not reached'\n}");
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(s.to_string()).output();
        let out = out.unwrap();
        assert!(out.stdout.is_empty());
        assert!(!out.status.success());
    }

    #[test]
    fn become_wraps_in_runuser_or_sudo() {
        assert_eq!(Become::for_users("pgxc", "pgxc"), Become::No);
        assert_eq!(Become::No.wrap("id -un"), "id -un");
        let root = Become::for_users("root", "pgxc");
        assert_eq!(
            root.wrap("echo 'a b'"),
            r#"runuser -u pgxc -- sh -c 'cd / && echo '\''a b'\'''"#
        );
        let admin = Become::for_users("admin", "postgres");
        assert_eq!(admin.wrap("id -un"), "sudo -n -u postgres -- sh -c 'cd / && id -un'");
    }

    /// Values set as variables and functions come back verbatim through a real /bin/sh; a
    /// failing line does not stop the next.
    #[test]
    fn lines_carry_values_as_variables_and_functions() {
        let value = "it's a \"dir\" with $HOME and `id`";
        let lines = Lines::new()
            .set("d", value)
            .function("show", Cmd::new("printf").arg("[%s]\\n").arg(value))
            .raw("false")
            .raw("printf '%s\\n' \"$d\"; show")
            .lines(Lines::new().cmd(Cmd::new("echo").arg("a b")));
        let out = std::process::Command::new("/bin/sh").arg("-c").arg(lines.to_string()).output();
        let out = out.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{value}\n[{value}]\na b\n"));
        assert!(out.status.success());
        let in_script = Script::new().cmd(Cmd::new("true")).lines(Lines::new().raw("exit 4"));
        let out =
            std::process::Command::new("/bin/sh").arg("-c").arg(in_script.to_string()).output();
        assert_eq!(out.unwrap().status.code(), Some(4));
    }

    #[test]
    #[should_panic(expected = "invalid shell variable name")]
    fn variable_name_is_checked() {
        let _ = Lines::new().set("a b", "x");
    }

    #[test]
    #[should_panic(expected = "invalid environment variable name")]
    fn env_name_is_checked() {
        let _ = Script::new().env("A;B", "x");
    }
}
