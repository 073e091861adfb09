//! Are the source's keys, constraints, indexes, AUTO_INCREMENT columns and comments on the target?
//!
//! Each object is looked up in the plan's report first: what the plan says it did not migrate is
//! listed with the plan's reason, not as missing. Everything else must be in the target's
//! information_schema. Objects are matched by what they do (columns, referenced table, actions),
//! and by name only where nothing else identifies them (checks, indexes).

use std::collections::{BTreeMap, HashMap};

use passerelle_ddl::report::{ObjectReport, Outcome};
use passerelle_ddl::Plan;
use passerelle_model::schema::{FkAction, QualifiedName, Schema, Table, TableKind};
use passerelle_model::target::TargetTable;

use crate::report::{SchemaFinding, SchemaOutcome};
use crate::target::{name, LiveTable};

/// MySQL's comment limits, past which the plan cuts comments (and says so).
const TABLE_COMMENT_CHARS: usize = 2048;
const COLUMN_COMMENT_CHARS: usize = 1024;

pub struct SchemaCheck<'a> {
    pub schema: &'a Schema,
    pub plan: &'a Plan,
    /// Target database → its tables.
    pub targets: &'a HashMap<String, BTreeMap<String, LiveTable>>,
}

impl SchemaCheck<'_> {
    pub fn run(&self) -> Vec<SchemaFinding> {
        let mut findings = Vec::new();
        for table in &self.schema.tables {
            if matches!(table.kind, TableKind::Partition { .. }) {
                continue;
            }
            let Some(landing) = self.landing(&table.name) else { continue };
            // A missing table is reported with the data, once.
            let Some(target) = self.targets.get(&landing.database).and_then(|tables| tables.get(&landing.name)) else {
                continue;
            };
            self.table(table, target, &mut findings);
        }
        findings
    }

    fn landing(&self, table: &QualifiedName) -> Option<&TargetTable> {
        self.plan.tables.iter().find(|landing| &landing.source == table)
    }

    fn planned(&self, kind: &str, object: &str) -> Option<&ObjectReport> {
        self.plan.report.objects.iter().find(|o| o.kind == kind && o.name == object)
    }

    /// A finding for `object`: not migrated when the plan says so, else present when `present`.
    fn finding(&self, kind: &'static str, object: String, present: bool) -> SchemaFinding {
        if let Some(planned) = self.planned(kind, &object).filter(|o| o.outcome == Outcome::NotMigrated) {
            return SchemaFinding {
                kind,
                name: object,
                outcome: SchemaOutcome::NotMigrated,
                detail: planned.detail.clone(),
            };
        }
        let outcome = if present { SchemaOutcome::Present } else { SchemaOutcome::Missing };
        SchemaFinding { kind, name: object, outcome, detail: String::new() }
    }

    fn table(&self, table: &Table, target: &LiveTable, findings: &mut Vec<SchemaFinding>) {
        let qualified = table.name.to_string();
        let names = |columns: &[String]| columns.iter().map(|c| name(c)).collect::<Vec<_>>();
        let has_constraint = |kind: &str, columns: &[String]| {
            let columns = names(columns);
            target.constraints.iter().any(|c| c.kind == kind && c.columns == columns)
        };
        for column in &table.columns {
            let present = target.column(&name(&column.name)).is_some();
            findings.push(self.finding("column", format!("{qualified}.{}", column.name), present));
        }
        if let Some(key) = &table.primary_key {
            let present = has_constraint("PRIMARY KEY", &key.columns);
            findings.push(self.finding("primary key", format!("{qualified}.{}", key.name), present));
        }
        for key in &table.uniques {
            let columns = names(&key.columns);
            let present = has_constraint("UNIQUE", &key.columns)
                || target.indexes.iter().any(|index| index.unique && index.columns == columns);
            findings.push(self.finding("unique", format!("{qualified}.{}", key.name), present));
        }
        for fk in &table.foreign_keys {
            let referenced = self
                .landing(&fk.referenced_table)
                .map(|landing| (landing.database.clone(), landing.name.clone(), names(&fk.referenced_columns)));
            let columns = names(&fk.columns);
            let present = target.constraints.iter().any(|c| {
                c.kind == "FOREIGN KEY"
                    && c.columns == columns
                    && c.referenced == referenced
                    && same_rule(&c.delete_rule, fk.on_delete)
                    && same_rule(&c.update_rule, fk.on_update)
            });
            findings.push(self.finding("foreign key", format!("{qualified}.{}", fk.name), present));
        }
        for check in &table.checks {
            let object = format!("{qualified}.{}", check.name);
            let expected = self.renamed(&object).unwrap_or_else(|| name(&check.name));
            let present = target.constraints.iter().any(|c| c.kind == "CHECK" && c.name == expected);
            findings.push(self.finding("check", object, present));
        }
        for index in &table.indexes {
            let object = format!("{qualified}.{}", index.name);
            let expected = name(&index.name);
            let present = target.indexes.iter().any(|i| i.name == expected && i.unique == index.unique);
            findings.push(self.finding("index", object, present));
        }
        for column in self.auto_increments(&qualified) {
            let present = target.column(&name(&column)).is_some_and(|c| c.extra.contains("auto_increment"));
            findings.push(self.finding("auto_increment", format!("{qualified}.{column}"), present));
        }
        if let Some(comment) = &table.comment {
            let present = target.comment == cut(comment, TABLE_COMMENT_CHARS);
            findings.push(self.finding("comment", qualified.clone(), present));
        }
        for column in &table.columns {
            let Some(comment) = &column.comment else { continue };
            let present =
                target.column(&name(&column.name)).is_some_and(|c| c.comment == cut(comment, COLUMN_COMMENT_CHARS));
            findings.push(self.finding("comment", format!("{qualified}.{}", column.name), present));
        }
    }

    /// The target name the plan gave a constraint it had to rename (too long, or taken in the database).
    fn renamed(&self, object: &str) -> Option<String> {
        let planned = self.planned("identifier", object)?;
        planned.detail.strip_prefix("renamed to ").map(str::to_string)
    }

    /// The columns of `table` whose sequence the plan turned into AUTO_INCREMENT. The plan reports
    /// it on the sequence as `AUTO_INCREMENT of schema.table.column, next value N`.
    fn auto_increments(&self, table: &str) -> Vec<String> {
        let prefix = format!("AUTO_INCREMENT of {table}.");
        self.plan
            .report
            .objects
            .iter()
            .filter(|o| o.kind == "sequence")
            .filter_map(|o| o.detail.strip_prefix(&prefix))
            .filter_map(|rest| rest.split(',').next())
            .map(str::to_string)
            .collect()
    }
}

fn cut(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

/// information_schema's rule for the action the plan chose. InnoDB treats NO ACTION as RESTRICT and
/// reports a rule left out as RESTRICT; the plan turns SET DEFAULT, which InnoDB rejects, into NO ACTION.
fn same_rule(rule: &str, action: FkAction) -> bool {
    match action {
        FkAction::NoAction | FkAction::Restrict | FkAction::SetDefault => rule == "RESTRICT" || rule == "NO ACTION",
        FkAction::Cascade => rule == "CASCADE",
        FkAction::SetNull => rule == "SET NULL",
    }
}
