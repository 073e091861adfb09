//! `plan --check-values`: every source value the mapping would refuse (NaN in a DECIMAL, a BC date,
//! an infinity), found before anything moves. Each value is read as the snapshot would carry it and
//! converted by the sink's own conversion, so the check and the load cannot disagree.

use passerelle_ddl::Plan;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::schema::Schema;
use serde::Serialize;

/// The values of one column that the target would refuse.
#[derive(Debug, Serialize)]
pub struct RefusedColumn {
    /// `schema.table.column` in the source.
    pub column: String,
    pub n_refused: u64,
    /// The primary key of the first refused row, `(id)=(5)`.
    pub first_key: String,
    /// Why the first one is refused.
    pub cause: String,
}

/// Scans every column whose conversion can refuse a value, with the primary key to name the rows.
pub async fn check(source: &DbEndpoint, schema: &Schema, plan: &Plan) -> anyhow::Result<Vec<RefusedColumn>> {
    let mut client = passerelle_pg::session::connect(source).await?;
    let mut refused = Vec::new();
    for (table, target) in schema.tables.iter().zip(&plan.tables) {
        debug_assert_eq!(table.name, target.source);
        let checked: Vec<usize> = (0..target.columns.len())
            .filter(|&i| !target.columns[i].generated && target.columns[i].conversion.may_refuse())
            .collect();
        if checked.is_empty() {
            continue;
        }
        let read: Vec<usize> = target.key.iter().chain(&checked).copied().collect();
        let names: Vec<String> = read.iter().map(|&i| table.columns[i].name.clone()).collect();
        let mut found: Vec<Option<RefusedColumn>> = checked.iter().map(|_| None).collect();
        passerelle_pg::scan::each_row(&mut client, source, &table.name, &names, |values| {
            for (n, &i) in checked.iter().enumerate() {
                let Some(text) = values[target.key.len() + n] else { continue };
                let Err(cause) = passerelle_mysql::value::convert(&target.columns[i].conversion, text) else {
                    continue;
                };
                let column = found[n].get_or_insert_with(|| RefusedColumn {
                    column: format!("{}.{}", table.name, table.columns[i].name),
                    n_refused: 0,
                    first_key: target.key_text(|k| values[target.key.iter().position(|&key| key == k)?]),
                    cause,
                });
                column.n_refused += 1;
            }
        })
        .await?;
        refused.extend(found.into_iter().flatten());
    }
    Ok(refused)
}

/// One line per column, or that every value converts.
pub fn render(refused: &[RefusedColumn]) -> String {
    if refused.is_empty() {
        return "values: every value of every table converts to its target type\n".to_string();
    }
    let mut out = String::new();
    for column in refused {
        out.push_str(&format!(
            "REFUSED  {}: {} value(s), the first at {}: {}\n",
            column.column, column.n_refused, column.first_key, column.cause
        ));
    }
    out.push_str("fix: change those source values, or map the columns to types that hold them (see report.txt)\n");
    out
}
