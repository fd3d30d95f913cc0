//! Fills the handlebars templates of `templates/` with a node's [`Context`]. PURE: no I/O.
//!
//! The built-in templates are embedded in the binary with `include_str!`; a user's templates
//! directory can replace any of them by file name ([`Renderer::with_overrides`]; the caller
//! reads the files). Handlebars runs in strict mode: a variable that is not in the context is
//! an error, also inside `{{#if}}`/`{{#unless}}`, which stock handlebars lets pass as false.
//! Nothing is HTML-escaped; quoting is explicit, with two helpers:
//!
//! - `{{conf_string x}}`: `x` as a postgresql.conf / recovery.conf / gtm.conf string literal,
//!   quotes included (`'it''s'`).
//! - `{{sql_literal x}}`: `x` as an SQL string literal, quotes included (`'it''s'`).
//!
//! [`Renderer::node_files`] is the entry point for the planner (still to come): it compares
//! what it returns with the files on the hosts, and the executor writes the differences.

use super::context::{Context, ContextError};
use crate::flavors;
use crate::inventory::{Inventory, Node, SettingValue};
use handlebars::{
    Handlebars, Helper, HelperDef, HelperResult, JsonTruthy, Output, RenderContext,
    RenderErrorReason, Renderable, handlebars_helper, no_escape,
};
use std::collections::BTreeMap;

/// The built-in templates, by file name.
const BUILTIN: &[(&str, &str)] = &[
    ("gtm.conf.hbs", include_str!("../../templates/gtm.conf.hbs")),
    ("gtm_proxy.conf.hbs", include_str!("../../templates/gtm_proxy.conf.hbs")),
    ("pg_hba.conf.hbs", include_str!("../../templates/pg_hba.conf.hbs")),
    ("postgresql.conf.hbs", include_str!("../../templates/postgresql.conf.hbs")),
    ("recovery.conf.hbs", include_str!("../../templates/recovery.conf.hbs")),
    ("register_nodes.sql.hbs", include_str!("../../templates/register_nodes.sql.hbs")),
    ("synchronous_standby.conf.hbs", include_str!("../../templates/synchronous_standby.conf.hbs")),
];

/// Why a template could not be loaded or rendered. Each names the template, or its cause names
/// the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error("no built-in template to override named {}; valid names: {}", list(names), list(valid))]
    UnknownOverride { names: Vec<String>, valid: Vec<&'static str> },
    #[error("no template named `{name}`; valid names: {}", list(valid))]
    UnknownTemplate { name: String, valid: Vec<&'static str> },
    #[error("template `{name}` does not parse")]
    Parse {
        name: String,
        #[source]
        source: Box<handlebars::TemplateError>,
    },
    #[error("template `{name}` failed to render")]
    Render {
        name: String,
        #[source]
        source: Box<handlebars::RenderError>,
    },
    #[error("cannot build the render context")]
    Context(#[from] ContextError),
    #[error("cannot list the node's files")]
    Flavor(#[from] flavors::Error),
}

fn list<S: AsRef<str>>(names: &[S]) -> String {
    names.iter().map(|n| format!("`{}`", n.as_ref())).collect::<Vec<_>>().join(", ")
}

/// One file for a node's data directory, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name inside the data directory.
    pub name: &'static str,
    /// Unix permission bits.
    pub mode: u32,
    pub contents: String,
}

/// The templates, ready to render. Build it once per run and render every node with it.
#[derive(Debug, Clone)]
pub struct Renderer {
    registry: Handlebars<'static>,
    /// Names of templates replaced by the user's.
    overridden: Vec<String>,
}

impl Default for Renderer {
    fn default() -> Renderer {
        Renderer::new()
    }
}

impl Renderer {
    /// The built-in templates only.
    pub fn new() -> Renderer {
        Renderer::with_overrides(BTreeMap::new())
            .expect("built-in templates parse (checked by the render tests)")
    }

    /// The built-in templates, with `overrides` (file name such as `pg_hba.conf.hbs` -> its
    /// text) in place of the built-in ones of the same names. A name that matches no built-in
    /// template is an error, as is a template that does not parse.
    pub fn with_overrides(overrides: BTreeMap<String, String>) -> Result<Renderer, RenderError> {
        let unknown: Vec<String> =
            overrides.keys().filter(|name| builtin(name).is_none()).cloned().collect();
        if !unknown.is_empty() {
            return Err(RenderError::UnknownOverride { names: unknown, valid: Self::names() });
        }
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(no_escape);
        registry.register_helper("if", Box::new(StrictIf { positive: true }));
        registry.register_helper("unless", Box::new(StrictIf { positive: false }));
        registry.register_helper("conf_string", Box::new(conf_string));
        registry.register_helper("sql_literal", Box::new(sql_literal));
        for &(name, text) in BUILTIN {
            let text = overrides.get(name).map_or(text, String::as_str);
            registry.register_template_string(name, text).map_err(|source| RenderError::Parse {
                name: name.to_string(),
                source: Box::new(source),
            })?;
        }
        Ok(Renderer { registry, overridden: overrides.into_keys().collect() })
    }

    /// The names of the templates, which are also the names overrides may use.
    pub fn names() -> Vec<&'static str> {
        BUILTIN.iter().map(|&(name, _)| name).collect()
    }

    /// The built-in text of template `name`.
    pub fn builtin(name: &str) -> Option<&'static str> {
        builtin(name)
    }

    /// Whether `name` is the user's template rather than the built-in one.
    pub fn is_overridden(&self, name: &str) -> bool {
        self.overridden.iter().any(|n| n == name)
    }

    /// Render template `name` (`postgresql.conf.hbs`, ...) with `ctx`.
    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, RenderError> {
        if builtin(name).is_none() {
            return Err(RenderError::UnknownTemplate {
                name: name.to_string(),
                valid: Self::names(),
            });
        }
        self.registry.render(name, ctx).map_err(|source| RenderError::Render {
            name: name.to_string(),
            source: Box::new(source),
        })
    }

    /// Every file the node's flavor puts in its data directory, rendered (marker files such as
    /// `standby.signal` are empty).
    pub fn node_files(
        &self,
        inv: &Inventory,
        node: &Node,
    ) -> Result<Vec<RenderedFile>, RenderError> {
        let ctx = Context::new(inv, node)?;
        let files = flavors::of(inv.cluster.flavor).config_files(node)?;
        files
            .into_iter()
            .map(|file| {
                let contents = match file.template {
                    Some(template) => self.render(template, &ctx)?,
                    None => String::new(),
                };
                Ok(RenderedFile { name: file.name, mode: file.mode, contents })
            })
            .collect()
    }
}

fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|&&(n, _)| n == name).map(|&(_, text)| text)
}

handlebars_helper!(conf_string: |s: str| SettingValue::String(s.to_string()).to_conf());
handlebars_helper!(sql_literal: |s: str| super::sql::literal(s));

/// `{{#if}}` / `{{#unless}}` that fail on a variable missing from the context, as strict mode
/// does everywhere else; `null`, `false`, `0`, `""` and `[]` are still simply false.
#[derive(Clone, Copy)]
struct StrictIf {
    positive: bool,
}

impl HelperDef for StrictIf {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc handlebars::Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let helper = if self.positive { "if" } else { "unless" };
        let param = h.param(0).ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, 0))?;
        if param.is_value_missing() {
            let path = param.relative_path().cloned();
            return Err(RenderErrorReason::MissingVariable(path).into());
        }
        let truthy = param.value().is_truthy(false) == self.positive;
        match if truthy { h.template() } else { h.inverse() } {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;
    use std::error::Error as _;

    use crate::errors::chain;

    fn ctx(name: &str) -> Context {
        let inv = fixtures::postgres_xc();
        Context::new(&inv, inv.node(name).unwrap()).unwrap()
    }

    fn with_override(name: &str, text: &str) -> Result<Renderer, RenderError> {
        Renderer::with_overrides(BTreeMap::from([(name.to_string(), text.to_string())]))
    }

    #[test]
    fn every_builtin_template_has_its_file_and_parses() {
        let renderer = Renderer::new();
        assert_eq!(Renderer::names().len(), BUILTIN.len());
        for name in Renderer::names() {
            assert!(!renderer.is_overridden(name));
            let text = Renderer::builtin(name).unwrap();
            let first = text.lines().next().unwrap();
            assert!(first.contains("Managed by pgxc-deploy"), "{name} starts with: {first}");
        }
    }

    #[test]
    fn strict_mode_rejects_an_unknown_variable() {
        let r = with_override("gtm.conf.hbs", "port = {{node.prot}}\n").unwrap();
        let err = r.render("gtm.conf.hbs", &ctx("gtm")).unwrap_err();
        let text = chain(&err);
        assert!(text.starts_with("template `gtm.conf.hbs` failed to render: "), "{text}");
        assert!(text.contains("line 1, col 8"), "{text}");
        assert!(text.contains("node.prot"), "{text}");
    }

    #[test]
    fn strict_mode_covers_if_and_unless() {
        for text in ["{{#if node.is_standy}}x{{/if}}", "{{#unless nod}}x{{/unless}}"] {
            let r = with_override("gtm.conf.hbs", text).unwrap();
            let err = r.render("gtm.conf.hbs", &ctx("gtm")).unwrap_err();
            assert!(chain(&err).contains("strict mode"), "{text}: {}", chain(&err));
        }
        // A present null is not missing: it is false.
        let r = with_override("gtm.conf.hbs", "{{#if primary}}p{{else}}none{{/if}}").unwrap();
        assert_eq!(r.render("gtm.conf.hbs", &ctx("gtm")).unwrap(), "none");
    }

    #[test]
    fn strict_mode_covers_helper_arguments() {
        let r = with_override("gtm.conf.hbs", "{{conf_string gtm.adress}}").unwrap();
        assert!(r.render("gtm.conf.hbs", &ctx("gtm")).is_err());
    }

    #[test]
    fn sql_literal_doubles_quotes_and_nothing_is_html_escaped() {
        let r = with_override("register_nodes.sql.hbs", "{{sql_literal node.name}}").unwrap();
        let mut c = ctx("coord1");
        c.node.name = "it's <a> & \\".to_string();
        assert_eq!(r.render("register_nodes.sql.hbs", &c).unwrap(), "'it''s <a> & \\'");
    }

    #[test]
    fn conf_string_quotes_like_setting_values() {
        let r = with_override("gtm.conf.hbs", "{{conf_string node.data_dir}}").unwrap();
        let mut c = ctx("gtm");
        c.node.data_dir = r"/d/it's\x".to_string();
        assert_eq!(r.render("gtm.conf.hbs", &c).unwrap(), r"'/d/it''s\\x'");
    }

    #[test]
    fn an_override_replaces_a_template() {
        let r = with_override("pg_hba.conf.hbs", "local all {{os_user}} peer\n").unwrap();
        assert!(r.is_overridden("pg_hba.conf.hbs"));
        assert_eq!(r.render("pg_hba.conf.hbs", &ctx("dn1")).unwrap(), "local all postgres peer\n");
        // The others stay built in.
        assert!(r.render("postgresql.conf.hbs", &ctx("dn1")).unwrap().contains("port = 15432"));
    }

    #[test]
    fn unknown_override_names_are_listed_with_the_valid_ones() {
        let overrides = BTreeMap::from([
            ("pg_hba.hbs".to_string(), String::new()),
            ("postgresql.conf".to_string(), String::new()),
        ]);
        let err = Renderer::with_overrides(overrides).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no built-in template to override named `pg_hba.hbs`, `postgresql.conf`; valid names: \
             `gtm.conf.hbs`, `gtm_proxy.conf.hbs`, `pg_hba.conf.hbs`, `postgresql.conf.hbs`, `recovery.conf.hbs`, \
             `register_nodes.sql.hbs`, `synchronous_standby.conf.hbs`"
        );
    }

    #[test]
    fn an_override_that_does_not_parse_names_itself() {
        let err = with_override("gtm.conf.hbs", "{{#if x}}never closed").unwrap_err();
        let text = chain(&err);
        assert!(text.starts_with("template `gtm.conf.hbs` does not parse: "), "{text}");
    }

    #[test]
    fn unknown_template_is_an_error() {
        let err = Renderer::new().render("nope.hbs", &ctx("gtm")).unwrap_err();
        assert!(err.to_string().starts_with("no template named `nope.hbs`; valid names: "));
    }

    #[test]
    fn error_chain_names_the_node() {
        let mut inv = fixtures::postgresql();
        inv.nodes[0].host = "gone".into();
        let err = Renderer::new().node_files(&inv, &inv.nodes[0]).unwrap_err();
        assert_eq!(
            chain(&err),
            "cannot build the render context: \
             node `pg1` is on host `gone`, which is not in the inventory"
        );
        assert!(err.source().is_some());
    }
}

/// Golden files: every file of every node of the test inventories, as
/// `tests/golden/render/<flavor>/<node>/<file>`. `SNAPSHOTS=overwrite cargo test --lib` rewrites
/// them (and deletes those no longer rendered); review the diff before committing it.
#[cfg(test)]
mod golden {
    use super::*;
    use crate::plan::fixtures;
    use std::path::{Path, PathBuf};

    fn rendered() -> BTreeMap<PathBuf, String> {
        let renderer = Renderer::new();
        let mut files = BTreeMap::new();
        for inv in [fixtures::postgres_xc(), fixtures::opentenbase(), fixtures::postgresql()] {
            let flavor = flavors::of(inv.cluster.flavor);
            for node in &inv.nodes {
                let dir = Path::new(&inv.cluster.flavor.to_string()).join(node.name.as_str());
                for file in renderer.node_files(&inv, node).unwrap() {
                    files.insert(dir.join(file.name), file.contents);
                }
                if let Some(template) = flavor.setup_sql(node) {
                    let ctx = Context::new(&inv, node).unwrap();
                    let name = template.trim_end_matches(".hbs");
                    files.insert(dir.join(name), renderer.render(template, &ctx).unwrap());
                }
            }
        }
        files
    }

    /// Every file under `dir`, relative to `root`.
    fn on_disk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                on_disk(root, &path, found);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }

    /// The first line that differs, to find it without a diff tool.
    fn first_difference(have: &str, want: &str) -> String {
        let (mut have_lines, mut want_lines) = (have.lines(), want.lines());
        for n in 1.. {
            match (have_lines.next(), want_lines.next()) {
                (None, None) => break,
                (h, w) if h == w => continue,
                (h, w) => return format!("line {n}:\n  file:     {h:?}\n  rendered: {w:?}"),
            }
        }
        "only the trailing newline differs".to_string()
    }

    #[test]
    fn render_golden_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/render");
        let want = rendered();
        let mut existing = Vec::new();
        on_disk(&root, &root, &mut existing);
        let stale: Vec<&PathBuf> = existing.iter().filter(|p| !want.contains_key(*p)).collect();

        if std::env::var_os("SNAPSHOTS").is_some_and(|v| v == "overwrite") {
            for path in stale {
                std::fs::remove_file(root.join(path)).unwrap();
            }
            for (path, contents) in &want {
                let path = root.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, contents).unwrap();
            }
            return;
        }

        let mut problems = Vec::new();
        for (path, contents) in &want {
            match std::fs::read_to_string(root.join(path)) {
                Ok(have) if have == *contents => {}
                Ok(have) => problems.push(format!(
                    "{}: differs at {}",
                    path.display(),
                    first_difference(&have, contents)
                )),
                Err(err) => problems.push(format!("{}: {err}", path.display())),
            }
        }
        problems.extend(stale.iter().map(|p| format!("{}: no longer rendered", p.display())));
        assert!(
            problems.is_empty(),
            "golden files under {} do not match (rerun with SNAPSHOTS=overwrite and review the \
             diff):\n{}",
            root.display(),
            problems.join("\n")
        );
    }
}
