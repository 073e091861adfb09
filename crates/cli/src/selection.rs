//! Which tables move: `--include` and `--exclude` patterns over `schema.table` (`*` any run of
//! characters, `?` one; a pattern without a dot names tables of every selected schema), applied to
//! the catalog as soon as it is read, so the plan, the snapshot, the publication (and so the stream),
//! verify and the report all see the same tables; the report lists what was left out. A pattern that
//! matches nothing is refused: a misspelt exclusion would otherwise move the table it meant to leave.
//!
//! Views are selected by the same patterns; triggers and owned sequences go with their table. A
//! foreign key or a view that reads a table left out is reported as not migrated by the plan.

use passerelle_model::schema::{QualifiedName, Schema};

/// The patterns, normalised: `--include '!x'` is `--exclude x`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patterns {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Columns left out, `schema.table.column`.
    pub columns: Vec<String>,
}

impl Patterns {
    pub fn new(include: &[String], exclude: &[String], columns: &[String]) -> Patterns {
        let mut patterns = Patterns { include: Vec::new(), exclude: exclude.to_vec(), columns: columns.to_vec() };
        for pattern in include {
            match pattern.strip_prefix('!') {
                Some(excluded) => patterns.exclude.push(excluded.to_string()),
                None => patterns.include.push(pattern.clone()),
            }
        }
        patterns
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty() && self.columns.is_empty()
    }

    fn keeps(&self, name: &QualifiedName) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| matches(p, name)))
            && !self.exclude.iter().any(|p| matches(p, name))
    }

    /// Leaves out of `schema` the tables and views the patterns do not keep, with their triggers and
    /// owned sequences.
    pub fn apply(&self, schema: &mut Schema) -> anyhow::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let names: Vec<&QualifiedName> =
            schema.tables.iter().map(|t| &t.name).chain(schema.views.iter().map(|v| &v.name)).collect();
        for (flag, pattern) in
            self.include.iter().map(|p| ("--include", p)).chain(self.exclude.iter().map(|p| ("--exclude", p)))
        {
            if !names.iter().any(|name| matches(pattern, name)) {
                anyhow::bail!("{flag} {pattern} matches no table or view of the selected schemas");
            }
        }
        schema.left_out = names.into_iter().filter(|name| !self.keeps(name)).cloned().collect();
        schema.tables.retain(|table| self.keeps(&table.name));
        schema.views.retain(|view| self.keeps(&view.name));
        let kept = |name: &QualifiedName| schema.tables.iter().any(|table| table.name == *name);
        let triggers = schema.triggers.iter().filter(|trigger| kept(&trigger.table)).cloned().collect();
        let sequences = schema
            .sequences
            .iter()
            .filter(|sequence| sequence.owned_by.as_ref().is_none_or(|(table, _)| kept(table)))
            .cloned()
            .collect();
        schema.triggers = triggers;
        schema.sequences = sequences;
        for column in &self.columns {
            leave_column_out(schema, column)?;
        }
        Ok(())
    }

    /// The tables with columns left out, and the columns they publish: the rest, generated ones
    /// aside (pgoutput sends none before PostgreSQL 18, and a column list may not name one).
    pub fn published_columns(&self, schema: &Schema) -> Vec<(QualifiedName, Vec<String>)> {
        schema
            .tables
            .iter()
            .filter(|table| {
                self.columns.iter().any(|c| c.rsplit_once('.').is_some_and(|(t, _)| t == table.name.to_string()))
            })
            .map(|table| {
                let columns = table.columns.iter().filter(|c| c.generated.is_none()).map(|c| c.name.clone()).collect();
                (table.name.clone(), columns)
            })
            .collect()
    }
}

/// Removes `schema.table.column` from its table, with the keys, indexes and checks that use it (and
/// other tables' foreign keys to it). A column of the primary key cannot be left out: it is the
/// replica identity changes are streamed and applied by.
fn leave_column_out(schema: &mut Schema, qualified: &str) -> anyhow::Result<()> {
    let Some((table_name, column)) = qualified.rsplit_once('.').filter(|(t, _)| t.contains('.')) else {
        anyhow::bail!("--exclude-column {qualified} is not schema.table.column");
    };
    let Some(table) = schema.tables.iter_mut().find(|table| table.name.to_string() == table_name) else {
        anyhow::bail!("--exclude-column {qualified}: {table_name} is not a migrated table");
    };
    if !table.columns.iter().any(|c| c.name == column) {
        anyhow::bail!("--exclude-column {qualified}: {table_name} has no column {column}");
    }
    if let Some(key) = table.primary_key.as_ref().filter(|key| key.columns.iter().any(|c| c == column)) {
        anyhow::bail!(
            "--exclude-column {qualified}: {column} is in the primary key of {table_name} ({}), its replica identity, \
             which its changes are streamed and applied by: the key's columns cannot be left out",
            key.columns.join(", ")
        );
    }
    let uses = |text: &str| names_column(text, column);
    table.columns.retain(|c| c.name != column);
    table.uniques.retain(|key| !key.columns.iter().any(|c| c == column));
    table.foreign_keys.retain(|fk| !fk.columns.iter().any(|c| c == column));
    table.checks.retain(|check| !uses(&check.expression));
    table.indexes.retain(|index| !uses(index.definition.split_once(" USING ").map_or("", |(_, keys)| keys)));
    let name = table.name.clone();
    for other in &mut schema.tables {
        other
            .foreign_keys
            .retain(|fk| fk.referenced_table != name || !fk.referenced_columns.iter().any(|c| c == column));
    }
    schema.left_out_columns.push(qualified.to_string());
    Ok(())
}

impl Patterns {
    /// What the run announces: the table patterns and the columns left out.
    pub fn from_run(include: &[String], exclude: &[String], columns: &[String]) -> Patterns {
        Patterns { include: include.to_vec(), exclude: exclude.to_vec(), columns: columns.to_vec() }
    }
}

/// `schema.table` against a pattern with `*` and `?`; a pattern without a dot against the table alone.
fn matches(pattern: &str, name: &QualifiedName) -> bool {
    if pattern.contains('.') {
        glob(pattern.as_bytes(), format!("{}.{}", name.schema, name.name).as_bytes())
    } else {
        glob(pattern.as_bytes(), name.name.as_bytes())
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Whether the expression `text` names `column` (a word of it): a check, an index's keys.
pub fn names_column(text: &str, column: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| word == column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> QualifiedName {
        let (schema, name) = text.split_once('.').unwrap();
        QualifiedName { schema: schema.into(), name: name.into() }
    }

    #[test]
    fn patterns_keep_and_leave_out_by_glob() {
        let patterns =
            Patterns::new(&["bookings.*".into(), "!bookings.boarding_passes".into()], &["*_log".into()], &[]);
        assert!(patterns.keeps(&name("bookings.tickets")));
        assert!(!patterns.keeps(&name("bookings.boarding_passes")));
        assert!(!patterns.keeps(&name("bookings.audit_log")));
        assert!(!patterns.keeps(&name("public.tickets")));
        assert!(matches("bookings.t?ckets", &name("bookings.tickets")));
        assert!(!matches("bookings.t?ckets", &name("bookings.tckets")));
    }
}
