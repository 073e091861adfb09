//! What the target's information_schema shows of the tables the plan made.
//!
//! Where rows land, names and conversions come from `ddl::plan`, which the caller builds with the
//! migration's options, so verify never re-decides a mapping.

use std::collections::{BTreeMap, HashMap};

use passerelle_ddl::ident::shorten;

use crate::session::Target;
use crate::VerifyError;

/// A source name as the target spells it (the database comes from the schema map).
pub fn name(source: &str) -> String {
    shorten(source).into_owned()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveColumn {
    pub name: String,
    /// information_schema's DATA_TYPE, lowercase: `int`, `decimal`, `datetime`, `longtext`, ...
    pub data_type: String,
    pub collation: Option<String>,
    /// `auto_increment` and the like.
    pub extra: String,
    pub comment: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub name: String,
    /// `PRIMARY KEY`, `UNIQUE`, `FOREIGN KEY` or `CHECK`.
    pub kind: String,
    pub columns: Vec<String>,
    /// For a foreign key: database, table, columns.
    pub referenced: Option<(String, String, Vec<String>)>,
    pub update_rule: String,
    pub delete_rule: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetIndex {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveTable {
    pub columns: Vec<LiveColumn>,
    pub comment: String,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<TargetIndex>,
}

impl LiveTable {
    pub fn column(&self, name: &str) -> Option<&LiveColumn> {
        self.columns.iter().find(|column| column.name == name)
    }
}

/// Every table of `database`, by name; a database that does not exist has none.
pub async fn read(target: &mut Target, database: &str) -> Result<BTreeMap<String, LiveTable>, VerifyError> {
    let params = [database.to_string()];
    let mut tables: BTreeMap<String, LiveTable> = BTreeMap::new();
    let context = format!("reading the tables of {database}");
    let sql = "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?";
    for row in target.rows(&context, sql, &params).await? {
        let mut row = row.into_iter();
        let name = row.next().flatten().unwrap_or_default();
        tables.entry(name).or_default().comment = row.next().flatten().unwrap_or_default();
    }
    let sql = "SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), COLLATION_NAME, EXTRA, COLUMN_COMMENT \
               FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION";
    for row in target.rows(&context, sql, &params).await? {
        let mut row = row.into_iter().map(Option::unwrap_or_default);
        let mut next = || row.next().unwrap_or_default();
        let table = next();
        let column = LiveColumn {
            name: next(),
            data_type: next(),
            collation: Some(next()).filter(|c| !c.is_empty()),
            extra: next().to_lowercase(),
            comment: next(),
        };
        tables.entry(table).or_default().columns.push(column);
    }
    read_constraints(target, database, &mut tables).await?;
    let sql = "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS \
               WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";
    for row in target.rows(&context, sql, &params).await? {
        let mut row = row.into_iter().map(Option::unwrap_or_default);
        let mut next = || row.next().unwrap_or_default();
        let (table, name, non_unique, column) = (next(), next(), next(), next());
        let indexes = &mut tables.entry(table).or_default().indexes;
        match indexes.last_mut() {
            Some(index) if index.name == name => index.columns.push(column),
            _ => indexes.push(TargetIndex { name, unique: non_unique == "0", columns: vec![column] }),
        }
    }
    Ok(tables)
}

async fn read_constraints(
    target: &mut Target,
    database: &str,
    tables: &mut BTreeMap<String, LiveTable>,
) -> Result<(), VerifyError> {
    let params = [database.to_string()];
    let context = format!("reading the constraints of {database}");
    let sql = "SELECT c.TABLE_NAME, c.CONSTRAINT_NAME, c.CONSTRAINT_TYPE, r.UPDATE_RULE, r.DELETE_RULE \
               FROM information_schema.TABLE_CONSTRAINTS c \
               LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
                 ON r.CONSTRAINT_SCHEMA = c.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = c.CONSTRAINT_NAME \
                AND r.TABLE_NAME = c.TABLE_NAME \
               WHERE c.TABLE_SCHEMA = ? ORDER BY c.TABLE_NAME, c.CONSTRAINT_NAME";
    let mut position: HashMap<(String, String), usize> = HashMap::new();
    for row in target.rows(&context, sql, &params).await? {
        let mut row = row.into_iter().map(Option::unwrap_or_default);
        let mut next = || row.next().unwrap_or_default();
        let (table, name, kind, update_rule, delete_rule) = (next(), next(), next(), next(), next());
        let constraints = &mut tables.entry(table.clone()).or_default().constraints;
        position.insert((table, name.clone()), constraints.len());
        constraints.push(Constraint { name, kind, columns: Vec::new(), referenced: None, update_rule, delete_rule });
    }
    let sql = "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, \
               REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? \
               ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION";
    for row in target.rows(&context, sql, &params).await? {
        let mut row = row.into_iter();
        let mut next = || row.next().flatten();
        let (table, name, column) =
            (next().unwrap_or_default(), next().unwrap_or_default(), next().unwrap_or_default());
        let (ref_database, ref_table, ref_column) = (next(), next(), next());
        let Some(&idx) = position.get(&(table.clone(), name)) else { continue };
        let Some(constraint) = tables.get_mut(&table).and_then(|t| t.constraints.get_mut(idx)) else { continue };
        constraint.columns.push(column);
        if let (Some(ref_database), Some(ref_table), Some(ref_column)) = (ref_database, ref_table, ref_column) {
            constraint.referenced.get_or_insert_with(|| (ref_database, ref_table, Vec::new())).2.push(ref_column);
        }
    }
    Ok(())
}
