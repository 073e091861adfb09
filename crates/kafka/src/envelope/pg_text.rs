//! PostgreSQL's text output, under the session settings of docs/wire-format.md, to and from the
//! values Debezium puts in Kafka Connect JSON: days, microseconds, ISO 8601, base64, shortest floats.
//!
//! Every conversion is exact: what cannot be mapped without loss is an error naming the reason,
//! never an approximation. Errors never quote the value: rows stay out of logs.

use std::fmt::Write;

pub type Result<T> = std::result::Result<T, String>;

/// How Debezium counts a `timestamp` of `±infinity` in microseconds: the JDBC driver's
/// `PGStatement.DATE_POSITIVE_INFINITY` and `DATE_NEGATIVE_INFINITY`. No finite timestamp of
/// PostgreSQL's range maps there except after year 294246, which is refused.
pub const TIMESTAMP_INFINITY: i64 = 9_223_372_036_825_200_000;
pub const TIMESTAMP_MINUS_INFINITY: i64 = -9_223_372_036_832_400_000;
/// Passerelle's `date` `±infinity` in days: PostgreSQL's own sentinels, far outside its date range.
pub const DATE_INFINITY: i32 = i32::MAX;
pub const DATE_MINUS_INFINITY: i32 = i32::MIN;
/// How Debezium's PostgreSQL connector (3.3, in a JVM at UTC) writes a `date` of `infinity` and
/// `-infinity`: the driver's infinite `java.sql.Date` turned into days. Both lie before 4714 BC, out
/// of PostgreSQL's range, so they are read as infinities and never written.
pub const DEBEZIUM_DATE_INFINITY: i64 = -622_191_234;
pub const DEBEZIUM_DATE_MINUS_INFINITY: i64 = -625_821_272;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// PostgreSQL's date range, 4714-11-24 BC to 5874897-12-31, in days from 1970-01-01.
const FIRST_DAY: i64 = -2_440_588;
const LAST_DAY: i64 = 2_145_042_905;

/// A date of the proleptic Gregorian calendar with astronomical year numbering (1 BC is year 0),
/// as PostgreSQL counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Civil {
    /// Days from 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days(self) -> i64 {
        let year = if self.month <= 2 { self.year - 1 } else { self.year };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    pub fn from_days(days: i64) -> Civil {
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted - era * 146_097;
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
        let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
        Civil { year: year_of_era + era * 400 + i64::from(month <= 2), month, day }
    }
}

/// A date and time of day as PostgreSQL prints `date`, `timestamp` and `timestamptz` under
/// DateStyle ISO and TimeZone UTC: `2017-08-15`, `0044-03-15 12:00:00.5+00 BC`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DateTime {
    pub date: Civil,
    pub micros_of_day: i64,
}

/// `2017-08-15` or `0044-03-15 BC`; years after 9999 have more digits.
pub fn parse_date(text: &str) -> Result<Civil> {
    let (text, bc) = strip_bc(text);
    let bad = || "not a date as PostgreSQL prints it (DateStyle ISO)".to_string();
    let mut parts = text.splitn(3, '-');
    let mut number = || parts.next().filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).ok_or_else(bad);
    let (year, month, day) = (number()?, number()?, number()?);
    let year: i64 = year.parse().map_err(|_| bad())?;
    let date = Civil {
        year: if bc { 1 - year } else { year },
        month: month.parse().map_err(|_| bad())?,
        day: day.parse().map_err(|_| bad())?,
    };
    if Civil::from_days(date.days()) != date || (bc && year == 0) {
        return Err(bad());
    }
    Ok(date)
}

fn strip_bc(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(text) => (text, true),
        None => (text, false),
    }
}

/// `2017-08-15 15:00:00.5` (timestamp) or `… 15:00:00.5+00` (timestamptz, which must be in UTC).
pub fn parse_timestamp(text: &str, zoned: bool) -> Result<DateTime> {
    let (body, bc) = strip_bc(text);
    let bad = || "not a timestamp as PostgreSQL prints it (DateStyle ISO, TimeZone UTC)".to_string();
    let (date, clock) = body.split_once(' ').ok_or_else(bad)?;
    let clock =
        if zoned { clock.strip_suffix("+00").ok_or("a timestamptz not in UTC (TimeZone must be UTC)")? } else { clock };
    let date = if bc { parse_date(&format!("{date} BC"))? } else { parse_date(date)? };
    let micros_of_day = parse_clock(clock)?;
    if micros_of_day >= MICROS_PER_DAY {
        return Err(bad());
    }
    Ok(DateTime { date, micros_of_day })
}

impl DateTime {
    pub fn micros(self) -> i128 {
        i128::from(self.date.days()) * i128::from(MICROS_PER_DAY) + i128::from(self.micros_of_day)
    }

    /// Refuses what lies outside PostgreSQL's range, which a foreign writer could send.
    pub fn from_micros(micros: i128) -> Result<DateTime> {
        let days = micros.div_euclid(i128::from(MICROS_PER_DAY));
        if !(i128::from(FIRST_DAY)..=i128::from(LAST_DAY)).contains(&days) {
            return Err("a date outside PostgreSQL's range (4714 BC to 5874897 AD)".to_string());
        }
        let micros_of_day = micros.rem_euclid(i128::from(MICROS_PER_DAY)) as i64;
        Ok(DateTime { date: Civil::from_days(days as i64), micros_of_day })
    }

    /// PostgreSQL's text: `0044-03-15 12:00:00.5` then `+00` for timestamptz, then ` BC`.
    pub fn pg_text(self, zoned: bool) -> String {
        let mut out = String::with_capacity(32);
        let bc = write_pg_date(&mut out, self.date);
        out.push(' ');
        write_clock(&mut out, self.micros_of_day);
        if zoned {
            out.push_str("+00");
        }
        if bc {
            out.push_str(" BC");
        }
        out
    }

    /// ISO 8601 in UTC as Java's `ISO_OFFSET_DATE_TIME` prints it: `-0043-03-15T12:00:00.5Z`,
    /// `+10000-01-01T00:00:00Z` (astronomical years, a sign beyond four digits).
    pub fn iso(self) -> String {
        let mut out = String::with_capacity(32);
        let Civil { year, month, day } = self.date;
        match year {
            0..=9999 => write!(out, "{year:04}"),
            10000.. => write!(out, "+{year}"),
            _ => write!(out, "-{:04}", -year),
        }
        .expect("writing to a String cannot fail");
        write!(out, "-{month:02}-{day:02}T").expect("writing to a String cannot fail");
        write_clock(&mut out, self.micros_of_day);
        out.push('Z');
        out
    }

    /// Reads ISO 8601 with any offset (Debezium writes `Z`) into UTC.
    pub fn parse_iso(text: &str) -> Result<DateTime> {
        let bad = || "not an ISO 8601 timestamp with offset".to_string();
        let (sign, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (-1, &text[1..]),
            Some(b'+') => (1, &text[1..]),
            _ => (1, text),
        };
        let (date, rest) = unsigned.split_once('T').ok_or_else(bad)?;
        let date = parse_date(date)?;
        let date = Civil { year: sign * date.year, ..date };
        let (clock, offset) = split_offset(rest).ok_or_else(bad)?;
        let local = DateTime { date, micros_of_day: parse_clock(clock)? };
        DateTime::from_micros(local.micros() - i128::from(offset) * 1_000_000)
    }
}

/// Writes `YYYY-MM-DD` with PostgreSQL's BC years; true when ` BC` must follow.
fn write_pg_date(out: &mut String, date: Civil) -> bool {
    let (year, bc) = if date.year <= 0 { (1 - date.year, true) } else { (date.year, false) };
    write!(out, "{year:04}-{:02}-{:02}", date.month, date.day).expect("writing to a String cannot fail");
    bc
}

pub fn pg_date(date: Civil) -> String {
    let mut out = String::with_capacity(16);
    if write_pg_date(&mut out, date) {
        out.push_str(" BC");
    }
    out
}

/// A date's days from 1970-01-01 as PostgreSQL's range allows them.
pub fn date_from_days(days: i64) -> Result<Civil> {
    if !(FIRST_DAY..=LAST_DAY).contains(&days) {
        return Err("a date outside PostgreSQL's range (4714 BC to 5874897 AD)".to_string());
    }
    Ok(Civil::from_days(days))
}

/// `HH:MM[:SS[.ffffff]]` to microseconds since midnight; `24:00:00` is PostgreSQL's end of day.
pub fn parse_clock(text: &str) -> Result<i64> {
    let bad = || "not a time of day".to_string();
    let (hms, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = hms.split(':');
    let mut field = |required: bool, max: i64| -> Result<i64> {
        match parts.next() {
            None if !required => Ok(0),
            Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => {
                let value: i64 = p.parse().map_err(|_| bad())?;
                if value > max {
                    return Err(bad());
                }
                Ok(value)
            }
            _ => Err(bad()),
        }
    };
    let (hours, minutes, seconds) = (field(true, 24)?, field(true, 59)?, field(false, 59)?);
    if parts.next().is_some() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if fraction.len() > 6 && fraction[6..].bytes().any(|b| b != b'0') {
        return Err("a time finer than PostgreSQL's microseconds".to_string());
    }
    let micros: i64 = format!("{:0<6}", &fraction[..fraction.len().min(6)]).parse().map_err(|_| bad())?;
    let total = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    if total > MICROS_PER_DAY {
        return Err(bad());
    }
    Ok(total)
}

/// `HH:MM:SS` and the fraction without trailing zeros, as PostgreSQL prints it.
pub fn write_clock(out: &mut String, micros_of_day: i64) {
    let seconds = micros_of_day / 1_000_000;
    let fraction = micros_of_day % 1_000_000;
    write!(out, "{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
        .expect("writing to a String cannot fail");
    if fraction != 0 {
        let digits = format!(".{fraction:06}");
        out.push_str(digits.trim_end_matches('0'));
    }
}

pub fn pg_time(micros_of_day: i64) -> Result<String> {
    if !(0..=MICROS_PER_DAY).contains(&micros_of_day) {
        return Err("a time of day outside 00:00:00 to 24:00:00".to_string());
    }
    let mut out = String::with_capacity(15);
    write_clock(&mut out, micros_of_day);
    Ok(out)
}

/// Splits `12:00:00.5+03:00` (or `…Z`) into the clock and the offset in seconds east of UTC.
fn split_offset(text: &str) -> Option<(&str, i32)> {
    if let Some(clock) = text.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let at = text.rfind(['+', '-'])?;
    let (clock, offset) = text.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut seconds = 0;
    let mut n_parts = 0;
    for (part, scale) in offset[1..].split(':').zip([3600, 60, 1]) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        seconds += part.parse::<i32>().ok()? * scale;
        n_parts += 1;
    }
    if n_parts == 0 || offset[1..].split(':').count() != n_parts {
        return None;
    }
    Some((clock, sign * seconds))
}

/// timetz as PostgreSQL prints it (`12:00:00.5+03`, `01:00:00-05:30`) to ISO 8601 keeping its own
/// offset (`12:00:00.5+03:00`, `Z` for UTC), which Java's `ISO_OFFSET_TIME` reads.
pub fn timetz_to_iso(text: &str) -> Result<String> {
    let bad = || "not a timetz as PostgreSQL prints it".to_string();
    let (clock, offset) = split_offset(text).ok_or_else(bad)?;
    let micros = parse_clock(clock)?;
    let mut out = String::with_capacity(24);
    write_clock(&mut out, micros);
    write_offset(&mut out, offset, true);
    Ok(out)
}

/// ISO 8601 time with offset back to PostgreSQL's timetz text: `Z` becomes `+00`.
pub fn iso_to_timetz(text: &str) -> Result<String> {
    let bad = || "not an ISO 8601 time with offset".to_string();
    let (clock, offset) = split_offset(text).ok_or_else(bad)?;
    let micros = parse_clock(clock)?;
    let mut out = String::with_capacity(24);
    write_clock(&mut out, micros);
    write_offset(&mut out, offset, false);
    Ok(out)
}

/// ISO: `Z` or `±HH:MM[:SS]`; PostgreSQL: `±HH[:MM[:SS]]`, leaving out zero minutes and seconds.
fn write_offset(out: &mut String, offset: i32, iso: bool) {
    if iso && offset == 0 {
        out.push('Z');
        return;
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.abs();
    let (hours, minutes, seconds) = (offset / 3600, offset / 60 % 60, offset % 60);
    write!(out, "{sign}{hours:02}").expect("writing to a String cannot fail");
    if iso || minutes != 0 || seconds != 0 {
        write!(out, ":{minutes:02}").expect("writing to a String cannot fail");
    }
    if seconds != 0 {
        write!(out, ":{seconds:02}").expect("writing to a String cannot fail");
    }
}

/// A float as PostgreSQL prints it with `extra_float_digits > 0`: the shortest digits that read back
/// to the same value, fixed-point for decimal exponents from -4 up to 14 (float8) or 5 (float4),
/// else `1e+16`, `1.5e-308` (at least two exponent digits).
pub fn pg_float(value: f64, single: bool) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let scientific = shortest_scientific(value, single);
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let fixed_below = if single { 6 } else { 15 };
    if !(-4..fixed_below).contains(&exponent) {
        let sign_of_exponent = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{sign_of_exponent}{:02}", exponent.abs());
    }
    let n_integer_digits = exponent + 1;
    if n_integer_digits <= 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-n_integer_digits) as usize));
    }
    let n_integer_digits = n_integer_digits as usize;
    if digits.len() <= n_integer_digits {
        return format!("{sign}{digits}{}", "0".repeat(n_integer_digits - digits.len()));
    }
    format!("{sign}{}.{}", &digits[..n_integer_digits], &digits[n_integer_digits..])
}

/// `d.ddde±x` with the fewest digits that read back to `value` at its width, as PostgreSQL's Ryu
/// picks them: a digit string exactly halfway to a neighbouring float does not count as reading
/// back (Rust's `{:e}` accepts it), and of two equally close strings the even one wins (Rust's
/// `{:e}` rounds that tie up; its fixed-precision `{:.*e}` rounds it to even).
fn shortest_scientific(value: f64, single: bool) -> String {
    let sign = if value.is_sign_negative() { "-" } else { "" };
    let magnitude = value.abs();
    if magnitude == 0.0 {
        return format!("{sign}0e0");
    }
    let reads_back = |text: &str| {
        if single {
            text.parse::<f32>() == Ok(magnitude as f32)
        } else {
            text.parse::<f64>() == Ok(magnitude)
        }
    };
    let strictly_reads_back =
        |text: &str| reads_back(text) && reads_back(&nudge(text, 1)) && reads_back(&nudge(text, -1));
    let scientific = |precision: Option<usize>| match (single, precision) {
        (true, None) => format!("{:e}", magnitude as f32),
        (false, None) => format!("{magnitude:e}"),
        (true, Some(precision)) => format!("{:.*e}", precision, magnitude as f32),
        (false, Some(precision)) => format!("{magnitude:.precision$e}"),
    };
    let shortest = scientific(None);
    let n_shortest =
        shortest.split('e').next().expect("{:e} has a mantissa").bytes().filter(u8::is_ascii_digit).count();
    let n_max = if single { 9 } else { 17 };
    for n_digits in n_shortest..n_max {
        let rounded = scientific(Some(n_digits - 1));
        if strictly_reads_back(&rounded) {
            return format!("{sign}{rounded}");
        }
        if n_digits == n_shortest && strictly_reads_back(&shortest) {
            return format!("{sign}{shortest}");
        }
    }
    format!("{sign}{}", scientific(Some(n_max - 1)))
}

/// A positive `d.ddde±x` moved by far less than its last digit, up (`direction` 1) or down (-1).
fn nudge(scientific: &str, direction: i8) -> String {
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let tail = if direction > 0 {
        "0".repeat(24) + "1"
    } else {
        // Subtract one from the last digit, borrowing, then continue with nines.
        for digit in digits.iter_mut().rev() {
            if *digit == b'0' {
                *digit = b'9';
            } else {
                *digit -= 1;
                break;
            }
        }
        "9".repeat(25)
    };
    let digits = String::from_utf8(digits).expect("ASCII digits");
    format!("{}.{}{tail}e{exponent}", &digits[..1], &digits[1..])
}

/// money under `lc_monetary = C` (`-$1,234.56`) to a plain decimal (`-1234.56`).
pub fn money_to_decimal(text: &str) -> Result<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let rest = rest.strip_prefix('$').ok_or("not a money amount in the C locale")?;
    let digits: String = rest.chars().filter(|c| *c != ',').collect();
    if !is_plain_decimal(&digits) {
        return Err("not a money amount in the C locale".to_string());
    }
    Ok(if negative { format!("-{digits}") } else { digits })
}

/// A plain decimal (`-1234.56`) back to money's text under `lc_monetary = C` (`-$1,234.56`).
pub fn decimal_to_money(decimal: &str) -> Result<String> {
    let (negative, unsigned) = match decimal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, decimal),
    };
    if !is_plain_decimal(unsigned) {
        return Err("not a decimal money amount".to_string());
    }
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut out = String::with_capacity(decimal.len() + integer.len() / 3 + 2);
    if negative {
        out.push('-');
    }
    out.push('$');
    for (i, digit) in integer.chars().enumerate() {
        if i > 0 && (integer.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Ok(out)
}

fn is_plain_decimal(text: &str) -> bool {
    let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
    !integer.is_empty() && integer.bytes().all(|b| b.is_ascii_digit()) && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// A big-endian two's-complement integer (Java's `BigInteger.toByteArray`) with a scale, as
/// Kafka Connect's `Decimal` carries it, to decimal text: `1230` with scale 2 is `12.30`.
pub fn unscaled_to_decimal(bytes: &[u8], scale: i32) -> Result<String> {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        // Two's complement: invert and add one.
        for byte in &mut magnitude {
            *byte = !*byte;
        }
        for byte in magnitude.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
    }
    let mut digits = decimal_digits(&magnitude);
    if scale < 0 {
        if digits != "0" {
            digits.push_str(&"0".repeat(scale.unsigned_abs() as usize));
        }
    } else if scale > 0 {
        let scale = scale as usize;
        if digits.len() <= scale {
            digits = format!("{}{digits}", "0".repeat(scale + 1 - digits.len()));
        }
        digits.insert(digits.len() - scale, '.');
    }
    Ok(if negative { format!("-{digits}") } else { digits })
}

/// A big-endian unsigned integer of any length in decimal.
fn decimal_digits(magnitude: &[u8]) -> String {
    // Base 10^9 limbs, least significant first.
    let mut limbs: Vec<u64> = Vec::new();
    for &byte in magnitude {
        let mut carry = u64::from(byte);
        for limb in &mut limbs {
            let value = *limb * 256 + carry;
            *limb = value % 1_000_000_000;
            carry = value / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    let Some((most, rest)) = limbs.split_last() else { return "0".to_string() };
    let mut out = most.to_string();
    for limb in rest.iter().rev() {
        write!(out, "{limb:09}").expect("writing to a String cannot fail");
    }
    out
}

/// bytea's `\x00ff` hex to its bytes.
pub fn bytea_to_bytes(text: &str) -> Result<Vec<u8>> {
    let hex = text.strip_prefix("\\x").ok_or("bytea without the \\x prefix (bytea_output hex)")?.as_bytes();
    if !hex.len().is_multiple_of(2) {
        return Err("bytea with an odd number of hex digits".to_string());
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err("bytea with a non-hex digit".to_string()),
    };
    hex.chunks(2).map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?)).collect()
}

/// Bytes as bytea's text, `\x` and lowercase hex, as PostgreSQL prints it.
pub fn bytes_to_bytea(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("\\x");
    for byte in bytes {
        write!(out, "{byte:02x}").expect("writing to a String cannot fail");
    }
    out
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Kafka Connect's JsonConverter writes `bytes`.
pub fn base64_encode(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { BASE64[(n >> (18 - 6 * i) & 63) as usize] } else { b'=' });
        }
    }
}

pub fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let bad = || "not base64".to_string();
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (n_chunk, chunk) in text.chunks(4).enumerate() {
        let n_padding = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if n_padding > 2 || (n_padding > 0 && (n_chunk + 1) * 4 != text.len()) {
            return Err(bad());
        }
        let mut n = 0u32;
        for &b in &chunk[..4 - n_padding] {
            let value = BASE64.iter().position(|&c| c == b).ok_or_else(bad)?;
            n = n << 6 | value as u32;
        }
        n <<= 6 * n_padding;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - n_padding]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_over_postgres_range() {
        assert_eq!(Civil { year: 1970, month: 1, day: 1 }.days(), 0);
        assert_eq!(Civil { year: -4713, month: 11, day: 24 }.days(), FIRST_DAY);
        assert_eq!(Civil { year: 5_874_897, month: 12, day: 31 }.days(), LAST_DAY);
        for days in (FIRST_DAY..=LAST_DAY).step_by(9_973) {
            assert_eq!(Civil::from_days(days).days(), days);
        }
    }

    #[test]
    fn floats_print_as_postgres_prints_them() {
        // Each pair as PostgreSQL 15 prints it with extra_float_digits = 3.
        for (value, text) in [
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (-0.0, "-0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            // Exactly between …562 and …563: PostgreSQL prints the even one.
            (12_557_087_530_967.0 + 0.5625, "12557087530967.562"),
            // 2.509298259804037e16 lies exactly halfway to the next float: not shortest for PostgreSQL.
            (25092982598040368.0, "2.5092982598040368e+16"),
        ] {
            assert_eq!(pg_float(value, false), text);
        }
        assert_eq!(pg_float(1e6, true), "1e+06");
        assert_eq!(pg_float(123456.0, true), "123456");
        assert_eq!(pg_float(f64::from(1e-45f32), true), "1e-45");
        assert_eq!(pg_float(f64::from(0.1f32), true), "0.1");
    }

    #[test]
    fn base64_round_trips() {
        for bytes in [&b""[..], b"\0", b"ab", b"abc", b"\xff\x00\xfe\x01"] {
            let mut encoded = Vec::new();
            base64_encode(bytes, &mut encoded);
            assert_eq!(base64_decode(std::str::from_utf8(&encoded).unwrap()).unwrap(), bytes);
        }
        let mut encoded = Vec::new();
        base64_encode(b"\0\xff\x10", &mut encoded);
        assert_eq!(encoded, b"AP8Q");
    }

    #[test]
    fn unscaled_decimals() {
        assert_eq!(unscaled_to_decimal(&[0x04, 0xce], 2).unwrap(), "12.30");
        assert_eq!(unscaled_to_decimal(&[0xfb, 0x32], 2).unwrap(), "-12.30");
        assert_eq!(unscaled_to_decimal(&[0x05], 3).unwrap(), "0.005");
        assert_eq!(unscaled_to_decimal(&[0x00], 0).unwrap(), "0");
        assert_eq!(unscaled_to_decimal(&[0xff], 1).unwrap(), "-0.1");
        // 2^64 has three limbs.
        assert_eq!(unscaled_to_decimal(&[1, 0, 0, 0, 0, 0, 0, 0, 0], 0).unwrap(), "18446744073709551616");
    }
}
