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
