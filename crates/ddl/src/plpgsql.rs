//! PL/pgSQL trigger function bodies of the simple kind people write to keep a row's columns up to
//! date: `NEW.col := expression` assignments, `IF ... THEN RAISE EXCEPTION '...'; END IF` checks and
//! `RETURN NEW`. Anything else (a `DECLARE` section, loops, queries, `PERFORM`, other returns) is an
//! [`Untranslatable`] naming what was found, so the trigger stays reported with its source.
//!
//! <https://www.postgresql.org/docs/current/plpgsql-structure.html>

use crate::expr::{fail, Expr, Parser, Result, Token};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Statement {
    /// `NEW.column := value` (or `=`).
    Assign { column: String, value: Expr },
    /// `IF condition THEN RAISE EXCEPTION 'message'; END IF`.
    Raise { condition: Expr, message: String },
    /// `RETURN NEW`.
    ReturnNew,
}

/// The statements of `body`, the text between the function's dollar quotes.
pub(crate) fn parse(body: &str) -> Result<Vec<Statement>> {
    let mut parser = Parser::new(&strip_comments(body))?;
    if parser.is_word("declare") {
        return fail("a DECLARE section (local variables) is not translated");
    }
    parser.expect_word("begin")?;
    let mut statements = Vec::new();
    while !parser.eat_word("end") {
        statements.push(statement(&mut parser)?);
    }
    parser.eat_punct(';');
    if !parser.at_end() {
        return fail(format!("unexpected {} after END", parser.describe()));
    }
    Ok(statements)
}

fn statement(parser: &mut Parser) -> Result<Statement> {
    let statement = if parser.eat_word("return") {
        if !parser.eat_word("new") {
            return fail(format!("RETURN {} is not translated: only RETURN NEW is", parser.describe()));
        }
        Statement::ReturnNew
    } else if parser.eat_word("if") {
        let condition = parser.expr()?;
        parser.expect_word("then")?;
        parser.expect_word("raise")?;
        parser.expect_word("exception")?;
        let message = match parser.peek() {
            Some(Token::Str(message)) if !message.contains('%') => message.clone(),
            _ => return fail("RAISE EXCEPTION with anything but a constant message is not translated"),
        };
        parser.expr()?;
        if !parser.eat_punct(';') {
            return fail("RAISE with parameters or USING is not translated");
        }
        parser.expect_word("end")?;
        parser.expect_word("if")?;
        Statement::Raise { condition, message }
    } else if parser.eat_word("new") {
        parser.expect_punct('.')?;
        let column = parser.identifier()?;
        if !parser.eat_op(":=") && !parser.eat_op("=") {
            return fail(format!("expected := at {}", parser.describe()));
        }
        Statement::Assign { column, value: parser.expr()? }
    } else {
        return fail(format!("the statement starting at {} is not translated", parser.describe()));
    };
    parser.expect_punct(';')?;
    Ok(statement)
}

/// `body` without its `--` and `/* */` comments, string constants left alone.
fn strip_comments(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                out.push(c);
                for s in chars.by_ref() {
                    out.push(s);
                    if s == '\'' {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for s in chars.by_ref() {
                    if s == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for s in chars.by_ref() {
                    if last == '*' && s == '/' {
                        break;
                    }
                    last = s;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_bodies_parse() {
        let body = "\nBEGIN\n    -- keep it fresh\n    NEW.last_update = now(); /* always */\n    RETURN NEW;\nEND;\n";
        let statements = parse(body).unwrap();
        assert_eq!(statements.len(), 2);
        assert!(matches!(&statements[0], Statement::Assign { column, .. } if column == "last_update"));
        assert_eq!(statements[1], Statement::ReturnNew);
        let checked = parse(
            "begin if new.qty < 0 then raise exception 'qty -- negative'; end if; new.qty := new.qty; return new; end",
        )
        .unwrap();
        assert!(matches!(&checked[0], Statement::Raise { message, .. } if message == "qty -- negative"));
    }

    #[test]
    fn other_bodies_say_why() {
        for (body, reason) in [
            ("declare x int; begin return new; end", "DECLARE"),
            ("begin insert into log values (1); return new; end", "not translated"),
            ("begin return null; end", "RETURN"),
            ("begin if new.a then raise exception 'bad %', new.a; end if; return new; end", "constant message"),
        ] {
            let error = parse(body).unwrap_err().0;
            assert!(error.contains(reason), "{body}: {error}");
        }
    }
}
