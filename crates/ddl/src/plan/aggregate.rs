//! User-defined aggregates of the `group_concat` kind that schemas ported from MySQL carry
//! (`CREATE AGGREGATE group_concat(text) (SFUNC = _group_concat, STYPE = text)` over a SQL function
//! `CASE WHEN $2 IS NULL THEN $1 WHEN $1 IS NULL THEN $2 ELSE $1 || ', ' || $2 END`): a view calling
//! one gets MySQL's own `GROUP_CONCAT(x SEPARATOR ', ')`, which skips NULLs and gives NULL over no
//! rows just as the aggregate does.

use std::collections::HashMap;

use passerelle_model::schema::{QualifiedName, Routine};

use super::Planner;
use crate::expr::{self, Expr};

/// The separator of a transition function `CASE WHEN $2 IS NULL THEN $1 WHEN $1 IS NULL THEN $2
/// ELSE $1 || 'sep' || $2 END` (its two WHENs in either order).
fn concat_separator(body: &str) -> Option<String> {
    let text = body.trim().trim_end_matches(';').replace("$1", "passerelle_a1").replace("$2", "passerelle_a2");
    let text = text.trim();
    let select = text.get(..6).filter(|word| word.eq_ignore_ascii_case("select"))?;
    let Ok(Expr::Case { operand: None, whens, otherwise: Some(otherwise) }) = expr::parse(&text[select.len()..]) else {
        return None;
    };
    let arg = |expr: &Expr, n: &str| matches!(expr, Expr::Column(parts) if parts == &[format!("passerelle_{n}")]);
    let null_check = |(condition, result): &(Expr, Expr), null: &str, other: &str| {
        matches!(condition, Expr::IsNull(inner, false) if arg(inner, null)) && arg(result, other)
    };
    let whens_match = match whens.as_slice() {
        [first, second] => {
            (null_check(first, "a2", "a1") && null_check(second, "a1", "a2"))
                || (null_check(first, "a1", "a2") && null_check(second, "a2", "a1"))
        }
        _ => false,
    };
    let Expr::Binary(left, op, right) = otherwise.as_ref() else { return None };
    let Expr::Binary(first, inner_op, separator) = left.as_ref() else { return None };
    let Expr::Str(separator) = strip_casts(separator) else { return None };
    let shape = whens_match && op == "||" && inner_op == "||" && arg(first, "a1") && arg(right, "a2");
    shape.then(|| separator.clone())
}

fn strip_casts(expr: &Expr) -> &Expr {
    match expr {
        Expr::Cast(inner, _) => strip_casts(inner),
        other => other,
    }
}

impl Planner<'_> {
    /// The aggregates of the selected schemas that are GROUP_CONCAT with a separator, by name.
    pub(super) fn concat_aggregates(&self) -> HashMap<QualifiedName, String> {
        let by_name = |name: &QualifiedName| -> Option<&Routine> {
            self.schema.routines.iter().find(|r| &r.name == name && r.arguments == "text, text")
        };
        self.schema
            .routines
            .iter()
            .filter(|routine| routine.kind == "aggregate" && routine.arguments == "text")
            .filter_map(|routine| {
                let aggregate = routine.aggregate.as_ref()?;
                if aggregate.final_function.is_some() || aggregate.initial.is_some() {
                    return None;
                }
                let transition = by_name(&aggregate.transition).filter(|t| t.language == "sql")?;
                let separator = concat_separator(transition.body.as_deref()?)?;
                Some((routine.name.clone(), separator))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_concat_pattern_is_recognised() {
        let body =
            "\nSELECT CASE\n  WHEN $2 IS NULL THEN $1\n  WHEN $1 IS NULL THEN $2\n  ELSE $1 || ', ' || $2\nEND\n";
        assert_eq!(concat_separator(body).as_deref(), Some(", "));
        let swapped = "select case when $1 is null then $2 when $2 is null then $1 else $1 || '; '::text || $2 end";
        assert_eq!(concat_separator(swapped).as_deref(), Some("; "));
        assert_eq!(concat_separator("select case when $2 is null then $1 else $2 || ',' || $1 end"), None);
        assert_eq!(concat_separator("select $1 || $2"), None);
    }
}
