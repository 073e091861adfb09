//! The canonical forms that SQL shared by both engines cannot produce, computed from each engine's
//! raw text: see [`crate::canonical`] for which columns take this path and why.

use passerelle_model::target::Shape;

use crate::canonical::Client;
use crate::json;

/// The canonical text of `raw` (never NULL: NULLs do not get here). Text that does not parse is
/// kept as it is, behind a `!` that no canonical form starts with, so that it can still compare
/// equal to the same unparseable text on the other side but never to a parsed value.
pub fn canonical(client: Client, raw: &str) -> String {
    let parsed = match client {
        Client::Json => json::canonical(raw),
        Client::Float32 => raw.trim().parse::<f32>().ok().map(|value| float(f64::from(value), value.to_string())),
        Client::Float64 => raw.trim().parse::<f64>().ok().map(|value| float(value, value.to_string())),
        Client::Shape(shape) => coordinates(raw).map(|points| render_shape(shape, points)),
    };
    parsed.unwrap_or_else(|| format!("!{raw}"))
}

/// Rust prints the shortest decimal that reads back as the same float, never in exponent form;
/// `-0` and `0` are one value to both databases' `=`, so they are one text here.
fn float(value: f64, text: String) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    text
}

/// Every number in a geometric text, PostgreSQL's `((0,0),(1,1))` or MySQL's `POLYGON((0 0,1 1))`,
/// paired as (x, y).
fn coordinates(raw: &str) -> Option<Vec<(f64, f64)>> {
    let mut numbers = Vec::new();
    let bytes = raw.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        let starts_number = bytes[pos].is_ascii_digit() || bytes[pos] == b'-' || bytes[pos] == b'.';
        if !starts_number {
            pos += 1;
            continue;
        }
        let start = pos;
        while pos < bytes.len() && matches!(bytes[pos], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
            pos += 1;
        }
        numbers.push(raw[start..pos].parse::<f64>().ok()?);
    }
    if numbers.is_empty() || numbers.len() % 2 != 0 {
        return None;
    }
    Some(numbers.chunks(2).map(|pair| (pair[0], pair[1])).collect())
}

fn render_shape(shape: Shape, mut points: Vec<(f64, f64)>) -> String {
    match shape {
        Shape::Point | Shape::LineString => {}
        // MySQL repeats the first point at the end of the ring, PostgreSQL does not.
        Shape::Polygon => {
            if points.len() > 1 && points.first() == points.last() {
                points.pop();
            }
        }
        // PostgreSQL keeps two corners, MySQL a five-point polygon: both reduce to min and max.
        Shape::Box => {
            let fold = |pick: fn(f64, f64) -> f64, start: f64| {
                points.iter().fold((start, start), |(x, y), point| (pick(x, point.0), pick(y, point.1)))
            };
            points = vec![fold(f64::min, f64::INFINITY), fold(f64::max, f64::NEG_INFINITY)];
        }
    }
    points
        .iter()
        .map(|(x, y)| format!("{} {}", float(*x, x.to_string()), float(*y, y.to_string())))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_agree_across_engine_spellings() {
        for (postgres, mysql) in [("1e-05", "0.00001"), ("1e+20", "1e20"), ("-0", "0"), ("0.1", "0.1")] {
            assert_eq!(canonical(Client::Float64, postgres), canonical(Client::Float64, mysql), "{postgres}");
        }
        assert_eq!(canonical(Client::Float32, "0.1"), "0.1");
        assert_eq!(canonical(Client::Float32, "0.100000001"), "0.1");
        assert_ne!(canonical(Client::Float64, "0.1"), canonical(Client::Float64, "0.10000000000000002"));
        assert_eq!(canonical(Client::Float64, "oops"), "!oops");
    }

    #[test]
    fn shapes_agree_across_engine_spellings() {
        let same = |shape, postgres: &str, mysql: &str| {
            assert_eq!(canonical(Client::Shape(shape), postgres), canonical(Client::Shape(shape), mysql));
        };
        same(Shape::Point, "(1.5,-2)", "POINT(1.5 -2)");
        same(Shape::LineString, "[(0,0),(1e-05,1)]", "LINESTRING(0 0,0.00001 1)");
        same(Shape::Polygon, "((0,0),(1,1),(1,0))", "POLYGON((0 0,1 1,1 0,0 0))");
        same(Shape::Box, "(2,3),(0,1)", "POLYGON((0 1,2 1,2 3,0 3,0 1))");
        assert_eq!(canonical(Client::Shape(Shape::Point), "(1.5,-2)"), "1.5 -2");
    }
}
