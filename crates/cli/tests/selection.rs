//! `--include`/`--exclude`: the tables left out are planned, copied, published and verified by
//! nobody, what refers to them is reported as not migrated, and the selection travels with the run.

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, Target};
use serde_json::Value;

use crate::migrate::Setup;
use crate::plan::object;
use crate::support::passerelle;

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
    let selection = ["--include", "public.*", "--include", "!public.seats", "--exclude", "*_log"];

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
        other.stderr.contains("began with the tables --include public.* --exclude *_log --exclude public.seats, this command asks for --exclude public.passes"),
        "{}",
        other.stderr
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
