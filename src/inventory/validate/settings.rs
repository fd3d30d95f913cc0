//! `[settings.*]` and each node's `settings = { ... }`: postgresql.conf and gtm.conf values.

use super::Checker;
use crate::inventory::model::{Flavor, SettingMap, SettingValue, Settings};
use crate::inventory::raw::{RawSettingMap, RawSettings};
use toml::Spanned;

/// Which configuration file a settings table goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Conf {
    /// postgresql.conf: coordinators, datanodes and standbys.
    Server,
    /// gtm.conf: the GTM and its standby.
    Gtm,
    /// gtm_proxy.conf.
    GtmProxy,
}

/// postgresql.conf settings pgxc-deploy writes itself, with why.
const MANAGED_SERVER: &[(&str, &str)] = &[
    ("config_file", "pgxc-deploy keeps postgresql.conf in the node's data directory"),
    ("data_directory", "pgxc-deploy sets `data_directory` from `data_root` and the node's name"),
    ("forward_port", "pgxc-deploy sets `forward_port` from the node's `forward_port`"),
    ("gtm_host", "pgxc-deploy sets `gtm_host` from the [gtm] table's host"),
    ("gtm_port", "pgxc-deploy sets `gtm_port` from the [gtm] table's port"),
    ("hba_file", "pgxc-deploy writes pg_hba.conf in the node's data directory, from [auth]"),
    ("ident_file", "pgxc-deploy keeps pg_ident.conf in the node's data directory"),
    ("include", INCLUDE_HINT),
    ("include_dir", INCLUDE_HINT),
    ("include_if_exists", INCLUDE_HINT),
    (
        "listen_addresses",
        "pgxc-deploy sets `listen_addresses` so that the other nodes and the [auth] `allow` networks can connect",
    ),
    ("pgxc_node_name", "pgxc-deploy sets `pgxc_node_name` from the node's name"),
    ("pooler_port", "pgxc-deploy sets `pooler_port` from the node's `pooler_port`"),
    ("port", "pgxc-deploy sets `port` from the node's port"),
    ("primary_conninfo", "pgxc-deploy sets `primary_conninfo` on a standby from its datanode"),
    ("standby_mode", "pgxc-deploy sets `standby_mode` on the nodes of [datanodes.standby]"),
    (
        "synchronous_standby_names",
        "pgxc-deploy sets `synchronous_standby_names` from `synchronous` in [datanodes.standby]",
    ),
    (
        "unix_socket_directories",
        "pgxc-deploy sets `unix_socket_directories` itself: it reaches the node through that socket",
    ),
];

/// gtm.conf settings pgxc-deploy writes itself.
const MANAGED_GTM: &[(&str, &str)] = &[
    ("active_host", "pgxc-deploy points a GTM standby at the active GTM's host"),
    ("active_port", "pgxc-deploy points a GTM standby at the active GTM's port"),
    ("data_dir", "pgxc-deploy sets `data_dir` from `data_root` and the GTM's name"),
    (
        "listen_addresses",
        "pgxc-deploy sets `listen_addresses` so that coordinators and datanodes can connect",
    ),
    ("nodename", "pgxc-deploy sets `nodename` from the [gtm] table's `name`"),
    ("port", "pgxc-deploy sets `port` from the [gtm] table's `port`"),
    (
        "startup",
        "pgxc-deploy sets `startup` from the GTM's role: ACT, or STANDBY for [gtm.standby]",
    ),
];

/// gtm_proxy.conf settings pgxc-deploy writes itself.
const MANAGED_GTM_PROXY: &[(&str, &str)] = &[
    ("gtm_host", "pgxc-deploy points a proxy at the active GTM's host"),
    ("gtm_port", "pgxc-deploy points a proxy at the active GTM's port"),
    (
        "listen_addresses",
        "pgxc-deploy sets `listen_addresses` so that its host's nodes can connect",
    ),
    ("nodename", "pgxc-deploy sets `nodename` from the proxy's `name`"),
    ("port", "pgxc-deploy sets `port` from the proxy's `port`"),
];

const INCLUDE_HINT: &str = "pgxc-deploy writes the whole postgresql.conf; write the settings themselves in [settings.*] or in a node's `settings`";

impl Checker<'_> {
    pub(super) fn settings(&mut self, raw: &RawSettings, flavor: Flavor) -> Settings {
        if flavor == Flavor::Postgresql {
            for (scope, table) in [("coordinators", &raw.coordinators), ("gtm", &raw.gtm)] {
                if let Some(table) = table {
                    self.error(
                        table.span(),
                        format!("[settings.{scope}] is not used by flavor postgresql"),
                        "remove it, or set `flavor = \"postgres-xc\"` in [cluster]; [settings.all] and [settings.datanodes] apply to primaries and standbys",
                    );
                }
            }
        }
        let mut map = |table: &Option<Spanned<RawSettingMap>>, conf| {
            self.setting_map(table.as_ref().map(Spanned::get_ref), conf)
        };
        Settings {
            all: map(&raw.all, Conf::Server),
            coordinators: map(&raw.coordinators, Conf::Server),
            datanodes: map(&raw.datanodes, Conf::Server),
            gtm: map(&raw.gtm, Conf::Gtm),
        }
    }

    /// One settings table, checked: names, settings pgxc-deploy manages, and value types.
    pub(super) fn setting_map(&mut self, raw: Option<&RawSettingMap>, conf: Conf) -> SettingMap {
        let managed = match conf {
            Conf::Server => MANAGED_SERVER,
            Conf::Gtm => MANAGED_GTM,
            Conf::GtmProxy => MANAGED_GTM_PROXY,
        };
        let mut map = SettingMap::new();
        for (name, value) in raw.into_iter().flatten() {
            let n = name.get_ref();
            if !is_setting_name(n) {
                self.error(
                    name.span(),
                    format!("invalid setting name `{n}`"),
                    "setting names are lowercase letters, digits, `_` and `.`, starting with a letter or `_` (as in `shared_buffers` or `\"pg_stat_statements.max\"`)",
                );
            } else if let Some((_, why)) = managed.iter().find(|(m, _)| m == n) {
                self.error(
                    name.span(),
                    format!("`{n}` is set by pgxc-deploy"),
                    &format!("{why}; remove it here"),
                );
            }
            if let Some(value) = self.setting_value(n, value) {
                map.insert(n.clone(), value);
            }
        }
        map
    }

    fn setting_value(&mut self, name: &str, value: &Spanned<toml::Value>) -> Option<SettingValue> {
        let problem = match value.get_ref() {
            toml::Value::String(s) if s.contains(['\n', '\r', '\0']) => {
                ("a newline or NUL", "write the value on one line")
            }
            toml::Value::String(s) => return Some(SettingValue::String(s.clone())),
            toml::Value::Integer(i) => return Some(SettingValue::Integer(*i)),
            toml::Value::Float(x) if x.is_finite() => return Some(SettingValue::Float(*x)),
            toml::Value::Float(_) => ("a value that is not a finite number", "write a number"),
            toml::Value::Boolean(b) => return Some(SettingValue::Bool(*b)),
            toml::Value::Array(_) => (
                "an array value",
                "write a string, a number or `true`/`false`; a list is one string, such as `\"pg_stat_statements,auto_explain\"`",
            ),
            toml::Value::Table(_) => (
                "a table value",
                "write a string, a number or `true`/`false`; quote a dotted name, as in `\"pg_stat_statements.max\" = 1000`",
            ),
            toml::Value::Datetime(_) => {
                ("a date or time value", "quote it to write it as a string")
            }
        };
        let (what, hint) = problem;
        self.error(value.span(), format!("setting `{name}` has {what}"), hint);
        None
    }
}

/// `^[a-z_][a-z0-9_.]*$`, as PostgreSQL spells its settings and extensions' `prefix.name`.
fn is_setting_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::model::SettingValue;
    use crate::inventory::validate::{test_env, validate};
    use std::path::Path;

    #[test]
    fn setting_names() {
        for ok in ["shared_buffers", "_x", "pg_stat_statements.max", "a1"] {
            assert!(is_setting_name(ok), "{ok}");
        }
        for bad in ["", "Shared_buffers", "1a", ".a", "work-mem", "a b", "a=b", "é"] {
            assert!(!is_setting_name(bad), "{bad}");
        }
    }

    #[test]
    fn managed_lists_are_sorted_so_they_stay_reviewable() {
        for list in [MANAGED_SERVER, MANAGED_GTM, MANAGED_GTM_PROXY] {
            assert!(list.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    const CLUSTER: &str = "[hosts.db1]\naddress = \"db1\"\n[auth]\nmethod = \"trust\"\n";

    fn messages(text: &str) -> Vec<String> {
        let text = format!("{CLUSTER}{text}");
        match validate(&text, Path::new("x.toml"), &test_env) {
            Ok(_) => Vec::new(),
            Err(err) => err.diagnostics.iter().map(|d| d.message.clone()).collect(),
        }
    }

    #[test]
    fn scalar_values() {
        let text = format!(
            "{CLUSTER}[settings.all]\ns = \"a'b\"\ni = -3\nf = 0.5\nb = false\n\"x.y\" = 1\n"
        );
        let inv = validate(&text, Path::new("x.toml"), &test_env).unwrap();
        let all = &inv.settings.all;
        assert_eq!(all["s"], SettingValue::String("a'b".into()));
        assert_eq!(all["s"].to_conf(), "'a''b'");
        assert_eq!(all["i"], SettingValue::Integer(-3));
        assert_eq!(all["f"], SettingValue::Float(0.5));
        assert_eq!(all["b"].to_conf(), "off");
        assert_eq!(all["x.y"], SettingValue::Integer(1));
    }

    #[test]
    fn other_values_name_the_setting() {
        assert_eq!(
            messages("[settings.all]\nd = 1979-05-27\nx.y = 1\nn = nan\nl = \"a\\nb\"\n"),
            [
                "setting `d` has a date or time value",
                "setting `x` has a table value",
                "setting `n` has a value that is not a finite number",
                "setting `l` has a newline or NUL",
            ]
        );
    }

    #[test]
    fn gtm_conf_has_its_own_managed_settings() {
        assert_eq!(
            messages("[settings.gtm]\nnodename = \"g\"\npgxc_node_name = \"g\"\n"),
            ["`nodename` is set by pgxc-deploy"]
        );
        assert_eq!(messages("[settings.all]\nnodename = \"g\"\n"), Vec::<String>::new());
    }

    #[test]
    fn postgresql_has_no_gtm_or_coordinator_settings() {
        let text = "[cluster]\nflavor = \"postgresql\"\n[settings.gtm]\n[settings.coordinators]\n";
        assert_eq!(
            messages(text),
            [
                "[settings.gtm] is not used by flavor postgresql",
                "[settings.coordinators] is not used by flavor postgresql",
            ]
        );
    }
}
