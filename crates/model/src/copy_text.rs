//! PostgreSQL's COPY text format, the one place that reads it: the snapshot's rows travel in it, from
//! `pg`'s copy workers through Kafka (one record a batch of lines) to the sink, which turns it into
//! the target's load input.
//!
//! A line is one row; columns are separated by a tab; `\N` alone is NULL; a backslash escapes the
//! rest (`\b \f \n \r \t \v \\`, `\ooo` octal, `\xhh` hex, any other character stands for itself).
//! A raw tab or newline is always a separator, since values escape theirs. Errors never quote a line:
//! it holds row values.
//! <https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2>

use std::borrow::Cow;

/// The lines of `text`, each without its newline; the text after the last newline, if any, is not a line.
pub fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        let newline = memchr::memchr(b'\n', rest)?;
        let line = &rest[..newline];
        rest = &rest[newline + 1..];
        Some(line)
    })
}

/// How many lines (rows) `text` holds.
pub fn count_lines(text: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', text).count()
}

/// The raw fields of one line, escapes left as they are.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    line.split(|&byte| byte == b'\t')
}

/// Whether a raw field is NULL.
pub fn is_null(field: &[u8]) -> bool {
    field == b"\\N"
}

/// One line, without its newline, as `n_columns` values handed to `push` in order (`None` for NULL);
/// an error when the line has another number of columns or is not UTF-8.
pub fn parse_line(line: &[u8], n_columns: usize, mut push: impl FnMut(Option<Cow<'_, str>>)) -> Result<(), String> {
    let text = std::str::from_utf8(line).map_err(|_| "a row is not valid UTF-8".to_string())?;
    if n_columns == 0 {
        if !text.is_empty() {
            return Err("a row of a table without columns has a value".to_string());
        }
        return Ok(());
    }
    let mut n_values = 0;
    for field in text.split('\t') {
        if n_values == n_columns {
            return Err(format!("a row has more than the table's {n_columns} columns"));
        }
        match field {
            "\\N" => push(None),
            field if !field.contains('\\') => push(Some(Cow::Borrowed(field))),
            field => push(Some(Cow::Owned(unescape(field.as_bytes())?))),
        }
        n_values += 1;
    }
    if n_values != n_columns {
        return Err(format!("a row has {n_values} columns, the table {n_columns}"));
    }
    Ok(())
}

/// A field's value, its escapes undone.
pub fn unescape(field: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let Some(offset) = memchr::memchr(b'\\', &field[i..]) else {
            out.extend_from_slice(&field[i..]);
            break;
        };
        out.extend_from_slice(&field[i..i + offset]);
        i += offset + 1;
        let Some(&escaped) = field.get(i) else {
            return Err("a value ends with a lone backslash".to_string());
        };
        i += 1;
        let byte = match escaped {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'0'..=b'7' => {
                // Up to three octal digits; PostgreSQL keeps the low eight bits.
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(&digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                (value & 0xff) as u8
            }
            b'x' if field.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match field.get(i).and_then(|&digit| (digit as char).to_digit(16)) {
                        Some(digit) => {
                            value = value * 16 + digit as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                value
            }
            other => other,
        };
        out.push(byte);
    }
    String::from_utf8(out).map_err(|_| "an escaped value is not valid UTF-8".to_string())
}

/// Whether a raw field reads the same under MySQL's `LOAD DATA` escapes (`FIELDS ESCAPED BY '\\'`)
/// as under COPY's: its escapes are only those both read alike (`\\ \b \n \r \t`, and `\N` alone).
/// `\f`, `\v`, octal and hex escapes differ (MySQL reads `\f` as `f` and `\0` as NUL).
pub fn same_under_load_data(field: &[u8]) -> bool {
    let mut rest = field;
    while let Some(at) = memchr::memchr(b'\\', rest) {
        match rest.get(at + 1) {
            Some(b'\\' | b'b' | b'n' | b'r' | b't') => rest = &rest[at + 2..],
            Some(b'N') if field == b"\\N" => return true,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8], n_columns: usize) -> Result<Vec<Option<String>>, String> {
        let mut row = Vec::new();
        parse_line(line, n_columns, |value| row.push(value.map(Cow::into_owned)))?;
        Ok(row)
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn fields_nulls_and_empty_strings() {
        assert_eq!(parse(b"1\t\\N\t\tx", 4).unwrap(), vec![some("1"), None, some(""), some("x")]);
        // An escaped backslash followed by N is the two-character text, not NULL.
        assert_eq!(parse(b"\\\\N", 1).unwrap(), vec![some("\\N")]);
        assert_eq!(parse(b"", 1).unwrap(), vec![some("")]);
        assert_eq!(parse(b"", 0).unwrap(), Vec::<Option<String>>::new());
    }

    #[test]
    fn escapes() {
        let line = b"a\\tb\\nc\\\\d\\re\\bf\\fg\\vh\\101\\x41\\x4\\q\\0";
        assert_eq!(parse(line, 1).unwrap(), vec![some("a\tb\nc\\d\re\x08f\x0cg\x0bhAA\x04q\0")]);
        // Octal escapes may spell multi-byte UTF-8, one byte at a time.
        assert_eq!(parse(b"\\360\\237\\230\\200", 1).unwrap(), vec![some("😀")]);
        assert_eq!(parse("ü😀".as_bytes(), 1).unwrap(), vec![some("ü😀")]);
    }

    #[test]
    fn malformed_rows_are_errors_without_values() {
        let error = parse(b"secret\tx", 1).unwrap_err();
        assert!(!error.contains("secret"), "{error}");
        assert!(parse(b"x", 2).is_err());
        assert!(parse(b"x\\", 1).is_err());
        assert!(parse(b"\\377", 1).is_err());
        assert!(parse(b"\xff", 1).is_err());
    }

    #[test]
    fn lines_and_fields() {
        let text = b"1\ta\n2\t\\N\npartial";
        assert_eq!(count_lines(text), 2);
        let lines: Vec<&[u8]> = lines(text).collect();
        assert_eq!(lines, [&b"1\ta"[..], &b"2\t\\N"[..]]);
        let fields: Vec<&[u8]> = fields(lines[1]).collect();
        assert_eq!(fields, [&b"2"[..], &b"\\N"[..]]);
        assert!(is_null(fields[1]) && !is_null(b"\\\\N"));
    }

    #[test]
    fn which_escapes_load_data_reads_alike() {
        for same in [&b"plain"[..], b"a\\\\b", b"\\n\\r\\t\\b", b"\\N", b""] {
            assert!(same_under_load_data(same), "{}", String::from_utf8_lossy(same));
        }
        for differs in [&b"\\f"[..], b"\\v", b"\\101", b"\\x41", b"a\\N", b"\\0"] {
            assert!(!same_under_load_data(differs), "{}", String::from_utf8_lossy(differs));
        }
    }
}
