//! The canonical text of a JSON document, so that documents that mean the same hash the same:
//! PostgreSQL's jsonb reorders keys and respaces, MariaDB's JSON keeps the text as written, MySQL's
//! JSON reorders differently, and none of them agree on `1.50` against `1.5`.
//!
//! Canonical: no whitespace; object keys sorted by their bytes, the last of duplicate keys kept (as
//! jsonb does); strings with only `"`, `\` and control characters escaped; numbers as exact
//! decimals without redundant zeros (`1.50`, `1.5` and `15e-1` are all `1.5`). Numbers are never
//! converted to a float, which would make `1.00000000000000000001` equal to `1`.

use std::collections::BTreeMap;

/// Nesting beyond this is refused rather than risking the stack: no real document goes this deep.
const MAX_DEPTH: usize = 512;

/// The canonical text, or `None` when `text` is not one JSON value.
pub fn canonical(text: &str) -> Option<String> {
    let mut parser = Parser { bytes: text.as_bytes(), pos: 0 };
    let mut out = String::with_capacity(text.len());
    parser.value(&mut out, 0)?;
    parser.skip_whitespace();
    (parser.pos == parser.bytes.len()).then_some(out)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_whitespace(&mut self) {
        while self.bytes.get(self.pos).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn value(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(out, depth),
            b'[' => self.array(out, depth),
            b'"' => {
                let text = self.string()?;
                write_string(out, &text);
                Some(())
            }
            b't' => self.literal(out, "true"),
            b'f' => self.literal(out, "false"),
            b'n' => self.literal(out, "null"),
            _ => self.number(out),
        }
    }

    fn literal(&mut self, out: &mut String, word: &str) -> Option<()> {
        if !self.bytes[self.pos..].starts_with(word.as_bytes()) {
            return None;
        }
        self.pos += word.len();
        out.push_str(word);
        Some(())
    }

    fn object(&mut self, out: &mut String, depth: usize) -> Option<()> {
        self.expect(b'{')?;
        let mut members = BTreeMap::new();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                self.expect(b':')?;
                let mut value = String::new();
                self.value(&mut value, depth + 1)?;
                members.insert(key, value);
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        out.push('{');
        for (idx, (key, value)) in members.iter().enumerate() {
            if idx > 0 {
                out.push(',');
            }
            write_string(out, key);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        Some(())
    }

    fn array(&mut self, out: &mut String, depth: usize) -> Option<()> {
        self.expect(b'[')?;
        out.push('[');
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                self.value(out, depth + 1)?;
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        out.push(',');
                    }
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        out.push(']');
        Some(())
    }

    /// A string literal, decoded.
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut text = String::new();
        loop {
            let start = self.pos;
            while self.bytes.get(self.pos).is_some_and(|b| *b != b'"' && *b != b'\\') {
                self.pos += 1;
            }
            text.push_str(std::str::from_utf8(&self.bytes[start..self.pos]).ok()?);
            match self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(text);
                }
                _ => {
                    let escape = *self.bytes.get(self.pos + 1)?;
                    self.pos += 2;
                    match escape {
                        b'"' => text.push('"'),
                        b'\\' => text.push('\\'),
                        b'/' => text.push('/'),
                        b'b' => text.push('\u{8}'),
                        b'f' => text.push('\u{c}'),
                        b'n' => text.push('\n'),
                        b'r' => text.push('\r'),
                        b't' => text.push('\t'),
                        b'u' => text.push(self.unicode_escape()?),
                        _ => return None,
                    }
                }
            }
        }
    }

    /// The four hex digits after `\u`, and a low surrogate's after it when they make a pair.
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return char::from_u32(high);
        }
        if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
            return None;
        }
        self.pos += 2;
        let low = self.hex4()?;
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + low.checked_sub(0xDC00)?)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.bytes.get(self.pos..self.pos + 4)?).ok()?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    fn number(&mut self, out: &mut String) -> Option<()> {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
            self.pos += 1;
        }
        out.push_str(&canonical_number(std::str::from_utf8(&self.bytes[start..self.pos]).ok()?)?);
        Some(())
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number as an exact decimal without redundant zeros; huge exponents stay in `e` form so
/// that `1e999999` does not become a million digits.
pub fn canonical_number(text: &str) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(idx) => (&rest[..idx], rest[idx + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    // The value is 0.DIGITS × 10^point.
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0');
    if significant.is_empty() {
        return Some("0".to_string());
    }
    let point = i64::try_from(whole.len()).ok()? - i64::try_from(leading).ok()? + exponent;
    let n_digits = i64::try_from(significant.len()).ok()?;
    let sign = if negative { "-" } else { "" };
    const PLAIN: i64 = 1000;
    let body = if !(-PLAIN..=PLAIN).contains(&point) {
        format!("0.{significant}e{point}")
    } else if point <= 0 {
        format!("0.{}{significant}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= n_digits {
        format!("{significant}{}", "0".repeat((point - n_digits) as usize))
    } else {
        let split = point as usize;
        format!("{}.{}", &significant[..split], &significant[split..])
    };
    Some(format!("{sign}{body}"))
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    fn check(input: &str, expected: Expect) {
        expected.assert_eq(&canonical(input).unwrap_or_else(|| "<invalid>".to_string()));
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        check(
            r#"{"b": 1, "a": [1, 2, {"d": null, "c": true}]}"#,
            expect![[r#"{"a":[1,2,{"c":true,"d":null}],"b":1}"#]],
        );
        check(" {\"a\":1,\n\t\"b\" :2 } ", expect![[r#"{"a":1,"b":2}"#]]);
        check(r#"{"a": 1, "a": 2}"#, expect![[r#"{"a":2}"#]]);
    }

    #[test]
    fn numbers_compare_as_decimals() {
        check(
            "[1.50, 1.5, 15e-1, 0.000, -0, 100, 1e2, 1E+2, 0.0012, 12.5e3, 1e-7]",
            expect![["[1.5,1.5,1.5,0,0,100,100,100,0.0012,12500,0.0000001]"]],
        );
        check("1.00000000000000000001", expect!["1.00000000000000000001"]);
        check("1e99999", expect!["0.1e100000"]);
    }

    #[test]
    fn strings_are_decoded_and_escaped_minimally() {
        check(r#""caf\u00e9 \/ \"q\" \ud83d\ude00 \n""#, expect![[r#""café / \"q\" 😀 \u000a""#]]);
        check(r#""café""#, expect![[r#""café""#]]);
        check(r#""x ""#, expect![[r#""x ""#]]);
    }

    #[test]
    fn invalid_documents_are_refused() {
        for text in ["", "{", r#"{"a" 1}"#, "[1,]", "01x", "nul", r#""\ud800""#, "1 2"] {
            assert_eq!(canonical(text), None, "{text:?}");
        }
    }
}
