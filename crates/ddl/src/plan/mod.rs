//! Builds the pre-data and post-data statements and the report from a [`Schema`].
//!
//! Every object of the schema leaves a line in the report, whatever happens to it: that is what
//! lets a user trust that nothing was dropped without a word.

use std::collections::{HashMap, HashSet};

use passerelle_model::schema::{
    Column, Deferrable, Identity, Index, IndexKey, IndexTarget, PgType, QualifiedName, ReplicaIdentity, Schema, Table,
    TableKind,
};
use passerelle_model::target::TargetTable;

use crate::expr::{self, Untranslatable};
use crate::ident::{quote, shorten, MAX_CHARS};
use crate::print::{Printer, Scope};
use crate::report::{ColumnReport, ObjectReport, Outcome, Report};
use crate::target::target_tables;
use crate::types::{Class, Fidelity, Mapped, TypeMapper, KEY_CHARS};
use crate::{Config, Dialect};

mod aggregate;
mod code;
mod foreign_key;
mod sequence;
mod trigger;
use sequence::nextval_sequence;
mod views;

/// The DDL, in the order it must run, and the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Databases, sequences, tables with primary keys and checks: run before the load.
    pub pre_data: Vec<String>,
    /// Unique constraints, indexes, foreign keys, AUTO_INCREMENT positions, views, then what translated
    /// triggers become (ON UPDATE columns): run after the load, and in an online run after the cutover
    /// drained the stream, so nothing fires on a replicated row.
    pub post_data: Vec<String>,
    pub report: Report,
    /// The target databases the plan writes into, for the emptiness check before applying.
    pub databases: Vec<String>,
    /// Where each source table's rows land and how its values convert, for the sink and verify.
    pub tables: Vec<TargetTable>,
    /// The AUTO_INCREMENT positions (also in `post_data`): a cutover sets them again from the
    /// sequences' values at that moment.
    pub auto_increments: Vec<String>,
    /// The indexes foreign keys need on their own columns where no key or index has them first,
    /// which InnoDB builds with the key (post-data) unless one exists: no change can violate
    /// them, so an online run builds them while it streams and the cutover adds only the keys.
    pub fk_indexes: Vec<FkIndex>,
    /// Each column's definition in its table's CREATE TABLE, by source table and column: what an
    /// online run's `ADD COLUMN` or `MODIFY COLUMN` writes when the source's table changes.
    column_definitions: HashMap<(QualifiedName, String), String>,
}

impl Plan {
    /// The definition of `column` of `table` in its CREATE TABLE (`\`note\` VARCHAR(100) NOT NULL`).
    pub fn column_definition(&self, table: &QualifiedName, column: &str) -> Option<&str> {
        self.column_definitions.get(&(table.clone(), column.to_string())).map(String::as_str)
    }
}

/// An index on a foreign key's columns, named as InnoDB names the one it builds for the key.
#[derive(Clone, Debug, PartialEq)]
pub struct FkIndex {
    pub database: String,
    pub table: String,
    pub name: String,
    pub columns: Vec<String>,
}

impl FkIndex {
    /// `ALTER TABLE ... ADD INDEX ...`.
    pub fn sql(&self) -> String {
        format!(
            "ALTER TABLE {}.{} ADD INDEX {} ({})",
            quote(&self.database),
            quote(&self.table),
            quote(&self.name),
            column_list(&self.columns)
        )
    }
}

/// MySQL's limits on comment lengths: longer comments are cut and reported.
/// <https://dev.mysql.com/doc/refman/8.0/en/create-table.html>
const TABLE_COMMENT_CHARS: usize = 2048;
const COLUMN_COMMENT_CHARS: usize = 1024;

/// Row size: InnoDB refuses a row whose declared columns may exceed 65,535 bytes; we keep a margin
/// for the row header and NULL bitmap.
const ROW_BYTES: u32 = 65_000;

pub fn plan(schema: &Schema, config: &Config) -> Plan {
    let mut planner = Planner {
        schema,
        config,
        types: TypeMapper { server: config.server, options: &config.types, schema },
        pre: Vec::new(),
        post_keys: Vec::new(),
        post_fks: Vec::new(),
        post_positions: Vec::new(),
        post_views: Vec::new(),
        fk_indexes: Vec::new(),
        columns: Vec::new(),
        objects: Vec::new(),
        constraint_names: HashSet::new(),
        auto_increment: HashMap::new(),
        generated: HashSet::new(),
        column_definitions: HashMap::new(),
        post_triggers: Vec::new(),
    };
    planner.run();
    let tables = target_tables(schema, config, &planner.generated);
    let databases = planner.databases();
    let mut post_data = planner.post_keys;
    post_data.extend(planner.post_fks);
    post_data.extend(planner.post_positions.iter().cloned());
    post_data.extend(planner.post_views);
    post_data.extend(planner.post_triggers);
    Plan {
        pre_data: planner.pre,
        post_data,
        report: Report {
            dialect: config.server.label(),
            server: config.server.to_string(),
            columns: planner.columns,
            objects: planner.objects,
        },
        databases,
        tables,
        auto_increments: planner.post_positions,
        fk_indexes: planner.fk_indexes,
        column_definitions: planner.column_definitions,
    }
}

struct Planner<'a> {
    schema: &'a Schema,
    config: &'a Config,
    types: TypeMapper<'a>,
    pre: Vec<String>,
    post_keys: Vec<String>,
    post_fks: Vec<String>,
    post_positions: Vec<String>,
    post_views: Vec<String>,
    fk_indexes: Vec<FkIndex>,
    columns: Vec<ColumnReport>,
    objects: Vec<ObjectReport>,
    /// Foreign key and check names already used per database: MySQL scopes them to the database,
    /// PostgreSQL to the table.
    constraint_names: HashSet<(String, String)>,
    /// Sequences that became AUTO_INCREMENT, by sequence name: the table and column they serve.
    auto_increment: HashMap<QualifiedName, (QualifiedName, String)>,
    /// Columns the target computes (`GENERATED ALWAYS AS ... STORED`), which loads must skip.
    generated: HashSet<(QualifiedName, String)>,
    /// Each column's definition in its CREATE TABLE, for a post-data `MODIFY COLUMN`.
    column_definitions: HashMap<(QualifiedName, String), String>,
    /// What translated triggers add once the rows are in (and, online, the stream drained).
    post_triggers: Vec<String>,
}

/// Column names inside a table's own expressions (checks, defaults, generated columns).
struct TableScope<'a> {
    /// Set for a domain check, where `VALUE` stands for the column.
    value: Option<&'a str>,
}

impl Scope for TableScope<'_> {
    fn column(&self, parts: &[String]) -> expr::Result<String> {
        match (parts, self.value) {
            ([name], Some(column)) if name == "value" => Ok(quote(column)),
            ([name], _) => Ok(quote(name)),
            _ => Err(Untranslatable(format!("the reference {} leaves the table", parts.join(".")))),
        }
    }
}

/// The bytes a fixed-size column takes in an InnoDB key: CHAR and BINARY by their length (utf8mb4
/// counts 4 bytes a character, ascii 1), DECIMAL at most 32, the other scalars at most 8.
fn key_bytes(sql: &str) -> u32 {
    let length = || sql.split(['(', ')']).nth(1).and_then(|n| n.split(',').next()?.trim().parse::<u32>().ok());
    if sql.starts_with("CHAR(") {
        let per_char = if sql.contains("ascii") { 1 } else { 4 };
        return length().unwrap_or(255) * per_char;
    }
    if sql.starts_with("BINARY(") {
        return length().unwrap_or(255);
    }
    if sql.starts_with("DECIMAL") {
        return 32;
    }
    8
}

fn object(kind: &'static str, name: String, outcome: Outcome, detail: impl Into<String>) -> ObjectReport {
    ObjectReport { kind, name, outcome, detail: detail.into(), source: None }
}

fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The columns of each unique index over plain columns and without a WHERE clause: keys that hold
/// for every row, which a foreign key may reference.
fn unique_index_columns(table: &Table) -> Vec<Vec<String>> {
    let column = |key: &IndexKey| match &key.target {
        IndexTarget::Column(column) => Some(column.clone()),
        IndexTarget::Expression(_) => None,
    };
    table
        .indexes
        .iter()
        .filter(|index| index.unique && index.predicate.is_none())
        .filter_map(|index| index.keys.iter().map(column).collect::<Option<Vec<_>>>())
        .collect()
}

fn column_list(columns: &[String]) -> String {
    columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
}

impl Planner<'_> {
    fn database(&self, schema: &str) -> Option<&str> {
        self.config.databases.get(schema).map(String::as_str)
    }

    /// `db`.`name` for an object of a migrated schema.
    fn target(&self, name: &QualifiedName) -> Option<String> {
        self.database(&name.schema).map(|database| format!("{}.{}", quote(database), quote(&name.name)))
    }

    /// `text` printed for the target, with its caveats. `deterministic`: a CHECK, generated column or
    /// index key, where the expression must give the same value every time (a default need not).
    fn print(
        &self,
        text: &str,
        value: Option<&str>,
        deterministic: bool,
    ) -> Result<(String, Vec<String>), Untranslatable> {
        let parsed = expr::parse(text)?;
        let scope = TableScope { value };
        let mut printer = Printer::new(self.config.server, &scope, deterministic);
        let sql = printer.print(&parsed)?;
        Ok((sql, printer.caveats))
    }

    /// A constraint name unique in its database, shortened to the limit; shortening and renaming are
    /// reported.
    fn constraint_name(&mut self, database: &str, table: &QualifiedName, name: &str) -> String {
        let mut candidate = shorten(name).into_owned();
        let mut n = 1;
        while self.constraint_names.contains(&(database.to_string(), candidate.clone())) {
            n += 1;
            let suffix = format!("_{n}");
            let stem: String = shorten(name).chars().take(MAX_CHARS - suffix.len()).collect();
            candidate = format!("{stem}{suffix}");
        }
        self.constraint_names.insert((database.to_string(), candidate.clone()));
        if candidate != name {
            self.identifier(format!("{table}.{name}"), &candidate);
        }
        candidate
    }

    fn identifier(&mut self, name: String, target: &str) {
        self.objects.push(object("identifier", name, Outcome::Translated, format!("renamed to {target}")));
    }

    /// The target databases, sorted, each once.
    fn databases(&self) -> Vec<String> {
        let mut databases: Vec<String> = self.config.databases.values().cloned().collect();
        databases.sort();
        databases.dedup();
        databases
    }

    fn run(&mut self) {
        for database in self.databases() {
            self.pre.push(format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE {}",
                quote(&database),
                self.types.text_collation()
            ));
        }
        self.choose_auto_increments();
        for sequence in &self.schema.sequences {
            self.sequence(sequence);
        }
        for table in &self.schema.tables {
            self.table(table);
        }
        for table in &self.schema.tables {
            if !matches!(table.kind, TableKind::Partition { .. }) {
                self.foreign_keys(table);
            }
        }
        self.views();
        self.types_and_code();
        self.left_out();
    }

    /// What the selection left out, so the report says so rather than leaving it unmentioned.
    fn left_out(&mut self) {
        for name in &self.schema.left_out {
            let detail = "left out of the migration by --include/--exclude";
            self.objects.push(object("relation", name.to_string(), Outcome::NotMigrated, detail));
        }
        for column in &self.schema.left_out_columns {
            let detail = "left out of the migration by --exclude-column";
            self.objects.push(object("column", column.clone(), Outcome::NotMigrated, detail));
        }
    }

    /// The longest text each key column may have: 3072 key bytes shared by the key's text columns.
    fn key_chars(&self, table: &Table) -> HashMap<String, u32> {
        let mut keys: Vec<&[String]> = Vec::new();
        keys.extend(table.primary_key.iter().map(|key| key.columns.as_slice()));
        keys.extend(table.uniques.iter().map(|key| key.columns.as_slice()));
        keys.extend(table.foreign_keys.iter().map(|fk| fk.columns.as_slice()));
        let unique_columns = unique_index_columns(table);
        keys.extend(unique_columns.iter().map(Vec::as_slice));
        // Foreign keys point at keys of other tables, whose columns must get the same length.
        let referenced: Vec<Vec<String>> = self
            .schema
            .tables
            .iter()
            .flat_map(|other| other.foreign_keys.iter())
            .filter(|fk| fk.referenced_table == table.name)
            .map(|fk| fk.referenced_columns.clone())
            .collect();
        keys.extend(referenced.iter().map(Vec::as_slice));
        let mut limits: HashMap<String, u32> = HashMap::new();
        for key in keys {
            let texts: Vec<&String> = key
                .iter()
                .filter(|name| {
                    table.columns.iter().any(|c| {
                        &&c.name == name && {
                            let mapped = self.types.map(&c.data_type, None);
                            mapped.class == Class::Long || mapped.sql.starts_with("VARCHAR")
                        }
                    })
                })
                .collect();
            let Ok(n_texts) = u32::try_from(texts.len()) else { continue };
            // The key's other columns take their bytes first; the texts share what is left.
            let fixed_bytes: u32 = key
                .iter()
                .filter(|name| !texts.contains(name))
                .filter_map(|name| table.columns.iter().find(|c| &c.name == name))
                .map(|c| key_bytes(&self.types.map(&c.data_type, None).sql))
                .sum();
            for name in texts {
                let share = (KEY_CHARS * 4).saturating_sub(fixed_bytes) / 4 / n_texts;
                let limit = limits.entry(name.clone()).or_insert(share);
                *limit = (*limit).min(share);
            }
        }
        limits
    }

    fn table(&mut self, table: &Table) {
        let name = table.name.to_string();
        if let TableKind::Partition { parent, bound } = &table.kind {
            let detail = format!("its rows go to {parent} ({bound})");
            self.objects.push(object("partition", name, Outcome::Translated, detail));
            return;
        }
        let Some(database) = self.database(&table.name.schema).map(str::to_string) else { return };
        let Some(target) = self.target(&table.name) else { return };
        if table.name.name != shorten(&table.name.name) {
            self.identifier(name.clone(), &shorten(&table.name.name));
        }
        let key_chars = self.key_chars(table);
        let mut mapped: Vec<Mapped> =
            table.columns.iter().map(|c| self.types.map(&c.data_type, key_chars.get(&c.name).copied())).collect();
        self.fit_row(table, &mut mapped);

        let mut lines = Vec::new();
        let mut checks = Vec::new();
        for (column, mapped) in table.columns.iter().zip(mapped) {
            let line = self.column(table, column, mapped, &mut checks);
            self.column_definitions.insert((table.name.clone(), column.name.clone()), line.clone());
            lines.push(line);
        }
        if table.primary_key.is_none()
            && self.config.require_primary_key
            && self.config.server.dialect == Dialect::Mysql
        {
            let row_id = quote(crate::ROW_ID_COLUMN);
            lines.push(format!("{row_id} BIGINT UNSIGNED NOT NULL AUTO_INCREMENT INVISIBLE"));
            lines.push(format!("PRIMARY KEY ({row_id})"));
            let detail = "the target requires a primary key (sql_require_primary_key) and PostgreSQL's table has \
                          none: an invisible AUTO_INCREMENT key was added, which the application does not see";
            self.objects.push(object(
                "primary key",
                format!("{name}.{}", crate::ROW_ID_COLUMN),
                Outcome::Translated,
                detail,
            ));
        }
        if let Some(key) = &table.primary_key {
            lines.push(format!("PRIMARY KEY ({})", column_list(&key.columns)));
            let (outcome, detail) = match key.deferrable {
                Deferrable::No => (Outcome::Migrated, String::new()),
                _ => (Outcome::Translated, "DEFERRABLE dropped: MySQL checks keys immediately".to_string()),
            };
            self.objects.push(object("primary key", format!("{name}.{}", key.name), outcome, detail));
        }
        for check in &table.checks {
            let check_name = format!("{name}.{}", check.name);
            if !check.validated {
                let mut report = object(
                    "check",
                    check_name,
                    Outcome::NotMigrated,
                    "NOT VALID in PostgreSQL: existing rows may violate it",
                );
                report.source = Some(check.expression.clone());
                self.objects.push(report);
                continue;
            }
            checks.push((check.name.clone(), check.expression.clone(), None, check_name));
        }
        for (constraint, expression, value, report_name) in checks {
            match self.print(&expression, value.as_deref(), true) {
                Ok((sql, caveats)) => {
                    let constraint = self.constraint_name(&database, &table.name, &constraint);
                    lines.push(format!("CONSTRAINT {} CHECK ({sql})", quote(&constraint)));
                    let outcome = if caveats.is_empty() { Outcome::Migrated } else { Outcome::Translated };
                    self.objects.push(object("check", report_name, outcome, caveats.join("; ")));
                }
                Err(Untranslatable(reason)) => {
                    let mut report = object("check", report_name, Outcome::NotMigrated, reason);
                    report.source = Some(expression);
                    self.objects.push(report);
                }
            }
        }
        let mut options = format!("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={}", self.types.text_collation());
        if let Some(comment) = &table.comment {
            options.push_str(&format!(" COMMENT={}", self.comment(&name, comment, TABLE_COMMENT_CHARS)));
        }
        self.pre.push(format!("CREATE TABLE {target} (\n  {}\n) {options}", lines.join(",\n  ")));

        let mut notes = Vec::new();
        if let TableKind::Partitioned { strategy, key } = &table.kind {
            let n_partitions = self
                .schema
                .tables
                .iter()
                .filter(|t| matches!(&t.kind, TableKind::Partition { parent, .. } if parent == &table.name))
                .count();
            notes.push(format!(
                "one table holds the rows of its {n_partitions} partitions: PARTITION BY {} {key} is not kept \
                 (MySQL partitioning forbids foreign keys)",
                strategy.to_uppercase()
            ));
        }
        if table.unlogged {
            notes.push("UNLOGGED dropped: InnoDB tables are always crash-safe".into());
        }
        if table.primary_key.is_none() {
            notes.push(match &table.replica_identity {
                ReplicaIdentity::Index { name, .. } => {
                    format!("no primary key: updates and deletes are matched by its replica identity, the unique index {name}")
                }
                _ => "no primary key: updates and deletes are matched on every column".into(),
            });
        }
        let outcome = if notes.is_empty() { Outcome::Migrated } else { Outcome::Translated };
        self.objects.push(object("table", name.clone(), outcome, notes.join("; ")));
        self.keys_and_indexes(table, &target, &key_chars);
    }

    /// Turns the widest VARCHARs into LONGTEXT until the row fits InnoDB's row size limit.
    fn fit_row(&self, table: &Table, mapped: &mut [Mapped]) {
        let varchar_chars = |m: &Mapped| -> Option<u32> {
            let rest = m.sql.strip_prefix("VARCHAR(")?;
            rest.split(')').next()?.parse().ok()
        };
        let bytes = |m: &Mapped| match varchar_chars(m) {
            Some(chars) if m.sql.contains("ascii") => chars + 2,
            Some(chars) => chars * 4 + 2,
            None => 16,
        };
        loop {
            let total: u32 = mapped.iter().map(bytes).sum();
            if total <= ROW_BYTES {
                return;
            }
            let widest = (0..mapped.len())
                .filter(|&idx| {
                    let name = &table.columns[idx].name;
                    !table.primary_key.as_ref().is_some_and(|k| k.columns.contains(name))
                        && !table.uniques.iter().any(|k| k.columns.contains(name))
                })
                .max_by_key(|&idx| bytes(&mapped[idx]));
            let Some(idx) = widest.filter(|&idx| varchar_chars(&mapped[idx]).is_some()) else { return };
            let chars = varchar_chars(&mapped[idx]).unwrap_or_default();
            mapped[idx] = self.types.long_text(format!(
                "LONGTEXT, not VARCHAR({chars}): the row would pass InnoDB's 65,535-byte limit; the length limit is \
                 not enforced"
            ));
        }
    }

    fn comment(&mut self, name: &str, comment: &str, limit: usize) -> String {
        if comment.chars().count() <= limit {
            return quote_string(comment);
        }
        let detail = format!("comment cut to {limit} characters, MySQL's limit");
        self.objects.push(object("comment", name.to_string(), Outcome::Translated, detail));
        quote_string(&comment.chars().take(limit).collect::<String>())
    }

    /// One column definition; domain checks are added to `checks`.
    fn column(
        &mut self,
        table: &Table,
        column: &Column,
        mut mapped: Mapped,
        checks: &mut Vec<(String, String, Option<String>, String)>,
    ) -> String {
        let qualified = format!("{}.{}", table.name, column.name);
        if column.name != shorten(&column.name) {
            self.identifier(qualified.clone(), &shorten(&column.name));
        }
        let mut not_null = column.not_null;
        if let PgType::Domain(domain_name) = &column.data_type.base {
            if let Some(domain) = self.schema.domains.iter().find(|d| &d.name == domain_name) {
                not_null |= domain.not_null;
                for check in &domain.checks {
                    let constraint = format!("{}_{}_{}", table.name.name, column.name, check.name);
                    let report_name = format!("{qualified} (domain {domain_name} check {})", check.name);
                    checks.push((constraint, check.expression.clone(), Some(column.name.clone()), report_name));
                }
            }
        }
        if let Some(collation) = &column.collation {
            if !["C", "POSIX", "default"].contains(&collation.as_str()) && mapped.sql.contains(" COLLATE ") {
                mapped.fidelity = Fidelity::Lossy;
                match self.config.server.accent_sensitive_collation(true) {
                    Some(linguistic) => {
                        let base = mapped.sql.split(" COLLATE ").next().unwrap_or_default().to_string();
                        mapped.sql = format!("{base} COLLATE {linguistic}");
                        mapped.note = format!("collation {collation:?} approximated by {linguistic}");
                    }
                    None => {
                        mapped.note = format!(
                            "collation {collation:?} not kept: {} has no collation that tells case and accents \
                             apart, the binary one compares as PostgreSQL's C",
                            self.config.server
                        )
                    }
                }
            }
        }
        let mut sql = format!("{} {}", quote(&column.name), mapped.sql);
        if let Some(generated) = &column.generated {
            match self.print(generated, None, true) {
                Ok((expression, caveats)) => {
                    sql.push_str(&format!(" GENERATED ALWAYS AS ({expression}) STORED"));
                    self.generated.insert((table.name.clone(), column.name.clone()));
                    let outcome = if caveats.is_empty() { Outcome::Migrated } else { Outcome::Translated };
                    self.objects.push(object("generated column", qualified.clone(), outcome, caveats.join("; ")));
                }
                Err(Untranslatable(reason)) => {
                    let mut report = object(
                        "generated column",
                        qualified.clone(),
                        Outcome::NotMigrated,
                        format!("{reason}: a plain column receives the computed values"),
                    );
                    report.source = Some(generated.clone());
                    self.objects.push(report);
                }
            }
        }
        if not_null {
            sql.push_str(" NOT NULL");
        }
        let sequence = column.default.as_deref().and_then(nextval_sequence);
        let identity_sequence = column.identity.and_then(|_| {
            self.schema
                .sequences
                .iter()
                .find(|s| s.owned_by.as_ref().is_some_and(|(t, c)| t == &table.name && c == &column.name))
                .map(|s| s.name.clone())
        });
        match sequence.or(identity_sequence) {
            Some(sequence) if self.auto_increment.contains_key(&sequence) => {
                sql.push_str(" AUTO_INCREMENT");
                if column.identity == Some(Identity::Always) {
                    let detail = "GENERATED ALWAYS became AUTO_INCREMENT, which also accepts explicit values";
                    self.objects.push(object("identity", qualified.clone(), Outcome::Translated, detail));
                }
            }
            Some(sequence) => match (self.config.server.dialect, self.target(&sequence)) {
                (Dialect::Mariadb, Some(target)) => sql.push_str(&format!(" DEFAULT NEXTVAL({target})")),
                _ => {
                    let mut report = object(
                        "default",
                        qualified.clone(),
                        Outcome::NotMigrated,
                        format!("MySQL cannot draw a default from a sequence: the writer supplies {sequence} values"),
                    );
                    report.source = column.default.clone();
                    self.objects.push(report);
                }
            },
            None => {
                if let Some(default) = &column.default {
                    self.default(&qualified, default, &mapped, &mut sql);
                }
            }
        }
        if let Some(comment) = &column.comment {
            sql.push_str(&format!(" COMMENT {}", self.comment(&qualified, comment, COLUMN_COMMENT_CHARS)));
        }
        self.columns.push(ColumnReport {
            table: table.name.to_string(),
            column: column.name.clone(),
            source_type: column.data_type.display.clone(),
            target_type: mapped.sql,
            fidelity: mapped.fidelity,
            note: mapped.note,
        });
        sql
    }

    fn default(&mut self, qualified: &str, default: &str, mapped: &Mapped, sql: &mut String) {
        match self.print(default, None, false) {
            Ok((expression, caveats)) => {
                let literal = expression.starts_with('\'')
                    || expression.parse::<f64>().is_ok()
                    || ["NULL", "TRUE", "FALSE"].contains(&expression.as_str());
                if let Some(precision) =
                    mapped.sql.strip_prefix("DATETIME").filter(|_| expression == "CURRENT_TIMESTAMP(6)")
                {
                    // The server wants the column's own precision: DATETIME(3) DEFAULT CURRENT_TIMESTAMP(3).
                    sql.push_str(&format!(" DEFAULT CURRENT_TIMESTAMP{precision}"));
                } else if literal && mapped.class == Class::Plain {
                    sql.push_str(&format!(" DEFAULT {expression}"));
                } else {
                    sql.push_str(&format!(" DEFAULT ({expression})"));
                }
                if !caveats.is_empty() {
                    let mut report = object("default", qualified.to_string(), Outcome::Translated, caveats.join("; "));
                    report.source = Some(default.to_string());
                    self.objects.push(report);
                }
            }
            Err(Untranslatable(reason)) => {
                let mut report = object("default", qualified.to_string(), Outcome::NotMigrated, reason);
                report.source = Some(default.to_string());
                self.objects.push(report);
            }
        }
    }

    /// Unique constraints and secondary indexes, in one ALTER TABLE per table so the table is read
    /// once to build them all.
    fn keys_and_indexes(&mut self, table: &Table, target: &str, key_chars: &HashMap<String, u32>) {
        let name = table.name.to_string();
        let mut clauses = Vec::new();
        // The unique index a table names as its replica identity is what the change stream matches
        // rows by: the sink's upserts need it from the first change on, so it comes with the table.
        let identity = match &table.replica_identity {
            ReplicaIdentity::Index { name, .. } => Some(name.as_str()),
            _ => None,
        };
        let mut identity_clauses = Vec::new();
        for key in &table.uniques {
            let clause = format!("ADD CONSTRAINT {} UNIQUE ({})", quote(&key.name), column_list(&key.columns));
            if identity == Some(key.name.as_str()) {
                identity_clauses.push(clause);
            } else {
                clauses.push(clause);
            }
            let mut changes = Vec::new();
            if key.deferrable != Deferrable::No {
                changes.push("DEFERRABLE dropped: MySQL checks keys immediately");
            }
            if key.nulls_not_distinct {
                changes.push("NULLS NOT DISTINCT dropped: MySQL lets NULLs repeat in a unique key");
            }
            let outcome = if changes.is_empty() { Outcome::Migrated } else { Outcome::Translated };
            self.objects.push(object("unique", format!("{name}.{}", key.name), outcome, changes.join("; ")));
        }
        for index in &table.indexes {
            if identity == Some(index.name.as_str()) {
                self.index(table, index, key_chars, &mut identity_clauses);
            } else {
                self.index(table, index, key_chars, &mut clauses);
            }
        }
        if !identity_clauses.is_empty() {
            self.pre.push(format!("ALTER TABLE {target}\n  {}", identity_clauses.join(",\n  ")));
        }
        if !clauses.is_empty() {
            self.post_keys.push(format!("ALTER TABLE {target}\n  {}", clauses.join(",\n  ")));
        }
    }

    fn index(&mut self, table: &Table, index: &Index, key_chars: &HashMap<String, u32>, clauses: &mut Vec<String>) {
        let report_name = format!("{}.{}", table.name, index.name);
        let not_migrated = |reason: String| {
            let mut report = object("index", report_name.clone(), Outcome::NotMigrated, reason);
            report.source = Some(index.definition.clone());
            report
        };
        let mut changes = Vec::new();
        match index.method.as_str() {
            "btree" => {}
            "hash" => changes.push("a hash index becomes a B-tree (InnoDB has no hash indexes)".to_string()),
            method => {
                self.objects.push(not_migrated(format!("MySQL has no {method} indexes")));
                return;
            }
        }
        let predicate = match &index.predicate {
            None => None,
            Some(predicate) => match self.print(predicate, None, true) {
                Ok((sql, caveats)) => {
                    changes.extend(caveats);
                    Some(sql)
                }
                Err(Untranslatable(reason)) => {
                    self.objects.push(not_migrated(format!("the WHERE clause: {reason}")));
                    return;
                }
            },
        };
        let mut parts = Vec::new();
        let mut generated = Vec::new();
        for (position, key) in index.keys.iter().enumerate() {
            let direction = if key.descending { " DESC" } else { "" };
            let column = match &key.target {
                IndexTarget::Column(column) => column,
                IndexTarget::Expression(_) => "",
            };
            let expression = match (&key.target, &predicate) {
                (IndexTarget::Column(_), None) => None,
                (IndexTarget::Column(column), Some(_)) => Some(quote(column)),
                (IndexTarget::Expression(text), _) => match self.print(text, None, true) {
                    Ok((sql, caveats)) => {
                        changes.extend(caveats);
                        Some(sql)
                    }
                    Err(Untranslatable(reason)) => {
                        self.objects.push(not_migrated(format!("the key {text}: {reason}")));
                        return;
                    }
                },
            };
            let Some(expression) = expression else {
                let Some(mapped) = table
                    .columns
                    .iter()
                    .find(|c| c.name == column)
                    .map(|c| self.types.map(&c.data_type, key_chars.get(column).copied()))
                else {
                    continue;
                };
                match mapped.class {
                    Class::Unindexable => {
                        self.objects
                            .push(not_migrated(format!("MySQL cannot index the {} column {column}", mapped.sql)));
                        return;
                    }
                    Class::Long if index.unique => {
                        self.objects.push(not_migrated(format!(
                            "a unique key over the unbounded column {column} would only cover a prefix"
                        )));
                        return;
                    }
                    Class::Long => {
                        parts.push(format!("{}({KEY_CHARS}){direction}", quote(column)));
                        changes.push(format!("{column} is indexed through its first {KEY_CHARS} characters"));
                    }
                    Class::Plain => parts.push(format!("{}{direction}", quote(column))),
                }
                continue;
            };
            // MariaDB has no functional key parts and MySQL's reject TEXT results, so expression and
            // partial keys become invisible generated columns, which both index alike. A partial
            // index's rows outside its WHERE get NULL keys, which a unique index never compares.
            let value = match &predicate {
                Some(predicate) => format!("CASE WHEN {predicate} THEN {expression} END"),
                None => expression,
            };
            let mapped = self.types.map(&key.data_type, Some(KEY_CHARS / u32::try_from(index.keys.len()).unwrap_or(1)));
            if mapped.class != Class::Plain {
                self.objects.push(not_migrated(format!("MySQL cannot index an expression of type {}", mapped.sql)));
                return;
            }
            let generated_name = shorten(&format!("{}_k{}", index.name, position + 1)).into_owned();
            generated.push(format!(
                "ADD COLUMN {} {} GENERATED ALWAYS AS ({value}) VIRTUAL INVISIBLE",
                quote(&generated_name),
                mapped.sql
            ));
            parts.push(format!("{}{direction}", quote(&generated_name)));
            changes.push(format!("key {} held in the invisible generated column {generated_name}", position + 1));
        }
        if index.predicate.is_some() {
            changes.push("the WHERE clause is folded into the keys: rows outside it are indexed with NULL keys".into());
        }
        clauses.extend(generated);
        let kind = if index.unique { "UNIQUE INDEX" } else { "INDEX" };
        clauses.push(format!("ADD {kind} {} ({})", quote(&index.name), parts.join(", ")));
        if index.name != shorten(&index.name) {
            self.identifier(report_name.clone(), &shorten(&index.name));
        }
        let outcome = if changes.is_empty() { Outcome::Migrated } else { Outcome::Translated };
        let mut report = object("index", report_name, outcome, changes.join("; "));
        if outcome == Outcome::Translated {
            report.source = Some(index.definition.clone());
        }
        self.objects.push(report);
    }
}
