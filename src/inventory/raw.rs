//! The inventory as written: serde structs that mirror the TOML file one to one.
//!
//! Every table denies unknown keys, and every value that a later check may complain about is a
//! [`Spanned`], so `validate` can point at its line and column. Nothing here checks meaning (a
//! port of 0 or an unknown host parse fine); that is `validate`'s job. No I/O here: `validate`
//! calls [`from_str`] on text that `inventory::load` already read, then expands `$VARIABLES` in
//! place through [`RawInventory::strings_mut`].

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// Parse TOML text into the raw structs. Syntax errors, unknown keys, wrong types and missing
/// required keys stop here, as a single `toml` error.
pub fn from_str(text: &str) -> Result<RawInventory, toml::de::Error> {
    toml::from_str(text)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an inventory")]
pub struct RawInventory {
    #[serde(default)]
    pub cluster: RawCluster,
    #[serde(default)]
    pub ssh: RawSsh,
    /// Keyed by host name. A map loses file order, so `validate` sorts the hosts by key span.
    #[serde(default)]
    pub hosts: BTreeMap<Spanned<String>, Spanned<RawHost>>,
    pub gtm: Option<Spanned<RawGtm>>,
    #[serde(default)]
    pub coordinators: Vec<Spanned<RawCoordinator>>,
    #[serde(default)]
    pub datanodes: Vec<Spanned<RawDatanode>>,
    pub source: Option<Spanned<RawSource>>,
    pub auth: Option<Spanned<RawAuth>>,
    #[serde(default)]
    pub settings: RawSettings,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RawFlavor {
    #[serde(rename = "postgres-xc")]
    PostgresXc,
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
    pub connect_timeout: Option<Spanned<u64>>,
    pub command_timeout: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a host table such as [hosts.db1]")]
pub struct RawHost {
    pub address: Spanned<String>,
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub identity_file: Option<Spanned<String>>,
    pub install_prefix: Option<Spanned<String>>,
    pub data_root: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [gtm] table")]
pub struct RawGtm {
    pub name: Option<Spanned<String>>,
    pub host: Spanned<String>,
    pub port: Option<Spanned<u16>>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[coordinators]] table")]
pub struct RawCoordinator {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    pub pooler_port: Option<Spanned<u16>>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[datanodes]] table")]
pub struct RawDatanode {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    pub standby: Option<Spanned<RawStandby>>,
    pub settings: Option<RawSettingMap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [datanodes.standby] table")]
pub struct RawStandby {
    pub name: Option<Spanned<String>>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
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
        cluster.into_iter().chain([&mut c.templates_dir]).for_each(|v| optional(v, f));
        let s = &mut self.ssh;
        [&mut s.user, &mut s.identity_file, &mut s.known_hosts]
            .into_iter()
            .for_each(|v| optional(v, f));
        for host in self.hosts.values_mut() {
            let h = host.get_mut();
            one(&mut h.address, f);
            [&mut h.user, &mut h.identity_file, &mut h.install_prefix, &mut h.data_root]
                .into_iter()
                .for_each(|v| optional(v, f));
        }
        if let Some(gtm) = &mut self.gtm {
            let g = gtm.get_mut();
            optional(&mut g.name, f);
            one(&mut g.host, f);
            settings_strings(g.settings.as_mut(), f);
        }
        for coordinator in &mut self.coordinators {
            let c = coordinator.get_mut();
            one(&mut c.name, f);
            one(&mut c.host, f);
            settings_strings(c.settings.as_mut(), f);
        }
        for datanode in &mut self.datanodes {
            let d = datanode.get_mut();
            one(&mut d.name, f);
            one(&mut d.host, f);
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
