//! The row hash and the table checksum, written once in PostgreSQL SQL, once in MySQL SQL and once
//! in Rust, so that any of the three can compute what the others do.
//!
//! A field is `<byte length>:<canonical text>`, or `-` for NULL: the length prefix keeps
//! `("ab", "c")` and `("a", "bc")` apart, and `-` has no colon, so NULL is not the empty string.
//! A row's hash is the SHA-256 of its fields concatenated in column order; when some columns are
//! canonicalised in Rust, it is the SHA-256 of the in-database part's hex followed by those fields.
//! SHA-256, not MD5: MySQL 9 has neither `MD5()` nor `SHA1()`; `SHA2()` is in MySQL and MariaDB alike.
//!
//! A table's checksum is its row count and the sum, modulo 2^64, of the first 64 bits of every row
//! hash. A sum does not depend on row order, and unlike XOR a duplicated row changes it.

use sha2::{Digest, Sha256};

/// A row count and the sum of row-hash slices: what is compared for a table or a key range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    pub n_rows: u64,
    pub sum: u64,
}

impl Checksum {
    /// From the text of `count(*)` and `sum(...)`: PostgreSQL sums signed slices, MySQL unsigned
    /// ones, and both are exact, so reducing modulo 2^64 makes them agree. An empty sum is NULL.
    pub fn from_sql(count: Option<&str>, sum: Option<&str>) -> Option<Checksum> {
        let n_rows = count?.parse().ok()?;
        let sum = match sum {
            Some(text) => text.parse::<i128>().ok()?.rem_euclid(1 << 64) as u64,
            None => 0,
        };
        Some(Checksum { n_rows, sum })
    }

    pub fn add_row(&mut self, row_hash: &str) {
        self.n_rows += 1;
        self.sum = self.sum.wrapping_add(slice(row_hash));
    }

    /// The checksum of the rows in `self` that are not in `part`.
    pub fn minus(self, part: Checksum) -> Checksum {
        Checksum { n_rows: self.n_rows.saturating_sub(part.n_rows), sum: self.sum.wrapping_sub(part.sum) }
    }
}

/// The first 64 bits of a hex row hash.
fn slice(row_hash: &str) -> u64 {
    row_hash.get(..16).and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0)
}

pub fn pg_field(text: &str) -> String {
    format!("coalesce(octet_length({text})::text || ':' || {text}, '-')")
}

/// Bytes, not characters: `LENGTH` of a binary string, as PostgreSQL's `octet_length` of UTF-8.
/// Binary also spares CONCAT from "illegal mix of collations" between columns.
pub fn my_field(text: &str) -> String {
    format!("COALESCE(CONCAT(LENGTH(CAST({text} AS BINARY)), ':', CAST({text} AS BINARY)), '-')")
}

pub fn pg_hash(fields: &[String]) -> String {
    match fields {
        [] => "encode(sha256(''::bytea), 'hex')".to_string(),
        fields => format!("encode(sha256(convert_to({}, 'UTF8')), 'hex')", fields.join(" || ")),
    }
}

pub fn my_hash(fields: &[String]) -> String {
    match fields {
        [] => "SHA2('', 256)".to_string(),
        fields => format!("SHA2(CONCAT({}), 256)", fields.join(", ")),
    }
}

pub fn pg_slice(hash: &str) -> String {
    format!("('x' || substr({hash}, 1, 16))::bit(64)::bigint")
}

pub fn my_slice(hash: &str) -> String {
    format!("CAST(CONV(SUBSTR({hash}, 1, 16), 16, 10) AS UNSIGNED)")
}

/// A field as Rust writes it, the same bytes as [`pg_field`] and [`my_field`].
pub fn field(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => {
            out.extend_from_slice(text.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(text.as_bytes());
        }
        None => out.push(b'-'),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The row hash when some fields are canonicalised in Rust: `in_database` is the hex hash of the
/// others, as the database computed it.
pub fn combine(in_database: &str, client_fields: &[Option<String>]) -> String {
    if client_fields.is_empty() {
        return in_database.to_string();
    }
    let mut bytes = in_database.as_bytes().to_vec();
    for text in client_fields {
        field(&mut bytes, text.as_deref());
    }
    sha256_hex(&bytes)
}

/// The hash of all-in-database fields computed in Rust, for rows read as canonical text.
pub fn hash_fields(texts: &[Option<String>]) -> String {
    let mut bytes = Vec::new();
    for text in texts {
        field(&mut bytes, text.as_deref());
    }
    sha256_hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_from_both_engines_agree_modulo_2_64() {
        // -1 as a signed slice is 2^64 - 1 unsigned.
        let pg = Checksum::from_sql(Some("2"), Some("-1")).unwrap();
        let my = Checksum::from_sql(Some("2"), Some("18446744073709551615")).unwrap();
        assert_eq!(pg, my);
        assert_eq!(Checksum::from_sql(Some("0"), None), Some(Checksum::default()));
    }

    #[test]
    fn a_duplicated_row_changes_the_checksum() {
        let hash = sha256_hex(b"1:a");
        let mut once = Checksum::default();
        once.add_row(&hash);
        let mut twice = once;
        twice.add_row(&hash);
        assert_ne!(once, twice);
        assert_eq!(twice.minus(once), once);
    }

    #[test]
    fn fields_keep_null_empty_and_boundaries_apart() {
        let hash =
            |texts: &[Option<&str>]| hash_fields(&texts.iter().map(|t| t.map(str::to_string)).collect::<Vec<_>>());
        assert_ne!(hash(&[None]), hash(&[Some("")]));
        assert_ne!(hash(&[Some("ab"), Some("c")]), hash(&[Some("a"), Some("bc")]));
        // The same bytes as PostgreSQL's sha256(convert_to(octet_length('é')::text || ':' || 'é', 'UTF8')).
        assert_eq!(hash(&[Some("é")]), "2f23c71856587c2a6ffdb64f0e11e9940b35da318947308f6a02ee01898e6107");
    }
}
