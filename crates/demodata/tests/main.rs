//! Integration tests of the demo dataset generator against the real PostgreSQL of the local stack.
//!
//! Each test loads into its own database, `demodata_<uuid>`, created through PASSERELLE_SOURCE_ADMIN
//! and owned by the role of PASSERELLE_SOURCE, so tests run in parallel. A test drops its database
//! when it passes and keeps it for inspection when it fails. Without the stack the tests fail: a
//! skipped test would let CI pass without testing.

use passerelle_demodata::{load, Scale, TABLES};
use tokio_postgres::{Client, Config, NoTls};

const START_THE_STACK: &str = "start the stack: eval \"$(stack/stack.sh env)\" after stack/stack.sh up";

/// A scratch database for one test.
struct TestDb {
    name: String,
    admin: Client,
    client: Client,
}

impl TestDb {
    async fn create() -> TestDb {
        let admin_url = std::env::var("PASSERELLE_SOURCE_ADMIN")
            .unwrap_or_else(|_| panic!("PASSERELLE_SOURCE_ADMIN is not set; {START_THE_STACK}"));
        let source_url = std::env::var("PASSERELLE_SOURCE")
            .unwrap_or_else(|_| panic!("PASSERELLE_SOURCE is not set; {START_THE_STACK}"));
        let admin = connect(admin_url.parse().expect("PASSERELLE_SOURCE_ADMIN is not a valid URL")).await;
        let mut config: Config = source_url.parse().expect("PASSERELLE_SOURCE is not a valid URL");
        let owner = config.get_user().expect("PASSERELLE_SOURCE names no user").to_string();
        let name = format!("demodata_{}", uuid::Uuid::new_v4().simple());
        admin.batch_execute(&format!("create database {name} owner \"{owner}\"")).await.expect("create database");
        config.dbname(&name);
        let client = connect(config).await;
        TestDb { name, admin, client }
    }

    /// Drops the database; called at the end of a test, so a failed test keeps its data.
    async fn drop(self) {
        drop(self.client);
        self.admin.batch_execute(&format!("drop database {} with (force)", self.name)).await.expect("drop database");
    }

    async fn count(&self, sql: &str) -> i64 {
        self.client.query_one(sql, &[]).await.unwrap_or_else(|error| panic!("{sql}: {error:?}")).get(0)
    }

    /// One md5 over every table, each aggregated in primary key order.
    async fn checksum(&self) -> String {
        let keys = [
            ("aircrafts_data", "aircraft_code"),
            ("airports_data", "airport_code"),
            ("seats", "aircraft_code, seat_no"),
            ("flights", "flight_id"),
            ("bookings", "book_ref"),
            ("tickets", "ticket_no"),
            ("ticket_flights", "ticket_no, flight_id"),
            ("boarding_passes", "ticket_no, flight_id"),
        ];
        let parts: Vec<String> = keys
            .iter()
            .map(|(table, key)| {
                format!("(select md5(string_agg(t::text, '|' order by {key})) from bookings.{table} t)")
            })
            .collect();
        let sql = format!("select md5(concat_ws(',', {}))", parts.join(", "));
        self.client.query_one(&sql, &[]).await.expect("checksum").get(0)
    }
}

async fn connect(config: Config) -> Client {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to PostgreSQL ({error}); {START_THE_STACK}"));
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn small_scale_has_the_published_counts_and_holds_every_constraint() {
    let db = TestDb::create().await;
    // Loading succeeds only if every declared key, unique constraint, foreign key and check holds:
    // the keys are added after the data, which validates them over all rows.
    load(&db.client, Scale::Small, 1).await.expect("load small");

    for (table, n_rows) in Scale::Small.expected_rows() {
        assert_eq!(db.count(&format!("select count(*) from bookings.{table}")).await, n_rows as i64, "{table}");
    }
    let n_constraints = db
        .count(
            "select count(*) from pg_constraint c join pg_namespace n on n.oid = c.connamespace
             where n.nspname = 'bookings' and c.contype in ('p', 'u', 'f') and c.convalidated",
        )
        .await;
    assert_eq!(n_constraints, 19, "primary keys, unique constraints and foreign keys");

    let violations = [
        (
            "booking totals equal the sum of their ticket flights",
            "select count(*) from bookings.bookings b
             left join (select t.book_ref, sum(tf.amount) as amount
                        from bookings.tickets t join bookings.ticket_flights tf using (ticket_no)
                        group by t.book_ref) s using (book_ref)
             where s.amount is distinct from b.total_amount",
        ),
        (
            "boarding passes only for flights that departed",
            "select count(*) from bookings.boarding_passes bp join bookings.flights f using (flight_id)
             where f.actual_departure is null or f.status not in ('Departed', 'Arrived')",
        ),
        (
            "boarding pass seats exist on the flight's aircraft, in the class of the fare",
            "select count(*) from bookings.boarding_passes bp
             join bookings.flights f using (flight_id)
             join bookings.ticket_flights tf using (ticket_no, flight_id)
             left join bookings.seats s on s.aircraft_code = f.aircraft_code and s.seat_no = bp.seat_no
             where s.seat_no is null or s.fare_conditions <> tf.fare_conditions",
        ),
        (
            "boarding numbers run from 1 without gaps on each flight",
            "select count(*) from (select flight_id from bookings.boarding_passes
                                   group by flight_id having max(boarding_no) <> count(*)) x",
        ),
        (
            "statuses agree with bookings.now()",
            "select count(*) from bookings.flights where not case status
                 when 'Scheduled' then scheduled_departure > bookings.now() + interval '1 day' and actual_departure is null
                 when 'On Time' then scheduled_departure <= bookings.now() + interval '1 day' and actual_departure is null
                 when 'Delayed' then scheduled_departure <= bookings.now() + interval '1 day' and actual_departure is null
                 when 'Departed' then actual_departure <= bookings.now() and actual_arrival is null
                 when 'Arrived' then actual_arrival <= bookings.now()
                 when 'Cancelled' then actual_departure is null
             end",
        ),
        (
            "bookings are made before their flights and before bookings.now()",
            "select count(*) from bookings.bookings b join bookings.tickets t using (book_ref)
             join bookings.ticket_flights tf using (ticket_no) join bookings.flights f using (flight_id)
             where b.book_date > bookings.now() or b.book_date > f.scheduled_departure",
        ),
        (
            "booking references have 6 characters and ticket numbers 13 digits",
            "select (select count(*) from bookings.bookings where book_ref !~ '^[0-9A-F]{6}$')
                  + (select count(*) from bookings.tickets where ticket_no !~ '^[0-9]{13}$')",
        ),
        (
            "names exist in English and in Russian",
            "select (select count(*) from bookings.airports_data
                     where city ->> 'en' !~ '^[A-Za-z -]+$' or city ->> 'ru' !~ '[А-Яа-яЁё]')
                  + (select count(*) from bookings.aircrafts_data where model ->> 'ru' is null)",
        ),
    ];
    for (what, sql) in violations {
        assert_eq!(db.count(sql).await, 0, "{what}");
    }

    let (last_value, is_called): (i64, bool) = {
        let row =
            db.client.query_one("select last_value, is_called from bookings.flights_flight_id_seq", &[]).await.unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((last_value, is_called), (33_121, true), "the sequence stands at the flight count");
    let owner: String = db
        .client
        .query_one("select pg_get_serial_sequence('bookings.flights', 'flight_id')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "bookings.flights_flight_id_seq");
    // Every status occurs, so a consumer sees the whole vocabulary.
    assert_eq!(db.count("select count(distinct status) from bookings.flights").await, 6);

    // The views pick names in the session's language.
    db.client.batch_execute("set bookings.lang = ru").await.unwrap();
    let city: String =
        db.client.query_one("select city from bookings.airports where airport_code = 'SVO'", &[]).await.unwrap().get(0);
    assert_eq!(city, "Москва");
    assert_eq!(db.count("select count(*) from bookings.flights_v").await, 33_121);
    assert_eq!(db.count("select count(*) from bookings.routes").await, 710);
    assert_eq!(db.count("select count(*) from bookings.aircrafts where model is not null").await, 9);

    db.drop().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_content_and_another_seed_another() {
    let db = TestDb::create().await;
    load(&db.client, Scale::Small, 7).await.expect("load seed 7");
    let first = db.checksum().await;
    // Loading again replaces the schema: the content must come out identical.
    load(&db.client, Scale::Small, 7).await.expect("reload seed 7");
    assert_eq!(db.checksum().await, first, "same seed, same content");
    load(&db.client, Scale::Small, 8).await.expect("load seed 8");
    assert_ne!(db.checksum().await, first, "another seed, other content");
    for (table, n_rows) in Scale::Small.expected_rows() {
        assert_eq!(db.count(&format!("select count(*) from bookings.{table}")).await, n_rows as i64, "{table}");
    }
    assert_eq!(TABLES.len(), 8);
    db.drop().await;
}

#[test]
fn the_binary_refuses_a_database_url_on_the_command_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle-demodata"))
        .args(["--scale", "small", "--source", "postgres://u:secret@127.0.0.1:1/x"])
        .env_remove("PASSERELLE_SOURCE")
        .output()
        .expect("run passerelle-demodata");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set PASSERELLE_SOURCE instead"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
}
