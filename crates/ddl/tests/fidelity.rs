//! The patterns of schemas people really write (issue 16): sequences that feed a default without
//! being `OWNED BY` it, timestamp-maintenance triggers, and the triggers that stay reported.

use passerelle_model::schema::{
    Aggregate, Column, PgType, Routine, Schema, Sequence, Trigger, TriggerFiring, TriggerFunction, View,
};

use super::{check_golden, config, int, key, name, table, ty, varchar};

const SCHEMA: &str = "store";

fn serial(column_name: &str, data_type: passerelle_model::schema::ColumnType, sequence: &str) -> Column {
    let mut column = super::column(column_name, data_type, true);
    column.default = Some(format!("nextval('{SCHEMA}.{sequence}'::regclass)"));
    column.comment = None;
    column
}

fn last_update(precision: Option<u32>) -> Column {
    let display = match precision {
        Some(p) => format!("timestamp({p}) without time zone"),
        None => "timestamp without time zone".into(),
    };
    let mut column = super::column("last_update", ty(PgType::Timestamp(precision), &display), true);
    column.default = Some("now()".into());
    column.comment = None;
    column
}

fn sequence(sequence_name: &str, last_value: i64) -> Sequence {
    Sequence {
        name: name(SCHEMA, sequence_name),
        owned_by: None,
        start: 1,
        increment: 1,
        min: 1,
        max: i64::from(i32::MAX),
        cycle: false,
        last_value: Some(last_value),
    }
}

fn trigger(table: &str, trigger_name: &str, timing: &str, events: &[&str], function: &str, body: &str) -> Trigger {
    Trigger {
        name: trigger_name.into(),
        table: name(SCHEMA, table),
        definition: format!(
            "CREATE TRIGGER {trigger_name} {timing} {} ON {SCHEMA}.{table} FOR EACH ROW EXECUTE FUNCTION \
             {SCHEMA}.{function}()",
            events.join(" OR ")
        ),
        firing: Some(TriggerFiring {
            before: timing == "BEFORE",
            for_each_row: true,
            events: events.iter().map(|e| e.to_string()).collect(),
            update_of: Vec::new(),
            has_when: false,
            n_arguments: 0,
        }),
        function: Some(TriggerFunction { name: name(SCHEMA, function), language: "plpgsql".into(), body: body.into() }),
    }
}

const LAST_UPDATED: &str = "\nBEGIN\n    NEW.last_update = CURRENT_TIMESTAMP;\n    RETURN NEW;\nEND ";
const STAMP: &str = "\nbegin\n  -- both stamps\n  new.last_update := now();\n  new.checked := clock_timestamp();\n  return new;\nend;\n";
const TITLE_CASE: &str = "\nBEGIN\n    NEW.title := initcap(NEW.title);\n    RETURN NEW;\nEND\n";
const CHECKS: &str = "\nBEGIN\n    IF NEW.title = '' THEN\n        RAISE EXCEPTION 'a film needs a title';\n    END IF;\n    NEW.title := \
                      btrim(NEW.title);\n    NEW.note := lower(NEW.title) || ' (was ' || coalesce(OLD.title, '?') || ')';\n    \
                      RETURN NEW;\nEND\n";
const AUDIT: &str = "\nBEGIN\n    INSERT INTO store.audit VALUES (TG_OP, now());\n    RETURN NULL;\nEND\n";

/// Ten serial-by-default columns without `OWNED BY` would read alike: three, one of them shared.
pub(crate) fn fidelity() -> Schema {
    let text = || ty(PgType::Text, "text");
    let category = table(
        "category",
        vec![
            serial("category_id", int(), "category_category_id_seq"),
            super::column("name", varchar(25), true),
            last_update(None),
        ],
        key("category_pkey", &["category_id"]),
    );
    let mut checked = super::column("checked", ty(PgType::TimestampTz(Some(3)), "timestamp(3) with time zone"), true);
    checked.default = Some("now()".into());
    let film = table(
        "film",
        vec![
            serial("film_id", int(), "film_film_id_seq"),
            super::column("title", text(), true),
            last_update(Some(3)),
            checked,
            super::column("note", text(), false),
        ],
        key("film_pkey", &["film_id"]),
    );
    let payment = table(
        "payment",
        vec![serial("payment_id", ty(PgType::BigInt, "bigint"), "shared_ids"), last_update(None)],
        key("payment_pkey", &["payment_id"]),
    );
    let refund = table(
        "refund",
        vec![serial("refund_id", ty(PgType::BigInt, "bigint"), "shared_ids"), super::column("note", text(), false)],
        key("refund_pkey", &["refund_id"]),
    );
    let mut tables = vec![category, film, payment, refund];
    for table in &mut tables {
        table.name = name(SCHEMA, &table.name.name);
        table.comment = None;
    }
    let routine = |function: &str| Routine {
        name: name(SCHEMA, function),
        kind: "function".into(),
        arguments: String::new(),
        language: "plpgsql".into(),
        body: None,
        aggregate: None,
    };
    let view = |view_name: &str, definition: &str| View {
        name: name(SCHEMA, view_name),
        materialized: false,
        definition: definition.into(),
        comment: None,
    };
    Schema {
        tables,
        sequences: vec![
            sequence("category_category_id_seq", 16),
            sequence("film_film_id_seq", 1000),
            sequence("shared_ids", 50),
        ],
        routines: vec![
            routine("audit"),
            routine("checks"),
            routine("last_updated"),
            routine("stamp"),
            routine("title_case"),
            // The group_concat aggregate of schemas ported from MySQL (pagila's).
            Routine {
                kind: "aggregate".into(),
                arguments: "text".into(),
                language: "internal".into(),
                aggregate: Some(Aggregate {
                    transition: name(SCHEMA, "_group_concat"),
                    final_function: None,
                    initial: None,
                }),
                ..routine("group_concat")
            },
            Routine {
                arguments: "text, text".into(),
                language: "sql".into(),
                body: Some(
                    "\nSELECT CASE\n  WHEN $2 IS NULL THEN $1\n  WHEN $1 IS NULL THEN $2\n  ELSE $1 || ', ' || $2\nEND\n"
                        .into(),
                ),
                ..routine("_group_concat")
            },
        ],

        triggers: vec![
            trigger("category", "last_updated", "BEFORE", &["UPDATE"], "last_updated", LAST_UPDATED),
            trigger("film", "film_stamp", "BEFORE", &["INSERT", "UPDATE"], "stamp", STAMP),
            trigger("film", "film_title", "BEFORE", &["INSERT", "UPDATE"], "title_case", TITLE_CASE),
            trigger("film", "film_checks", "BEFORE", &["UPDATE"], "checks", CHECKS),
            trigger("film", "film_checks_insert", "BEFORE", &["INSERT"], "checks", CHECKS),
            trigger("payment", "last_updated", "BEFORE", &["UPDATE"], "last_updated", LAST_UPDATED),
            trigger("payment", "payment_audit", "AFTER", &["INSERT"], "audit", AUDIT),
        ],
        views: vec![
            view("group_names", "SELECT c.country_id, c.name AS country, string_agg(cu.name, ', '::text ORDER BY cu.name) AS names, count(cu.customer_id) FILTER (WHERE (cu.name IS NOT NULL)) AS n_named FROM (store.country c LEFT JOIN store.customer cu ON ((cu.grp = c.country_id))) GROUP BY c.country_id, c.name"),
            view("country_counts", "SELECT c.country_id, c.name, ( SELECT count(*) AS count FROM store.customer cu WHERE (cu.grp = c.country_id)) AS n_customers, ( SELECT max(cu.name) AS max FROM store.customer cu WHERE (cu.grp = c.country_id)) AS last_name FROM store.country c WHERE ((EXISTS ( SELECT 1 FROM store.customer cu WHERE (cu.grp = c.country_id))) OR (c.country_id > 6))"),
            view(
                "concat_names",
                "SELECT c.country_id, store.group_concat(cu.name ORDER BY cu.name) AS names FROM (store.country c LEFT \
                 JOIN store.customer cu ON ((cu.grp = c.country_id))) GROUP BY c.country_id",
            ),
            view("group_ids", "SELECT customer.grp, array_agg(customer.customer_id) AS ids FROM store.customer GROUP BY customer.grp"),
            view("first_names", "SELECT DISTINCT ON (customer.grp) customer.grp, customer.name FROM store.customer ORDER BY customer.grp, customer.name"),
        ],
        ..Schema::default()
    }
}

#[test]
fn fidelity_mariadb() {
    check_golden("fidelity.mariadb", &fidelity(), &config("mariadb-10.11", SCHEMA, "store"));
}

#[test]
fn fidelity_mysql9() {
    check_golden("fidelity.mysql9", &fidelity(), &config("mysql-9.7", SCHEMA, "store"));
}
