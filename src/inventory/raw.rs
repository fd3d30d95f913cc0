//! The inventory as written: serde structs that mirror the TOML file one to one.
//!
//! Every table denies unknown keys, and every value that a later check may complain about is a
//! [`Spanned`], so `validate` can point at its line and column. Nothing here checks meaning (a
//! port of 0 or an unknown host parse fine); that is `validate`'s job. No I/O here: `validate`
//! calls [`from_str`] on text that `inventory::load` already read.

use serde::Deserialize;
use std::collections::BTreeMap;
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [cluster] table")]
pub struct RawCluster {
    pub name: Option<Spanned<String>>,
    pub flavor: Option<Spanned<RawFlavor>>,
    pub os_user: Option<Spanned<String>>,
    pub install_prefix: Option<Spanned<String>>,
    pub data_root: Option<Spanned<String>>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[coordinators]] table")]
pub struct RawCoordinator {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    pub pooler_port: Option<Spanned<u16>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[datanodes]] table")]
pub struct RawDatanode {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    pub standby: Option<Spanned<RawStandby>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [datanodes.standby] table")]
pub struct RawStandby {
    pub name: Option<Spanned<String>>,
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
    #[serde(default)]
    pub synchronous: bool,
}
