//! The OpenSSH client configuration (ssh_config(5)): `~/.ssh/config`, then
//! `/etc/ssh/ssh_config`, read into a [`Config`] and resolved for one host into a
//! [`HostConfig`]: the settings pgxc-deploy can honour (address, port, user, keys, known_hosts
//! files, host key policy, timeouts, jump hosts or proxy command). Every other keyword is read
//! (its line must be well formed) and ignored.
//!
//! Pure: [`parse`] and [`Config::resolve`] do no I/O. [`load`] is the one function that reads
//! files (those named, and what they `Include`). No network and no russh: the transport turns a
//! [`HostConfig`] into a connection.
//!
//! The rules are OpenSSH's: ssh_config(5), and its readconf.c, match.c and ssh.c where the
//! manual is silent.
//!
//! - Lines: `Keyword value`, `Keyword=value` or `Keyword = value`; keywords without case.
//!   Arguments split on blanks, may be quoted (`"` or `'`, `\"` escapes), and `#` at the start of
//!   an argument ends the line. `ProxyCommand` takes the rest of the line as written.
//! - The first value obtained for a setting wins, files in order (the user's, then the
//!   system-wide one). `IdentityFile` adds up instead (each file once). `UserKnownHostsFile`
//!   names several files on one line, but only its first line that applies counts.
//! - `Host` patterns (`*`, `?`, `!` excludes whatever else matches) match the alias as given,
//!   case included. `Match` takes `all`, `host` (the HostName obtained so far, `%h` expanded,
//!   else the alias; without case), `originalhost` (the alias), `user` (the User so far, else
//!   the local user), `localuser`, `canonical` and `final`, each negatable. Criteria that need a
//!   command or the network (`exec`, `localnetwork`, ...) are an error naming the line: guessing
//!   would apply or skip a block silently.
//! - `Match final` makes a second pass, as ssh does: the host is then the resolved HostName
//!   (lowercase), and `Host` lines match it too.
//! - `Include`: globs, in lexical order; relative to `~/.ssh` in the user's file, `/etc/ssh` in
//!   the system-wide one. Nested at most 16 deep. An `Include` in a block that does not apply
//!   applies nothing, and a `Host` or `Match` in an included file ends at its end.
//! - `ProxyJump` and `ProxyCommand` exclude each other: the first one obtained wins (`none`
//!   included, but `ProxyJump none` does not stop a later `ProxyCommand`).
//! - Tokens are expanded as far as known: `%%`, `%h` (target host), `%n` (alias), `%p`, `%r`
//!   (remote user), `%u` (local user), `%d` (home), per keyword as ssh_config(5) TOKENS lists;
//!   others (`%C`, `%l`, `%k`, ...) and `${VAR}` are left as written. `~/` is the home given.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How deep `Include` may nest (OpenSSH's READCONF_MAX_DEPTH); it also stops a file that
/// includes itself.
const MAX_INCLUDE_DEPTH: usize = 16;

/// ssh's port when the configuration gives none, for `%p`.
const DEFAULT_PORT: u16 = 22;

/// Configuration files, parsed, to [`Config::resolve`] for any host.
#[derive(Debug, Clone, Default)]
pub struct Config {
    files: Vec<File>,
    /// For `~` and `%d`: known when [`load`]ed, unknown (left as written) after [`parse`].
    home: Option<PathBuf>,
}

/// What the configuration says for one host. `None`: it does not set that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName`, `%h` replaced by the alias, lowercase unless an IP address (as ssh uses it).
    pub hostname: Option<String>,
    pub port: Option<u16>,
    /// `User`, tokens expanded.
    pub user: Option<String>,
    /// Every `IdentityFile` that applies, in order, each once; `none` adds nothing.
    pub identity_files: Vec<PathBuf>,
    pub identities_only: Option<bool>,
    /// The files of the first `UserKnownHostsFile` that applies; empty for `none` (no user
    /// known_hosts file at all).
    pub user_known_hosts_files: Option<Vec<PathBuf>>,
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    pub connect_timeout: Option<Duration>,
    /// Zero turns keepalives off.
    pub server_alive_interval: Option<Duration>,
    /// The jump hosts, visited in this order; empty for `none`. Never non-empty together with
    /// [`HostConfig::proxy_command`].
    pub proxy_jump: Option<Vec<Jump>>,
    /// The command whose stdin/stdout is the connection, tokens expanded; `none` gives `None`.
    pub proxy_command: Option<String>,
}

/// `StrictHostKeyChecking`: what ssh does with an unknown or changed host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// `yes`: unknown and changed keys are refused.
    Yes,
    /// `accept-new`: unknown keys are learned, changed ones refused.
    AcceptNew,
    /// `no` or `off`: unknown keys are learned; ssh lets changed ones through, with limits.
    No,
    /// `ask`, ssh's default: the user is asked about unknown keys.
    Ask,
}

/// One `ProxyJump` hop: the inventory's type (`[user@]host[:port]`, or here
/// `ssh://[user@]host[:port]` too; the host without the brackets around an IPv6 address).
pub use crate::inventory::Jump;

/// A configuration file that cannot be read, or the first of its lines that cannot be.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: {why}", file.display(), line.map(|n| format!(":{n}")).unwrap_or_default())]
pub struct ParseError {
    pub file: PathBuf,
    /// `None` when the file as a whole is at fault.
    pub line: Option<usize>,
    pub why: String,
    #[source]
    pub source: Option<Arc<std::io::Error>>,
}

/// One file, parsed.
#[derive(Debug, Clone)]
struct File {
    /// The user's file, or one it includes: for `IdentityFile` duplicates, and where
    /// `Include` looks.
    user: bool,
    directives: Vec<Directive>,
}

#[derive(Debug, Clone)]
enum Directive {
    Host(Vec<Pattern>),
    Match(Vec<Criterion>),
    /// The patterns as written, and the files they named once [`load`]ed.
    Include {
        line: usize,
        patterns: Vec<String>,
        files: Vec<File>,
    },
    Set(Setting),
}

/// One pattern of a `Host` line.
#[derive(Debug, Clone)]
struct Pattern {
    negated: bool,
    glob: String,
}

/// One criterion of a `Match` line.
#[derive(Debug, Clone)]
struct Criterion {
    negated: bool,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    All,
    /// `canonical` and `final`: true in the second pass only.
    Canonical,
    Final,
    /// The others hold a comma-separated pattern list.
    Host(String),
    OriginalHost(String),
    User(String),
    LocalUser(String),
}

/// A setting we use, as written (tokens unexpanded).
#[derive(Debug, Clone)]
enum Setting {
    HostName(String),
    Port(u16),
    User(String),
    IdentityFile(String),
    IdentitiesOnly(bool),
    UserKnownHostsFile(Vec<String>),
    StrictHostKeyChecking(StrictHostKeyChecking),
    /// `None`: `none`, which sets nothing (a later line still may).
    ConnectTimeout(Option<Duration>),
    ServerAliveInterval(Option<Duration>),
    /// Empty: `none`.
    ProxyJump(Vec<Jump>),
    ProxyCommand(String),
}

/// The usual files: the user's `~/.ssh/config`, then `/etc/ssh/ssh_config`.
pub fn default_paths(home: &Path) -> Vec<PathBuf> {
    vec![home.join(".ssh/config"), PathBuf::from("/etc/ssh/ssh_config")]
}

/// Parse `text`, the content of `file`, as the user's configuration (like `ssh -F file`).
/// Its `Include` lines are kept but not read, and `~` stays as written: see [`load`].
pub fn parse(text: &str, file: &Path) -> Result<Config, ParseError> {
    Ok(Config { files: vec![parse_file(text, file, true)?], home: None })
}

/// Read `paths` in order, and the files they include: the first is the user's file (`Include`
/// relative to `home/.ssh`, `~` allowed), the others are system-wide (relative to `/etc/ssh`).
/// A missing file holds nothing; one that cannot be read, or a bad line, is an error.
pub fn load(paths: &[PathBuf], home: &Path) -> Result<Config, ParseError> {
    let mut files = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        files.extend(read(path, i == 0, home, 0)?);
    }
    Ok(Config { files, home: Some(home.to_path_buf()) })
}

/// Read and parse `path`, then the files its `Include` lines name, `depth` includes down.
/// `None`: there is no such file. The only function here that touches the file system.
fn read(path: &Path, user: bool, home: &Path, depth: usize) -> Result<Option<File>, ParseError> {
    let error = |line, why: String, source: Option<std::io::Error>| ParseError {
        file: path.to_path_buf(),
        line,
        why,
        source: source.map(Arc::new),
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(None, "cannot read it".into(), Some(e))),
    };
    let text = String::from_utf8(bytes).map_err(|_| error(None, "not UTF-8 text".into(), None))?;
    let mut file = parse_file(&text, path, user)?;
    for directive in &mut file.directives {
        let Directive::Include { line, patterns, files } = directive else { continue };
        for pattern in patterns.iter() {
            let full = include_glob(pattern, user, home);
            // As glob(3): `*` skips dot files, and unreadable directories are passed over.
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            let found = glob::glob_with(&full, options)
                .map_err(|e| error(Some(*line), format!("bad Include pattern: {}", e.msg), None))?;
            for included in found.flatten().filter(|p| !p.is_dir()) {
                if depth >= MAX_INCLUDE_DEPTH {
                    let why = format!(
                        "Include nested more than {MAX_INCLUDE_DEPTH} deep (does a file include \
                         itself?)"
                    );
                    return Err(error(Some(*line), why, None));
                }
                files.extend(read(&included, user, home, depth + 1)?);
            }
        }
    }
    Ok(Some(file))
}

/// The glob an `Include` pattern stands for: `~` is `home`, a relative pattern is under
/// `~/.ssh` (user's file) or `/etc/ssh` (system-wide).
fn include_glob(pattern: &str, user: bool, home: &Path) -> String {
    let home = glob::Pattern::escape(&home.to_string_lossy());
    if let Some(rest) = pattern.strip_prefix('~') {
        format!("{home}{rest}")
    } else if pattern.starts_with('/') {
        pattern.to_string()
    } else if user {
        format!("{home}/.ssh/{pattern}")
    } else {
        format!("/etc/ssh/{pattern}")
    }
}

fn parse_file(text: &str, path: &Path, user: bool) -> Result<File, ParseError> {
    let mut directives = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let error =
            |why| ParseError { file: path.to_path_buf(), line: Some(i + 1), why, source: None };
        directives.extend(parse_line(line, i + 1, user).map_err(error)?);
    }
    Ok(File { user, directives })
}

const BLANKS: [char; 4] = [' ', '\t', '\r', '\n'];

/// One line: its directive, `None` for a comment, a blank line or a keyword we do not use, or
/// what is wrong with it.
fn parse_line(line: &str, number: usize, user: bool) -> Result<Option<Directive>, String> {
    let line = line.trim_start_matches(BLANKS).trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line.find([' ', '\t', '\r', '\n', '=']).unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    // Blanks, at most one `=`, blanks.
    let rest = rest.trim_start_matches(BLANKS);
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start_matches(BLANKS);
    if rest.is_empty() {
        return Err(format!("`{keyword}` has no value"));
    }
    let args = split_args(rest).ok_or("unterminated quote")?;
    // ProxyCommand and ProxyJump take the rest of the line, `=` and blanks skipped.
    let raw = rest.trim_start_matches([' ', '\t', '\r', '\n', '=']);
    let one = || match args.as_slice() {
        [one] if !one.is_empty() => Ok(one.clone()),
        [] | [_] => Err(format!("`{keyword}` has no value")),
        _ => Err(format!("`{keyword}` takes one value")),
    };
    let setting = match keyword.to_ascii_lowercase().as_str() {
        "host" => return host_patterns(&args).map(|p| Some(Directive::Host(p))),
        "match" => return criteria(&args).map(|c| Some(Directive::Match(c))),
        "include" => {
            for arg in &args {
                if arg.is_empty() {
                    return Err("empty Include pattern".into());
                }
                if arg.starts_with('~') && !arg.starts_with("~/") {
                    return Err(format!("`{arg}`: only `~/` is supported in Include"));
                }
                if arg.starts_with('~') && !user {
                    return Err(format!("`{arg}`: `~` in a system-wide file"));
                }
            }
            if args.is_empty() {
                return Err("`Include` has no value".into());
            }
            return Ok(Some(Directive::Include { line: number, patterns: args, files: vec![] }));
        }
        "hostname" => Setting::HostName(one()?),
        "port" => {
            let value = one()?;
            let port = value.parse::<u16>().ok().filter(|p| *p != 0);
            Setting::Port(port.ok_or_else(|| format!("bad port `{value}` (1 to 65535)"))?)
        }
        "user" => Setting::User(one()?),
        "identityfile" => Setting::IdentityFile(one()?),
        "identitiesonly" => {
            let value = one()?;
            let flag = match value.to_ascii_lowercase().as_str() {
                "yes" | "true" => true,
                "no" | "false" => false,
                _ => return Err(format!("`{keyword}`: `{value}` is not yes or no")),
            };
            Setting::IdentitiesOnly(flag)
        }
        "userknownhostsfile" => {
            if args.iter().any(String::is_empty) || args.is_empty() {
                return Err(format!("`{keyword}` has an empty value"));
            }
            if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
                return Err(format!("`{keyword}`: `none` must be alone"));
            }
            Setting::UserKnownHostsFile(args.clone())
        }
        "stricthostkeychecking" => {
            let value = one()?;
            Setting::StrictHostKeyChecking(match value.to_ascii_lowercase().as_str() {
                "yes" | "true" => StrictHostKeyChecking::Yes,
                "accept-new" => StrictHostKeyChecking::AcceptNew,
                "no" | "off" | "false" => StrictHostKeyChecking::No,
                "ask" => StrictHostKeyChecking::Ask,
                _ => {
                    return Err(format!(
                        "`{keyword}`: `{value}` is not yes, accept-new, no, off or ask"
                    ));
                }
            })
        }
        "connecttimeout" => Setting::ConnectTimeout(interval(keyword, &one()?)?),
        "serveraliveinterval" => Setting::ServerAliveInterval(interval(keyword, &one()?)?),
        "proxyjump" => Setting::ProxyJump(jumps(raw)?),
        "proxycommand" if raw.is_empty() => return Err(format!("`{keyword}` has no value")),
        "proxycommand" => Setting::ProxyCommand(raw.to_string()),
        _ => return Ok(None),
    };
    Ok(Some(Directive::Set(setting)))
}

/// Split arguments as OpenSSH's argv_split: on blanks, outside quotes (`"` or `'`); `\` escapes
/// a quote, a backslash, or (unquoted) a space; `#` at the start of an argument ends the line.
/// `None`: a quote is not closed.
fn split_args(s: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' || c == '\t' {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            let escaped = chars
                .peek()
                .copied()
                .filter(|&n| matches!(n, '\'' | '"' | '\\') || (n == ' ' && quote.is_none()));
            match (c, quote) {
                ('\\', _) if escaped.is_some() => {
                    arg.extend(escaped);
                    chars.next();
                }
                (' ' | '\t', None) => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => arg.push(c),
            }
        }
        if quote.is_some() {
            return None;
        }
        args.push(arg);
    }
    Some(args)
}

fn host_patterns(args: &[String]) -> Result<Vec<Pattern>, String> {
    if args.is_empty() {
        return Err("`Host` has no pattern".into());
    }
    args.iter()
        .map(|arg| match arg.strip_prefix('!') {
            _ if arg.is_empty() => Err("empty Host pattern".to_string()),
            Some(glob) => Ok(Pattern { negated: true, glob: glob.to_string() }),
            None => Ok(Pattern { negated: false, glob: arg.clone() }),
        })
        .collect()
}

/// The criteria of a `Match` line (readconf.c match_cfg_line).
fn criteria(args: &[String]) -> Result<Vec<Criterion>, String> {
    let mut criteria = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (negated, attribute) = match arg.strip_prefix('!') {
            Some(a) => (true, a),
            None => (false, arg.as_str()),
        };
        let test = match attribute.to_ascii_lowercase().as_str() {
            "all" => {
                // Alone, or after `canonical` or `final`, and last.
                if criteria.len() > 1 || args.next().is_some() {
                    return Err("`Match all` cannot be combined with other criteria".into());
                }
                criteria.push(Criterion { negated, test: Test::All });
                break;
            }
            "canonical" => Test::Canonical,
            "final" => Test::Final,
            _ => {
                let (name, value) = match attribute.split_once('=') {
                    Some((name, value)) => (name.to_ascii_lowercase(), value.to_string()),
                    None => {
                        (attribute.to_ascii_lowercase(), args.next().cloned().unwrap_or_default())
                    }
                };
                let supported = ["host", "originalhost", "user", "localuser"];
                let unsupported =
                    ["exec", "localnetwork", "tagged", "command", "version", "sessiontype"];
                if unsupported.contains(&name.as_str()) {
                    return Err(format!("`Match {name}` is not supported by pgxc-deploy"));
                }
                if !supported.contains(&name.as_str()) {
                    return Err(format!("unknown Match criterion `{attribute}`"));
                }
                if value.is_empty() {
                    return Err(format!("`Match {name}` has no patterns"));
                }
                match name.as_str() {
                    "host" => Test::Host(value),
                    "originalhost" => Test::OriginalHost(value),
                    "user" => Test::User(value),
                    _ => Test::LocalUser(value),
                }
            }
        };
        criteria.push(Criterion { negated, test });
    }
    if criteria.is_empty() {
        return Err("`Match` has no criteria".into());
    }
    Ok(criteria)
}

/// A time interval (sshd_config(5) TIME FORMATS: `90`, `1m30s`, `1h`...), to whole seconds
/// as ssh keeps it; `None` for `none`.
fn interval(keyword: &str, value: &str) -> Result<Option<Duration>, String> {
    if value == "none" {
        return Ok(None);
    }
    seconds(value)
        .map(|s| Some(Duration::from_secs(s)))
        .ok_or_else(|| format!("`{keyword}`: bad time interval `{value}`"))
}

/// OpenSSH's convtime: numbers, each with a unit (s, m, h, d, w, or none for seconds); only
/// seconds may have a fraction, and only one part may be seconds.
fn seconds(value: &str) -> Option<u64> {
    let mut total = 0.0;
    let mut seen_seconds = false;
    if value.is_empty() {
        return None;
    }
    let mut rest = value;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, after) = rest.split_at(end);
        if number.is_empty() || number.ends_with('.') {
            return None;
        }
        let number: f64 = number.parse().ok()?;
        let mut units = after.chars();
        let multiplier = match units.next() {
            None | Some('s' | 'S') if !seen_seconds => {
                seen_seconds = true;
                1.0
            }
            Some('m' | 'M') => 60.0,
            Some('h' | 'H') => 3600.0,
            Some('d' | 'D') => 86400.0,
            Some('w' | 'W') => 604800.0,
            _ => return None,
        };
        if multiplier > 1.0 && number.fract() != 0.0 {
            return None;
        }
        total += number * multiplier;
        rest = units.as_str();
    }
    (total <= f64::from(i32::MAX)).then_some(total as u64)
}

/// A `ProxyJump` value: comma-separated hops, or `none` (an empty list).
fn jumps(value: &str) -> Result<Vec<Jump>, String> {
    let value = value.split('#').next().unwrap_or_default().trim_end();
    if value.is_empty() {
        return Err("`ProxyJump` has no value".into());
    }
    if value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let hop = |hop: &str| {
        crate::inventory::parse_jump(hop).map_err(|why| {
            format!("bad ProxyJump hop `{hop}` (expected [user@]host[:port]): {why}")
        })
    };
    value.split(',').map(hop).collect()
}

impl File {
    /// Whether a `Match final` (not negated) is here or in an included file: ssh then makes
    /// a second pass.
    fn wants_final_pass(&self) -> bool {
        self.directives.iter().any(|d| match d {
            Directive::Match(criteria) => {
                criteria.iter().any(|c| matches!(c.test, Test::Final) && !c.negated)
            }
            Directive::Include { files, .. } => files.iter().any(File::wants_final_pass),
            _ => false,
        })
    }
}

impl Config {
    /// The settings for `alias` (the name or address the inventory gives, as ssh's command
    /// line would), connecting as `local_user`.
    pub fn resolve(&self, alias: &str, local_user: &str) -> HostConfig {
        let mut pass = Pass {
            alias,
            local_user,
            host: alias.to_string(),
            final_pass: false,
            values: Values::default(),
        };
        for file in &self.files {
            pass.file(file, &mut true);
        }
        if self.files.iter().any(File::wants_final_pass) {
            pass.host = lowercase_name(&pass.target());
            pass.final_pass = true;
            for file in &self.files {
                pass.file(file, &mut true);
            }
        }
        pass.finish(self.home.as_deref())
    }
}

/// The values obtained so far, as written.
#[derive(Default)]
struct Values {
    hostname: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    /// With whether each came from the user's files (ssh drops a duplicate from the same side).
    identity_files: Vec<(String, bool)>,
    identities_only: Option<bool>,
    user_known_hosts_files: Option<Vec<String>>,
    strict_host_key_checking: Option<StrictHostKeyChecking>,
    connect_timeout: Option<Duration>,
    server_alive_interval: Option<Duration>,
    proxy_jump: Option<Vec<Jump>>,
    /// `none` is kept here: it stops a later ProxyJump. A ProxyJump also sets it to `none`.
    proxy_command: Option<String>,
}

/// One pass over the files, as ssh reads them for one host.
struct Pass<'a> {
    alias: &'a str,
    local_user: &'a str,
    /// What `Host` patterns match: the alias, then (final pass) the resolved host name.
    host: String,
    final_pass: bool,
    values: Values,
}

impl Pass<'_> {
    /// Apply `file`'s lines, `active` telling whether the current block applies.
    fn file(&mut self, file: &File, active: &mut bool) {
        for directive in &file.directives {
            match directive {
                Directive::Host(patterns) => *active = host_matches(patterns, &self.host),
                Directive::Match(criteria) => *active = self.matches(criteria),
                // An Include where the block does not apply applies nothing; a Host or Match
                // in the included file ends with it.
                Directive::Include { files, .. } if *active => {
                    for included in files {
                        self.file(included, active);
                        *active = true;
                    }
                }
                Directive::Include { .. } => {}
                Directive::Set(setting) if *active => self.set(setting, file.user),
                Directive::Set(_) => {}
            }
        }
    }

    /// The host ssh will connect to, as `Match host` sees it: the HostName obtained so far with
    /// `%h` expanded, else the alias; in the final pass, the name fixed after the first.
    fn target(&self) -> String {
        match &self.values.hostname {
            _ if self.final_pass => self.host.clone(),
            Some(hostname) => expand(hostname, &[('h', self.alias)]),
            None => self.alias.to_string(),
        }
    }

    fn matches(&self, criteria: &[Criterion]) -> bool {
        let mut result = true;
        for c in criteria {
            let hit = match &c.test {
                Test::All => return result && !c.negated,
                Test::Canonical | Test::Final => self.final_pass,
                Test::Host(list) => {
                    list_matches(&self.target().to_ascii_lowercase(), &list.to_ascii_lowercase())
                }
                Test::OriginalHost(list) => {
                    list_matches(&self.alias.to_ascii_lowercase(), &list.to_ascii_lowercase())
                }
                Test::User(list) => {
                    list_matches(self.values.user.as_deref().unwrap_or(self.local_user), list)
                }
                Test::LocalUser(list) => list_matches(self.local_user, list),
            };
            if hit == c.negated {
                result = false;
            }
        }
        result
    }

    fn set(&mut self, setting: &Setting, user_file: bool) {
        fn first<T: Clone>(slot: &mut Option<T>, value: &T) {
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        }
        let v = &mut self.values;
        match setting {
            // In the final pass, ssh has fixed the host name already.
            Setting::HostName(_) if self.final_pass => {}
            Setting::HostName(h) => first(&mut v.hostname, h),
            Setting::Port(p) => first(&mut v.port, p),
            Setting::User(u) => first(&mut v.user, u),
            Setting::IdentityFile(f) => {
                if !v.identity_files.iter().any(|(g, u)| g == f && *u == user_file) {
                    v.identity_files.push((f.clone(), user_file));
                }
            }
            Setting::IdentitiesOnly(b) => first(&mut v.identities_only, b),
            Setting::UserKnownHostsFile(f) => first(&mut v.user_known_hosts_files, f),
            Setting::StrictHostKeyChecking(s) => first(&mut v.strict_host_key_checking, s),
            Setting::ConnectTimeout(t) => {
                if let Some(t) = t {
                    first(&mut v.connect_timeout, t);
                }
            }
            Setting::ServerAliveInterval(t) => {
                if let Some(t) = t {
                    first(&mut v.server_alive_interval, t);
                }
            }
            Setting::ProxyJump(hops) if hops.is_empty() => first(&mut v.proxy_jump, hops),
            Setting::ProxyJump(hops) => {
                if v.proxy_jump.is_none() && v.proxy_command.is_none() {
                    v.proxy_jump = Some(hops.clone());
                    v.proxy_command = Some("none".into());
                }
            }
            Setting::ProxyCommand(c) => first(&mut v.proxy_command, c),
        }
    }

    /// The values, `~` and tokens expanded (ssh.c, after reading the configuration).
    fn finish(self, home: Option<&Path>) -> HostConfig {
        let target = lowercase_name(&self.target());
        let v = self.values;
        let port = v.port.unwrap_or(DEFAULT_PORT).to_string();
        let home_text = home.map(|h| h.to_string_lossy().into_owned());
        let mut tokens =
            vec![('h', target.as_str()), ('n', self.alias), ('p', &port), ('u', self.local_user)];
        tokens.extend(home_text.as_deref().map(|h| ('d', h)));
        let user = v.user.map(|u| expand(&u, &tokens));
        let remote_user = user.as_deref().unwrap_or(self.local_user);
        tokens.push(('r', remote_user));
        let path = |p: &String| PathBuf::from(expand(&tilde(p, home), &tokens));
        let proxy_tokens =
            [('h', target.as_str()), ('n', self.alias), ('p', &port), ('r', remote_user)];
        let hop = |j: Jump| Jump {
            user: j.user.map(|u| expand(&u, &proxy_tokens)),
            host: expand(&j.host, &proxy_tokens),
            port: j.port,
        };
        HostConfig {
            hostname: v.hostname.map(|_| target.clone()),
            port: v.port,
            identity_files: v
                .identity_files
                .iter()
                .filter(|(f, _)| !f.eq_ignore_ascii_case("none"))
                .map(|(f, _)| path(f))
                .collect(),
            identities_only: v.identities_only,
            user_known_hosts_files: v.user_known_hosts_files.map(|files| match files.as_slice() {
                [none] if none.eq_ignore_ascii_case("none") => Vec::new(),
                _ => files.iter().map(path).collect(),
            }),
            strict_host_key_checking: v.strict_host_key_checking,
            connect_timeout: v.connect_timeout,
            server_alive_interval: v.server_alive_interval,
            proxy_jump: v.proxy_jump.map(|hops| hops.into_iter().map(hop).collect()),
            proxy_command: v
                .proxy_command
                .filter(|c| !c.eq_ignore_ascii_case("none"))
                .map(|c| expand(&c, &proxy_tokens)),
            user,
        }
    }
}

/// Whether a `Host` line applies to `host`: one pattern matches, and no negated one.
fn host_matches(patterns: &[Pattern], host: &str) -> bool {
    let mut active = false;
    for p in patterns {
        if wildcard(&p.glob, host) {
            if p.negated {
                return false;
            }
            active = true;
        }
    }
    active
}

/// OpenSSH's match_pattern_list: one pattern of the comma-separated `list` matches `text`, and
/// no negated one.
fn list_matches(text: &str, list: &str) -> bool {
    let patterns: Vec<Pattern> = list
        .split(',')
        .map(|p| match p.strip_prefix('!') {
            Some(glob) => Pattern { negated: true, glob: glob.to_string() },
            None => Pattern { negated: false, glob: p.to_string() },
        })
        .collect();
    host_matches(&patterns, text)
}

/// `*` (any run of bytes) and `?` (one byte), everything else literal, with case.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if p.get(pi) == Some(&b'*') {
            star = Some((pi, ti));
            pi += 1;
        } else if p.get(pi).is_some_and(|&c| c == b'?' || c == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            star = Some((sp, st + 1));
            pi = sp + 1;
            ti = st + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `%x` replaced by the value `tokens` gives `x`, `%%` by `%`; other tokens stay as written.
fn expand(text: &str, tokens: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match tokens.iter().find(|(k, _)| *k == t) {
                Some((_, value)) => out.push_str(value),
                None => out.extend(['%', t]),
            },
            None => out.push('%'),
        }
    }
    out
}

/// `~` or `~/...` under `home`, when known.
fn tilde(path: &str, home: Option<&Path>) -> String {
    match (home, path.strip_prefix('~')) {
        (Some(home), Some(rest)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.display())
        }
        _ => path.to_string(),
    }
}

/// A host name as ssh uses it: lowercase, unless it is an IP address.
fn lowercase_name(name: &str) -> String {
    if name.parse::<IpAddr>().is_ok() { name.to_string() } else { name.to_ascii_lowercase() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "/home/me";

    fn resolved(text: &str, alias: &str) -> String {
        let mut config = parse(text, Path::new("config")).unwrap();
        config.home = Some(HOME.into());
        summary(&config.resolve(alias, "me"))
    }

    /// The settings given, one `key=value` each, in a fixed order.
    fn summary(h: &HostConfig) -> String {
        let paths = |p: &[PathBuf]| match p {
            [] => "none".to_string(),
            _ => p.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(","),
        };
        let mut out = Vec::new();
        out.extend(h.hostname.as_ref().map(|v| format!("hostname={v}")));
        out.extend(h.port.map(|v| format!("port={v}")));
        out.extend(h.user.as_ref().map(|v| format!("user={v}")));
        if !h.identity_files.is_empty() {
            out.push(format!("id={}", paths(&h.identity_files)));
        }
        out.extend(h.identities_only.map(|v| format!("only={v}")));
        out.extend(h.user_known_hosts_files.as_ref().map(|v| format!("known={}", paths(v))));
        out.extend(h.strict_host_key_checking.map(|v| format!("strict={v:?}")));
        out.extend(h.connect_timeout.map(|v| format!("timeout={v:?}")));
        out.extend(h.server_alive_interval.map(|v| format!("alive={v:?}")));
        out.extend(h.proxy_jump.as_ref().map(|hops| match hops.as_slice() {
            [] => "jump=none".to_string(),
            _ => format!("jump={}", hops.iter().map(Jump::to_string).collect::<Vec<_>>().join(",")),
        }));
        out.extend(h.proxy_command.as_ref().map(|v| format!("command={v}")));
        out.join(" ")
    }

    #[test]
    fn settings_for_a_host_follow_openssh() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "the first value obtained wins",
                "Host db1\n  Port 2201\n  User pg\nHost *\n  Port 22\n  User root\n  Port 23\n",
                "db1",
                "port=2201 user=pg",
            ),
            (
                "global defaults at the end fill what is left",
                "Host db1\n  Port 2201\nHost *\n  Port 22\n  User root\n",
                "db2",
                "port=22 user=root",
            ),
            (
                "keywords without case; `=` with or without blanks; quotes; comments",
                "PORT=2200\n\tuser = \"pg admin\"\nHostName= Db.Lab # the db\n  # a comment\n\n\
                 IdentityFile '/keys/with space'\nIdentityFile /k\\ 2\nConnectTimeout\t=\t1m30s\n",
                "db",
                "hostname=db.lab port=2200 user=pg admin id=/keys/with space,/k 2 timeout=90s",
            ),
            (
                "IdentityFile adds up, in order, each once; none adds nothing; ~ and tokens",
                "Host db1\n  IdentityFile ~/.ssh/db1\nHost *\n  IdentityFile none\n  \
                 IdentityFile ~/.ssh/id_%h_%p_%r_%u_%n_%d_%%_%C\n  IdentityFile ~/.ssh/db1\n  \
                 IdentityFile ~other/k\n  User pg\n",
                "db1",
                "user=pg id=/home/me/.ssh/db1,\
                 /home/me/.ssh/id_db1_22_pg_me_db1_/home/me_%_%C,~other/k",
            ),
            (
                "a negated Host pattern excludes the line whatever else matches",
                "Host * !db9\n  User a\nHost !db1\n  User b\nHost *\n  User c\n",
                "db9",
                "user=c",
            ),
            ("... and only a negated pattern matches nothing", "Host !db1\n  User b\n", "db2", ""),
            ("wildcards", "Host db? *.lab\n  Port 1\n", "db1", "port=1"),
            ("wildcards, domain", "Host db? *.lab\n  Port 1\n", "x.y.lab", "port=1"),
            ("? is one character", "Host db? *.lab\n  Port 1\n", "db10", ""),
            ("Host patterns match with case, as ssh", "Host db1\n  Port 1\n", "DB1", ""),
            (
                "Match host: the HostName so far (%h expanded, without case), else the alias",
                "Match host db2\n  User a\nHost db2\n  HostName %h.Example\n\
                 Match host *.example,!x.example\n  Port 3\n",
                "db2",
                "hostname=db2.example port=3 user=a",
            ),
            (
                "Match originalhost, user (the User so far), localuser, all, negation, name=value",
                "Host db1\n  HostName DB1.Example\nMatch host *.example\n  User ex\n\
                 Match originalhost DB1 user ex\n  Port 2\nMatch user=me\n  IdentitiesOnly yes\n\
                 Match localuser me !host=*.example\n  ConnectTimeout 5\nMatch all\n  \
                 ServerAliveInterval 7\nMatch !all\n  ServerAliveInterval 8\n",
                "db1",
                "hostname=db1.example port=2 user=ex alive=7s",
            ),
            (
                "... another host: no User set, so `user` matches the local user",
                "Host db1\n  HostName DB1.Example\nMatch host *.example\n  User ex\n\
                 Match originalhost DB1 user ex\n  Port 2\nMatch user=me\n  IdentitiesOnly yes\n\
                 Match localuser me !host=*.example\n  ConnectTimeout 5\nMatch all\n  \
                 ServerAliveInterval 7\n",
                "db2",
                "only=true timeout=5s alive=7s",
            ),
            (
                "Match final: a second pass where Host matches the resolved name (ssh -G agrees)",
                "Host c\n  HostName Real-C\nMatch final host real-c\n  Port 2300\n\
                 Host real-c\n  User finaluser\nMatch canonical\n  IdentitiesOnly no\n\
                 Match !final\n  ConnectTimeout 1\nHost *\n  HostName ignored\n",
                "c",
                "hostname=real-c port=2300 user=finaluser only=false timeout=1s",
            ),
            ("no Match final: no second pass", "Match canonical\n  Port 1\n", "c", ""),
            (
                "in the final pass the host name is fixed (ssh -G agrees)",
                "Match final\n  HostName other\n  Port 3\n",
                "x",
                "port=3",
            ),
            (
                "UserKnownHostsFile: several files, but only its first line counts",
                "UserKnownHostsFile ~/.ssh/kh /etc/kh_%h_%r\nUserKnownHostsFile /x\n",
                "db1",
                "known=/home/me/.ssh/kh,/etc/kh_db1_me",
            ),
            ("UserKnownHostsFile none", "UserKnownHostsFile none\n", "db1", "known=none"),
            ("StrictHostKeyChecking yes", "StrictHostKeyChecking TRUE\n", "h", "strict=Yes"),
            ("StrictHostKeyChecking off", "StrictHostKeyChecking off\n", "h", "strict=No"),
            (
                "StrictHostKeyChecking accept-new",
                "StrictHostKeyChecking accept-new\nStrictHostKeyChecking no\n",
                "h",
                "strict=AcceptNew",
            ),
            ("StrictHostKeyChecking ask", "StrictHostKeyChecking ask\n", "h", "strict=Ask"),
            (
                "ConnectTimeout none sets nothing; whole seconds, as ssh",
                "ConnectTimeout none\nConnectTimeout 1.9\nServerAliveInterval 0\n",
                "h",
                "timeout=1s alive=0ns",
            ),
            (
                "ProxyJump: hops with users, ports, IPv6 in brackets, an ssh:// URI",
                "ProxyJump u@[::1]:2222,gw2:23,ssh://v@gw3:24/,gw4,[fe80::1] # comment\n",
                "db1",
                "jump=u@[::1]:2222,gw2:23,v@gw3:24,gw4,[fe80::1]",
            ),
            (
                "ProxyJump none does not stop a later ProxyCommand (ssh -G agrees)",
                "ProxyJump none\nProxyCommand nc %h %p\n",
                "db1",
                "jump=none command=nc db1 22",
            ),
            (
                "a ProxyJump stops a later ProxyCommand",
                "ProxyJump gw\nProxyCommand nc %h %p\n",
                "db1",
                "jump=gw",
            ),
            (
                "ProxyCommand none stops a later ProxyJump, and gives nothing",
                "ProxyCommand none\nProxyJump gw\n",
                "db1",
                "",
            ),
            (
                "ProxyCommand is the rest of the line; tokens in it and in ProxyJump",
                "Host a\n  ProxyCommand=ssh -W %h:%p %r@gw \"x\" # note\nHost b\n  \
                 ProxyJump %r@gw-%n:2\nHost *\n  User pg\n  Port 2200\n  HostName %h.LAB\n",
                "a",
                "hostname=a.lab port=2200 user=pg command=ssh -W a.lab:2200 pg@gw \"x\" # note",
            ),
            (
                "... ProxyJump",
                "Host a\n  ProxyCommand=ssh -W %h:%p %r@gw # note\nHost b\n  \
                 ProxyJump %r@gw-%n:2\nHost *\n  User pg\n  Port 2200\n  HostName %h.LAB\n",
                "b",
                "hostname=b.lab port=2200 user=pg jump=pg@gw-b:2",
            ),
            (
                "tokens in User; an IP address keeps its case",
                "HostName 2001:DB8::1\nUser u_%n_%%\n",
                "Db",
                "hostname=2001:DB8::1 user=u_Db_%",
            ),
            (
                "keywords we do not use are read and ignored",
                "ForwardAgent yes\nFrobnicate \"x y\" 'z'\nSendEnv LANG LC_*\nPort 2\n",
                "h",
                "port=2",
            ),
        ];
        for (what, text, alias, expected) in cases {
            assert_eq!(resolved(text, alias), *expected, "{what}:\n{text}");
        }
    }

    #[test]
    fn bad_lines_are_errors_naming_the_file_and_line() {
        let cases: &[(&str, &str)] = &[
            ("Port\n", "config:1: `Port` has no value"),
            ("Host nomatch\n  Port abc\n", "config:2: bad port `abc` (1 to 65535)"),
            ("Port 0\n", "config:1: bad port `0`"),
            ("Port 22 23\n", "config:1: `Port` takes one value"),
            ("Port # none\n", "config:1: `Port` has no value"),
            ("User \"pg\n", "config:1: unterminated quote"),
            ("HostName \"\"\n", "config:1: `HostName` has no value"),
            ("StrictHostKeyChecking maybe\n", "config:1: `StrictHostKeyChecking`: `maybe`"),
            ("IdentitiesOnly sure\n", "config:1: `IdentitiesOnly`: `sure` is not yes or no"),
            ("ConnectTimeout 5x\n", "config:1: `ConnectTimeout`: bad time interval `5x`"),
            ("ServerAliveInterval 1.5m\n", "bad time interval `1.5m`"),
            ("ServerAliveInterval 1s2\n", "bad time interval `1s2`"),
            ("UserKnownHostsFile /a none\n", "config:1: `UserKnownHostsFile`: `none` must be"),
            ("ProxyJump a,,b\n", "config:1: bad ProxyJump hop ``"),
            ("ProxyJump u@:22\n", "bad ProxyJump hop `u@:22`"),
            ("ProxyJump @gw\n", "bad ProxyJump hop `@gw`"),
            ("ProxyJump [::1\n", "bad ProxyJump hop `[::1`"),
            ("ProxyJump [::1]2222\n", "bad ProxyJump hop `[::1]2222`"),
            ("ProxyJump gw:99999\n", "bad ProxyJump hop `gw:99999`"),
            ("ProxyJump gw/x\n", "bad ProxyJump hop `gw/x`"),
            ("ProxyJump a, b\n", "bad ProxyJump hop ` b`"),
            ("ProxyCommand =\n", "config:1: `ProxyCommand` has no value"),
            ("Host \"\"\n", "config:1: empty Host pattern"),
            ("# fine\nMatch exec \"test -f /x\"\n", "config:2: `Match exec` is not supported"),
            ("Match localnetwork 10.0.0.0/8\n", "`Match localnetwork` is not supported"),
            ("Match tagged=x\n", "`Match tagged` is not supported"),
            ("Match host\n", "config:1: `Match host` has no patterns"),
            ("Match host # c\n", "`Match host` has no patterns"),
            ("Match all host x\n", "config:1: `Match all` cannot be combined"),
            ("Match host x user y all\n", "`Match all` cannot be combined"),
            ("Match frob x\n", "config:1: unknown Match criterion `frob`"),
            ("Frobnicate\n", "config:1: `Frobnicate` has no value"),
            ("Include ~bob/x\n", "config:1: `~bob/x`: only `~/` is supported in Include"),
        ];
        for (text, expected) in cases {
            let said = parse(text, Path::new("config")).unwrap_err().to_string();
            assert!(said.contains(expected), "{text:?}: {said}");
        }
        // `Match all` after `canonical` or `final` is fine.
        assert!(parse("Match canonical all\n", Path::new("c")).is_ok());
    }

    #[test]
    fn jump_hops_print_as_written() {
        let hops = jumps("u@[::1]:2222,gw,h:22").unwrap();
        let expected = [
            Jump { user: Some("u".into()), host: "::1".into(), port: Some(2222) },
            Jump { user: None, host: "gw".into(), port: None },
            Jump { user: None, host: "h".into(), port: Some(22) },
        ];
        assert_eq!(hops, expected);
        let printed: Vec<String> = hops.iter().map(Jump::to_string).collect();
        assert_eq!(printed, ["u@[::1]:2222", "gw", "h:22"]);
        assert_eq!(jumps("NONE").unwrap(), []);
    }

    #[test]
    fn patterns_and_intervals() {
        for (pattern, text, matched) in [
            ("*", "", true),
            ("*.lab", "db.lab", true),
            ("*.lab", "db.lab.x", false),
            ("d*b*1", "dxxbyy1", true),
            ("d*b*1", "dxxbyy2", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("**a", "bba", true),
            ("", "", true),
        ] {
            assert_eq!(wildcard(pattern, text), matched, "{pattern} {text}");
        }
        assert!(list_matches("db1", "x,db*"));
        assert!(!list_matches("db1", "db*,!db1"));
        assert!(!list_matches("db1", "!db2"));
        for (text, secs) in [("90", Some(90)), ("1m30s", Some(90)), ("1h", Some(3600))] {
            assert_eq!(seconds(text), secs, "{text}");
        }
        for text in ["2W1d", "10S", "0.5"] {
            assert!(seconds(text).is_some(), "{text}");
        }
        for text in ["", "m", "1.", "1.5h", "5s5", "1x", "99999999999"] {
            assert_eq!(seconds(text), None, "{text}");
        }
    }

    #[test]
    fn include_reads_globs_in_order_nested_and_only_where_the_block_applies() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let ssh = home.join(".ssh");
        let write = |path: &Path, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            &ssh.join("config"),
            "Include config.d/*\nHost db1\n  Include ~/.ssh/db1.conf\nHost db2\n  \
             Include db1.conf missing.conf\nHost nomatch\n  Include other.conf\nHost *\n  \
             User fallback\n",
        );
        // Lexical order; each file starts in the includer's block and its own blocks end with it.
        write(&ssh.join("config.d/20-b"), "Port 20\nIdentityFile ~/b\n");
        write(&ssh.join("config.d/10-a"), "Match all\n  IdentityFile ~/a\nHost db1\n  Port 10\n");
        write(&ssh.join("config.d/.hidden"), "Port 99\n");
        std::fs::create_dir_all(ssh.join("config.d/subdir")).unwrap();
        write(&ssh.join("db1.conf"), "User one\nInclude nested.conf\n");
        write(&ssh.join("nested.conf"), "IdentityFile ~/nested\n");
        // Included where the block does not apply: nothing in it applies, not even `Host *`.
        write(&ssh.join("other.conf"), "Host *\n  ServerAliveInterval 9\n");
        // The system-wide file comes after, and includes relative to /etc/ssh or absolute paths.
        let system = dir.path().join("etc/ssh_config");
        let sys_d = dir.path().join("etc/sys.d");
        write(&system, &format!("Port 30\nUser sys\nInclude {}/*.conf\n", sys_d.display()));
        write(&sys_d.join("x.conf"), "IdentitiesOnly yes\nIdentityFile ~/b\n");

        let paths = [ssh.join("config"), dir.path().join("absent"), system];
        let config = load(&paths, &home).unwrap();
        let h = home.display();
        let got = |alias| summary(&config.resolve(alias, "me"));
        assert_eq!(
            got("db1"),
            format!("port=10 user=one id={h}/a,{h}/b,{h}/nested,{h}/b only=true")
        );
        assert_eq!(
            got("db2"),
            format!("port=20 user=one id={h}/a,{h}/b,{h}/nested,{h}/b only=true")
        );
        assert_eq!(got("db3"), format!("port=20 user=fallback id={h}/a,{h}/b,{h}/b only=true"));

        // A bad line in an included file names that file and line.
        write(&ssh.join("nested.conf"), "\nPort x\n");
        let said = load(&paths, &home).unwrap_err().to_string();
        assert_eq!(
            said,
            format!("{}:2: bad port `x` (1 to 65535)", ssh.join("nested.conf").display())
        );

        // A file that includes itself stops at the depth limit.
        let looping = ssh.join("loop.conf");
        write(&looping, "Include loop.conf\n");
        let said = load(std::slice::from_ref(&looping), &home).unwrap_err();
        assert_eq!((said.file.clone(), said.line), (looping, Some(1)));
        assert!(said.why.contains("nested more than 16 deep"), "{said}");

        // `~` in a system-wide file's Include is refused, as ssh does.
        let system = dir.path().join("etc/tilde");
        write(&system, "Include ~/x\n");
        let said = load(&[dir.path().join("absent"), system], &home).unwrap_err().to_string();
        assert!(said.ends_with("tilde:1: `~/x`: `~` in a system-wide file"), "{said}");

        // A file that is there but cannot be read.
        let said = load(&[dir.path().to_path_buf()], &home).unwrap_err();
        assert_eq!((said.line, said.why.as_str()), (None, "cannot read it"));
        assert!(said.source.is_some());
    }

    #[test]
    fn parse_alone_leaves_includes_and_tildes() {
        let config = parse("Include x\nIdentityFile ~/k_%d\n", Path::new("c")).unwrap();
        assert_eq!(summary(&config.resolve("h", "me")), "id=~/k_%d");
        assert_eq!(summary(&Config::default().resolve("h", "me")), "");
        assert_eq!(
            default_paths(Path::new(HOME)),
            [PathBuf::from("/home/me/.ssh/config"), PathBuf::from("/etc/ssh/ssh_config")]
        );
    }
}
