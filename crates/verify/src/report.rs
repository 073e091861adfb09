//! What verify found: per table, counts and the rows that differ; per schema object, whether the
//! target has it. Serialized for `--json`, rendered as text for people, from the same data.

use std::fmt::Write;

use serde::Serialize;

/// At most this many keys or rows are listed per table and kind; the counts go on.
pub const LISTED: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// True only when every table matches and every schema object is present or reported as not
    /// migrated by the plan.
    pub matches: bool,
    pub tables: Vec<TableReport>,
    pub schema: Vec<SchemaFinding>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableOutcome {
    Match,
    Differs,
    /// The target has no such table.
    Missing,
    /// The table could not be compared; `detail` says why.
    NotCompared,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableReport {
    /// `schema.table`, the source's name.
    pub table: String,
    /// `database.table`.
    pub target: String,
    pub outcome: TableOutcome,
    pub source_rows: Option<u64>,
    pub target_rows: Option<u64>,
    /// The whole table's content checksum on each side (`digest::Checksum`'s sum, 16 hex digits):
    /// equal with equal counts is a match. For a report handed over, and to compare by hand.
    pub source_checksum: Option<String>,
    pub target_checksum: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Keys in the source and not in the target, such as `id=7`.
    pub missing: Listed<String>,
    /// Keys in the target and not in the source.
    pub extra: Listed<String>,
    /// Keys on both sides whose values differ.
    pub changed: Listed<ChangedRow>,
    /// For tables compared as multisets: rows whose number of copies differs.
    pub rows: Listed<RowCount>,
    /// False when pinpointing stopped after [`LISTED`] differences of a kind: the counts are then
    /// lower bounds, and the row counts above are still exact.
    pub complete: bool,
    pub seconds: f64,
}

/// The first [`LISTED`] items and how many there are in all.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Listed<T> {
    pub count: u64,
    pub items: Vec<T>,
}

impl<T> Default for Listed<T> {
    fn default() -> Listed<T> {
        Listed { count: 0, items: Vec::new() }
    }
}

impl<T> Listed<T> {
    pub fn push(&mut self, item: T) {
        self.count += 1;
        if self.items.len() < LISTED {
            self.items.push(item);
        }
    }

    pub fn full(&self) -> bool {
        self.count >= LISTED as u64
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangedRow {
    pub key: String,
    pub columns: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowCount {
    /// The row's canonical values, `column=value, ...`, each cut to a readable length.
    pub row: String,
    pub source_count: u64,
    pub target_count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaOutcome {
    Present,
    Missing,
    /// The plan did not carry it over; `detail` is the plan's reason.
    NotMigrated,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SchemaFinding {
    /// `primary key`, `unique`, `foreign key`, `check`, `index`, `auto_increment`, `comment`, `column`.
    pub kind: &'static str,
    /// The source's name, `schema.table.object`.
    pub name: String,
    pub outcome: SchemaOutcome,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Report {
    /// Differences first, then a one-line summary; matching tables and present objects only count.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for table in &self.tables {
            let rows = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
            let counts =
                format!("{} rows in the source, {} in the target", rows(table.source_rows), rows(table.target_rows));
            match table.outcome {
                TableOutcome::Match => writeln!(out, "ok       {}: {counts}", table.table),
                TableOutcome::Differs => writeln!(out, "DIFFERS  {} -> {}: {counts}", table.table, table.target),
                TableOutcome::Missing => {
                    writeln!(out, "MISSING  {}: no table {} on the target", table.table, table.target)
                }
                TableOutcome::NotCompared => {
                    writeln!(out, "NOT COMPARED  {}: {}", table.table, table.detail)
                }
            }
            .ok();
            render_listed(&mut out, "missing in the target", &table.missing, |key| key.clone());
            render_listed(&mut out, "extra in the target", &table.extra, |key| key.clone());
            render_listed(&mut out, "different", &table.changed, |row| {
                format!("{}: {}", row.key, row.columns.join(", "))
            });
            render_listed(&mut out, "rows with a different number of copies", &table.rows, |row| {
                format!("{} copies in the source, {} in the target: {}", row.source_count, row.target_count, row.row)
            });
            if !table.complete {
                writeln!(
                    out,
                    "    (pinpointing stopped after {LISTED} differences of a kind: counts are lower bounds)"
                )
                .ok();
            }
        }
        for finding in &self.schema {
            match finding.outcome {
                SchemaOutcome::Present => continue,
                SchemaOutcome::Missing => write!(out, "MISSING  {} {}", finding.kind, finding.name),
                SchemaOutcome::NotMigrated => write!(out, "not migrated  {} {}", finding.kind, finding.name),
            }
            .ok();
            if !finding.detail.is_empty() {
                write!(out, ": {}", finding.detail).ok();
            }
            out.push('\n');
        }
        let n_differing = self.tables.iter().filter(|t| t.outcome != TableOutcome::Match).count();
        let n_missing = self.schema.iter().filter(|f| f.outcome == SchemaOutcome::Missing).count();
        let n_present = self.schema.iter().filter(|f| f.outcome == SchemaOutcome::Present).count();
        if self.matches {
            writeln!(out, "verified: {} tables match, {n_present} schema objects present", self.tables.len()).ok();
        } else {
            writeln!(
                out,
                "NOT VERIFIED: {n_differing} of {} tables differ, {n_missing} schema objects missing",
                self.tables.len()
            )
            .ok();
        }
        out
    }
}

fn render_listed<T>(out: &mut String, what: &str, listed: &Listed<T>, line: impl Fn(&T) -> String) {
    if listed.count == 0 {
        return;
    }
    writeln!(out, "    {} {what}", listed.count).ok();
    for item in &listed.items {
        writeln!(out, "      {}", line(item)).ok();
    }
    if listed.count > listed.items.len() as u64 {
        writeln!(out, "      ... and {} more", listed.count - listed.items.len() as u64).ok();
    }
}
