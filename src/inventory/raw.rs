//! The inventory as written: serde structs that mirror the TOML file one to one.
//!
//! Every table denies unknown keys, and every value that a later check may complain about is a
//! [`Spanned`], so `validate` can point at its line and column. Nothing here checks meaning (a
//! port of 0 or an unknown host parse fine); that is `validate`'s job. No I/O here: `validate`
//! calls [`from_str`] on text that `inventory::load` already read, then expands `$VARIABLES` in
//! place through [`RawInventory::strings_mut`].
//!
//! [`from_str`] parses the whole file first (every syntax error at once), then deserializes
//! each table on its own: each `[hosts.NAME]`, each `[[coordinators]]` and `[[datanodes]]`
//! entry, each other top-level table. A table with a wrong type, an unknown or a missing key is
//! left out and its error kept, so the other tables are still checked; [`Broken`] tells
//! `validate` what was left out, so that it does not report what the gap implies (an unknown
//! host, no `[gtm]`).

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// A problem with the file's shape: TOML syntax, an unknown key, a wrong type or a missing
/// key, worded as the `toml` crate words it (`validate` rewords it), or with our own hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    pub message: String,
    pub span: Option<Range<usize>>,
    /// Set when the message is already ours.
    pub hint: Option<&'static str>,
}

impl From<toml::de::Error> for ShapeError {
    fn from(err: toml::de::Error) -> Self {
        ShapeError { message: err.message().to_string(), span: err.span(), hint: None }
    }
}

/// What [`from_str`] made of a file whose syntax is valid.
#[derive(Debug)]
pub struct Parsed {
    pub raw: RawInventory,
    /// One per table left out of `raw` (or per unknown top-level key), in no particular order.
    pub errors: Vec<ShapeError>,
}

/// Tables that were written but left out of [`RawInventory`] because they did not
/// deserialize (their [`ShapeError`] is reported instead).
#[derive(Debug, Default)]
pub struct Broken {
    /// `[cluster]`: its `flavor` is still read when that value is valid on its own.
    pub cluster: bool,
    /// The names of the `[hosts.NAME]` tables left out.
    pub hosts: HashSet<String>,
    pub gtm: bool,
    pub gtm_proxies: bool,
    /// At least one `[[coordinators]]` entry was left out.
    pub coordinators: bool,
    pub datanodes: bool,
    pub auth: bool,
}

/// The top-level tables, in the order the reference documents them.
const TOP_LEVEL: &[&str] = &[
    "cluster",
    "ssh",
    "hosts",
    "gtm",
    "gtm_proxies",
    "coordinators",
    "datanodes",
    "source",
    "auth",
    "settings",
];

/// Parse TOML text into the raw structs. `Err`: the syntax errors, after which nothing else
/// is checked. `Ok`: the tables that deserialized, and the errors of those that did not.
pub fn from_str(text: &str) -> Result<Parsed, Vec<ShapeError>> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(without_cascades(text, syntax.into_iter().map(ShapeError::from).collect()));
    }
    let mut tables = Tables { errors: Vec::new() };
    let mut raw = RawInventory::default();
    for (key, value) in root.into_inner() {
        let broken = &mut raw.broken;
        match key.get_ref().as_ref() {
            "cluster" => raw.cluster = tables.cluster(value, broken),
            "ssh" => raw.ssh = tables.one(value).unwrap_or_default(),
            "hosts" => raw.hosts = tables.hosts(value, &mut broken.hosts),
            "gtm" => {
                raw.gtm = tables.one(value);
                broken.gtm = raw.gtm.is_none();
            }
            "gtm_proxies" => raw.gtm_proxies = tables.list(value, &mut broken.gtm_proxies),
            "coordinators" => raw.coordinators = tables.list(value, &mut broken.coordinators),
            "datanodes" if is_standby_alone(value.get_ref()) => {
                broken.datanodes = true;
                tables.standby_alone(&value);
            }
            "datanodes" => raw.datanodes = tables.list(value, &mut broken.datanodes),
            "source" => raw.source = tables.one(value),
            "auth" => {
                raw.auth = tables.one(value);
                broken.auth = raw.auth.is_none();
            }
            "settings" => raw.settings = tables.one(value).unwrap_or_default(),
            other => tables.errors.push(ShapeError {
                message: format!("unknown field `{other}`, expected one of {}", quoted(TOP_LEVEL)),
                span: Some(key.span()),
                hint: None,
            }),
        }
    }
    Ok(Parsed { raw, errors: tables.errors })
}

/// A table written twice (`[hosts.db1]` again) makes each of its keys a duplicate too: keep
/// the table's error only, not one more per key below it.
fn without_cascades(text: &str, mut errors: Vec<ShapeError>) -> Vec<ShapeError> {
    errors.sort_by_key(|e| e.span.as_ref().map(|s| s.start));
    // Where the body of the last table written twice ends: at the next header line.
    let mut twice_until = 0;
    errors.retain(|e| {
        let Some(start) = e.span.as_ref().map(|s| s.start) else { return true };
        if !e.message.starts_with("duplicate key") {
            return true;
        }
        if start < twice_until {
            return false;
        }
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..].trim_start().starts_with('[') {
            let rest = &text[start..];
            twice_until = start + rest.find("\n[").map_or(rest.len(), |i| i + 1);
        }
        true
    });
    errors
}

/// `[datanodes.standby]` with no `[[datanodes]]` before it makes `datanodes` a table.
fn is_standby_alone(value: &DeValue<'_>) -> bool {
    value.as_table().is_some_and(|t| t.len() == 1 && t.contains_key("standby"))
}

/// `a`, `b` -> "`a`, `b`", as serde lists the keys it expected.
fn quoted(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// Deserializes tables one at a time and keeps the errors.
struct Tables {
    errors: Vec<ShapeError>,
}

impl Tables {
    fn one<'i, T: Deserialize<'i>>(&mut self, value: Spanned<DeValue<'i>>) -> Option<T> {
        T::deserialize(ValueDeserializer::from(value)).map_err(|e| self.errors.push(e.into())).ok()
    }

    /// `[cluster]`; when it is broken, the defaults with its `flavor` if that value is valid
    /// on its own: the flavor decides which other tables are allowed.
    fn cluster(&mut self, value: Spanned<DeValue<'_>>, broken: &mut Broken) -> RawCluster {
        let flavor = value.get_ref().get("flavor").cloned();
        self.one(value).unwrap_or_else(|| {
            broken.cluster = true;
            let flavor =
                flavor.and_then(|f| Deserialize::deserialize(ValueDeserializer::from(f)).ok());
            RawCluster { flavor, ..RawCluster::default() }
        })
    }

    /// The `[hosts.NAME]` tables, each on its own.
    fn hosts(
        &mut self,
        value: Spanned<DeValue<'_>>,
        broken: &mut HashSet<String>,
    ) -> BTreeMap<Spanned<String>, Spanned<RawHost>> {
        let span = value.span();
        let table = match value.into_inner() {
            DeValue::Table(table) => table,
            other => return self.one(Spanned::new(span, other)).unwrap_or_default(),
        };
        let mut hosts = BTreeMap::new();
        for (name, host) in table {
            let name = Spanned::new(name.span(), name.into_inner().into_owned());
            if let Some(host) = self.one(host) {
                hosts.insert(name, host);
            } else {
                broken.insert(name.into_inner());
            }
        }
        hosts
    }

    /// `[[coordinators]]` / `[[datanodes]]`, each entry on its own.
    fn list<'i, T: Deserialize<'i>>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        broken: &mut bool,
    ) -> Vec<T> {
        let span = value.span();
        let items = match value.into_inner() {
            DeValue::Array(items) => items,
            other => {
                *broken = true;
                return self.one(Spanned::new(span, other)).unwrap_or_default();
            }
        };
        let written = items.len();
        let kept: Vec<T> = items.into_iter().filter_map(|item| self.one(item)).collect();
        *broken = kept.len() < written;
        kept
    }

    fn standby_alone(&mut self, datanodes: &Spanned<DeValue<'_>>) {
        let standby = datanodes.get_ref().get("standby").map_or(datanodes.span(), Spanned::span);
        self.errors.push(ShapeError {
            message: "[datanodes.standby] does not follow a [[datanodes]] entry".to_string(),
            span: Some(standby),
            hint: Some(
                "a standby belongs to the datanode whose [[datanodes]] table comes right before its [datanodes.standby]; add that [[datanodes]] table (name, host, port) above it",
            ),
        });
    }
}

#[derive(Debug, Default)]
pub struct RawInventory {
    pub cluster: RawCluster,
    pub ssh: RawSsh,
    /// Keyed by host name. A map loses file order, so `validate` sorts the hosts by key span.
    pub hosts: BTreeMap<Spanned<String>, Spanned<RawHost>>,
    pub gtm: Option<Spanned<RawGtm>>,
    pub gtm_proxies: Vec<Spanned<RawGtmProxy>>,
    pub coordinators: Vec<Spanned<RawCoordinator>>,
    pub datanodes: Vec<Spanned<RawDatanode>>,
    pub source: Option<Spanned<RawSource>>,
    pub auth: Option<Spanned<RawAuth>>,
    pub settings: RawSettings,
    /// Tables written but left out above.
    pub broken: Broken,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [cluster] table")]
pub struct RawCluster {
    pub name: Option<Spanned<String>>,
    pub flavor: Option<Spanned<RawFlavor>>,
    pub os_user: Option<Spanned<String>>,
    pub install_prefix: Option<Spanned<String>>,
    pub data_root: Option<Spanned<String>>,
    pub templates_dir: Option<Spanned<String>>,
    pub maximum_lag_on_failover: Option<Spanned<u64>>,
    /// Postgres-XC/XL: the datanode every catalog marks `PRIMARY`.
    pub primary_datanode: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RawFlavor {
    #[serde(rename = "postgres-xc")]
    PostgresXc,
    #[serde(rename = "postgres-xl")]
    PostgresXl,
    #[serde(rename = "opentenbase")]
    Opentenbase,
    #[serde(rename = "postgresql")]
    Postgresql,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [ssh] table")]
pub struct RawSsh {
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub identity_file: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub global_known_hosts: Option<Spanned<String>>,
    pub proxy_jump: Option<Spanned<String>>,
    /// The OpenSSH client configuration: a file, or `false` for none (`true`: the default).
    pub config: Option<Spanned<RawSshConfig>>,
    pub connect_timeout: Option<Spanned<u64>>,
    pub command_timeout: Option<Spanned<u64>>,
}

/// `[ssh] config`: a path, or a boolean.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a path (string), or false")]
pub enum RawSshConfig {
    Path(String),
    On(bool),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a host table such as [hosts.db1]")]
pub struct RawHost {
    pub address: Spanned<String>,
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub identity_file: Option<Spanned<String>>,
    pub proxy_jump: Option<Spanned<String>>,
    pub install_prefix: Option<Spanned<String>>,
    pub data_root: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [gtm] table")]
pub struct RawGtm {
    pub name: Option<Spanned<String>>,
    pub host: Spanned<String>,
    pub port: Option<Spanned<u16>>,
    pub standby: Option<Spanned<RawGtmStandby>>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [gtm.standby] table")]
pub struct RawGtmStandby {
    pub name: Option<Spanned<String>>,
    pub host: Spanned<String>,
    pub port: Option<Spanned<u16>>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[gtm_proxies]] table")]
pub struct RawGtmProxy {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[coordinators]] table")]
pub struct RawCoordinator {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    pub pooler_port: Option<Spanned<u16>>,
    /// OpenTenBase: the port of its forward process (rows exchanged between nodes).
    pub forward_port: Option<Spanned<u16>>,
    /// The datanodes its pgxc_node marks `PREFERRED`.
    pub preferred_datanodes: Option<Spanned<Vec<Spanned<String>>>>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[datanodes]] table")]
pub struct RawDatanode {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    /// Postgres-XL, OpenTenBase: the datanode's pooler (datanodes connect to each other).
    pub pooler_port: Option<Spanned<u16>>,
    /// OpenTenBase: the port of its forward process.
    pub forward_port: Option<Spanned<u16>>,
    /// `"present"` (the default) or `"removed"`: apply moves its rows to the other datanodes,
    /// drops it from every coordinator and stops it and its standby.
    pub state: Option<Spanned<String>>,
    /// Postgres-XL: the datanodes its own pgxc_node marks `PREFERRED`.
    pub preferred_datanodes: Option<Spanned<Vec<Spanned<String>>>>,
    pub standby: Option<Spanned<RawStandby>>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [datanodes.standby] table")]
pub struct RawStandby {
    pub name: Option<Spanned<String>>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    /// Postgres-XL, OpenTenBase: the standby's pooler, used once it is promoted.
    pub pooler_port: Option<Spanned<u16>>,
    /// OpenTenBase: the port of its forward process, which runs once it is promoted.
    pub forward_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub synchronous: bool,
    pub settings: Option<RawSettingMap>,
}

/// `[source]`: which of `prebuilt`, `git`, `tarball` and `dir` is set, and whether the build keys
/// fit it, is `validate`'s job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [source] table")]
pub struct RawSource {
    pub prebuilt: Option<Spanned<String>>,
    pub git: Option<Spanned<String>>,
    pub rev: Option<Spanned<String>>,
    pub tarball: Option<Spanned<String>>,
    pub dir: Option<Spanned<String>>,
    pub configure_args: Option<Spanned<Vec<Spanned<String>>>>,
    pub patches: Option<Spanned<Vec<Spanned<String>>>>,
    pub pre_configure: Option<Spanned<Vec<Spanned<String>>>>,
    pub build: Option<Spanned<RawBuildMode>>,
    pub build_host: Option<Spanned<String>>,
    pub make_jobs: Option<Spanned<u32>>,
    pub build_timeout: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RawBuildMode {
    #[serde(rename = "once")]
    Once,
    #[serde(rename = "every-host")]
    EveryHost,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [auth] table")]
pub struct RawAuth {
    pub method: Option<Spanned<RawAuthMethod>>,
    pub password_file: Option<Spanned<String>>,
    /// The NAME of a variable, so [`RawInventory::strings_mut`] leaves it alone.
    pub password_env: Option<Spanned<String>>,
    pub allow: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RawAuthMethod {
    #[serde(rename = "trust")]
    Trust,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "md5")]
    Md5,
}

/// `[settings.all]`, `[settings.coordinators]`, ...: any other scope is an unknown key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [settings] table")]
pub struct RawSettings {
    pub all: Option<Spanned<RawSettingMap>>,
    pub coordinators: Option<Spanned<RawSettingMap>>,
    pub datanodes: Option<Spanned<RawSettingMap>>,
    pub gtm: Option<Spanned<RawSettingMap>>,
}

/// Setting name -> value, any TOML value: `validate` names the setting when it is an array or
/// a table, which serde could not.
pub type RawSettingMap = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

impl RawInventory {
    /// Call `f` with the span and a mutable reference of every string value written in the file,
    /// so that `validate` can expand `$VARIABLES` before any other check. Keys (host names,
    /// setting names) and enumerated values (`flavor`, `build`, `method`) are not visited, and
    /// neither is `password_env`, which names a variable rather than using one. A field added to
    /// a raw struct must be added here too; `validate`'s tests write `$VARIABLES` everywhere.
    pub fn strings_mut(&mut self, f: &mut dyn FnMut(Range<usize>, &mut String)) {
        let c = &mut self.cluster;
        let cluster = [&mut c.name, &mut c.os_user, &mut c.install_prefix, &mut c.data_root];
        cluster
            .into_iter()
            .chain([&mut c.templates_dir, &mut c.primary_datanode])
            .for_each(|v| optional(v, f));
        let s = &mut self.ssh;
        [&mut s.user, &mut s.identity_file, &mut s.known_hosts, &mut s.global_known_hosts]
            .into_iter()
            .chain([&mut s.proxy_jump])
            .for_each(|v| optional(v, f));
        if let Some(config) = &mut s.config {
            let span = config.span();
            if let RawSshConfig::Path(path) = config.get_mut() {
                f(span, path);
            }
        }
        for host in self.hosts.values_mut() {
            let h = host.get_mut();
            one(&mut h.address, f);
            [&mut h.user, &mut h.identity_file, &mut h.install_prefix, &mut h.data_root]
                .into_iter()
                .chain([&mut h.proxy_jump])
                .for_each(|v| optional(v, f));
        }
        if let Some(gtm) = &mut self.gtm {
            let g = gtm.get_mut();
            optional(&mut g.name, f);
            one(&mut g.host, f);
            settings_strings(g.settings.as_mut(), f);
            if let Some(standby) = &mut g.standby {
                let s = standby.get_mut();
                optional(&mut s.name, f);
                one(&mut s.host, f);
                settings_strings(s.settings.as_mut(), f);
            }
        }
        for proxy in &mut self.gtm_proxies {
            let p = proxy.get_mut();
            one(&mut p.name, f);
            one(&mut p.host, f);
            settings_strings(p.settings.as_mut(), f);
        }
        for coordinator in &mut self.coordinators {
            let c = coordinator.get_mut();
            one(&mut c.name, f);
            one(&mut c.host, f);
            c.preferred_datanodes.iter_mut().flat_map(|l| l.get_mut()).for_each(|v| one(v, f));
            settings_strings(c.settings.as_mut(), f);
        }
        for datanode in &mut self.datanodes {
            let d = datanode.get_mut();
            one(&mut d.name, f);
            one(&mut d.host, f);
            d.preferred_datanodes.iter_mut().flat_map(|l| l.get_mut()).for_each(|v| one(v, f));
            settings_strings(d.settings.as_mut(), f);
            if let Some(standby) = &mut d.standby {
                let s = standby.get_mut();
                optional(&mut s.name, f);
                one(&mut s.host, f);
                settings_strings(s.settings.as_mut(), f);
            }
        }
        if let Some(source) = &mut self.source {
            let s = source.get_mut();
            [
                &mut s.prebuilt,
                &mut s.git,
                &mut s.rev,
                &mut s.tarball,
                &mut s.dir,
                &mut s.build_host,
            ]
            .into_iter()
            .for_each(|v| optional(v, f));
            for list in [&mut s.configure_args, &mut s.patches, &mut s.pre_configure] {
                list.iter_mut().flat_map(|l| l.get_mut()).for_each(|v| one(v, f));
            }
        }
        if let Some(auth) = &mut self.auth {
            let a = auth.get_mut();
            optional(&mut a.password_file, f);
            a.allow.iter_mut().flatten().for_each(|v| one(v, f));
        }
        let s = &mut self.settings;
        for scope in [&mut s.all, &mut s.coordinators, &mut s.datanodes, &mut s.gtm] {
            settings_strings(scope.as_mut().map(Spanned::get_mut), f);
        }
    }
}

fn one(value: &mut Spanned<String>, f: &mut dyn FnMut(Range<usize>, &mut String)) {
    f(value.span(), value.get_mut());
}

fn optional(value: &mut Option<Spanned<String>>, f: &mut dyn FnMut(Range<usize>, &mut String)) {
    if let Some(value) = value {
        one(value, f);
    }
}

/// The string values of one settings table (arrays and tables are errors; they are not entered).
fn settings_strings(
    settings: Option<&mut RawSettingMap>,
    f: &mut dyn FnMut(Range<usize>, &mut String),
) {
    for value in settings.into_iter().flat_map(|s| s.values_mut()) {
        let span = value.span();
        if let toml::Value::String(s) = value.get_mut() {
            f(span, s);
        }
    }
}
