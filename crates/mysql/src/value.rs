//! One value, from PostgreSQL's text output to a field of a `LOAD DATA` stream or to a statement
//! parameter, following the [`Conversion`] that `ddl` chose with the column's type.
//!
//! The stream uses `LOAD DATA`'s defaults: fields end with a tab, lines with `\n`, and `\` escapes
//! (`\N` is NULL, `\0` a NUL byte). Anything the target type cannot hold is refused with a reason;
//! nothing is rounded, clipped or dropped here. Reasons never quote the value: rows stay out of logs.

use std::borrow::Cow;

use passerelle_model::target::{ArrayElement, Conversion, Shape};

/// Appends `text` (`None` for NULL), converted, as one escaped field.
pub fn write_field(conversion: &Conversion, text: Option<&str>, out: &mut Vec<u8>) -> Result<(), String> {
    match text {
        None => out.extend_from_slice(b"\\N"),
        Some(text) => escape(&convert(conversion, text)?, out),
    }
    Ok(())
}

/// The target's value of `text`, as the bytes a `LOAD DATA` field or a statement parameter carries
/// (before [`value_expression`] applies where the text alone cannot say it).
pub fn convert<'a>(conversion: &Conversion, text: &'a str) -> Result<Cow<'a, [u8]>, String> {
    let owned = |text: String| Cow::Owned(text.into_bytes());
    Ok(match conversion {
        Conversion::Text | Conversion::Bits => Cow::Borrowed(text.as_bytes()),
        Conversion::Number => Cow::Borrowed(finite(text)?.as_bytes()),
        Conversion::Boolean => Cow::Borrowed(match text {
            "t" => b"1",
            "f" => b"0",
            _ => return Err("not a boolean".to_string()),
        }),
        Conversion::Money => owned(money(text)?),
        Conversion::Bytes => {
            Cow::Borrowed(hex(text.strip_prefix("\\x").ok_or("bytea without \\x prefix")?)?.as_bytes())
        }
        Conversion::DateTime => Cow::Borrowed(date_time(text)?.as_bytes()),
        Conversion::TimeUtc => owned(time_utc(text)?),
        Conversion::UuidBytes => owned(hex(&text.replace('-', ""))?.to_string()),
        Conversion::IntervalMicros => owned(interval_micros(text)?.to_string()),
        Conversion::Geometry(shape) => owned(wkt(text, *shape)?),
        Conversion::Array(element) => owned(array_json(text, *element)?),
        Conversion::Record { fields } => owned(record_json(text, fields)?),
        Conversion::Hstore => owned(hstore_json(text)?),
    })
}

/// The SQL that turns a loaded field (a user variable) into the column's value, for conversions the
/// `LOAD DATA` text cannot carry directly; `None` loads the field into the column as it is.
pub fn load_expression(conversion: &Conversion, variable: &str) -> Option<String> {
    match conversion {
        Conversion::Geometry(_) => Some(format!("ST_GeomFromText({variable})")),
        // LOAD DATA cannot read b'0101' notation into a BIT column.
        Conversion::Bits => Some(format!("CAST(CONV({variable}, 2, 10) AS UNSIGNED)")),
        // As hex: MySQL checks a LOAD DATA stream's bytes against its character set, blob fields too.
        Conversion::Bytes | Conversion::UuidBytes => Some(format!("UNHEX({variable})")),
        _ => None,
    }
}

/// The SQL of the column's value from a statement parameter `?` that holds [`convert`]'s bytes: the
/// same wrapping as the `LOAD DATA` path.
pub fn value_expression(conversion: &Conversion) -> String {
    load_expression(conversion, "?").unwrap_or_else(|| "?".to_string())
}

pub(crate) fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(byte),
        }
    }
}

fn finite(text: &str) -> Result<&str, String> {
    match text {
        "NaN" | "Infinity" | "-Infinity" => Err(format!("{text} has no equivalent in the target's numeric types")),
        _ => Ok(text),
    }
}

/// Under `lc_monetary = C` money prints as `$1,234.56` or `-$1,234.56`.
fn money(text: &str) -> Result<String, String> {
    let digits: String = text.chars().filter(|c| !matches!(c, '$' | ',')).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-') {
        return Err("not a money amount in the C locale".to_string());
    }
    Ok(digits)
}

/// Bytes as hex digits, checked: the target's `UNHEX` turns them into bytes.
fn hex(digits: &str) -> Result<&str, String> {
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".to_string());
    }
    if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err("not hexadecimal".to_string());
    }
    Ok(digits)
}

/// Dates and timestamps the target can hold: years 1 to 9999 AD, no infinities. A timestamptz comes
/// in UTC (the session's TimeZone) and loses its `+00`.
fn date_time(text: &str) -> Result<&str, String> {
    if text.ends_with(" BC") || text.ends_with("infinity") {
        return Err("a BC date or an infinity is outside the target's date range".to_string());
    }
    if text.split('-').next().is_some_and(|year| year.len() > 4) {
        return Err("a year after 9999 is outside the target's date range".to_string());
    }
    Ok(text.strip_suffix("+00").unwrap_or(text))
}

/// `HH:MM:SS[.ffffff]±hh[:mm[:ss]]` to the UTC time of day.
fn time_utc(text: &str) -> Result<String, String> {
    let bad = || "not a time with time zone".to_string();
    let split = text.rfind(['+', '-']).ok_or_else(bad)?;
    let (time, offset) = text.split_at(split);
    let (clock, fraction) = time.split_once('.').map_or((time, ""), |(clock, fraction)| (clock, fraction));
    let seconds_of = |hms: &str| -> Result<i64, String> {
        hms.split(':')
            .try_fold((0i64, 0u32), |(total, n), part| {
                let value: i64 = part.parse().map_err(|_| bad())?;
                Ok((total + value * [3600, 60, 1][n as usize], n + 1))
            })
            .map(|(total, _)| total)
    };
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let local = seconds_of(clock)?;
    let utc = (local - sign * seconds_of(&offset[1..])?).rem_euclid(86_400);
    let mut out = format!("{:02}:{:02}:{:02}", utc / 3600, utc / 60 % 60, utc % 60);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Ok(out)
}

/// ISO 8601 intervals as PostgreSQL prints them (`P1Y2M3DT4H5M6.5S`, components may be negative)
/// to microseconds, counted as PostgreSQL's `EXTRACT(EPOCH FROM …)` counts: whole years of months as
/// 365.25 days, the remaining months as 30 days, a day as 24 hours.
fn interval_micros(text: &str) -> Result<i64, String> {
    let bad = || "not an ISO 8601 interval (IntervalStyle iso_8601)".to_string();
    let body = text.strip_prefix('P').ok_or_else(bad)?;
    let (mut months, mut micros, mut in_time, mut number) = (0i64, 0f64, false, String::new());
    for c in body.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' | '.' | '-' => number.push(c),
            unit => {
                let value: f64 = number.parse().map_err(|_| bad())?;
                number.clear();
                match (unit, in_time) {
                    ('Y', false) => months += 12 * value as i64,
                    ('M', false) => months += value as i64,
                    ('W', false) => micros += value * 7.0 * 86_400e6,
                    ('D', false) => micros += value * 86_400e6,
                    ('H', true) => micros += value * 3_600e6,
                    ('M', true) => micros += value * 60e6,
                    ('S', true) => micros += value * 1e6,
                    _ => return Err(bad()),
                }
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    let days_of_months = (months / 12) as f64 * 365.25 + (months % 12) as f64 * 30.0;
    Ok((micros + days_of_months * 86_400e6).round() as i64)
}

/// PostgreSQL's geometric text to WKT: point `(1,2)`, lseg `[(1,2),(3,4)]`, path `[(1,2),(3,4)]` or
/// `((1,2),(3,4))`, polygon `((0,0),(1,0),(1,1))`, box `(3,4),(1,2)`.
fn wkt(text: &str, shape: Shape) -> Result<String, String> {
    let numbers: Vec<&str> = text.split(['(', ')', '[', ']', ',']).filter(|part| !part.is_empty()).collect();
    if numbers.len() < 2 || !numbers.len().is_multiple_of(2) || numbers.iter().any(|n| n.parse::<f64>().is_err()) {
        return Err("not a geometric value".to_string());
    }
    let points: Vec<String> = numbers.chunks(2).map(|xy| format!("{} {}", xy[0], xy[1])).collect();
    Ok(match shape {
        Shape::Point => format!("POINT({})", points[0]),
        Shape::LineString => format!("LINESTRING({})", points.join(",")),
        Shape::Polygon => format!("POLYGON(({},{}))", points.join(","), points[0]),
        Shape::Box => {
            let [x1, y1, x2, y2] = numbers[..] else { return Err("a box has two corners".to_string()) };
            format!("POLYGON(({x1} {y1},{x2} {y1},{x2} {y2},{x1} {y2},{x1} {y1}))")
        }
    })
}

/// A PostgreSQL array literal (`{1,NULL,"a \"b\""}`, nested braces for more dimensions, an optional
/// `[lo:hi]=` bounds prefix) to a JSON array.
fn array_json(text: &str, element: ArrayElement) -> Result<String, String> {
    let body = match text.find("]={") {
        Some(at) if text.starts_with('[') => &text[at + 2..],
        _ => text,
    };
    let mut out = String::with_capacity(body.len() + 8);
    let mut chars = body.chars().peekable();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                out.push('[');
            }
            '}' => {
                depth = depth.checked_sub(1).ok_or("unbalanced braces")?;
                out.push(']');
            }
            ',' => out.push(','),
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next().ok_or("unterminated quoted element")? {
                        '\\' => value.push(chars.next().ok_or("dangling backslash")?),
                        '"' => break,
                        other => value.push(other),
                    }
                }
                json_element(&value, false, element, &mut out)?;
            }
            c if c.is_whitespace() => {}
            first => {
                let mut value = String::from(first);
                while let Some(&next) = chars.peek() {
                    if matches!(next, ',' | '}') {
                        break;
                    }
                    value.push(next);
                    chars.next();
                }
                json_element(value.trim_end(), true, element, &mut out)?;
            }
        }
    }
    if depth != 0 {
        return Err("unbalanced braces".to_string());
    }
    Ok(out)
}

fn json_element(value: &str, unquoted: bool, element: ArrayElement, out: &mut String) -> Result<(), String> {
    if unquoted && value.eq_ignore_ascii_case("NULL") {
        out.push_str("null");
        return Ok(());
    }
    match element {
        ArrayElement::Number => out.push_str(finite(value)?),
        ArrayElement::Boolean => out.push_str(match value {
            "t" => "true",
            "f" => "false",
            _ => return Err("an element is not a boolean".to_string()),
        }),
        ArrayElement::Text => {
            out.push_str(&serde_json::to_string(value).map_err(|error| error.to_string())?);
        }
    }
    Ok(())
}

/// A composite value, `(1,"a ""b""",)`: fields separated by commas, quoted when needed (a doubled
/// quote or a backslash escapes inside quotes), an empty unquoted field is NULL.
fn record_json(text: &str, fields: &[String]) -> Result<String, String> {
    let body = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or("not a composite value")?;
    let mut values: Vec<Option<String>> = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let mut value = String::new();
        let mut quoted = false;
        let mut more = false;
        while let Some(c) = chars.next() {
            match c {
                ',' => {
                    more = true;
                    break;
                }
                '"' => {
                    quoted = true;
                    loop {
                        match chars.next().ok_or("unterminated quoted field")? {
                            '\\' => value.push(chars.next().ok_or("dangling backslash")?),
                            '"' if chars.peek() == Some(&'"') => {
                                chars.next();
                                value.push('"');
                            }
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                }
                '\\' => value.push(chars.next().ok_or("dangling backslash")?),
                other => value.push(other),
            }
        }
        values.push((quoted || !value.is_empty()).then_some(value));
        if !more {
            break;
        }
    }
    if values.len() != fields.len() {
        return Err(format!("{} fields for a composite of {}", values.len(), fields.len()));
    }
    let object: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .zip(values)
        .map(|(field, value)| (field.clone(), value.map_or(serde_json::Value::Null, serde_json::Value::String)))
        .collect();
    Ok(serde_json::Value::Object(object).to_string())
}

/// An hstore, `"a"=>"1", "b"=>NULL`, to a JSON object of strings.
fn hstore_json(text: &str) -> Result<String, String> {
    let mut object = serde_json::Map::new();
    let mut chars = text.chars().peekable();
    let quoted = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Result<Option<String>, String> {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'"') {
            let word: String = std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphabetic())).collect();
            return if word.eq_ignore_ascii_case("NULL") { Ok(None) } else { Err("not an hstore".to_string()) };
        }
        chars.next();
        let mut value = String::new();
        loop {
            match chars.next().ok_or("unterminated hstore string")? {
                '\\' => value.push(chars.next().ok_or("dangling backslash")?),
                '"' => return Ok(Some(value)),
                other => value.push(other),
            }
        }
    };
    while chars.peek().is_some() {
        let key = quoted(&mut chars)?.ok_or("an hstore key is NULL")?;
        let arrow: String = chars.by_ref().skip_while(|c| c.is_whitespace()).take(2).collect();
        if arrow != "=>" {
            return Err("not an hstore".to_string());
        }
        let value = quoted(&mut chars)?;
        object.insert(key, value.map_or(serde_json::Value::Null, serde_json::Value::String));
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
    }
    Ok(serde_json::Value::Object(object).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(conversion: Conversion, text: &str) -> Result<String, String> {
        let mut out = Vec::new();
        write_field(&conversion, Some(text), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn text_is_escaped_for_load_data() {
        assert_eq!(field(Conversion::Text, "a\tb\nc\\d\re\0f").unwrap(), "a\\tb\\nc\\\\d\\re\\0f");
        assert_eq!(field(Conversion::Text, "").unwrap(), "");
        let mut out = Vec::new();
        write_field(&Conversion::Text, None, &mut out).unwrap();
        assert_eq!(out, b"\\N");
    }

    #[test]
    fn numbers_booleans_money() {
        assert_eq!(
            field(Conversion::Number, "123456789012345678901234567890.123").unwrap(),
            "123456789012345678901234567890.123"
        );
        assert!(field(Conversion::Number, "NaN").unwrap_err().contains("NaN has no equivalent"));
        assert!(field(Conversion::Number, "-Infinity").is_err());
        assert_eq!(field(Conversion::Boolean, "t").unwrap(), "1");
        assert_eq!(field(Conversion::Boolean, "f").unwrap(), "0");
        assert_eq!(field(Conversion::Money, "-$1,234.56").unwrap(), "-1234.56");
    }

    #[test]
    fn bytes_travel_as_hex() {
        let mut out = Vec::new();
        write_field(&Conversion::Bytes, Some("\\x00ff5c09"), &mut out).unwrap();
        assert_eq!(out, b"00ff5c09");
        assert!(field(Conversion::Bytes, "\\x0g").unwrap_err().contains("not hexadecimal"));
        assert!(field(Conversion::Bytes, "\\x0").unwrap_err().contains("odd number"));
        let mut out = Vec::new();
        write_field(&Conversion::UuidBytes, Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380b11"), &mut out).unwrap();
        assert_eq!(out, b"a0eebc999c0b4ef8bb6d6bb9bd380b11");
        assert_eq!(load_expression(&Conversion::Bytes, "@v").as_deref(), Some("UNHEX(@v)"));
    }

    #[test]
    fn times() {
        assert_eq!(field(Conversion::DateTime, "2017-08-15 15:00:00+00").unwrap(), "2017-08-15 15:00:00");
        assert_eq!(field(Conversion::DateTime, "1969-12-31 23:59:59.999999").unwrap(), "1969-12-31 23:59:59.999999");
        assert!(field(Conversion::DateTime, "0044-03-15 BC").is_err());
        assert!(field(Conversion::DateTime, "infinity").is_err());
        assert!(field(Conversion::DateTime, "10000-01-01").is_err());
        assert_eq!(field(Conversion::TimeUtc, "12:00:00.5+03").unwrap(), "09:00:00.5");
        assert_eq!(field(Conversion::TimeUtc, "01:00:00-05:30").unwrap(), "06:30:00");
        assert_eq!(field(Conversion::TimeUtc, "01:00:00+02").unwrap(), "23:00:00");
        // 1 year = 365.25 days, 2 months = 60 days, as EXTRACT(EPOCH) counts.
        assert_eq!(field(Conversion::IntervalMicros, "P1Y2M3DT4H5M6.5S").unwrap(), "37015506500000");
        assert_eq!(field(Conversion::IntervalMicros, "PT-1S").unwrap(), "-1000000");
        assert!(field(Conversion::IntervalMicros, "1 day").is_err());
    }

    #[test]
    fn geometry_to_wkt() {
        let geometry = |shape, text| field(Conversion::Geometry(shape), text);
        assert_eq!(
            geometry(Shape::Point, "(129.77099609375,62.093299865722656)").unwrap(),
            "POINT(129.77099609375 62.093299865722656)"
        );
        assert_eq!(geometry(Shape::LineString, "[(1,2),(3,4)]").unwrap(), "LINESTRING(1 2,3 4)");
        assert_eq!(geometry(Shape::LineString, "((1,2),(3,4))").unwrap(), "LINESTRING(1 2,3 4)");
        assert_eq!(geometry(Shape::Box, "(3,4),(1,2)").unwrap(), "POLYGON((3 4,1 4,1 2,3 2,3 4))");
        assert_eq!(geometry(Shape::Polygon, "((0,0),(1,0),(1,1))").unwrap(), "POLYGON((0 0,1 0,1 1,0 0))");
        assert!(geometry(Shape::Point, "(1,x)").is_err());
        assert_eq!(load_expression(&Conversion::Geometry(Shape::Point), "@c1").unwrap(), "ST_GeomFromText(@c1)");
    }

    #[test]
    fn arrays_to_json() {
        assert_eq!(field(Conversion::Array(ArrayElement::Number), "{1,NULL,-2.5}").unwrap(), "[1,null,-2.5]");
        assert_eq!(field(Conversion::Array(ArrayElement::Number), "{{1,2},{3,4}}").unwrap(), "[[1,2],[3,4]]");
        assert_eq!(field(Conversion::Array(ArrayElement::Boolean), "{t,f}").unwrap(), "[true,false]");
        assert_eq!(
            field(Conversion::Array(ArrayElement::Text), r#"{plain,"with space","q\"uote","NULL",NULL,"é𝄞"}"#).unwrap(),
            r#"["plain","with space","q\\"uote","NULL",null,"é𝄞"]"#
        );
        assert_eq!(field(Conversion::Array(ArrayElement::Number), "[0:1]={7,8}").unwrap(), "[7,8]");
        assert_eq!(field(Conversion::Array(ArrayElement::Number), "{}").unwrap(), "[]");
        assert!(field(Conversion::Array(ArrayElement::Number), "{1,NaN}").is_err());
    }

    #[test]
    fn records_and_hstores_to_json_objects() {
        let fields = vec!["n".to_string(), "s".to_string(), "missing".to_string(), "q".to_string()];
        assert_eq!(
            field(Conversion::Record { fields }, r#"(1,"a b",,"x""y")"#).unwrap(),
            r#"{"missing":null,"n":"1","q":"x\\"y","s":"a b"}"#
        );
        let fields = vec!["a".to_string(), "b".to_string()];
        assert_eq!(field(Conversion::Record { fields }, "(,)").unwrap(), r#"{"a":null,"b":null}"#);
        assert_eq!(field(Conversion::Hstore, r#""a"=>"1", "b"=>NULL"#).unwrap(), r#"{"a":"1","b":null}"#);
        assert!(field(Conversion::Hstore, "garbage").is_err());
    }
}
