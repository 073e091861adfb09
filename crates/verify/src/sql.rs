//! The statements verify runs on each engine for one table: the checksum of a key range, the key
//! that splits a range in two, the rows of a small range, and the row-hash multiset of a table
//! without a usable key. Built from one [`TablePlan`], so both engines always hash the same fields.

use crate::canonical::{KeyOrder, Rendering};
use crate::digest::{my_field, my_hash, my_slice, pg_field, pg_hash, pg_slice};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Pg,
    My,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedColumn {
    /// The source's name, for the report.
    pub name: String,
    pub rendering: Rendering,
}

/// A primary key column whose order both engines share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyColumn {
    /// Its position in [`TablePlan::columns`].
    pub column: usize,
    pub order: KeyOrder,
    /// The quoted target column.
    pub my_column: String,
}

/// How rows of a table are told apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keying {
    /// By primary key, bisected by key ranges.
    Ordered(Vec<KeyColumn>),
    /// By the multiset of row hashes: no primary key, or one whose order the engines do not share.
    Multiset,
}

/// One table as both engines read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePlan {
    /// `"schema"."table"`.
    pub pg_table: String,
    /// `` `database`.`table` ``.
    pub my_table: String,
    pub columns: Vec<PlannedColumn>,
    pub keying: Keying,
}

/// Keys `lo` (included) to `hi` (excluded), as canonical key texts; `None` is unbounded. When `keys`
/// is not empty, only those keys within.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub lo: Option<Vec<String>>,
    pub hi: Option<Vec<String>>,
    pub keys: Vec<Vec<String>>,
}

impl TablePlan {
    pub fn has_client_columns(&self) -> bool {
        self.columns.iter().any(|c| c.rendering.client.is_some())
    }

    pub fn table(&self, engine: Engine) -> &str {
        match engine {
            Engine::Pg => &self.pg_table,
            Engine::My => &self.my_table,
        }
    }

    fn text<'a>(&self, engine: Engine, rendering: &'a Rendering) -> &'a str {
        match engine {
            Engine::Pg => &rendering.pg,
            Engine::My => &rendering.my,
        }
    }

    fn field(&self, engine: Engine, rendering: &Rendering) -> String {
        let text = self.text(engine, rendering);
        match engine {
            Engine::Pg => pg_field(text),
            Engine::My => my_field(text),
        }
    }

    /// The hash of the fields computed in the database.
    fn row_hash(&self, engine: Engine) -> String {
        let fields: Vec<String> = self
            .columns
            .iter()
            .filter(|c| c.rendering.client.is_none())
            .map(|c| self.field(engine, &c.rendering))
            .collect();
        match engine {
            Engine::Pg => pg_hash(&fields),
            Engine::My => my_hash(&fields),
        }
    }

    /// The raw text of the columns canonicalised in Rust, in column order.
    fn client_texts(&self, engine: Engine) -> Vec<&str> {
        self.columns.iter().filter(|c| c.rendering.client.is_some()).map(|c| self.text(engine, &c.rendering)).collect()
    }

    fn key_columns(&self) -> &[KeyColumn] {
        match &self.keying {
            Keying::Ordered(keys) => keys,
            Keying::Multiset => &[],
        }
    }

    /// ` WHERE ...` for `range` (empty when unbounded) and its parameters.
    fn range_filter(&self, engine: Engine, range: &Range) -> (String, Vec<String>) {
        let mut params = Vec::new();
        let mut conditions = Vec::new();
        let columns = self.key_column_names(engine);
        for (bound, operator) in [(&range.lo, ">="), (&range.hi, "<")] {
            let Some(values) = bound else { continue };
            let placeholders = self.bounds(engine, values, &mut params);
            conditions.push(match columns.len() {
                1 => format!("{} {operator} {}", columns[0], placeholders[0]),
                _ => format!("({}) {operator} ({})", columns.join(", "), placeholders.join(", ")),
            });
        }
        if !range.keys.is_empty() {
            let tuples: Vec<String> = range
                .keys
                .iter()
                .map(|values| format!("({})", self.bounds(engine, values, &mut params).join(", ")))
                .collect();
            conditions.push(format!("({}) IN ({})", columns.join(", "), tuples.join(", ")));
        }
        match conditions.is_empty() {
            true => (String::new(), params),
            false => (format!(" WHERE {}", conditions.join(" AND ")), params),
        }
    }

    /// The key's values as parameters of `engine`, pushed onto `params`.
    fn bounds(&self, engine: Engine, values: &[String], params: &mut Vec<String>) -> Vec<String> {
        self.key_columns()
            .iter()
            .zip(values)
            .map(|(key, value)| {
                params.push(value.clone());
                match engine {
                    Engine::Pg => key.order.pg_bound.replace("{}", &format!("${}::text", params.len())),
                    Engine::My => key.order.my_bound.to_string(),
                }
            })
            .collect()
    }

    /// The key columns as `engine` orders them.
    fn key_column_names(&self, engine: Engine) -> Vec<&str> {
        self.key_columns()
            .iter()
            .map(|key| match engine {
                Engine::Pg => key.order.pg_column.as_str(),
                Engine::My => key.my_column.as_str(),
            })
            .collect()
    }

    fn order_by(&self, engine: Engine) -> String {
        self.key_column_names(engine).join(", ")
    }

    fn key_texts(&self, engine: Engine) -> Vec<&str> {
        self.key_columns().iter().map(|key| self.text(engine, &self.columns[key.column].rendering)).collect()
    }

    /// The checksum of `range`. Without client-side columns one aggregate row, `count` and `sum`;
    /// with them, one row per table row: the in-database hash, then the client-side raw texts.
    pub fn checksum(&self, engine: Engine, range: &Range) -> (String, Vec<String>) {
        let (filter, params) = self.range_filter(engine, range);
        let hash = self.row_hash(engine);
        let table = self.table(engine);
        let sql = if self.has_client_columns() {
            let mut select = vec![hash];
            select.extend(self.client_texts(engine).into_iter().map(str::to_string));
            format!("SELECT {} FROM {table}{filter}", select.join(", "))
        } else {
            match engine {
                Engine::Pg => format!("SELECT count(*)::text, sum({})::text FROM {table}{filter}", pg_slice(&hash)),
                Engine::My => format!("SELECT COUNT(*), SUM({}) FROM {table}{filter}", my_slice(&hash)),
            }
        };
        (sql, params)
    }

    /// The canonical key of the row at `offset` of `range` in key order: where to split it.
    pub fn split_key(&self, engine: Engine, range: &Range, offset: u64) -> (String, Vec<String>) {
        let (filter, params) = self.range_filter(engine, range);
        // Aliased: PostgreSQL would sort by an output column named like the key column, its text.
        let keys: Vec<String> =
            self.key_texts(engine).iter().enumerate().map(|(idx, text)| format!("{text} AS k{idx}")).collect();
        let sql = format!(
            "SELECT {} FROM {}{filter} ORDER BY {} LIMIT 1 OFFSET {offset}",
            keys.join(", "),
            self.table(engine),
            self.order_by(engine)
        );
        (sql, params)
    }

    /// The rows of a small range: the canonical key, then per column the hash of its field, or its
    /// raw text for a client-side column.
    pub fn leaf_rows(&self, engine: Engine, range: &Range) -> (String, Vec<String>) {
        let (filter, params) = self.range_filter(engine, range);
        let mut select: Vec<String> = self.key_texts(engine).into_iter().map(str::to_string).collect();
        for column in &self.columns {
            select.push(match (&column.rendering.client, engine) {
                (Some(_), _) => self.text(engine, &column.rendering).to_string(),
                (None, Engine::Pg) => pg_hash(&[self.field(engine, &column.rendering)]),
                (None, Engine::My) => my_hash(&[self.field(engine, &column.rendering)]),
            });
        }
        (format!("SELECT {} FROM {}{filter}", select.join(", "), self.table(engine)), params)
    }

    /// The canonical keys of the source's rows with these keys, each given as PostgreSQL's text of
    /// the `columns` (positions in [`TablePlan::columns`]) and cast to their `types`.
    pub fn canonical_keys(&self, columns: &[usize], types: &[String], raw: &[Vec<String>]) -> (String, Vec<String>) {
        let mut params = Vec::new();
        let tuples: Vec<String> = raw
            .iter()
            .map(|values| {
                let casts: Vec<String> = values
                    .iter()
                    .zip(types)
                    .map(|(value, type_name)| {
                        params.push(value.clone());
                        format!("${}::text::{type_name}", params.len())
                    })
                    .collect();
                format!("({})", casts.join(", "))
            })
            .collect();
        let names: Vec<String> =
            columns.iter().map(|&column| crate::canonical::pg_quote(&self.columns[column].name)).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE ({}) IN ({})",
            self.key_texts(Engine::Pg).join(", "),
            self.pg_table,
            names.join(", "),
            tuples.join(", ")
        );
        (sql, params)
    }

    /// Each distinct row hash and how many rows have it, in hash order (hex digits sort alike in
    /// both engines). Only for tables without client-side columns.
    pub fn hash_groups(&self, engine: Engine) -> String {
        let hash = self.row_hash(engine);
        let table = self.table(engine);
        match engine {
            Engine::Pg => format!(
                "SELECT h, count(*)::text FROM (SELECT {hash} AS h FROM {table}) x GROUP BY h ORDER BY h COLLATE \"C\""
            ),
            Engine::My => {
                format!("SELECT h, COUNT(*) FROM (SELECT {hash} AS h FROM {table}) x GROUP BY h ORDER BY h")
            }
        }
    }

    /// Every row as canonical text (client-side columns raw), to hash in Rust and show.
    pub fn all_rows(&self, engine: Engine) -> String {
        let select: Vec<&str> = self.columns.iter().map(|c| self.text(engine, &c.rendering)).collect();
        format!("SELECT {} FROM {}", select.join(", "), self.table(engine))
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;
    use crate::canonical::{key_order, pg_quote, render};
    use crate::target::LiveColumn;
    use passerelle_model::schema::{ColumnType, PgType, Schema};
    use passerelle_model::target::Conversion;

    /// What `ddl` decides for the types used here.
    fn conversion(column_type: &ColumnType) -> Conversion {
        match column_type.base {
            PgType::Numeric(_) => Conversion::Number,
            PgType::TimestampTz(_) => Conversion::DateTime,
            _ => Conversion::Text,
        }
    }

    fn column(name: &str, base: PgType, data_type: &str) -> (PlannedColumn, ColumnType, LiveColumn) {
        let column_type = ColumnType { base, array_dims: 0, display: String::new() };
        let target = LiveColumn {
            name: name.to_string(),
            data_type: data_type.to_string(),
            collation: Some("utf8mb4_nopad_bin".to_string()),
            extra: String::new(),
            comment: String::new(),
        };
        let conversion = conversion(&column_type);
        let rendering =
            render(&column_type, &conversion, &target, &Schema::default(), &pg_quote(name), &format!("`{name}`"));
        (PlannedColumn { name: name.to_string(), rendering }, column_type, target)
    }

    /// `flights(id bigint, code varchar primary key (id, code), fare numeric(10,2), departs timestamptz, extra jsonb)`,
    /// or only its first columns.
    fn flights(n_columns: usize) -> TablePlan {
        let all = [
            column("id", PgType::BigInt, "bigint"),
            column("code", PgType::Varchar(Some(8)), "varchar"),
            column("fare", PgType::Numeric(Some((10, 2))), "decimal"),
            column("departs", PgType::TimestampTz(None), "datetime"),
            column("extra", PgType::Jsonb, "longtext"),
        ];
        let keys = all[..2]
            .iter()
            .enumerate()
            .map(|(idx, (_, column_type, target))| KeyColumn {
                column: idx,
                order: key_order(column_type, target, &Schema::default(), &pg_quote(&target.name)).unwrap(),
                my_column: format!("`{}`", target.name),
            })
            .collect();
        TablePlan {
            pg_table: "\"bookings\".\"flights\"".into(),
            my_table: "`demo`.`flights`".into(),
            columns: all.into_iter().take(n_columns).map(|(planned, _, _)| planned).collect(),
            keying: Keying::Ordered(keys),
        }
    }

    fn check((sql, params): (String, Vec<String>), expected: Expect) {
        let mut sql = sql;
        for clause in [" FROM ", " WHERE ", " AND ", " ORDER BY "] {
            sql = sql.replace(clause, &format!("\n{}", clause.trim_start()));
        }
        expected.assert_eq(&format!("{sql}\n{params:?}"));
    }

    fn bounded() -> Range {
        Range { lo: Some(vec!["10".into(), "AB".into()]), hi: Some(vec!["20".into(), "A".into()]), keys: Vec::new() }
    }

    #[test]
    fn whole_table_checksum_is_one_aggregate_per_engine() {
        let plan = flights(4);
        check(
            plan.checksum(Engine::Pg, &Range::default()),
            expect![[r#"
                SELECT count(*)::text, sum(('x' || substr(encode(sha256(convert_to(coalesce(octet_length("id"::text)::text || ':' || "id"::text, '-') || coalesce(octet_length("code"::text)::text || ':' || "code"::text, '-') || coalesce(octet_length(trim_scale("fare"::numeric)::text)::text || ':' || trim_scale("fare"::numeric)::text, '-') || coalesce(octet_length(to_char("departs" at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'))::text || ':' || to_char("departs" at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '-'), 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint)::text
                FROM "bookings"."flights"
                []"#]],
        );
        check(
            plan.checksum(Engine::My, &Range::default()),
            expect![[r#"
                SELECT COUNT(*), SUM(CAST(CONV(SUBSTR(SHA2(CONCAT(COALESCE(CONCAT(LENGTH(CAST(CAST(`id` AS CHAR) AS BINARY)), ':', CAST(CAST(`id` AS CHAR) AS BINARY)), '-'), COALESCE(CONCAT(LENGTH(CAST(`code` AS BINARY)), ':', CAST(`code` AS BINARY)), '-'), COALESCE(CONCAT(LENGTH(CAST(IF(LOCATE('.', CAST(`fare` AS CHAR)) > 0, TRIM(TRAILING '.'
                FROM TRIM(TRAILING '0'
                FROM CAST(`fare` AS CHAR))), CAST(`fare` AS CHAR)) AS BINARY)), ':', CAST(IF(LOCATE('.', CAST(`fare` AS CHAR)) > 0, TRIM(TRAILING '.'
                FROM TRIM(TRAILING '0'
                FROM CAST(`fare` AS CHAR))), CAST(`fare` AS CHAR)) AS BINARY)), '-'), COALESCE(CONCAT(LENGTH(CAST(DATE_FORMAT(`departs`, '%Y-%m-%d %H:%i:%s.%f') AS BINARY)), ':', CAST(DATE_FORMAT(`departs`, '%Y-%m-%d %H:%i:%s.%f') AS BINARY)), '-')), 256), 1, 16), 16, 10) AS UNSIGNED))
                FROM `demo`.`flights`
                []"#]],
        );
    }

    #[test]
    fn json_columns_are_read_raw_next_to_the_in_database_hash() {
        let plan = flights(5);
        let (sql, _) = plan.checksum(Engine::Pg, &Range::default());
        assert!(sql.ends_with(", \"extra\"::text FROM \"bookings\".\"flights\""), "{sql}");
        let (sql, _) = plan.checksum(Engine::My, &Range::default());
        assert!(sql.ends_with(", `extra` FROM `demo`.`flights`"), "{sql}");
    }

    #[test]
    fn ranges_compare_key_tuples_in_a_shared_order() {
        let plan = flights(2);
        check(
            plan.split_key(Engine::Pg, &bounded(), 500),
            expect![[r#"
                SELECT "id"::text AS k0, "code"::text AS k1
                FROM "bookings"."flights"
                WHERE ("id", "code" COLLATE "C") >= ($1::text::bigint, $2::text)
                AND ("id", "code" COLLATE "C") < ($3::text::bigint, $4::text)
                ORDER BY "id", "code" COLLATE "C" LIMIT 1 OFFSET 500
                ["10", "AB", "20", "A"]"#]],
        );
        check(
            plan.split_key(Engine::My, &Range { lo: None, hi: bounded().hi, keys: Vec::new() }, 7),
            expect![[r#"
                SELECT CAST(`id` AS CHAR) AS k0, `code` AS k1
                FROM `demo`.`flights`
                WHERE (`id`, `code`) < (CAST(? AS SIGNED), ?)
                ORDER BY `id`, `code` LIMIT 1 OFFSET 7
                ["20", "A"]"#]],
        );
    }

    #[test]
    fn leaf_rows_carry_a_hash_per_column() {
        let plan = flights(3);
        check(
            plan.leaf_rows(Engine::My, &Range { lo: bounded().lo, hi: None, keys: Vec::new() }),
            expect![[r#"
                SELECT CAST(`id` AS CHAR), `code`, SHA2(CONCAT(COALESCE(CONCAT(LENGTH(CAST(CAST(`id` AS CHAR) AS BINARY)), ':', CAST(CAST(`id` AS CHAR) AS BINARY)), '-')), 256), SHA2(CONCAT(COALESCE(CONCAT(LENGTH(CAST(`code` AS BINARY)), ':', CAST(`code` AS BINARY)), '-')), 256), SHA2(CONCAT(COALESCE(CONCAT(LENGTH(CAST(IF(LOCATE('.', CAST(`fare` AS CHAR)) > 0, TRIM(TRAILING '.'
                FROM TRIM(TRAILING '0'
                FROM CAST(`fare` AS CHAR))), CAST(`fare` AS CHAR)) AS BINARY)), ':', CAST(IF(LOCATE('.', CAST(`fare` AS CHAR)) > 0, TRIM(TRAILING '.'
                FROM TRIM(TRAILING '0'
                FROM CAST(`fare` AS CHAR))), CAST(`fare` AS CHAR)) AS BINARY)), '-')), 256)
                FROM `demo`.`flights`
                WHERE (`id`, `code`) >= (CAST(? AS SIGNED), ?)
                ["10", "AB"]"#]],
        );
    }

    #[test]
    fn keyless_tables_group_by_row_hash() {
        let mut plan = flights(2);
        plan.keying = Keying::Multiset;
        expect![[r#"SELECT h, count(*)::text FROM (SELECT encode(sha256(convert_to(coalesce(octet_length("id"::text)::text || ':' || "id"::text, '-') || coalesce(octet_length("code"::text)::text || ':' || "code"::text, '-'), 'UTF8')), 'hex') AS h FROM "bookings"."flights") x GROUP BY h ORDER BY h COLLATE "C""#]]
            .assert_eq(&plan.hash_groups(Engine::Pg));
        expect!["SELECT h, COUNT(*) FROM (SELECT SHA2(CONCAT(COALESCE(CONCAT(LENGTH(CAST(CAST(`id` AS CHAR) AS BINARY)), ':', CAST(CAST(`id` AS CHAR) AS BINARY)), '-'), COALESCE(CONCAT(LENGTH(CAST(`code` AS BINARY)), ':', CAST(`code` AS BINARY)), '-')), 256) AS h FROM `demo`.`flights`) x GROUP BY h ORDER BY h"]
            .assert_eq(&plan.hash_groups(Engine::My));
    }
}
