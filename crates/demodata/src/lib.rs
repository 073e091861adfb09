//! The airline demo dataset Passerelle is measured on (issue 6): the schema of the Postgres Pro
//! "demo" bookings database and a deterministic generator that fills it, inside PostgreSQL, with
//! exactly the row counts of the published small, medium and big dumps (and `tiny`, a tenth of small's
//! bookings, for quick tests).
//!
//! The SQL is the product; this crate only runs it. `sql/schema.sql` creates schema `bookings`, and
//! `sql/generate.sql` fills it from two session settings, `demodata.scale` and `demodata.seed`. Both
//! files also run with psql, so a user with a real dump can load that instead and compare.
//!
//! ```no_run
//! # async fn demo(client: &tokio_postgres::Client) -> anyhow::Result<()> {
//! passerelle_demodata::load(client, passerelle_demodata::Scale::Small, 1).await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The DDL of schema `bookings`; the keys come after the [`POST_DATA_MARKER`] line.
pub const SCHEMA_SQL: &str = include_str!("../sql/schema.sql");

/// The generator, in steps that each start with a `-- step: <name>` line.
pub const GENERATE_SQL: &str = include_str!("../sql/generate.sql");

/// The line of `schema.sql` after which come the primary keys, unique constraints and foreign keys,
/// which the loader adds once the data is in.
pub const POST_DATA_MARKER: &str = "-- post-data";

const STEP_MARKER: &str = "-- step: ";

/// The tables of schema `bookings`, parents before children.
pub const TABLES: [&str; 8] =
    ["aircrafts_data", "airports_data", "seats", "flights", "bookings", "tickets", "ticket_flights", "boarding_passes"];

/// One of the three published sizes of the demo database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A tenth of small's bookings over small's flights, 260 k rows: not a published size, for
    /// tests that need the airline's shape quickly (the fault tests)
    Tiny,
    /// One month of bookings, 2.3 M rows
    Small,
    /// Three months of bookings, 5.8 M rows
    Medium,
    /// A year of bookings, 21.6 M rows
    Big,
}

impl Scale {
    /// All scales, smallest first.
    pub const ALL: [Scale; 4] = [Scale::Tiny, Scale::Small, Scale::Medium, Scale::Big];

    /// The name used by the command line and by `generate.sql`.
    pub fn name(&self) -> &'static str {
        match self {
            Scale::Tiny => "tiny",
            Scale::Small => "small",
            Scale::Medium => "medium",
            Scale::Big => "big",
        }
    }

    /// The row count of every table of the published dump at this scale, in [`TABLES`] order.
    pub fn expected_rows(&self) -> [(&'static str, u64); 8] {
        let (flights, bookings, tickets, ticket_flights, boarding_passes) = match self {
            Scale::Tiny => (33_121, 26_279, 36_673, 104_573, 57_969),
            Scale::Small => (33_121, 262_788, 366_733, 1_045_726, 579_686),
            Scale::Medium => (65_664, 593_433, 829_071, 2_360_335, 1_894_295),
            Scale::Big => (214_867, 2_111_110, 2_949_857, 8_391_852, 7_925_812),
        };
        [
            ("aircrafts_data", 9),
            ("airports_data", 104),
            ("seats", 1_339),
            ("flights", flights),
            ("bookings", bookings),
            ("tickets", tickets),
            ("ticket_flights", ticket_flights),
            ("boarding_passes", boarding_passes),
        ]
    }

    /// The total number of rows at this scale.
    pub fn total_rows(&self) -> u64 {
        self.expected_rows().iter().map(|(_, n_rows)| n_rows).sum()
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scale {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Scale> {
        match Scale::ALL.into_iter().find(|scale| scale.name() == s) {
            Some(scale) => Ok(scale),
            None => Err(anyhow::anyhow!("unknown scale \"{s}\": expected tiny, small, medium or big")),
        }
    }
}

/// A finished step of [`load_with_progress`].
#[derive(Debug, Clone)]
pub struct Step {
    /// `schema`, a step of `generate.sql` (most are named after the table they fill), `constraints`
    /// or `analyze`
    pub name: String,
    /// The wall time of the step
    pub elapsed: Duration,
}

/// Drops and recreates schema `bookings` in the connected database and fills it at `scale`, the
/// same content for the same `seed`.
///
/// The connected role needs the CREATE privilege on the database; it need not be a superuser.
pub async fn load(client: &tokio_postgres::Client, scale: Scale, seed: u64) -> anyhow::Result<()> {
    load_with_progress(client, scale, seed, |_| {}).await
}

/// [`load`], calling `on_step` after each step.
///
/// Everything runs in one transaction, so a failed load leaves the database as it was.
pub async fn load_with_progress(
    client: &tokio_postgres::Client,
    scale: Scale,
    seed: u64,
    mut on_step: impl FnMut(&Step),
) -> anyhow::Result<()> {
    let steps = steps()?;
    client.batch_execute("begin").await.context("cannot start the load transaction")?;
    let res = run_steps(client, scale, seed, &steps, &mut on_step).await;
    match res {
        Ok(()) => {
            client.batch_execute("commit").await.context("cannot commit the load")?;
            Ok(())
        }
        Err(error) => {
            // The original error is the one worth reporting; a failed rollback on a broken
            // connection adds nothing, and the server rolls back when the connection ends anyway.
            let _ = client.batch_execute("rollback").await;
            Err(error)
        }
    }
}

async fn run_steps(
    client: &tokio_postgres::Client,
    scale: Scale,
    seed: u64,
    steps: &[(String, String)],
    on_step: &mut impl FnMut(&Step),
) -> anyhow::Result<()> {
    // generate.sql reads its parameters from the session; `set_config(.., true)` scopes them to the
    // load transaction. A seed above i64::MAX is taken bit for bit as a negative bigint.
    let seed = i64::from_ne_bytes(seed.to_ne_bytes()).to_string();
    client
        .execute(
            "select set_config('demodata.scale', $1, true), set_config('demodata.seed', $2, true)",
            &[&scale.name(), &seed],
        )
        .await
        .context("cannot set the generator's parameters")?;
    for (name, sql) in steps {
        let started = Instant::now();
        client.batch_execute(sql).await.map_err(describe).with_context(|| format!("step {name} failed"))?;
        on_step(&Step { name: name.clone(), elapsed: started.elapsed() });
    }
    Ok(())
}

/// The whole load as named SQL batches: the schema's pre-data part, the generator's steps, the
/// keys, then fresh statistics for the planner.
pub fn steps() -> anyhow::Result<Vec<(String, String)>> {
    // The marker is a whole line; the file's header mentions it too.
    let Some((pre_data, post_data)) = SCHEMA_SQL.split_once(&format!("\n{POST_DATA_MARKER}\n")) else {
        return Err(anyhow::anyhow!("schema.sql has no \"{POST_DATA_MARKER}\" line"));
    };
    let mut steps = vec![("schema".to_string(), pre_data.to_string())];
    let mut parts = GENERATE_SQL.split(STEP_MARKER);
    // The text before the first marker is the file's header comment.
    parts.next();
    for part in parts {
        // A step runs up to the next marker, which starts a line: drop the text before it.
        let part = part.strip_suffix('\n').unwrap_or(part);
        let (name, sql) = part.split_once('\n').unwrap_or((part, ""));
        steps.push((name.trim().to_string(), sql.to_string()));
    }
    steps.push(("constraints".to_string(), post_data.to_string()));
    let analyze = TABLES.iter().map(|table| format!("analyze bookings.{table};")).collect::<Vec<_>>().join("\n");
    steps.push(("analyze".to_string(), analyze));
    Ok(steps)
}

/// tokio-postgres prints a server error as just "db error"; the server's message and detail are
/// what tell the user what went wrong.
fn describe(error: tokio_postgres::Error) -> anyhow::Error {
    let Some(db) = error.as_db_error() else { return error.into() };
    let mut text = db.message().to_string();
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    anyhow::anyhow!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_cover_every_table() {
        let steps = steps().unwrap();
        let names: Vec<&str> = steps.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names.first(), Some(&"schema"));
        assert_eq!(names.last(), Some(&"analyze"));
        let schema = &steps[0].1;
        assert!(schema.contains("create table bookings.flights") && !schema.contains("primary key"));
        assert!(steps.iter().any(|(name, sql)| name == "constraints" && sql.contains("primary key")));
        for table in TABLES {
            assert!(names.contains(&table), "no step fills {table}: {names:?}");
        }
    }

    #[test]
    fn expected_rows_follow_the_table_order() {
        for scale in Scale::ALL {
            let tables: Vec<&str> = scale.expected_rows().iter().map(|(table, _)| *table).collect();
            assert_eq!(tables, TABLES);
        }
        assert_eq!(Scale::Tiny.total_rows(), 260_067);
        assert_eq!(Scale::Small.total_rows(), 2_289_506);
        assert_eq!(Scale::Big.total_rows(), 21_594_950);
    }

    #[test]
    fn scale_names_round_trip() {
        for scale in Scale::ALL {
            assert_eq!(scale.name().parse::<Scale>().unwrap(), scale);
        }
        assert_eq!(
            "huge".parse::<Scale>().unwrap_err().to_string(),
            "unknown scale \"huge\": expected tiny, small, medium or big"
        );
    }
}
