//! Reads the selected schemas from `pg_catalog` into the [`Schema`] model.
//!
//! `information_schema` alone cannot say what a migration needs: typmods, identity, partitions,
//! index expressions and predicates, sequence ownership, deferrability. Everything is read in one
//! read-only repeatable-read transaction, so the objects agree with each other, and with an empty
//! `search_path`, so that every name in an expression or view definition prints schema-qualified
//! and the translator never has to guess which schema a name belongs to, and in UTC, so that
//! timestamptz constants in defaults and checks print as UTC like the target will hold them.
//!
//! Objects that belong to an extension (hstore's functions, for instance) are left out: the
//! extension itself is listed instead.

use std::collections::HashMap;
use std::fmt;

use passerelle_model::schema::{
    Aggregate, Check, Column, ColumnType, CompositeType, Deferrable, Domain, EnumType, Extension, FkAction, FkMatch,
    ForeignKey, Identity, Index, IndexKey, IndexTarget, Key, PgType, QualifiedName, ReplicaIdentity, Routine, Schema,
    Sequence, Table, TableKind, Trigger, TriggerFiring, TriggerFunction, View,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Transaction};

use crate::PgError;

/// Reads every object of `schemas`. A schema that does not exist is an error, not an empty result:
/// a typo in `--schema` must not plan an empty migration.
pub async fn read(client: &mut Client, endpoint: &impl fmt::Display, schemas: &[String]) -> Result<Schema, PgError> {
    let error = |context: &'static str| move |source| PgError::query(endpoint, context, source);
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(error("starting the catalog transaction"))?;
    tx.batch_execute("set local search_path = ''; set local timezone = 'UTC'")
        .await
        .map_err(error("setting search_path and timezone"))?;
    let reader = Reader { tx: &tx, endpoint, schemas };
    reader.check_schemas().await?;
    let types = reader.types().await?;
    let schema = Schema {
        tables: reader.tables(&types).await?,
        sequences: reader.sequences().await?,
        enums: reader.enums().await?,
        domains: reader.domains(&types).await?,
        composites: reader.composites(&types).await?,
        views: reader.views().await?,
        routines: reader.routines().await?,
        triggers: reader.triggers().await?,
        extensions: reader.extensions().await?,
        left_out: Vec::new(),
        left_out_columns: Vec::new(),
    };
    tx.commit().await.map_err(error("ending the catalog transaction"))?;
    Ok(schema)
}

/// Whether the rows a table had when `column` was added hold in it what the column's default (or
/// NULL, without one) gives: then a target that adds the column with the same default holds the same.
/// PostgreSQL keeps the value an `ADD COLUMN` gave existing rows (`attmissingval`) without writing
/// them, so no change carries it; a volatile default rewrote the table instead, and neither is known.
pub async fn backfill_is_default(
    client: &Client,
    endpoint: &impl fmt::Display,
    table: &QualifiedName,
    column: &str,
) -> Result<bool, PgError> {
    let error = |context: &'static str| move |source| PgError::query(endpoint, context, source);
    let row = client
        .query_one(
            "select a.atthasmissing, pg_get_expr(d.adbin, d.adrelid), format_type(a.atttypid, a.atttypmod)
               from pg_attribute a
               join pg_class c on c.oid = a.attrelid
               join pg_namespace n on n.oid = c.relnamespace
               left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
              where n.nspname = $1 and c.relname = $2 and a.attname = $3 and not a.attisdropped",
            &[&table.schema, &table.name, &column],
        )
        .await
        .map_err(error("reading an added column"))?;
    let (has_missing, default, type_name): (bool, Option<String>, String) = (row.get(0), row.get(1), row.get(2));
    let default = match (has_missing, default) {
        // No default and no value kept for existing rows: they hold NULL.
        (false, None) => return Ok(true),
        (true, Some(default)) => default,
        // A table rewritten by a volatile default, or a default set or dropped since.
        _ => return Ok(false),
    };
    // A default kept as the existing rows' value is not volatile: evaluating it has no side effect.
    let same = client
        .query_one(
            &format!(
                "select ({default})::text is not distinct from (
                   select (a.attmissingval::text::{type_name}[])[1]::text
                     from pg_attribute a
                     join pg_class c on c.oid = a.attrelid
                     join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = $1 and c.relname = $2 and a.attname = $3)"
            ),
            &[&table.schema, &table.name, &column],
        )
        .await
        .map_err(error("comparing an added column's default with its existing rows' value"))?;
    Ok(same.get(0))
}

/// One row of `pg_type`: enough to resolve a type oid and typmod into a [`PgType`].
struct TypeRow {
    schema: String,
    name: String,
    /// `typtype`: b(ase), c(omposite), d(omain), e(num), p(seudo), r(ange), m(ultirange).
    kind: String,
    /// The element type of an array type.
    element: Option<u32>,
}

type Types = HashMap<u32, TypeRow>;

/// Resolves a column's type oid and typmod. Arrays resolve to their element type with at least
/// one dimension, whatever `attndims` says (PostgreSQL does not keep it reliably).
fn column_type(types: &Types, oid: u32, typmod: i32, declared_dims: i32, display: String) -> ColumnType {
    let (base_oid, array_dims) = match types.get(&oid).and_then(|row| row.element) {
        Some(element) => (element, declared_dims.max(1).unsigned_abs()),
        None => (oid, 0),
    };
    let base = match types.get(&base_oid) {
        Some(row) => resolve(&row.schema, &row.name, &row.kind, typmod),
        None => PgType::Other(QualifiedName { schema: String::new(), name: display.clone() }),
    };
    ColumnType { base, array_dims, display }
}

/// Decodes PostgreSQL's typmod encodings (see `numeric.c`, `varchar.c`, `timestamp.c`, `varbit.c`):
/// -1 means "none declared".
fn resolve(schema: &str, name: &str, kind: &str, typmod: i32) -> PgType {
    let length = (typmod >= 4).then(|| (typmod - 4).unsigned_abs());
    let precision = (typmod >= 0).then_some(typmod.unsigned_abs());
    let qualified = || QualifiedName { schema: schema.to_string(), name: name.to_string() };
    match kind {
        "e" => return PgType::Enum(qualified()),
        "d" => return PgType::Domain(qualified()),
        "c" => return PgType::Composite(qualified()),
        "r" => return PgType::Range { name: name.to_string(), multi: false },
        "m" => return PgType::Range { name: name.to_string(), multi: true },
        _ => {}
    }
    if schema != "pg_catalog" {
        return match name {
            "hstore" => PgType::Hstore,
            "citext" => PgType::Citext,
            _ => PgType::Other(qualified()),
        };
    }
    match name {
        "int2" => PgType::SmallInt,
        "int4" => PgType::Integer,
        "int8" => PgType::BigInt,
        "numeric" => PgType::Numeric((typmod >= 4).then(|| {
            let packed = typmod - 4;
            // The scale is an 11-bit signed field since PostgreSQL 15 (negative scales round left of the point).
            let scale = ((packed & 0x7ff) ^ 0x400) - 0x400;
            (((packed >> 16) & 0xffff).unsigned_abs(), scale)
        })),
        "float4" => PgType::Real,
        "float8" => PgType::Double,
        "money" => PgType::Money,
        "bool" => PgType::Boolean,
        "bpchar" => PgType::Char(length),
        "varchar" => PgType::Varchar(length),
        "text" => PgType::Text,
        "name" => PgType::Name,
        "char" => PgType::InternalChar,
        "bytea" => PgType::Bytea,
        "date" => PgType::Date,
        "time" => PgType::Time(precision),
        "timetz" => PgType::TimeTz(precision),
        "timestamp" => PgType::Timestamp(precision),
        "timestamptz" => PgType::TimestampTz(precision),
        // The low 16 bits hold the precision, 0xffff when only fields (`interval year`) were declared.
        "interval" => PgType::Interval(precision.map(|p| p & 0xffff).filter(|p| *p != 0xffff)),
        "uuid" => PgType::Uuid,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        "xml" => PgType::Xml,
        "inet" => PgType::Inet,
        "cidr" => PgType::Cidr,
        "macaddr" => PgType::MacAddr,
        "macaddr8" => PgType::MacAddr8,
        "bit" => PgType::Bit(precision),
        "varbit" => PgType::VarBit(precision),
        "point" => PgType::Point,
        "line" => PgType::Line,
        "lseg" => PgType::Lseg,
        "box" => PgType::Box,
        "path" => PgType::Path,
        "polygon" => PgType::Polygon,
        "circle" => PgType::Circle,
        "tsvector" => PgType::TsVector,
        "tsquery" => PgType::TsQuery,
        "oid" | "regclass" | "regtype" | "regproc" | "regprocedure" | "regoper" | "regoperator" | "regconfig"
        | "regdictionary" | "regnamespace" | "regrole" | "regcollation" => PgType::Oid(name.to_string()),
        "xid" | "xid8" | "cid" | "tid" | "pg_lsn" => PgType::SystemId(name.to_string()),
        _ => PgType::Other(qualified()),
    }
}

fn deferrable(deferrable: bool, deferred: bool) -> Deferrable {
    match (deferrable, deferred) {
        (false, _) => Deferrable::No,
        (true, false) => Deferrable::InitiallyImmediate,
        (true, true) => Deferrable::InitiallyDeferred,
    }
}

/// `pg_constraint.confdeltype` / `confupdtype`.
fn fk_action(code: &str) -> FkAction {
    match code {
        "r" => FkAction::Restrict,
        "c" => FkAction::Cascade,
        "n" => FkAction::SetNull,
        "d" => FkAction::SetDefault,
        _ => FkAction::NoAction,
    }
}

fn qualified(row: &Row, schema: usize, name: usize) -> QualifiedName {
    QualifiedName { schema: row.get(schema), name: row.get(name) }
}

/// Excludes objects that an extension created: `X` is the catalog row's alias.
const NOT_FROM_EXTENSION: &str = "not exists (select from pg_depend e where e.objid = X.oid and e.deptype = 'e')";

struct Reader<'a, E> {
    tx: &'a Transaction<'a>,
    endpoint: &'a E,
    schemas: &'a [String],
}

impl<E: fmt::Display> Reader<'_, E> {
    async fn query(
        &self,
        context: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        self.tx.query(sql, params).await.map_err(|source| PgError::query(self.endpoint, context, source))
    }

    /// Runs `sql` with the schema list as `$1`.
    async fn in_schemas(&self, context: &'static str, sql: &str) -> Result<Vec<Row>, PgError> {
        self.query(context, sql, &[&self.schemas]).await
    }

    async fn check_schemas(&self) -> Result<(), PgError> {
        let rows = self
            .in_schemas(
                "looking up the schemas",
                "select s from unnest($1::text[]) s where not exists (select from pg_namespace where nspname = s)",
            )
            .await?;
        match rows.first() {
            Some(row) => Err(PgError::NoSchema { endpoint: self.endpoint.to_string(), schema: row.get(0) }),
            None => Ok(()),
        }
    }

    async fn types(&self) -> Result<Types, PgError> {
        let rows = self
            .query(
                "reading pg_type",
                "select t.oid, n.nspname::text, t.typname::text, t.typtype::text,
                        case when t.typcategory = 'A' and t.typelem <> 0 then t.typelem end
                 from pg_type t join pg_namespace n on n.oid = t.typnamespace",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                (row.get(0), TypeRow { schema: row.get(1), name: row.get(2), kind: row.get(3), element: row.get(4) })
            })
            .collect())
    }

    async fn tables(&self, types: &Types) -> Result<Vec<Table>, PgError> {
        let rows = self
            .in_schemas(
                "listing tables",
                &format!(
                    "select X.oid, n.nspname::text, X.relname::text, X.relkind = 'p', X.relpersistence = 'u',
                            obj_description(X.oid, 'pg_class'),
                            case when X.relkind = 'p' then pg_get_partkeydef(X.oid) end,
                            pn.nspname::text, pc.relname::text, pg_get_expr(X.relpartbound, X.oid),
                            X.relreplident::text, ri.relname::text,
                            array(select a.attname::text
                                  from unnest(r.indkey::int2[]) with ordinality k(num, ord)
                                  join pg_attribute a on a.attrelid = r.indrelid and a.attnum = k.num
                                  where k.ord <= r.indnkeyatts order by k.ord)
                     from pg_class X join pg_namespace n on n.oid = X.relnamespace
                     left join pg_index r on r.indrelid = X.oid and r.indisreplident
                     left join pg_class ri on ri.oid = r.indexrelid
                     left join pg_inherits i on X.relispartition and i.inhrelid = X.oid
                     left join pg_class pc on pc.oid = i.inhparent
                     left join pg_namespace pn on pn.oid = pc.relnamespace
                     where X.relkind in ('r', 'p') and n.nspname = any($1) and {NOT_FROM_EXTENSION}
                     order by n.nspname, X.relname"
                ),
            )
            .await?;
        let mut tables = Vec::with_capacity(rows.len());
        let mut oids = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind = if let Some(key) = row.get::<_, Option<String>>(6) {
                let (strategy, key) = key.split_once(' ').unwrap_or((&key, ""));
                TableKind::Partitioned { strategy: strategy.to_lowercase(), key: key.to_string() }
            } else if let Some(parent_name) = row.get::<_, Option<String>>(8) {
                TableKind::Partition {
                    parent: QualifiedName { schema: row.get(7), name: parent_name },
                    bound: row.get::<_, Option<String>>(9).unwrap_or_default(),
                }
            } else {
                TableKind::Ordinary
            };
            let replica_identity = match (row.get::<_, String>(10).as_str(), row.get::<_, Option<String>>(11)) {
                ("f", _) => ReplicaIdentity::Full,
                ("i", Some(name)) => ReplicaIdentity::Index { name, columns: row.get(12) },
                ("n", _) => ReplicaIdentity::Nothing,
                // 'd', or an index identity whose index is gone, which PostgreSQL treats as nothing.
                ("i", None) => ReplicaIdentity::Nothing,
                _ => ReplicaIdentity::Default,
            };
            oids.push(row.get::<_, u32>(0));
            tables.push(Table {
                name: qualified(row, 1, 2),
                kind,
                unlogged: row.get(4),
                columns: Vec::new(),
                primary_key: None,
                uniques: Vec::new(),
                foreign_keys: Vec::new(),
                checks: Vec::new(),
                indexes: Vec::new(),
                comment: row.get(5),
                replica_identity,
            });
        }
        let position: HashMap<u32, usize> = oids.iter().enumerate().map(|(idx, oid)| (*oid, idx)).collect();
        for (oid, column) in self.columns(&oids, types).await? {
            tables[position[&oid]].columns.push(column);
        }
        self.constraints(&oids, &position, &mut tables).await?;
        for (oid, index) in self.indexes(&oids, types).await? {
            tables[position[&oid]].indexes.push(index);
        }
        Ok(tables)
    }

    async fn columns(&self, oids: &[u32], types: &Types) -> Result<Vec<(u32, Column)>, PgError> {
        let rows = self
            .query(
                "reading columns",
                "select a.attrelid, a.attname::text, a.attnotnull, a.attidentity::text, a.attgenerated::text,
                        pg_get_expr(d.adbin, d.adrelid), a.atttypid, a.atttypmod, a.attndims,
                        format_type(a.atttypid, a.atttypmod),
                        case when a.attcollation <> t.typcollation then co.collname::text end,
                        col_description(a.attrelid, a.attnum)
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                 left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
                 left join pg_collation co on co.oid = a.attcollation
                 where a.attrelid = any($1) and a.attnum > 0 and not a.attisdropped
                 order by a.attrelid, a.attnum",
                &[&oids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let expression: Option<String> = row.get(5);
                let generated = row.get::<_, String>(4) == "s";
                let column = Column {
                    name: row.get(1),
                    data_type: column_type(types, row.get(6), row.get(7), row.get(8), row.get(9)),
                    not_null: row.get(2),
                    default: if generated { None } else { expression.clone() },
                    identity: match row.get::<_, String>(3).as_str() {
                        "a" => Some(Identity::Always),
                        "d" => Some(Identity::ByDefault),
                        _ => None,
                    },
                    generated: if generated { expression } else { None },
                    collation: row.get(10),
                    comment: row.get(11),
                };
                (row.get(0), column)
            })
            .collect())
    }

    /// Constraints declared on the table itself: a foreign key that references a partitioned table
    /// also has one clone per partition (`conparentid` set), which the target's single table does not need.
    async fn constraints(
        &self,
        oids: &[u32],
        position: &HashMap<u32, usize>,
        tables: &mut [Table],
    ) -> Result<(), PgError> {
        let rows = self
            .query(
                "reading constraints",
                "select c.conrelid, c.conname::text, c.contype::text, c.condeferrable, c.condeferred, c.convalidated,
                        array(select a.attname::text from unnest(c.conkey) with ordinality k(num, ord)
                              join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.num order by k.ord),
                        fn.nspname::text, fc.relname::text,
                        array(select a.attname::text from unnest(c.confkey) with ordinality k(num, ord)
                              join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.num order by k.ord),
                        c.confdeltype::text, c.confupdtype::text, c.confmatchtype::text,
                        pg_get_expr(c.conbin, c.conrelid),
                        coalesce((select (to_jsonb(i) ->> 'indnullsnotdistinct')::bool
                                  from pg_index i where i.indexrelid = c.conindid), false)
                 from pg_constraint c
                 left join pg_class fc on fc.oid = c.confrelid
                 left join pg_namespace fn on fn.oid = fc.relnamespace
                 where c.conrelid = any($1) and c.contype in ('p', 'u', 'f', 'c') and c.conparentid = 0
                 order by c.conrelid, c.conname",
                &[&oids],
            )
            .await?;
        for row in &rows {
            let table = &mut tables[position[&row.get::<_, u32>(0)]];
            let name: String = row.get(1);
            let deferrable = deferrable(row.get(3), row.get(4));
            let columns: Vec<String> = row.get(6);
            match row.get::<_, String>(2).as_str() {
                "p" | "u" => {
                    let key = Key { name, columns, deferrable, nulls_not_distinct: row.get(14) };
                    if row.get::<_, String>(2) == "p" {
                        table.primary_key = Some(key);
                    } else {
                        table.uniques.push(key);
                    }
                }
                "f" => table.foreign_keys.push(ForeignKey {
                    name,
                    columns,
                    referenced_table: qualified(row, 7, 8),
                    referenced_columns: row.get(9),
                    on_delete: fk_action(&row.get::<_, String>(10)),
                    on_update: fk_action(&row.get::<_, String>(11)),
                    match_type: match row.get::<_, String>(12).as_str() {
                        "f" => FkMatch::Full,
                        "p" => FkMatch::Partial,
                        _ => FkMatch::Simple,
                    },
                    deferrable,
                    validated: row.get(5),
                }),
                _ => table.checks.push(Check {
                    name,
                    expression: row.get::<_, Option<String>>(13).unwrap_or_default(),
                    validated: row.get(5),
                }),
            }
        }
        Ok(())
    }

    /// Indexes that no primary key, unique or exclusion constraint owns: those are the constraints'.
    async fn indexes(&self, oids: &[u32], types: &Types) -> Result<Vec<(u32, Index)>, PgError> {
        let rows = self
            .query(
                "reading indexes",
                "select i.indrelid, i.indexrelid, ic.relname::text, i.indisunique, am.amname::text,
                        pg_get_indexdef(i.indexrelid), pg_get_expr(i.indpred, i.indrelid)
                 from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
                 where i.indrelid = any($1)
                   and not exists (select from pg_constraint c where c.conindid = i.indexrelid
                                   and c.conrelid = i.indrelid and c.contype in ('p', 'u', 'x'))
                 order by i.indrelid, ic.relname",
                &[&oids],
            )
            .await?;
        let index_oids: Vec<u32> = rows.iter().map(|row| row.get(1)).collect();
        let key_rows = self
            .query(
                "reading index keys",
                "select i.indexrelid, ta.attname::text, pg_get_indexdef(i.indexrelid, k.ord::int, true),
                        (i.indoption::int2[])[k.ord - 1] & 1 = 1,
                        ia.atttypid, ia.atttypmod, format_type(ia.atttypid, ia.atttypmod)
                 from pg_index i cross join generate_series(1, i.indnkeyatts) k(ord)
                 join pg_attribute ia on ia.attrelid = i.indexrelid and ia.attnum = k.ord
                 left join pg_attribute ta on ta.attrelid = i.indrelid and ta.attnum = (i.indkey::int2[])[k.ord - 1]
                 where i.indexrelid = any($1)
                 order by i.indexrelid, k.ord",
                &[&index_oids],
            )
            .await?;
        let mut keys: HashMap<u32, Vec<IndexKey>> = HashMap::new();
        for row in &key_rows {
            let target = match row.get::<_, Option<String>>(1) {
                Some(column) => IndexTarget::Column(column),
                None => IndexTarget::Expression(row.get(2)),
            };
            keys.entry(row.get(0)).or_default().push(IndexKey {
                target,
                data_type: column_type(types, row.get(4), row.get(5), 0, row.get(6)),
                descending: row.get(3),
            });
        }
        Ok(rows
            .iter()
            .map(|row| {
                let index = Index {
                    name: row.get(2),
                    unique: row.get(3),
                    method: row.get(4),
                    keys: keys.remove(&row.get::<_, u32>(1)).unwrap_or_default(),
                    predicate: row.get(6),
                    definition: row.get(5),
                };
                (row.get(0), index)
            })
            .collect())
    }

    async fn sequences(&self) -> Result<Vec<Sequence>, PgError> {
        let rows = self
            .in_schemas(
                "reading sequences",
                &format!(
                    "select n.nspname::text, X.relname::text, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                            s.seqcycle, ps.last_value, tn.nspname::text, tc.relname::text, ta.attname::text
                     from pg_sequence s join pg_class X on X.oid = s.seqrelid
                     join pg_namespace n on n.oid = X.relnamespace
                     left join pg_sequences ps on ps.schemaname = n.nspname and ps.sequencename = X.relname
                     left join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = X.oid
                          and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i') and d.refobjsubid > 0
                     left join pg_class tc on tc.oid = d.refobjid
                     left join pg_namespace tn on tn.oid = tc.relnamespace
                     left join pg_attribute ta on ta.attrelid = d.refobjid and ta.attnum = d.refobjsubid
                     where n.nspname = any($1) and {NOT_FROM_EXTENSION}
                     order by 1, 2"
                ),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| Sequence {
                name: qualified(row, 0, 1),
                owned_by: row.get::<_, Option<String>>(10).map(|column| (qualified(row, 8, 9), column)),
                start: row.get(2),
                increment: row.get(3),
                min: row.get(4),
                max: row.get(5),
                cycle: row.get(6),
                last_value: row.get(7),
            })
            .collect())
    }

    async fn enums(&self) -> Result<Vec<EnumType>, PgError> {
        let rows = self
            .in_schemas(
                "reading enums",
                &format!(
                    "select n.nspname::text, X.typname::text,
                            array(select e.enumlabel::text from pg_enum e where e.enumtypid = X.oid
                                  order by e.enumsortorder)
                     from pg_type X join pg_namespace n on n.oid = X.typnamespace
                     where X.typtype = 'e' and n.nspname = any($1) and {NOT_FROM_EXTENSION}
                     order by 1, 2"
                ),
            )
            .await?;
        Ok(rows.iter().map(|row| EnumType { name: qualified(row, 0, 1), labels: row.get(2) }).collect())
    }

    async fn domains(&self, types: &Types) -> Result<Vec<Domain>, PgError> {
        let rows = self
            .in_schemas(
                "reading domains",
                &format!(
                    "select n.nspname::text, X.typname::text, X.typbasetype, X.typtypmod, X.typndims,
                            format_type(X.typbasetype, X.typtypmod), X.typnotnull, X.typdefault,
                            array(select c.conname::text from pg_constraint c where c.contypid = X.oid
                                  and c.contype = 'c' order by c.conname),
                            array(select pg_get_expr(c.conbin, 0) from pg_constraint c where c.contypid = X.oid
                                  and c.contype = 'c' order by c.conname)
                     from pg_type X join pg_namespace n on n.oid = X.typnamespace
                     where X.typtype = 'd' and n.nspname = any($1) and {NOT_FROM_EXTENSION}
                     order by 1, 2"
                ),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let names: Vec<String> = row.get(8);
                let expressions: Vec<String> = row.get(9);
                Domain {
                    name: qualified(row, 0, 1),
                    base: column_type(types, row.get(2), row.get(3), row.get(4), row.get(5)),
                    not_null: row.get(6),
                    default: row.get(7),
                    checks: names
                        .into_iter()
                        .zip(expressions)
                        .map(|(name, expression)| Check { name, expression, validated: true })
                        .collect(),
                }
            })
            .collect())
    }

    async fn composites(&self, types: &Types) -> Result<Vec<CompositeType>, PgError> {
        let rows = self
            .in_schemas(
                "reading composite types",
                &format!(
                    "select n.nspname::text, X.typname::text, a.attname::text, a.atttypid, a.atttypmod,
                            a.attndims, format_type(a.atttypid, a.atttypmod)
                     from pg_type X join pg_namespace n on n.oid = X.typnamespace
                     join pg_class c on c.oid = X.typrelid and c.relkind = 'c'
                     join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                     where X.typtype = 'c' and n.nspname = any($1) and {NOT_FROM_EXTENSION}
                     order by 1, 2, a.attnum"
                ),
            )
            .await?;
        let mut composites: Vec<CompositeType> = Vec::new();
        for row in &rows {
            let name = qualified(row, 0, 1);
            let field = (row.get(2), column_type(types, row.get(3), row.get(4), row.get(5), row.get(6)));
            match composites.last_mut() {
                Some(last) if last.name == name => last.fields.push(field),
                _ => composites.push(CompositeType { name, fields: vec![field] }),
            }
        }
        Ok(composites)
    }

    async fn views(&self) -> Result<Vec<View>, PgError> {
        let rows = self
            .in_schemas(
                "reading views",
                &format!(
                    "select n.nspname::text, X.relname::text, X.relkind = 'm', pg_get_viewdef(X.oid, false),
                            obj_description(X.oid, 'pg_class')
                     from pg_class X join pg_namespace n on n.oid = X.relnamespace
                     where X.relkind in ('v', 'm') and n.nspname = any($1) and {NOT_FROM_EXTENSION}
                     order by 1, 2"
                ),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| View {
                name: qualified(row, 0, 1),
                materialized: row.get(2),
                definition: row.get::<_, String>(3).trim().trim_end_matches(';').to_string(),
                comment: row.get(4),
            })
            .collect())
    }

    async fn routines(&self) -> Result<Vec<Routine>, PgError> {
        let rows = self
            .in_schemas(
                "reading functions",
                &format!(
                    "select n.nspname::text, X.proname::text,
                            case X.prokind when 'p' then 'procedure' when 'a' then 'aggregate'
                                           when 'w' then 'window' else 'function' end,
                            pg_get_function_identity_arguments(X.oid), l.lanname::text,
                            case when l.lanname = 'sql' then X.prosrc end,
                            tn.nspname::text, t.proname::text,
                            case when a.aggfinalfn <> 0 then a.aggfinalfn::regproc::text end, a.agginitval
                     from pg_proc X join pg_namespace n on n.oid = X.pronamespace
                     join pg_language l on l.oid = X.prolang
                     left join pg_aggregate a on a.aggfnoid = X.oid
                     left join pg_proc t on t.oid = a.aggtransfn
                     left join pg_namespace tn on tn.oid = t.pronamespace
                     where n.nspname = any($1) and {NOT_FROM_EXTENSION}
                     order by 1, 2, 4"
                ),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| Routine {
                name: qualified(row, 0, 1),
                kind: row.get(2),
                arguments: row.get(3),
                language: row.get(4),
                body: row.get(5),
                aggregate: row.get::<_, Option<String>>(7).map(|_| Aggregate {
                    transition: qualified(row, 6, 7),
                    final_function: row.get(8),
                    initial: row.get(9),
                }),
            })
            .collect())
    }

    async fn triggers(&self) -> Result<Vec<Trigger>, PgError> {
        let rows = self
            .in_schemas(
                "reading triggers",
                "select t.tgname::text, n.nspname::text, c.relname::text, pg_get_triggerdef(t.oid), t.tgtype::int,
                        array(select a.attname::text from pg_attribute a
                              where a.attrelid = t.tgrelid and a.attnum = any(t.tgattr::int2[]) order by a.attnum),
                        t.tgqual is not null, t.tgnargs::int, pn.nspname::text, p.proname::text, l.lanname::text,
                        p.prosrc
                 from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
                 join pg_proc p on p.oid = t.tgfoid join pg_namespace pn on pn.oid = p.pronamespace
                 join pg_language l on l.oid = p.prolang
                 where not t.tgisinternal and n.nspname = any($1)
                   and coalesce((to_jsonb(t) ->> 'tgparentid')::oid, 0) = 0
                 order by 2, 3, 1",
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                // pg_trigger.h: TRIGGER_TYPE_ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32.
                let tgtype: i32 = row.get(4);
                let events = [(4, "INSERT"), (16, "UPDATE"), (8, "DELETE"), (32, "TRUNCATE")]
                    .into_iter()
                    .filter(|(bit, _)| tgtype & bit != 0)
                    .map(|(_, event)| event.to_string())
                    .collect();
                Trigger {
                    name: row.get(0),
                    table: qualified(row, 1, 2),
                    definition: row.get(3),
                    firing: Some(TriggerFiring {
                        before: tgtype & 2 != 0,
                        for_each_row: tgtype & 1 != 0,
                        events,
                        update_of: row.get(5),
                        has_when: row.get(6),
                        n_arguments: row.get::<_, i32>(7).unsigned_abs(),
                    }),
                    function: Some(TriggerFunction {
                        name: qualified(row, 8, 9),
                        language: row.get(10),
                        body: row.get(11),
                    }),
                }
            })
            .collect())
    }

    /// Every extension but plpgsql, which every database has and which creates no data type.
    async fn extensions(&self) -> Result<Vec<Extension>, PgError> {
        let rows = self
            .query(
                "reading extensions",
                "select e.extname::text, e.extversion, n.nspname::text
                 from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                 where e.extname <> 'plpgsql' order by 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| Extension { name: row.get(0), version: row.get(1), schema: row.get(2) }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typmods_decode() {
        assert_eq!(resolve("pg_catalog", "numeric", "b", (10 << 16 | 2) + 4), PgType::Numeric(Some((10, 2))));
        assert_eq!(resolve("pg_catalog", "numeric", "b", (5 << 16 | 0x7fe) + 4), PgType::Numeric(Some((5, -2))));
        assert_eq!(resolve("pg_catalog", "numeric", "b", -1), PgType::Numeric(None));
        assert_eq!(resolve("pg_catalog", "varchar", "b", 24), PgType::Varchar(Some(20)));
        assert_eq!(resolve("pg_catalog", "bpchar", "b", -1), PgType::Char(None));
        assert_eq!(resolve("pg_catalog", "timestamptz", "b", 3), PgType::TimestampTz(Some(3)));
        assert_eq!(resolve("pg_catalog", "interval", "b", 0x7fff_ffff & !0xffff | 2), PgType::Interval(Some(2)));
        assert_eq!(resolve("pg_catalog", "interval", "b", 0x0004_ffff), PgType::Interval(None));
        assert_eq!(resolve("public", "citext", "b", -1), PgType::Citext);
        assert_eq!(resolve("public", "int4range", "r", -1), PgType::Range { name: "int4range".into(), multi: false });
    }
}
