//! Foreign keys, added in post-data once every table holds its rows and its keys.

use passerelle_model::schema::{Deferrable, FkAction, FkMatch, ForeignKey, Index, IndexKey, IndexTarget, Table};

use super::{column_list, object, unique_index_columns, FkIndex, Planner};
use crate::ident::quote;
use crate::report::Outcome;

fn fk_action(action: FkAction) -> &'static str {
    match action {
        FkAction::NoAction => "NO ACTION",
        FkAction::Restrict => "RESTRICT",
        FkAction::Cascade => "CASCADE",
        FkAction::SetNull => "SET NULL",
        // InnoDB rejects SET DEFAULT; the caller reports the change.
        FkAction::SetDefault => "NO ACTION",
    }
}

/// The FK's columns and the referenced ones, in the order of the referenced table's key over the
/// same columns. PostgreSQL matches a foreign key to a key by the set of its columns; InnoDB needs
/// an index whose first columns are the referenced ones in the FK's order (and MySQL 8.4 and later a
/// unique one), so `(x, y) REFERENCES p (b, a)` against `UNIQUE (a, b)` is refused as written
/// (MySQL's error 6125, MariaDB's errno 150) and accepted as `(y, x) REFERENCES p (a, b)`.
fn key_order(fk: &ForeignKey, referenced: Option<&Table>) -> (Vec<String>, Vec<String>) {
    let as_written = (fk.columns.clone(), fk.referenced_columns.clone());
    let Some(referenced) = referenced else { return as_written };
    // The keys a foreign key may reference: the primary key, unique constraints and unique indexes.
    let keys: Vec<Vec<String>> = referenced
        .primary_key
        .iter()
        .chain(&referenced.uniques)
        .map(|key| key.columns.clone())
        .chain(unique_index_columns(referenced))
        .collect();
    if keys.contains(&fk.referenced_columns) {
        return as_written;
    }
    let same_set = |key: &&Vec<String>| {
        key.len() == fk.referenced_columns.len() && key.iter().all(|c| fk.referenced_columns.contains(c))
    };
    let Some(key) = keys.iter().find(same_set) else { return as_written };
    let columns = key
        .iter()
        .filter_map(|name| fk.referenced_columns.iter().position(|c| c == name).map(|i| fk.columns[i].clone()))
        .collect();
    (columns, key.clone())
}

/// Whether the target table will have an index whose first columns are `columns`, in order: its
/// primary key, a unique key, an index on plain columns, or one planned for an earlier foreign key.
fn indexed(table: &Table, columns: &[String], planned: &[FkIndex]) -> bool {
    let plain = |index: &Index| -> Option<Vec<String>> {
        if index.predicate.is_some() {
            return None;
        }
        let column = |key: &IndexKey| match &key.target {
            IndexTarget::Column(column) => Some(column.clone()),
            IndexTarget::Expression(_) => None,
        };
        index.keys.iter().map(column).collect()
    };
    let keys = table.primary_key.iter().chain(&table.uniques).map(|key| key.columns.clone());
    let mut indexes = keys.chain(table.indexes.iter().filter_map(plain));
    indexes.any(|key| key.starts_with(columns))
        || planned.iter().any(|index| index.table == table.name.name && index.columns == columns)
}

impl Planner<'_> {
    pub(super) fn foreign_keys(&mut self, table: &Table) {
        let Some(database) = self.database(&table.name.schema).map(str::to_string) else { return };
        let Some(target) = self.target(&table.name) else { return };
        let mut clauses = Vec::new();
        for fk in &table.foreign_keys {
            let report_name = format!("{}.{}", table.name, fk.name);
            let Some(referenced) = self.target(&fk.referenced_table) else {
                let reason = format!("references {}, outside the migrated schemas", fk.referenced_table);
                self.objects.push(object("foreign key", report_name, Outcome::NotMigrated, reason));
                continue;
            };
            if self.schema.left_out.contains(&fk.referenced_table) {
                let reason = format!("references {}, a table left out of the migration", fk.referenced_table);
                self.objects.push(object("foreign key", report_name, Outcome::NotMigrated, reason));
                continue;
            }
            let mut changes = Vec::new();
            if fk.deferrable != Deferrable::No {
                changes.push("DEFERRABLE dropped: MySQL checks foreign keys immediately, row by row".to_string());
            }
            if fk.match_type != FkMatch::Simple {
                changes.push("MATCH FULL/PARTIAL is not enforced: InnoDB matches SIMPLE".to_string());
            }
            for (when, action) in [("DELETE", fk.on_delete), ("UPDATE", fk.on_update)] {
                if action == FkAction::SetDefault {
                    changes.push(format!("ON {when} SET DEFAULT became NO ACTION: InnoDB rejects SET DEFAULT"));
                }
            }
            if !fk.validated {
                changes.push("NOT VALID in PostgreSQL: rows that violate it will fail on the target".to_string());
            }
            let name = self.constraint_name(&database, &table.name, &fk.name);
            let referenced_table = self.schema.tables.iter().find(|t| t.name == fk.referenced_table);
            let (columns, referenced_columns) = key_order(fk, referenced_table);
            clauses.push(format!(
                "ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {referenced} ({}) ON DELETE {} ON UPDATE {}",
                quote(&name),
                column_list(&columns),
                column_list(&referenced_columns),
                fk_action(fk.on_delete),
                fk_action(fk.on_update)
            ));
            if !indexed(table, &columns, &self.fk_indexes) {
                self.fk_indexes.push(FkIndex {
                    database: database.clone(),
                    table: table.name.name.clone(),
                    name: name.clone(),
                    columns: columns.clone(),
                });
            }
            let outcome = if changes.is_empty() { Outcome::Migrated } else { Outcome::Translated };
            self.objects.push(object("foreign key", report_name, outcome, changes.join("; ")));
        }
        if !clauses.is_empty() {
            self.post_fks.push(format!("ALTER TABLE {target}\n  {}", clauses.join(",\n  ")));
        }
    }
}
