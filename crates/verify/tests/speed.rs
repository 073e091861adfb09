//! How fast verify reads: a million rows, verified whole and then with one row changed. Slow, so
//! ignored: run it with `--ignored --nocapture`; it prints rows per second.

use std::time::Instant;

use passerelle_testkit::{on_both_targets, Target};

use crate::support::Migrated;

const N_ROWS: u64 = 1_000_000;

async fn a_million_rows(target: Target) {
    let migrated = Migrated::new(
        target,
        &format!(
            "CREATE TABLE bookings (id bigint PRIMARY KEY, ref char(6), amount numeric(10,2), booked timestamptz,
                                seats int, note text);
         INSERT INTO bookings SELECT g, upper(substr(md5(g::text), 1, 6)), (g % 100000) / 100.0,
                                     '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 second', g % 7,
                                     'booking number ' || g
         FROM generate_series(1, {N_ROWS}) g;"
        ),
    )
    .await;
    for jobs in [1, 2] {
        let started = Instant::now();
        let report = migrated.verify(jobs).await;
        let seconds = started.elapsed().as_secs_f64();
        assert!(report.matches, "{}", report.render());
        eprintln!("verify of {N_ROWS} matching rows: {seconds:.1}s, {:.0} rows/s", N_ROWS as f64 / seconds);
    }
    migrated.on_target("UPDATE bookings SET note = 'x' WHERE id = 654321").await;
    let started = Instant::now();
    let report = migrated.verify(1).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.tables[0].changed.items[0].key, "id=\"654321\"");
    eprintln!("verify of {N_ROWS} rows with one changed, pinpointed: {seconds:.1}s");
}
on_both_targets!(
    #[ignore = "slow: a measurement, run by hand"]
    a_million_rows
);
