//! Sequences: the AUTO_INCREMENT of the one column they feed, a MariaDB SEQUENCE, or MySQL's
//! one-row-table emulation.

use std::collections::HashMap;

use passerelle_model::schema::{PgType, QualifiedName, Sequence, TableKind};

use super::{object, Planner};
use crate::report::Outcome;
use crate::Dialect;

/// The sequence a `nextval('...'::regclass)` default draws from.
pub(super) fn nextval_sequence(default: &str) -> Option<QualifiedName> {
    let inner = default.strip_prefix("nextval('")?.split('\'').next()?;
    let (schema, name) = inner.split_once('.')?;
    Some(QualifiedName { schema: schema.trim_matches('"').to_string(), name: name.trim_matches('"').to_string() })
}

impl Planner<'_> {
    /// A sequence becomes its column's AUTO_INCREMENT when it feeds the first column of the table's
    /// primary key and nothing else: MySQL allows one AUTO_INCREMENT column a table, and it must lead a
    /// key. The column is the one it is `OWNED BY` (`serial`, identity), or, for a sequence owned by
    /// none (as dumps of older schemas create them), the one column whose default draws from it.
    pub(super) fn choose_auto_increments(&mut self) {
        let feeders = self.feeders();
        for sequence in &self.schema.sequences {
            let fed = feeders.get(&sequence.name).map_or(&[][..], Vec::as_slice);
            let owner = match (&sequence.owned_by, fed) {
                (Some(owner), _) => owner,
                // Not for a sequence that steps by more than one or cycles, which AUTO_INCREMENT cannot
                // do (an owned one becomes AUTO_INCREMENT all the same, with the change reported).
                (None, [only]) if sequence.increment == 1 && !sequence.cycle => only,
                (None, _) => continue,
            };
            if fed.iter().any(|column| column != owner) || self.mentioned_elsewhere(&sequence.name) {
                continue;
            }
            let (table_name, column) = owner;
            let Some(table) = self.schema.tables.iter().find(|t| &t.name == table_name) else { continue };
            let leads_key = table.primary_key.as_ref().is_some_and(|key| key.columns.first() == Some(column));
            let integer = table.columns.iter().any(|c| {
                &c.name == column && matches!(c.data_type.base, PgType::SmallInt | PgType::Integer | PgType::BigInt)
            });
            if leads_key && integer {
                self.auto_increment.insert(sequence.name.clone(), (table_name.clone(), column.clone()));
            }
        }
    }

    /// The columns whose default draws from each sequence (`nextval`), partitions left out: they
    /// repeat their parent's columns, and their rows land in its table.
    pub(super) fn feeders(&self) -> HashMap<QualifiedName, Vec<(QualifiedName, String)>> {
        let mut feeders: HashMap<QualifiedName, Vec<(QualifiedName, String)>> = HashMap::new();
        for table in self.schema.tables.iter().filter(|t| !matches!(t.kind, TableKind::Partition { .. })) {
            for column in &table.columns {
                if let Some(sequence) = column.default.as_deref().and_then(nextval_sequence) {
                    feeders.entry(sequence).or_default().push((table.name.clone(), column.name.clone()));
                }
            }
        }
        feeders
    }

    /// Whether a view, a check or a default other than a plain `nextval` names the sequence: then
    /// it is more than one column's counter. Function bodies are not searched.
    fn mentioned_elsewhere(&self, sequence: &QualifiedName) -> bool {
        let names = [
            format!("'{sequence}'"),
            format!("'{}.\"{}\"'", sequence.schema, sequence.name),
            format!("'\"{}\".{}'", sequence.schema, sequence.name),
            format!("'\"{}\".\"{}\"'", sequence.schema, sequence.name),
        ];
        let names_it = |text: &str| names.iter().any(|name| text.contains(name.as_str()));
        let views = self.schema.views.iter().any(|view| names_it(&view.definition));
        let tables = self.schema.tables.iter().any(|table| {
            table.checks.iter().any(|check| names_it(&check.expression))
                || table.columns.iter().any(|column| {
                    column.default.as_deref().is_some_and(|d| nextval_sequence(d).is_none() && names_it(d))
                        || column.generated.as_deref().is_some_and(names_it)
                })
        });
        views || tables
    }

    pub(super) fn sequence(&mut self, sequence: &Sequence) {
        let name = sequence.name.to_string();
        let next = sequence.last_value.map_or(sequence.start, |last| last.saturating_add(sequence.increment));
        if let Some((table, column)) = self.auto_increment.get(&sequence.name).cloned() {
            let Some(target) = self.target(&table) else { return };
            self.post_positions.push(format!("ALTER TABLE {target} AUTO_INCREMENT = {next}"));
            let mut detail = format!("AUTO_INCREMENT of {table}.{column}, next value {next}");
            if sequence.owned_by.is_none() {
                detail
                    .push_str(&format!("; OWNED BY no column, and only the default of {table}.{column} draws from it"));
            }
            let outcome = if sequence.increment != 1 || sequence.cycle || sequence.min > 1 {
                detail.push_str(&format!(
                    "; INCREMENT {} / MINVALUE {} / CYCLE {} not kept: auto_increment_increment is server-wide",
                    sequence.increment, sequence.min, sequence.cycle
                ));
                Outcome::Translated
            } else {
                Outcome::Migrated
            };
            self.objects.push(object("sequence", name, outcome, detail));
            return;
        }
        let Some(target) = self.target(&sequence.name) else { return };
        let owner = self.why_not_auto_increment(sequence);
        match self.config.server.dialect {
            Dialect::Mariadb => {
                // MariaDB's sequences stop one short of PostgreSQL's bigint maximum.
                let clamp = |v: i64| v.clamp(-9_223_372_036_854_775_807, 9_223_372_036_854_775_806);
                self.pre.push(format!(
                    "CREATE SEQUENCE {target} START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} {}",
                    clamp(sequence.start),
                    sequence.increment,
                    clamp(sequence.min),
                    clamp(sequence.max),
                    if sequence.cycle { "CYCLE" } else { "NOCYCLE" }
                ));
                if let Some(last) = sequence.last_value {
                    self.post_positions.push(format!("SELECT SETVAL({target}, {last})"));
                }
                let detail = format!("MariaDB SEQUENCE, next value {next}{owner}");
                self.objects.push(object("sequence", name, Outcome::Migrated, detail));
            }
            Dialect::Mysql => {
                // MySQL has no sequences: a one-row table whose counter advances atomically through
                // LAST_INSERT_ID, the emulation the MySQL manual documents for it. LAST_VALUE is a
                // reserved word since 8.0.2, hence the quotes in the statement the report shows.
                self.pre.push(format!(
                    "CREATE TABLE {target} (`last_value` BIGINT NOT NULL, `increment_by` BIGINT NOT NULL, \
                     `min_value` BIGINT NOT NULL, `max_value` BIGINT NOT NULL, `cycle` BOOLEAN NOT NULL) ENGINE=InnoDB"
                ));
                self.pre.push(format!(
                    "INSERT INTO {target} VALUES ({}, {}, {}, {}, {})",
                    next.saturating_sub(sequence.increment),
                    sequence.increment,
                    sequence.min,
                    sequence.max,
                    sequence.cycle
                ));
                let detail = format!(
                    "MySQL has no sequences: a one-row table; nextval is UPDATE {target} SET `last_value` = \
                     LAST_INSERT_ID(`last_value` + `increment_by`); SELECT LAST_INSERT_ID(); next value {next}, \
                     CYCLE and MAXVALUE are not enforced{owner}"
                );
                self.objects.push(object("sequence", name, Outcome::Translated, detail));
            }
        }
    }

    /// Why a sequence is not an AUTO_INCREMENT, for its report line: empty when no column draws from it.
    fn why_not_auto_increment(&self, sequence: &Sequence) -> String {
        let fed = self.feeders().remove(&sequence.name).unwrap_or_default();
        let columns = |columns: &[(QualifiedName, String)]| {
            columns.iter().map(|(table, column)| format!("{table}.{column}")).collect::<Vec<_>>().join(", ")
        };
        if fed.len() > 1 {
            return format!(
                " (the default of {} columns, {}: one AUTO_INCREMENT cannot stand for it)",
                fed.len(),
                columns(&fed)
            );
        }
        if self.mentioned_elsewhere(&sequence.name) {
            return " (a view, a check or a default names it besides nextval: it stays a sequence)".into();
        }
        if sequence.owned_by.is_none() && (sequence.increment != 1 || sequence.cycle) && !fed.is_empty() {
            return format!(
                " (feeds {}, but INCREMENT {} / CYCLE {} are not AUTO_INCREMENT's: it stays a sequence)",
                columns(&fed),
                sequence.increment,
                sequence.cycle
            );
        }
        match sequence.owned_by.as_ref().or(fed.first()) {
            Some((table, column)) => format!(
                " (feeds {table}.{column}, which cannot be AUTO_INCREMENT: MySQL allows it only on an integer column \
                 leading the primary key)"
            ),
            None => String::new(),
        }
    }
}
