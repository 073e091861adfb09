//! `--include`/`--exclude`: the tables left out are planned, copied, published and verified by
//! nobody, what refers to them is reported as not migrated, and the selection travels with the run.

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, Target};
use serde_json::Value;

use crate::migrate::Setup;
use crate::online::wait_for_the_snapshot_in_kafka;
use crate::plan::object;
use crate::support::{finished, passerelle, passerelle_spawn};

const THREE_TABLES: &str = "
create table flights (id integer primary key, code text);
create table seats (id integer primary key, flight integer references flights (id), seat text);
create table passes (id integer primary key, seat integer references seats (id), flight integer references flights (id));
create table audit_log (id integer primary key, line text);
create view seat_passes as select s.id, count(p.id) as n from seats s left join passes p on p.seat = s.id group by s.id;
insert into flights select i, 'F' || i from generate_series(1, 40) i;
insert into seats select i, 1 + i % 40, 'S' || i from generate_series(1, 200) i;
insert into passes select i, 1 + i % 200, 1 + i % 40 from generate_series(1, 300) i;
insert into audit_log select i, 'x' from generate_series(1, 10) i;";

async fn tables_left_out_are_neither_planned_nor_copied_nor_verified(target: Target) {
    let setup = Setup::new(target, THREE_TABLES).await;
    let selection = [
        "--include",
        "public.*",
        "--include",
        "!public.seats",
        "--exclude",
        "*_log",
        "--exclude-column",
        "public.flights.code",
    ];

    let dir = std::env::temp_dir().join(passerelle_testkit::unique_name("passerelle_selection"));
    let plan = passerelle(
        &[vec!["plan", "--json", "--target-version", "mysql-9.7", "--out", dir.to_str().unwrap()], selection.to_vec()]
            .concat(),
        &setup.env(),
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let report = serde_json::from_str::<Value>(&plan.stdout).unwrap()["report"].clone();
    let (outcome, detail) = object(&report, "foreign key", "public.passes.passes_seat_fkey");
    assert_eq!(
        (outcome.as_str(), detail.as_str()),
        ("not_migrated", "references public.seats, a table left out of the migration")
    );
    // What the selection left out is in the report, not merely absent from it.
    for (kind, name, by) in [
        ("relation", "public.seats", "--include/--exclude"),
        ("relation", "public.audit_log", "--include/--exclude"),
        ("column", "public.flights.code", "--exclude-column"),
    ] {
        let (outcome, detail) = object(&report, kind, name);
        assert_eq!((outcome.as_str(), detail), ("not_migrated", format!("left out of the migration by {by}")));
    }
    let (outcome, detail) = object(&report, "view", "public.seat_passes");
    assert_eq!(outcome, "not_migrated", "{detail}");
    assert!(detail.contains("reads public.seats, left out of the migration"), "{detail}");
    let pre_data = std::fs::read_to_string(dir.join("pre-data.sql")).unwrap();
    assert!(
        pre_data.contains("`passes`") && !pre_data.contains("`seats`") && !pre_data.contains("audit_log"),
        "{pre_data}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let migrate = setup.migrate_with(&selection);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    let sql = format!(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' ORDER BY 1",
        setup.target.name
    );
    let tables: Vec<String> = setup.target.conn().await.query(sql).await.unwrap();
    assert_eq!(tables, ["flights", "passes"], "only the selected tables are in the target");
    let sql = format!(
        "SELECT constraint_name FROM information_schema.referential_constraints WHERE constraint_schema = '{}'",
        setup.target.name
    );
    let fks: Vec<String> = setup.target.conn().await.query(sql).await.unwrap();
    assert_eq!(fks, ["passes_flight_fkey"], "the key to the table left out is not migrated");

    let sql = format!(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = '{}' AND table_name = 'flights'",
        setup.target.name
    );
    let columns: Vec<String> = setup.target.conn().await.query(sql).await.unwrap();
    assert_eq!(columns, ["id"], "the column left out is not in the target");

    // verify takes the run's selection; one that asks for another is refused.
    let verify = passerelle(&setup.args("verify"), &setup.env());
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
    assert!(
        !verify.stdout.contains("public.seats:") && verify.stdout.contains("public.passes: 300 rows"),
        "{}",
        verify.stdout
    );
    let other = passerelle(&[setup.args("verify"), vec!["--exclude", "public.passes"]].concat(), &setup.env());
    assert_eq!(other.code, 2, "{}\n{}", other.stdout, other.stderr);
    assert!(
        other.stderr.contains("began with the tables --include public.* --exclude *_log --exclude public.seats --exclude-column public.flights.code, \
         this command asks for --exclude public.passes"),
        "{}",
        other.stderr
    );
    let key = passerelle(&[setup.args("plan"), vec!["--exclude-column", "public.passes.id"]].concat(), &setup.env());
    assert_eq!(key.code, 2, "{}", key.stdout);
    assert!(
        key.stderr.contains("id is in the primary key of public.passes (id), its replica identity"),
        "{}",
        key.stderr
    );
    let typo = passerelle(&[setup.args("plan"), vec!["--exclude", "public.seat"]].concat(), &setup.env());
    assert!(
        typo.code == 2 && typo.stderr.contains("--exclude public.seat matches no table or view"),
        "{}",
        typo.stderr
    );
    setup.cleanup();
}
on_both_targets!(tables_left_out_are_neither_planned_nor_copied_nor_verified);

/// Online, a column left out is not published (PostgreSQL 15's column lists): changes to its table
/// stream without it, and the cutover verifies.
async fn a_column_left_out_is_not_streamed(target: Target) {
    let setup = Setup::new(target, THREE_TABLES).await;
    let args = [&setup.args("migrate")[..], &["--online", "--exclude-column", "public.seats.seat"]].concat();
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    let sql = "insert into seats values (1000, 1, 'new'); update seats set seat = 'moved', flight = 2 where id = 5; \
               delete from passes where seat = 7; delete from seats where id = 7;";
    setup.source.client().await.batch_execute(sql).await.unwrap();
    let cutover = passerelle(&setup.args("cutover"), &setup.env());
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    let sql = format!("SELECT COUNT(*), SUM(flight) FROM `{}`.seats WHERE id IN (5, 7, 1000)", setup.target.name);
    let (count, flights): (u64, i64) = setup.target.conn().await.query_first(sql).await.unwrap().unwrap();
    assert_eq!((count, flights), (2, 3), "the insert, update and delete reached the target");
    setup.cleanup();
}
on_both_targets!(a_column_left_out_is_not_streamed);
