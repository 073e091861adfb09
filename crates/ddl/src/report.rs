//! The mapping report: per column, PostgreSQL type → target type and fidelity; per object, whether
//! it was migrated, translated with changes, or not migrated and why.
//!
//! Serialized as `report.json` for machines and rendered as text for people, from the same data.

use std::fmt::Write;

use serde::Serialize;

use crate::types::Fidelity;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// `mysql8`, `mysql9` or `mariadb`.
    pub dialect: String,
    /// The server the DDL was written for: `MySQL 9.7.4`, `MySQL 8.4` (given without its patch level:
    /// the newest 8.4), `MariaDB 10.11.19`.
    pub server: String,
    pub columns: Vec<ColumnReport>,
    pub objects: Vec<ObjectReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnReport {
    /// `schema.table`, PostgreSQL's name.
    pub table: String,
    pub column: String,
    pub source_type: String,
    pub target_type: String,
    pub fidelity: Fidelity,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Migrated,
    /// Migrated, but something about it differs on the target: `detail` says what.
    Translated,
    NotMigrated,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectReport {
    /// `table`, `primary key`, `foreign key`, `check`, `index`, `sequence`, `view`, ...
    pub kind: &'static str,
    /// The PostgreSQL name, qualified as far as it needs to be found (`schema.table.constraint`).
    pub name: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The original PostgreSQL text when it was not carried over as is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Report {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.objects.iter().filter(|object| object.outcome == outcome).count()
    }

    pub fn count_fidelity(&self, fidelity: Fidelity) -> usize {
        self.columns.iter().filter(|column| column.fidelity == fidelity).count()
    }

    /// The report as text: a summary, the columns that are not exact, then every object not
    /// migrated as is. Exact columns and plainly migrated objects are only counted.
    pub fn render(&self) -> String {
        let mut out = String::new();
        writeln!(
            out,
            "written for: {} (dialect {})\ncolumns: {} exact, {} lossy, {} unsupported\nobjects: {} migrated, {} translated \
             with changes, {} not migrated",
            self.server,
            self.dialect,
            self.count_fidelity(Fidelity::Exact),
            self.count_fidelity(Fidelity::Lossy),
            self.count_fidelity(Fidelity::Unsupported),
            self.count(Outcome::Migrated),
            self.count(Outcome::Translated),
            self.count(Outcome::NotMigrated),
        )
        .ok();
        writeln!(out, "\ncolumns").ok();
        for column in &self.columns {
            let fidelity = match column.fidelity {
                Fidelity::Exact => "exact",
                Fidelity::Lossy => "LOSSY",
                Fidelity::Unsupported => "UNSUPPORTED",
            };
            write!(
                out,
                "  {}.{}: {} -> {} [{fidelity}]",
                column.table, column.column, column.source_type, column.target_type
            )
            .ok();
            if !column.note.is_empty() {
                write!(out, " {}", column.note).ok();
            }
            out.push('\n');
        }
        writeln!(out, "\nobjects").ok();
        for object in &self.objects {
            let outcome = match object.outcome {
                Outcome::Migrated => "migrated",
                Outcome::Translated => "TRANSLATED",
                Outcome::NotMigrated => "NOT MIGRATED",
            };
            write!(out, "  {} {}: {outcome}", object.kind, object.name).ok();
            if !object.detail.is_empty() {
                write!(out, ": {}", object.detail).ok();
            }
            out.push('\n');
            if let Some(source) = &object.source {
                for line in source.lines() {
                    writeln!(out, "      | {line}").ok();
                }
            }
        }
        out
    }
}
