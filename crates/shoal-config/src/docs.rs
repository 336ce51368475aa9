//! The tables of docs/configuration.md, rendered from the schema.
//!
//! The page holds hand-written prose around generated tables, each between
//! `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->`. A test compares the page
//! with [`render_into`]; `SHOAL_UPDATE_DOCS=1 cargo test -p shoal-config` (or `make docs`)
//! rewrites the tables after a schema change.

use std::fmt::Write as _;

use crate::broker::BROKER_CONFIGS;
use crate::def::{ConfigDef, Section, Support};
use crate::effective::synonyms_of;
use crate::group::GROUP_CONFIGS;
use crate::topic::TOPIC_CONFIGS;

/// The markdown table of one section of broker settings.
pub fn section_table(section: Section) -> String {
    let mut out = String::new();
    if section == Section::Ignored {
        out.push_str("| name | why Shoal ignores it |\n|---|---|\n");
        for def in BROKER_CONFIGS.iter().filter(|d| d.section == section) {
            if let Support::Ignored(reason) = def.support {
                let _ = writeln!(out, "| `{}` | {} |", def.name, escape(reason));
            }
        }
        return out;
    }
    out.push_str("| name | type | default | valid values | dynamic | meaning |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for def in BROKER_CONFIGS
        .iter()
        .filter(|d| d.section == section && d.synonym_of.is_none())
    {
        let _ = writeln!(
            out,
            "| `{}`{} | {} | {} | {} | {} | {}{} |",
            def.name,
            if def.shoal_only { " (Shoal)" } else { "" },
            type_and_unit(def),
            default_text(def),
            def.validator
                .describe()
                .map(|v| escape(&v))
                .unwrap_or_default(),
            if def.is_alterable() {
                format!("{} (applied at once)", def.dynamic.label())
            } else {
                def.dynamic.label().to_string()
            },
            escape(def.doc),
            synonym_note(def),
        );
    }
    out
}

/// The markdown table of topic configs and the broker settings behind them.
pub fn topic_table() -> String {
    let mut out = String::new();
    out.push_str("| topic config | broker setting | type | default | meaning |\n");
    out.push_str("|---|---|---|---|---|\n");
    for def in TOPIC_CONFIGS {
        let broker = def.broker_def();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            def.name,
            match def.broker_synonyms() {
                names if names.is_empty() => "– (topic only)".to_string(),
                names => names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            type_and_unit(broker),
            default_text(broker),
            escape(def.documentation),
        );
    }
    out
}

/// The markdown table of group configs, the broker settings behind them and their bounds.
pub fn group_table() -> String {
    let mut out = String::new();
    out.push_str("| group config | broker setting | bounds | type | default | meaning |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for def in GROUP_CONFIGS {
        let Some(broker) = def.broker_def() else {
            continue;
        };
        let _ = writeln!(
            out,
            "| `{}` | `{}` | `{}` to `{}` | {} | {} | {} |",
            def.name,
            def.broker,
            def.min,
            def.max,
            type_and_unit(broker),
            default_text(broker),
            escape(def.documentation),
        );
    }
    out
}

fn type_and_unit(def: &ConfigDef) -> String {
    let unit = def.unit.label();
    if unit.is_empty() {
        def.config_type.kafka_name().to_lowercase()
    } else {
        format!("{} ({unit})", def.config_type.kafka_name().to_lowercase())
    }
}

fn default_text(def: &ConfigDef) -> String {
    match def.default {
        None => "–".to_string(),
        Some("") => "\"\"".to_string(),
        Some(d) => format!("`{}`", d),
    }
}

fn synonym_note(def: &ConfigDef) -> String {
    let names: Vec<String> = synonyms_of(def.name)
        .map(|s| match s.synonym_of {
            Some(syn) if syn.scale != 1 => format!("`{}` (× {})", s.name, syn.scale),
            _ => format!("`{}`", s.name),
        })
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" Synonyms, lower precedence: {}.", names.join(", "))
    }
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Every generated table by marker name.
pub fn tables() -> Vec<(&'static str, String)> {
    let mut tables: Vec<(&'static str, String)> = Section::ALL
        .iter()
        .map(|s| (s.marker(), section_table(*s)))
        .collect();
    tables.push(("topic", topic_table()));
    tables.push(("group", group_table()));
    tables
}

/// `page` with each generated region replaced by the current table. Errors name a marker that
/// is missing or unterminated.
pub fn render_into(page: &str) -> Result<String, String> {
    let mut out = page.to_string();
    for (marker, table) in tables() {
        let begin = format!("<!-- BEGIN GENERATED: {marker} -->\n");
        let end = format!("<!-- END GENERATED: {marker} -->");
        let start = out
            .find(&begin)
            .ok_or_else(|| format!("docs/configuration.md has no {begin:?}"))?
            + begin.len();
        let stop = out[start..]
            .find(&end)
            .ok_or_else(|| format!("docs/configuration.md has no {end:?}"))?
            + start;
        out.replace_range(start..stop, &table);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md")
    }

    /// The page's tables are the schema's. `SHOAL_UPDATE_DOCS=1` rewrites them.
    #[test]
    fn configuration_page_matches_the_schema() {
        let path = page_path();
        let page = std::fs::read_to_string(&path).unwrap();
        let rendered = render_into(&page).unwrap();
        if std::env::var_os("SHOAL_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &rendered).unwrap();
            return;
        }
        assert!(
            page == rendered,
            "docs/configuration.md's generated tables differ from the schema; run \
             `make docs` (SHOAL_UPDATE_DOCS=1 cargo test -p shoal-config) and commit the result"
        );
    }

    /// Every setting name the page mentions in backticks is one the node accepts.
    #[test]
    fn every_name_on_the_page_is_accepted() {
        let page = std::fs::read_to_string(page_path()).unwrap();
        let known = |name: &str| {
            crate::broker::broker_config_def(name).is_some()
                || crate::topic::topic_config_def(name).is_some()
                || crate::group::group_config_def(name).is_some()
        };
        let mut unknown = Vec::new();
        for quoted in page.split('`').skip(1).step_by(2) {
            let looks_like_setting = quoted.contains('.')
                && quoted.starts_with(|c: char| c.is_ascii_lowercase())
                && quoted
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.')
                && !quoted.ends_with(".md")
                && !quoted.ends_with(".rs")
                && !quoted.ends_with(".toml")
                && !quoted.ends_with(".properties");
            if looks_like_setting && !known(quoted) {
                unknown.push(quoted.to_string());
            }
        }
        assert!(
            unknown.is_empty(),
            "docs/configuration.md names unknown settings: {unknown:?}"
        );
    }
}
