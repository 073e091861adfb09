//! Parsed PostgreSQL expressions printed as SQL of the target server, its version included: a
//! function the server lacks (MySQL 9.6 removed `MD5()`) is [`Untranslatable`], with the reason,
//! never a statement the server rejects at apply time. Translations that run but behave differently
//! in some corner (a regular expression dialect, NULL handling of GREATEST) are kept with a caveat.

use std::fmt::Write;

use crate::expr::{fail, Expr, Result, Token, TypeName, Untranslatable};
use crate::{Dialect, Server};

/// How names inside an expression become target names: the caller knows whether `VALUE` means a
/// domain's column, and which schemas map to which databases.
pub(crate) trait Scope {
    /// A column reference, quoted for the target.
    fn column(&self, parts: &[String]) -> Result<String>;

    /// The separator of a user-defined aggregate that is GROUP_CONCAT (`plan::aggregate`): only views
    /// call aggregates.
    fn concat_aggregate(&self, _name: &[String]) -> Option<String> {
        None
    }

    /// A subquery's `SELECT`, translated, with the caveats of its translation: only views have them.
    fn subquery(&self, _tokens: &[Token], _server: Server) -> Result<(String, Vec<String>)> {
        fail("subqueries are not translated")
    }
}

/// Prints expressions for one server, collecting caveats of translations that change behaviour.
pub(crate) struct Printer<'a> {
    pub server: Server,
    pub scope: &'a dyn Scope,
    /// The expression must give the same value every time it runs: a CHECK, a generated column or an
    /// index key, where MySQL and MariaDB refuse the current time, the current user and random values
    /// (PostgreSQL refuses them in the last two only).
    pub deterministic: bool,
    pub caveats: Vec<String>,
}

impl<'a> Printer<'a> {
    pub(crate) fn new(server: Server, scope: &'a dyn Scope, deterministic: bool) -> Printer<'a> {
        Printer { server, scope, deterministic, caveats: Vec::new() }
    }
}

fn quote_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

impl Printer<'_> {
    /// Why `what`, whose value changes from one evaluation to the next, is refused where the
    /// expression must be [`Printer::deterministic`].
    fn volatile(what: &str) -> Untranslatable {
        Untranslatable(format!(
            "{what} changes from one evaluation to the next, which MySQL and MariaDB allow in no CHECK \
             constraint, generated column or index"
        ))
    }

    fn caveat(&mut self, text: &str) {
        if !self.caveats.iter().any(|c| c == text) {
            self.caveats.push(text.to_string());
        }
    }

    pub(crate) fn print(&mut self, expr: &Expr) -> Result<String> {
        Ok(match expr {
            Expr::Column(parts) => self.scope.column(parts)?,
            Expr::Str(s) => quote_string(s),
            Expr::Num(n) => n.clone(),
            Expr::Null => "NULL".into(),
            Expr::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Expr::Keyword(word) => match word.as_str() {
                _ if self.deterministic => return Err(Printer::volatile(&word.to_uppercase())),
                "current_timestamp" | "localtimestamp" => {
                    self.caveat("the current time is the session's: writers run with time_zone '+00:00'");
                    "CURRENT_TIMESTAMP(6)".into()
                }
                "current_date" => "CURRENT_DATE".into(),
                "current_time" | "localtime" => "CURRENT_TIME(6)".into(),
                "current_user" | "session_user" | "current_role" | "user" => {
                    self.caveat("the current user is a MySQL account (user@host), not a PostgreSQL role");
                    "CURRENT_USER()".into()
                }
                other => return fail(format!("{other} has no MySQL equivalent")),
            },
            Expr::Cast(inner, type_name) => self.cast(inner, type_name)?,
            Expr::Unary(op, inner) => match op.as_str() {
                "NOT" => format!("(NOT {})", self.print(inner)?),
                _ => format!("(-{})", self.print(inner)?),
            },
            Expr::Binary(left, op, right) => self.binary(left, op, right)?,
            Expr::IsNull(inner, negated) => {
                format!("({} IS {}NULL)", self.print(inner)?, if *negated { "NOT " } else { "" })
            }
            Expr::IsBool(inner, value, negated) => format!(
                "({} IS {}{})",
                self.print(inner)?,
                if *negated { "NOT " } else { "" },
                if *value { "TRUE" } else { "FALSE" }
            ),
            Expr::IsDistinct(left, right, negated) => {
                let same = format!("({} <=> {})", self.print(left)?, self.print(right)?);
                if *negated {
                    same
                } else {
                    format!("(NOT {same})")
                }
            }
            Expr::Between(inner, low, high, negated) => format!(
                "({} {}BETWEEN {} AND {})",
                self.print(inner)?,
                if *negated { "NOT " } else { "" },
                self.print(low)?,
                self.print(high)?
            ),
            Expr::In(inner, list, negated) => {
                let items = list.iter().map(|item| self.print(item)).collect::<Result<Vec<_>>>()?;
                format!("({} {}IN ({}))", self.print(inner)?, if *negated { "NOT " } else { "" }, items.join(", "))
            }
            Expr::Any { left, op, array, all } => self.any(left, op, array, *all)?,
            Expr::Array(_) => return fail("arrays have no MySQL equivalent outside = ANY (ARRAY[...])"),
            Expr::Func { name, args, star, distinct, order_by, filter } => {
                self.aggregate(name, args, *star, *distinct, order_by, filter.as_deref())?
            }
            Expr::Case { operand, whens, otherwise } => {
                let mut text = "CASE".to_string();
                if let Some(operand) = operand {
                    write!(text, " {}", self.print(operand)?).ok();
                }
                for (condition, result) in whens {
                    write!(text, " WHEN {} THEN {}", self.print(condition)?, self.print(result)?).ok();
                }
                if let Some(otherwise) = otherwise {
                    write!(text, " ELSE {}", self.print(otherwise)?).ok();
                }
                text + " END"
            }
            Expr::Subquery(tokens) => format!("({})", self.subquery(tokens)?),
            Expr::Exists(tokens) => format!("EXISTS ({})", self.subquery(tokens)?),
            Expr::InSubquery(left, tokens, negated) => {
                format!("({} {}IN ({}))", self.print(left)?, if *negated { "NOT " } else { "" }, self.subquery(tokens)?)
            }
            Expr::Star(parts) => match parts.is_empty() {
                true => "*".into(),
                false => format!("{}.*", self.scope.column(parts)?),
            },
        })
    }

    fn subquery(&mut self, tokens: &[Token]) -> Result<String> {
        let (sql, caveats) = self.scope.subquery(tokens, self.server)?;
        for caveat in caveats {
            self.caveat(&caveat);
        }
        Ok(sql)
    }

    /// A call, with an aggregate's `ORDER BY` and `FILTER (WHERE ...)`: the filter becomes a CASE
    /// around the aggregated value, which every aggregate but array_agg skips where it is NULL.
    fn aggregate(
        &mut self,
        name: &[String],
        args: &[Expr],
        star: bool,
        distinct: bool,
        order_by: &[(Expr, bool)],
        filter: Option<&Expr>,
    ) -> Result<String> {
        let function = name.last().map(String::as_str).unwrap_or_default();
        let Some(condition) = filter else { return self.function(name, args, star, distinct, order_by) };
        match (function, star, args) {
            ("count", true, _) => Ok(format!("COUNT(CASE WHEN {} THEN 1 END)", self.print(condition)?)),
            ("count" | "sum" | "avg" | "min" | "max" | "string_agg", false, [value, rest @ ..]) => {
                let when =
                    Expr::Case { operand: None, whens: vec![(condition.clone(), value.clone())], otherwise: None };
                let args: Vec<Expr> = std::iter::once(when).chain(rest.iter().cloned()).collect();
                self.function(name, &args, star, distinct, order_by)
            }
            _ => fail(format!("{function}() FILTER (WHERE ...) is not translated")),
        }
    }

    fn binary(&mut self, left: &Expr, op: &str, right: &Expr) -> Result<String> {
        let (l, r) = (self.print(left)?, self.print(right)?);
        Ok(match op {
            "AND" | "OR" | "=" | "<>" | "<" | ">" | "<=" | ">=" | "+" | "-" | "*" | "%" => format!("({l} {op} {r})"),
            "!=" => format!("({l} <> {r})"),
            "/" => {
                self.caveat("PostgreSQL divides integers with truncation, MySQL's / returns a decimal");
                format!("({l} / {r})")
            }
            "^" => format!("POWER({l}, {r})"),
            "||" => format!("CONCAT({l}, {r})"),
            "~~" => format!("({l} LIKE {r})"),
            "!~~" => format!("({l} NOT LIKE {r})"),
            "~~*" => format!("(LOWER({l}) LIKE LOWER({r}))"),
            "!~~*" => format!("(LOWER({l}) NOT LIKE LOWER({r}))"),
            "~" | "!~" | "~*" | "!~*" => {
                self.caveat("a POSIX regular expression now runs on MySQL's regular expression engine");
                let (l, r) = if op.ends_with('*') { (format!("LOWER({l})"), format!("LOWER({r})")) } else { (l, r) };
                let not = if op.starts_with('!') { "NOT " } else { "" };
                format!("({l} {not}REGEXP {r})")
            }
            "->" => format!("JSON_EXTRACT({l}, {})", json_path(right)?),
            "->>" => format!("JSON_UNQUOTE(JSON_EXTRACT({l}, {}))", json_path(right)?),
            "#>" => format!("JSON_EXTRACT({l}, {})", json_path_array(right)?),
            "#>>" => format!("JSON_UNQUOTE(JSON_EXTRACT({l}, {}))", json_path_array(right)?),
            other => return fail(format!("operator {other} has no MySQL equivalent")),
        })
    }

    fn any(&mut self, left: &Expr, op: &str, array: &Expr, all: bool) -> Result<String> {
        let mut array = array;
        while let Expr::Cast(inner, _) = array {
            array = inner;
        }
        let Expr::Array(items) = array else {
            return fail("= ANY over something other than an ARRAY[...] list is not translated");
        };
        let items = items.iter().map(|item| self.print(item)).collect::<Result<Vec<_>>>()?;
        let left = self.print(left)?;
        match (op, all) {
            ("=", false) => Ok(format!("({left} IN ({}))", items.join(", "))),
            ("<>" | "!=", true) => Ok(format!("({left} NOT IN ({}))", items.join(", "))),
            _ => fail(format!("{op} {} (ARRAY[...]) is not translated", if all { "ALL" } else { "ANY" })),
        }
    }

    fn cast(&mut self, inner: &Expr, type_name: &TypeName) -> Result<String> {
        let literal = matches!(inner, Expr::Str(_) | Expr::Num(_) | Expr::Null);
        let value = self.print(inner)?;
        if type_name.array {
            return fail(format!("a cast to {}[] has no MySQL equivalent", type_name.name));
        }
        let decimal = match type_name.modifiers.as_slice() {
            [p, s] => format!("DECIMAL({p},{s})"),
            [p] => format!("DECIMAL({p},0)"),
            _ => "DECIMAL(65,30)".into(),
        };
        let target = match type_name.name.as_str() {
            // Text casts of a column or constant are identities on the target, whose text types are
            // all utf8mb4: dropping them keeps index use and the expression readable.
            "text" | "character varying" | "varchar" | "character" | "bpchar" | "name" | "citext" => {
                if literal || matches!(inner, Expr::Column(_)) {
                    return Ok(value);
                }
                "CHAR".to_string()
            }
            "integer" | "int" | "int4" | "smallint" | "int2" | "bigint" | "int8" => match inner {
                Expr::Num(_) => return Ok(value),
                Expr::Str(s) if s.parse::<i64>().is_ok() => return Ok(s.clone()),
                _ => "SIGNED".into(),
            },
            "numeric" | "decimal" => match inner {
                Expr::Num(_) => return Ok(value),
                Expr::Str(s) if s.parse::<f64>().is_ok() => return Ok(s.clone()),
                _ => decimal,
            },
            "real" | "double precision" | "float4" | "float8" => match inner {
                Expr::Num(_) => return Ok(value),
                _ => "DOUBLE".into(),
            },
            "boolean" | "bool" => match inner {
                Expr::Str(s) if ["t", "true", "y", "yes", "on", "1"].contains(&s.as_str()) => return Ok("TRUE".into()),
                Expr::Str(s) if ["f", "false", "n", "no", "off", "0"].contains(&s.as_str()) => {
                    return Ok("FALSE".into())
                }
                Expr::Bool(_) => return Ok(value),
                _ => return fail("a cast to boolean is not translated"),
            },
            "date" => "DATE".into(),
            "timestamp without time zone" | "timestamp" => "DATETIME(6)".into(),
            "timestamp with time zone" | "timestamptz" => match inner {
                // The catalog is read in UTC, so constants print as `... +00` and hold UTC already.
                Expr::Str(s) if s.ends_with("+00") => return Ok(quote_string(s.trim_end_matches("+00"))),
                Expr::Str(_) => return fail("a timestamptz constant with an offset is not translated"),
                _ => "DATETIME(6)".into(),
            },
            "time without time zone" | "time" => "TIME(6)".into(),
            "json" | "jsonb" => match (self.server.dialect, literal) {
                (_, true) | (Dialect::Mariadb, false) => return Ok(value),
                (Dialect::Mysql, false) => "JSON".into(),
            },
            "uuid" if literal => return Ok(value),
            "regclass" => return fail("a regclass reference (an object of the source cluster) is not translated"),
            other if other.contains('.') && literal => return Ok(value),
            other => return fail(format!("a cast to {other} has no MySQL equivalent")),
        };
        Ok(format!("CAST({value} AS {target})"))
    }

    fn function(
        &mut self,
        name: &[String],
        args: &[Expr],
        star: bool,
        distinct: bool,
        order_by: &[(Expr, bool)],
    ) -> Result<String> {
        if let (Some(separator), [_]) = (self.scope.concat_aggregate(name), args) {
            let value = self.print(&args[0])?;
            let order = self.order_clause(order_by)?;
            return Ok(self.group_concat(&value, distinct, &order, &separator));
        }
        let function = match name {
            [function] => function.as_str(),
            [schema, function] if schema == "pg_catalog" => function.as_str(),
            _ => return fail(format!("calls {}(), a function that is not migrated", name.join("."))),
        };
        if star {
            return match function {
                "count" => Ok("COUNT(*)".into()),
                _ => fail(format!("{function}(*) has no MySQL equivalent")),
            };
        }
        let printed = args.iter().map(|arg| self.print(arg)).collect::<Result<Vec<_>>>()?;
        let order = self.order_clause(order_by)?;
        match function {
            "string_agg" => return self.string_agg(args, &printed, distinct, &order),
            "array_agg" => return self.array_agg(&printed, distinct, &order),
            _ if !order.is_empty() => return fail(format!("{function}() with ORDER BY is not translated")),
            _ => {}
        }
        let all = printed.join(", ");
        let distinct = if distinct { "DISTINCT " } else { "" };
        let same = |mysql: &str| format!("{mysql}({distinct}{all})");
        Ok(match (function, printed.as_slice()) {
            (
                "lower" | "upper" | "abs" | "ceil" | "ceiling" | "floor" | "round" | "sign" | "sqrt" | "exp" | "ln"
                | "mod" | "power" | "coalesce" | "nullif" | "replace" | "left" | "right" | "reverse" | "repeat"
                | "lpad" | "rpad" | "concat" | "concat_ws" | "count" | "sum" | "avg" | "min" | "max",
                _,
            ) => same(&function.to_uppercase()),
            // Both hash the same bytes (the UTF-8 text, or bytea's bytes) into 32 lowercase hex digits.
            ("md5", [_]) if self.server.has_md5() => same("MD5"),
            ("md5", [_]) => {
                return fail(format!(
                    "md5() has no equivalent on {}: MySQL 9.6 removed MD5() (to the optional \
                     component_classic_hashing), and SHA2() computes another hash",
                    self.server
                ))
            }
            (
                "now"
                | "statement_timestamp"
                | "transaction_timestamp"
                | "clock_timestamp"
                | "gen_random_uuid"
                | "uuid_generate_v4"
                | "random",
                [],
            ) if self.deterministic => return Err(Printer::volatile(&format!("{function}()"))),
            ("greatest" | "least", _) => {
                self.caveat("GREATEST/LEAST return NULL on MySQL when any argument is NULL; PostgreSQL ignores NULLs");
                same(&function.to_uppercase())
            }
            ("length" | "char_length" | "character_length", [_]) => same("CHAR_LENGTH"),
            ("octet_length", [_]) => same("LENGTH"),
            ("log", [_]) => same("LOG10"),
            ("log", [_, _]) => same("LOG"),
            ("trunc", [x]) => format!("TRUNCATE({x}, 0)"),
            ("trunc", [_, _]) => same("TRUNCATE"),
            ("btrim", [x]) => format!("TRIM({x})"),
            ("btrim", [x, chars]) => format!("TRIM(BOTH {chars} FROM {x})"),
            ("ltrim" | "rtrim", [_]) => same(&function.to_uppercase()),
            ("substr" | "substring", [_, _] | [_, _, _]) => same("SUBSTRING"),
            ("strpos", [haystack, needle]) => format!("LOCATE({needle}, {haystack})"),
            ("now" | "statement_timestamp" | "transaction_timestamp", []) => {
                self.caveat("the current time is the session's: writers run with time_zone '+00:00'");
                "CURRENT_TIMESTAMP(6)".into()
            }
            ("clock_timestamp", []) => "SYSDATE(6)".into(),
            ("gen_random_uuid" | "uuid_generate_v4", []) => "UUID()".into(),
            ("random", []) => "RAND()".into(),
            ("jsonb_array_length" | "json_array_length", [_]) => same("JSON_LENGTH"),
            _ => return fail(format!("function {function}() has no MySQL equivalent")),
        })
    }
}

impl Printer<'_> {
    /// `string_agg(x, sep ORDER BY ...)`: `GROUP_CONCAT(x ORDER BY ... SEPARATOR sep)`. Both skip NULLs
    /// and give NULL over no rows; GROUP_CONCAT wants a constant separator, and cuts its result at
    /// `group_concat_max_len` bytes (1,024 unless the reading session or the server sets more).
    fn string_agg(&mut self, args: &[Expr], printed: &[String], distinct: bool, order: &str) -> Result<String> {
        let ([_, separator], [value, _]) = (args, printed) else {
            return fail("string_agg() takes a value and a separator");
        };
        let mut separator = separator;
        while let Expr::Cast(inner, _) = separator {
            separator = inner;
        }
        let Expr::Str(separator) = separator else {
            return fail("string_agg() with a separator that is not a constant: GROUP_CONCAT wants a constant");
        };
        Ok(self.group_concat(value, distinct, order, separator))
    }

    /// An aggregate's `ORDER BY`, printed: empty without one.
    fn order_clause(&mut self, order_by: &[(Expr, bool)]) -> Result<String> {
        let mut order = Vec::new();
        for (key, descending) in order_by {
            order.push(format!("{}{}", self.print(key)?, if *descending { " DESC" } else { "" }));
        }
        Ok(if order.is_empty() { String::new() } else { format!(" ORDER BY {}", order.join(", ")) })
    }

    fn group_concat(&mut self, value: &str, distinct: bool, order: &str, separator: &str) -> String {
        self.caveat(
            "GROUP_CONCAT cuts its result at group_concat_max_len bytes, 1,024 by default: a session reading the \
             view needs SET SESSION group_concat_max_len = 1048576 (or the server's setting) for longer \
             concatenations",
        );
        let distinct = if distinct { "DISTINCT " } else { "" };
        format!("GROUP_CONCAT({distinct}{value}{order} SEPARATOR {})", quote_string(separator))
    }

    /// `array_agg(x)`: `JSON_ARRAYAGG(x)`, a JSON array as array columns are carried. MySQL's takes no
    /// ORDER BY (MariaDB's does), nor DISTINCT.
    fn array_agg(&mut self, printed: &[String], distinct: bool, order: &str) -> Result<String> {
        let [value] = printed else { return fail("array_agg() takes one value") };
        if distinct {
            return fail("array_agg(DISTINCT ...) has no JSON_ARRAYAGG equivalent");
        }
        if !order.is_empty() && self.server.dialect == Dialect::Mysql {
            return fail("array_agg(... ORDER BY ...): MySQL's JSON_ARRAYAGG takes no ORDER BY");
        }
        self.caveat("array_agg becomes JSON_ARRAYAGG: the view returns a JSON array, as array columns are carried");
        Ok(format!("JSON_ARRAYAGG({value}{order})"))
    }
}

fn json_path(key: &Expr) -> Result<String> {
    match key {
        Expr::Cast(inner, _) => json_path(inner),
        Expr::Str(key) => Ok(quote_string(&format!("$.\"{}\"", key.replace('"', "\\\"")))),
        Expr::Num(index) if index.parse::<u32>().is_ok() => Ok(format!("'$[{index}]'")),
        _ => fail("a JSON key that is not a constant is not translated"),
    }
}

/// `#>` takes a text array constant such as `'{a,0}'`.
fn json_path_array(path: &Expr) -> Result<String> {
    let Expr::Cast(inner, _) = path else { return json_path(path) };
    let Expr::Str(text) = inner.as_ref() else { return fail("a JSON path that is not a constant is not translated") };
    let mut out = String::from("$");
    for step in text.trim_start_matches('{').trim_end_matches('}').split(',').filter(|s| !s.is_empty()) {
        match step.parse::<u32>() {
            Ok(index) => write!(out, "[{index}]").ok(),
            Err(_) => write!(out, ".\"{}\"", step.trim_matches('"').replace('"', "\\\"")).ok(),
        };
    }
    Ok(quote_string(&out))
}
