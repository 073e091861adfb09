//! Which tables move: `--include` and `--exclude` patterns over `schema.table` (`*` any run of
//! characters, `?` one; a pattern without a dot names tables of every selected schema), applied to
//! the catalog as soon as it is read, so the plan, the snapshot, the publication (and so the stream),
//! verify and the report all see the same tables. A pattern that matches nothing is refused: a
//! misspelt exclusion would otherwise move the table it meant to leave.
//!
//! Views are selected by the same patterns; triggers and owned sequences go with their table. A
//! foreign key or a view that reads a table left out is reported as not migrated by the plan.

use passerelle_model::schema::{QualifiedName, Schema};

/// The patterns, normalised: `--include '!x'` is `--exclude x`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patterns {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Patterns {
    pub fn new(include: &[String], exclude: &[String]) -> Patterns {
        let mut patterns = Patterns { include: Vec::new(), exclude: exclude.to_vec() };
        for pattern in include {
            match pattern.strip_prefix('!') {
                Some(excluded) => patterns.exclude.push(excluded.to_string()),
                None => patterns.include.push(pattern.clone()),
            }
        }
        patterns
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    fn keeps(&self, name: &QualifiedName) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| matches(p, name)))
            && !self.exclude.iter().any(|p| matches(p, name))
    }

    /// Leaves out of `schema` the tables and views the patterns do not keep, with their triggers and
    /// owned sequences.
    pub fn apply(&self, schema: &mut Schema) -> anyhow::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let names: Vec<&QualifiedName> =
            schema.tables.iter().map(|t| &t.name).chain(schema.views.iter().map(|v| &v.name)).collect();
        for (flag, pattern) in
            self.include.iter().map(|p| ("--include", p)).chain(self.exclude.iter().map(|p| ("--exclude", p)))
        {
            if !names.iter().any(|name| matches(pattern, name)) {
                anyhow::bail!("{flag} {pattern} matches no table or view of the selected schemas");
            }
        }
        schema.left_out = names.into_iter().filter(|name| !self.keeps(name)).cloned().collect();
        schema.tables.retain(|table| self.keeps(&table.name));
        schema.views.retain(|view| self.keeps(&view.name));
        let kept = |name: &QualifiedName| schema.tables.iter().any(|table| table.name == *name);
        let triggers = schema.triggers.iter().filter(|trigger| kept(&trigger.table)).cloned().collect();
        let sequences = schema
            .sequences
            .iter()
            .filter(|sequence| sequence.owned_by.as_ref().is_none_or(|(table, _)| kept(table)))
            .cloned()
            .collect();
        schema.triggers = triggers;
        schema.sequences = sequences;
        Ok(())
    }
}

/// `schema.table` against a pattern with `*` and `?`; a pattern without a dot against the table alone.
fn matches(pattern: &str, name: &QualifiedName) -> bool {
    if pattern.contains('.') {
        glob(pattern.as_bytes(), format!("{}.{}", name.schema, name.name).as_bytes())
    } else {
        glob(pattern.as_bytes(), name.name.as_bytes())
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> QualifiedName {
        let (schema, name) = text.split_once('.').unwrap();
        QualifiedName { schema: schema.into(), name: name.into() }
    }

    #[test]
    fn patterns_keep_and_leave_out_by_glob() {
        let patterns = Patterns::new(&["bookings.*".into(), "!bookings.boarding_passes".into()], &["*_log".into()]);
        assert!(patterns.keeps(&name("bookings.tickets")));
        assert!(!patterns.keeps(&name("bookings.boarding_passes")));
        assert!(!patterns.keeps(&name("bookings.audit_log")));
        assert!(!patterns.keeps(&name("public.tickets")));
        assert!(matches("bookings.t?ckets", &name("bookings.tickets")));
        assert!(!matches("bookings.t?ckets", &name("bookings.tckets")));
    }
}
