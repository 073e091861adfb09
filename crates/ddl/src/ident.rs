//! Target identifiers: shortened to MySQL's 64-character limit and always quoted.
//!
//! Quoting every name, not only reserved words, means no list of reserved words to keep in step with
//! two servers' versions. Shortening is deterministic (a prefix and a hash of the full name), so the
//! DDL, the view text and the data writer all arrive at the same name without sharing state.

use std::borrow::Cow;

/// MySQL and MariaDB limit table, column, index and constraint names to 64 characters.
/// <https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html>
pub const MAX_CHARS: usize = 64;

/// The target name for a PostgreSQL name: itself when it fits, else its first 55 characters, `_` and
/// 8 hex digits of a hash of the whole name (PostgreSQL allows 63 bytes, which may be 63 characters
/// of Latin, so only names built by `--map` or by us can overflow, but those do).
pub fn shorten(name: &str) -> Cow<'_, str> {
    if name.chars().count() <= MAX_CHARS {
        return Cow::Borrowed(name);
    }
    let prefix: String = name.chars().take(MAX_CHARS - 9).collect();
    Cow::Owned(format!("{prefix}_{:08x}", fnv1a(name)))
}

/// FNV-1a, 32 bits: stable across releases and platforms, unlike `std`'s hasher.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// The shortened name in backticks, with backticks inside doubled.
pub fn quote(name: &str) -> String {
    format!("`{}`", shorten(name).replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_stay_and_long_ones_shorten_deterministically() {
        assert_eq!(shorten("flights"), "flights");
        let long = "a_rather_long_constraint_name_that_postgres_allows_but_mysql_does_not_x";
        let short = shorten(long);
        assert_eq!(short.chars().count(), MAX_CHARS);
        assert_eq!(short, shorten(long));
        assert_eq!(short, "a_rather_long_constraint_name_that_postgres_allows_but__41df8207");
        assert_ne!(short, shorten(&format!("{long}y")));
    }

    #[test]
    fn quoting_doubles_backticks() {
        assert_eq!(quote("order"), "`order`");
        assert_eq!(quote("we`ird"), "`we``ird`");
    }
}
