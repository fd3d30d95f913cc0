//! Remote command lines, built from values. PURE: no I/O.
//!
//! SSH `exec` takes one string that the remote user's shell parses, so quoting is our job. Every
//! remote command line in pgxc-deploy is produced here: [`Cmd`] quotes each argument with
//! [`quote`], and [`Script`] joins commands and exports environment variables. The only
//! unquoted text is what [`Cmd::raw`] / [`Script::raw`] take, and every caller of those says why.

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

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    #[should_panic(expected = "invalid environment variable name")]
    fn env_name_is_checked() {
        let _ = Script::new().env("A;B", "x");
    }
}
