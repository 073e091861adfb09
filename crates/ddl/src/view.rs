//! View definitions: the `SELECT` that `pg_get_viewdef` prints, translated clause by clause.
//!
//! Covers projections, joins, WHERE/GROUP BY/HAVING/ORDER BY/LIMIT and UNION, with expressions
//! going through [`crate::expr`], and subqueries in the select list, WHERE, EXISTS and IN. CTEs,
//! subqueries in FROM, set-returning functions, FULL JOIN and
//! window functions stay untranslated, with the reason.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use passerelle_model::schema::QualifiedName;

use crate::expr::{Parser, Result, Token, Untranslatable};
use crate::ident::quote;
use crate::print::{Printer, Scope};
use crate::Server;

/// Names in a view: `alias.column` stays as is, `schema.table` moves to the schema's database.
pub(crate) struct ViewScope<'a> {
    pub databases: &'a BTreeMap<String, String>,
    /// The relations read so far, subqueries' included.
    pub reads: RefCell<Vec<QualifiedName>>,
    /// User-defined aggregates that are GROUP_CONCAT, with their separators.
    pub aggregates: &'a HashMap<QualifiedName, String>,
}

impl ViewScope<'_> {
    pub fn table(&self, parts: &[String]) -> Result<String> {
        match parts {
            [schema, table] => match self.databases.get(schema) {
                Some(database) => Ok(format!("{}.{}", quote(database), quote(table))),
                None => Err(Untranslatable(format!("reads {schema}.{table}, outside the migrated schemas"))),
            },
            [table] => Ok(quote(table)),
            _ => Err(Untranslatable(format!("cannot resolve the relation {}", parts.join(".")))),
        }
    }
}

impl Scope for ViewScope<'_> {
    fn column(&self, parts: &[String]) -> Result<String> {
        match parts {
            [schema, table, column] => {
                Ok(format!("{}.{}", self.table(&[schema.clone(), table.clone()])?, quote(column)))
            }
            _ => Ok(parts.iter().map(|part| quote(part)).collect::<Vec<_>>().join(".")),
        }
    }

    fn concat_aggregate(&self, name: &[String]) -> Option<String> {
        let [schema, name] = name else { return None };
        self.aggregates.get(&QualifiedName { schema: schema.clone(), name: name.clone() }).cloned()
    }

    /// A subquery in a select list, WHERE, EXISTS or IN, translated like the view around it (its
    /// column references may name the outer query's relations: the names are kept as they are).
    fn subquery(&self, tokens: &[Token], server: Server) -> Result<(String, Vec<String>)> {
        let mut parser = Parser::from_tokens(tokens.to_vec());
        let mut printer = Printer::new(server, self, false);
        let mut translator = Translator { parser: &mut parser, printer: &mut printer, scope: self };
        let sql = translator.query()?;
        if !parser.at_end() {
            return Err(Untranslatable(format!("unexpected {} in a subquery", parser.describe())));
        }
        Ok((sql, printer.caveats))
    }
}

/// The translated `SELECT`, and the relations it reads (so views can be created after the views
/// they depend on).
pub(crate) struct Translated {
    pub sql: String,
    pub reads: Vec<QualifiedName>,
}

pub(crate) fn translate(definition: &str, printer: &mut Printer<'_>, scope: &ViewScope<'_>) -> Result<Translated> {
    let mut parser = Parser::new(definition)?;
    let mut translator = Translator { parser: &mut parser, printer, scope };
    let sql = translator.query()?;
    parser.eat_punct(';');
    if !parser.at_end() {
        return Err(Untranslatable(format!("unexpected {} in the view", parser.describe())));
    }
    Ok(Translated { sql, reads: scope.reads.take() })
}

struct Translator<'p, 'a, 'b> {
    parser: &'p mut Parser,
    printer: &'p mut Printer<'a>,
    scope: &'p ViewScope<'b>,
}

impl Translator<'_, '_, '_> {
    fn expr(&mut self) -> Result<String> {
        let expr = self.parser.expr()?;
        self.printer.print(&expr)
    }

    fn expr_list(&mut self) -> Result<String> {
        let mut items = vec![self.expr()?];
        while self.parser.eat_punct(',') {
            items.push(self.expr()?);
        }
        Ok(items.join(", "))
    }

    /// A `SELECT`, and those UNIONed to it.
    fn query(&mut self) -> Result<String> {
        let mut sql = self.select()?;
        while self.parser.eat_word("union") {
            let all = if self.parser.eat_word("all") { " ALL" } else { "" };
            sql = format!("{sql} UNION{all} {}", self.select()?);
        }
        Ok(sql)
    }

    fn select(&mut self) -> Result<String> {
        if self.parser.eat_punct('(') {
            let inner = self.select()?;
            self.parser.expect_punct(')')?;
            return Ok(format!("({inner})"));
        }
        if self.parser.is_word("with") {
            return Err(Untranslatable("WITH queries are not translated".into()));
        }
        self.parser.expect_word("select")?;
        let mut sql = String::from("SELECT ");
        if self.parser.eat_word("distinct") {
            if self.parser.is_word("on") {
                return Err(Untranslatable("SELECT DISTINCT ON has no MySQL equivalent".into()));
            }
            sql.push_str("DISTINCT ");
        }
        let mut items = Vec::new();
        loop {
            let mut item = self.expr()?;
            if let Some(alias) = self.parser.alias()? {
                item = format!("{item} AS {}", quote(&alias));
            }
            items.push(item);
            if !self.parser.eat_punct(',') {
                break;
            }
        }
        sql.push_str(&items.join(", "));
        if self.parser.eat_word("from") {
            let mut from = vec![self.relation()?];
            while self.parser.eat_punct(',') {
                from.push(self.relation()?);
            }
            sql.push_str(&format!(" FROM {}", from.join(", ")));
        }
        if self.parser.eat_word("where") {
            sql.push_str(&format!(" WHERE {}", self.expr()?));
        }
        if self.parser.eat_word("group") {
            self.parser.expect_word("by")?;
            sql.push_str(&format!(" GROUP BY {}", self.expr_list()?));
        }
        if self.parser.eat_word("having") {
            sql.push_str(&format!(" HAVING {}", self.expr()?));
        }
        if self.parser.eat_word("order") {
            self.parser.expect_word("by")?;
            sql.push_str(&format!(" ORDER BY {}", self.order_list()?));
        }
        if self.parser.eat_word("limit") && !self.parser.eat_word("all") {
            sql.push_str(&format!(" LIMIT {}", self.expr()?));
        }
        if self.parser.eat_word("offset") {
            let offset = self.expr()?;
            self.parser.eat_word("rows");
            if !sql.contains(" LIMIT ") {
                // MySQL has no OFFSET without LIMIT: the documented idiom is the largest LIMIT.
                sql.push_str(" LIMIT 18446744073709551615");
            }
            sql.push_str(&format!(" OFFSET {offset}"));
        }
        Ok(sql)
    }

    fn order_list(&mut self) -> Result<String> {
        let mut items = Vec::new();
        loop {
            let mut item = self.expr()?;
            if self.parser.eat_word("desc") {
                item.push_str(" DESC");
            } else {
                self.parser.eat_word("asc");
            }
            if self.parser.eat_word("nulls") {
                return Err(Untranslatable("NULLS FIRST/LAST has no MySQL equivalent".into()));
            }
            items.push(item);
            if !self.parser.eat_punct(',') {
                return Ok(items.join(", "));
            }
        }
    }

    fn relation(&mut self) -> Result<String> {
        let mut item = self.relation_primary()?;
        loop {
            let kind = if self.parser.eat_word("join") {
                "JOIN"
            } else {
                let kind = if self.parser.eat_word("inner") {
                    "JOIN"
                } else if self.parser.eat_word("left") {
                    "LEFT JOIN"
                } else if self.parser.eat_word("right") {
                    "RIGHT JOIN"
                } else if self.parser.eat_word("cross") {
                    "CROSS JOIN"
                } else if self.parser.is_word("full") || self.parser.is_word("natural") {
                    return Err(Untranslatable("FULL and NATURAL joins are not translated".into()));
                } else {
                    return Ok(item);
                };
                self.parser.eat_word("outer");
                self.parser.expect_word("join")?;
                kind
            };
            let right = self.relation_primary()?;
            item = format!("{item} {kind} {right}{}", self.join_condition()?);
        }
    }

    fn join_condition(&mut self) -> Result<String> {
        if self.parser.eat_word("on") {
            return Ok(format!(" ON {}", self.expr()?));
        }
        if self.parser.eat_word("using") {
            self.parser.expect_punct('(')?;
            let mut columns = vec![quote(&self.parser.identifier()?)];
            while self.parser.eat_punct(',') {
                columns.push(quote(&self.parser.identifier()?));
            }
            self.parser.expect_punct(')')?;
            return Ok(format!(" USING ({})", columns.join(", ")));
        }
        Ok(String::new())
    }

    fn relation_primary(&mut self) -> Result<String> {
        if self.parser.eat_punct('(') {
            if self.parser.is_word("select") {
                return Err(Untranslatable("subqueries in FROM are not translated".into()));
            }
            let inner = self.relation()?;
            self.parser.expect_punct(')')?;
            return Ok(format!("({inner})"));
        }
        let parts = self.parser.dotted()?;
        if self.parser.peek() == Some(&Token::Punct('(')) {
            return Err(Untranslatable(format!("the set-returning function {}() is not translated", parts.join("."))));
        }
        let table = self.scope.table(&parts)?;
        if let [schema, name] = parts.as_slice() {
            self.scope.reads.borrow_mut().push(QualifiedName { schema: schema.clone(), name: name.clone() });
        }
        Ok(match self.parser.alias()? {
            Some(alias) => format!("{table} {}", quote(&alias)),
            None => table,
        })
    }
}
