//! The fixed session settings under which every snapshot and replication connection renders values.
//!
//! `model::event` promises that a value travels as PostgreSQL's text output and that the snapshot
//! (COPY) and the change stream (pgoutput) render it identically. Both call the same output
//! functions, so identical text needs identical settings for the handful of parameters that change
//! what those functions print. They are sent as startup options (`-c name=value` in the `options`
//! parameter) rather than `SET`, because a walsender takes no `SET` before `START_REPLICATION` and
//! because startup options outrank `ALTER ROLE ... SET` and `ALTER DATABASE ... SET`
//! (<https://www.postgresql.org/docs/current/config-setting.html>).

use passerelle_model::endpoint::DbEndpoint;
use tokio_postgres::Client;

use crate::PgError;

/// Every setting that changes a value's text output, with the value Passerelle pins it to.
pub const SETTINGS: &[(&str, &str)] = &[
    // timestamptz and timetz print in UTC, `+00`, whatever the server's or role's time zone.
    ("TimeZone", "UTC"),
    // `2024-01-31 12:00:00`, and `0044-03-15 BC` for BC dates.
    ("DateStyle", "ISO, YMD"),
    // `P1Y2M3DT4H5M6S`: ISO 8601, which `interval` input reads back, other systems parse, and the
    // target keeps as text or counts in microseconds (see `model::target::Conversion`).
    ("IntervalStyle", "iso_8601"),
    // Any value above 0 gives the shortest text that reads back to the same float (PostgreSQL 12+).
    ("extra_float_digits", "3"),
    // `\x0001ff`: every byte, NUL included, as two hex digits.
    ("bytea_output", "hex"),
    // `money` prints as `$1,234.56` under C, the same on every server.
    ("lc_monetary", "C"),
    ("client_encoding", "UTF8"),
];

/// The `options` startup parameter: `-c TimeZone=UTC -c DateStyle=ISO,\ YMD ...`.
///
/// Spaces separate arguments in `options`, so a space inside a value is escaped with a backslash
/// (<https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-OPTIONS>).
pub fn startup_options() -> String {
    let escape = |text: &str| text.replace('\\', "\\\\").replace(' ', "\\ ");
    SETTINGS.iter().map(|(name, value)| format!("-c {}={}", escape(name), escape(value))).collect::<Vec<_>>().join(" ")
}

/// Connects like [`crate::connect`], with [`SETTINGS`] applied: for the snapshot's copy workers.
pub async fn connect(endpoint: &DbEndpoint) -> Result<Client, PgError> {
    crate::connect::connect_with_options(endpoint, Some(&startup_options())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_escape_the_space_in_datestyle() {
        let options = startup_options();
        assert!(options.starts_with("-c TimeZone=UTC -c DateStyle=ISO,\\ YMD -c IntervalStyle=iso_8601"), "{options}");
        assert!(options.ends_with("-c client_encoding=UTF8"), "{options}");
    }
}
