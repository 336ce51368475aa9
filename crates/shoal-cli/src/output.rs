//! How results reach a person or a script: an aligned table by default, JSON with `-o json`.
//! JSON field names are part of the CLI's contract (docs/cli.md) and are only ever added to.

use clap::ValueEnum;
use comfy_table::{Table, presets};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One table of a result: a title line (may be empty), the header, the rows.
pub type Section<'a> = (&'a str, Vec<&'a str>, Vec<Vec<String>>);

/// One line of a result: its table cells and its JSON object (the same fields).
pub trait Row {
    fn cells(&self) -> Vec<String>;
    fn json(&self) -> Value;
}

/// `value` (a JSON object) with `fields` added.
pub fn with_fields<'a>(
    mut value: Value,
    fields: impl IntoIterator<Item = (&'a str, Value)>,
) -> Value {
    if let Some(map) = value.as_object_mut() {
        for (k, v) in fields {
            map.insert(k.to_string(), v);
        }
    }
    value
}

pub struct Output {
    pub format: Format,
}

impl Output {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints `value` as JSON, or `tables` (title, header, rows) as aligned text.
    pub fn emit(&self, value: &Value, tables: &[Section<'_>]) {
        if self.json() {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
            return;
        }
        let mut first = true;
        for (title, header, rows) in tables {
            if !first {
                println!();
            }
            first = false;
            if !title.is_empty() {
                println!("{title}");
            }
            println!("{}", render(header, rows));
        }
    }

    /// Rows, each its cells and its JSON object: one table under `title` (may be empty), or
    /// the JSON objects as an array given to `json` (`Value::from`: the array itself).
    pub fn emit_rows(
        &self,
        title: &str,
        header: Vec<&str>,
        rows: impl IntoIterator<Item = (Vec<String>, Value)>,
        json: impl FnOnce(Vec<Value>) -> Value,
    ) {
        let (cells, objects): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
        self.emit(&json(objects), &[(title, header, cells)]);
    }
}

impl Output {
    /// A status line for commands whose stdout carries data (the console tools): JSON or text
    /// on stderr.
    pub fn emit_stderr(&self, value: &Value, text: &str) {
        if self.json() {
            eprintln!("{value}");
        } else {
            eprintln!("{text}");
        }
    }
}

pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.to_vec());
    for row in rows {
        t.add_row(row.clone());
    }
    // comfy-table pads each line with a leading space; keep lines flush left.
    t.to_string()
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn list(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
