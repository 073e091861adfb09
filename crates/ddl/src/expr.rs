//! PostgreSQL expressions, as `pg_get_expr` and `pg_get_viewdef` print them, parsed into a small
//! tree and printed back as MySQL/MariaDB SQL.
//!
//! The parser is hand-written recursive descent over the subset PostgreSQL's deparser emits for
//! checks, defaults, generated columns, index keys and simple views. Anything outside that subset
//! is an [`Untranslatable`] that carries the reason: the caller reports it with the original text,
//! never silently drops or approximates it. [`crate::print`] prints the tree for the target server.

/// Why an expression stays untranslated; the report shows it next to the original text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untranslatable(pub String);

pub type Result<T> = std::result::Result<T, Untranslatable>;

pub(crate) fn fail<T>(reason: impl Into<String>) -> Result<T> {
    Err(Untranslatable(reason.into()))
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Op(String),
    Punct(char),
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>> {
    const OP_CHARS: &str = "+-*/<>=~!@#%^&|`?";
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || ((c == 'E' || c == 'e') && chars.get(i + 1) == Some(&'\'')) {
            // E'...' strings hold backslash escapes; plain ones only double their quotes.
            let escapes = c != '\'';
            i += if escapes { 2 } else { 1 };
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    None => return fail("unterminated string constant"),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        value.push('\'');
                        i += 2;
                    }
                    Some('\'') => break,
                    Some('\\') if escapes => {
                        let escaped = chars.get(i + 1).copied().unwrap_or('\\');
                        value.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(other) => {
                        value.push(*other);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push(Token::Str(value));
        } else if c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return fail("unterminated quoted identifier"),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        value.push('"');
                        i += 2;
                    }
                    Some('"') => break,
                    Some(other) => {
                        value.push(*other);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push(Token::Quoted(value));
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect::<String>().to_lowercase()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push(Token::Op("::".into()));
            i += 2;
        } else if c == ':' && chars.get(i + 1) == Some(&'=') {
            // PL/pgSQL's assignment (`crate::plpgsql`); never in an expression PostgreSQL prints.
            tokens.push(Token::Op(":=".into()));
            i += 2;
        } else if OP_CHARS.contains(c) {
            let start = i;
            while i < chars.len() && OP_CHARS.contains(chars[i]) {
                i += 1;
            }
            let op: String = chars[start..i].iter().collect();
            // A lone `*` is multiplication, `count(*)` or `t.*`: the parser tells them apart.
            tokens.push(if op == "*" { Token::Punct('*') } else { Token::Op(op) });
        } else if "()[],.;*".contains(c) {
            tokens.push(Token::Punct(c));
            i += 1;
        } else {
            return fail(format!("unexpected character {c:?}"));
        }
    }
    Ok(tokens)
}

/// A type name as written after `::` or in `CAST(... AS ...)`, lowercased, with its modifiers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TypeName {
    pub name: String,
    pub modifiers: Vec<String>,
    pub array: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    /// A possibly qualified name: `col`, `t.col`, `s.t.col`.
    Column(Vec<String>),
    Str(String),
    Num(String),
    Null,
    Bool(bool),
    /// SQL-standard value functions written without parentheses: `CURRENT_TIMESTAMP`, `CURRENT_DATE`.
    Keyword(String),
    Cast(Box<Expr>, TypeName),
    Unary(String, Box<Expr>),
    Binary(Box<Expr>, String, Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `IS [NOT] TRUE/FALSE`: value, negated.
    IsBool(Box<Expr>, bool, bool),
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>, bool),
    /// `x op ANY (array)` or, with `all`, `x op ALL (array)`.
    Any {
        left: Box<Expr>,
        op: String,
        array: Box<Expr>,
        all: bool,
    },
    Array(Vec<Expr>),
    Func {
        name: Vec<String>,
        args: Vec<Expr>,
        star: bool,
        distinct: bool,
        /// An aggregate's own `ORDER BY` (`string_agg(x, ',' ORDER BY y DESC)`): key, descending.
        order_by: Vec<(Expr, bool)>,
        /// An aggregate's `FILTER (WHERE ...)`.
        filter: Option<Box<Expr>>,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// A scalar `(SELECT ...)`, its tokens without the parentheses: the caller's [`crate::print::Scope`]
    /// translates it (a view's does; elsewhere it stays untranslated).
    Subquery(Vec<Token>),
    /// `EXISTS (SELECT ...)`.
    Exists(Vec<Token>),
    /// `x [NOT] IN (SELECT ...)`.
    InSubquery(Box<Expr>, Vec<Token>, bool),
    /// `t.*` or `*` in a select list.
    Star(Vec<String>),
}

pub(crate) struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

/// Words that end an expression in a select list, a FROM clause or a CASE.
const STOP_WORDS: &[&str] = &[
    "as",
    "from",
    "where",
    "group",
    "having",
    "order",
    "limit",
    "offset",
    "union",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "on",
    "using",
    "then",
    "when",
    "else",
    "end",
    "and",
    "or",
    "asc",
    "desc",
    "nulls",
    "window",
    "is",
    "not",
    "between",
    "in",
    "like",
    "ilike",
    "similar",
    "isnull",
    "notnull",
    "except",
    "intersect",
    "for",
];

impl Parser {
    pub(crate) fn new(text: &str) -> Result<Parser> {
        Ok(Parser { tokens: tokenize(text)?, pos: 0 })
    }

    /// A parser over tokens already read, such as a subquery's.
    pub(crate) fn from_tokens(tokens: Vec<Token>) -> Parser {
        Parser { tokens, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.pos + ahead)
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    pub(crate) fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        let found = self.is_word(word);
        if found {
            self.pos += 1;
        }
        found
    }

    pub(crate) fn eat_punct(&mut self, c: char) -> bool {
        let found = self.peek() == Some(&Token::Punct(c));
        if found {
            self.pos += 1;
        }
        found
    }

    pub(crate) fn eat_op(&mut self, op: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Op(o)) if o == op);
        if found {
            self.pos += 1;
        }
        found
    }

    pub(crate) fn expect_punct(&mut self, c: char) -> Result<()> {
        if self.eat_punct(c) {
            return Ok(());
        }
        fail(format!("expected {c:?} at {}", self.describe()))
    }

    pub(crate) fn expect_word(&mut self, word: &str) -> Result<()> {
        if self.eat_word(word) {
            return Ok(());
        }
        fail(format!("expected {} at {}", word.to_uppercase(), self.describe()))
    }

    pub(crate) fn describe(&self) -> String {
        match self.peek() {
            None => "the end".into(),
            Some(Token::Word(w) | Token::Quoted(w) | Token::Num(w) | Token::Op(w)) => format!("{w:?}"),
            Some(Token::Str(s)) => format!("'{s}'"),
            Some(Token::Punct(c)) => format!("{c:?}"),
        }
    }

    /// An identifier: a bare word (already lowercased, as PostgreSQL folds it) or a quoted one.
    pub(crate) fn identifier(&mut self) -> Result<String> {
        match self.next() {
            Some(Token::Word(w) | Token::Quoted(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                fail(format!("expected a name at {}", self.describe()))
            }
        }
    }

    /// An optional alias, with or without `AS`; stop words are never aliases.
    pub(crate) fn alias(&mut self) -> Result<Option<String>> {
        if self.eat_word("as") {
            return self.identifier().map(Some);
        }
        match self.peek() {
            Some(Token::Word(w)) if !STOP_WORDS.contains(&w.as_str()) => self.identifier().map(Some),
            Some(Token::Quoted(_)) => self.identifier().map(Some),
            _ => Ok(None),
        }
    }

    /// A dotted name: `a`, `a.b`, `a.b.c`, possibly ending in `.*`.
    pub(crate) fn dotted(&mut self) -> Result<Vec<String>> {
        let mut parts = vec![self.identifier()?];
        while self.eat_punct('.') {
            if self.peek() == Some(&Token::Punct('*')) {
                break;
            }
            parts.push(self.identifier()?);
        }
        Ok(parts)
    }

    pub(crate) fn expr(&mut self) -> Result<Expr> {
        self.or()
    }

    fn or(&mut self) -> Result<Expr> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Expr::Binary(Box::new(left), "OR".into(), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr> {
        let mut left = self.not()?;
        while self.eat_word("and") {
            left = Expr::Binary(Box::new(left), "AND".into(), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr> {
        if self.eat_word("not") {
            return Ok(Expr::Unary("NOT".into(), Box::new(self.not()?)));
        }
        self.is()
    }

    fn is(&mut self) -> Result<Expr> {
        let mut left = self.comparison()?;
        loop {
            if self.eat_word("isnull") {
                left = Expr::IsNull(Box::new(left), false);
            } else if self.eat_word("notnull") {
                left = Expr::IsNull(Box::new(left), true);
            } else if self.eat_word("is") {
                let negated = self.eat_word("not");
                left = if self.eat_word("null") {
                    Expr::IsNull(Box::new(left), negated)
                } else if self.eat_word("true") {
                    Expr::IsBool(Box::new(left), true, negated)
                } else if self.eat_word("false") {
                    Expr::IsBool(Box::new(left), false, negated)
                } else if self.eat_word("distinct") {
                    self.expect_word("from")?;
                    Expr::IsDistinct(Box::new(left), Box::new(self.comparison()?), negated)
                } else {
                    return fail(format!("unsupported IS form at {}", self.describe()));
                };
            } else {
                return Ok(left);
            }
        }
    }

    fn comparison(&mut self) -> Result<Expr> {
        let left = self.pattern()?;
        let op = match self.peek() {
            Some(Token::Op(op)) if ["=", "<>", "!=", "<", ">", "<=", ">="].contains(&op.as_str()) => op.clone(),
            _ => return Ok(left),
        };
        self.pos += 1;
        if self.is_word("any") || self.is_word("some") || self.is_word("all") {
            let all = self.is_word("all");
            self.pos += 1;
            self.expect_punct('(')?;
            let array = self.expr()?;
            self.expect_punct(')')?;
            return Ok(Expr::Any { left: Box::new(left), op, array: Box::new(array), all });
        }
        Ok(Expr::Binary(Box::new(left), op, Box::new(self.pattern()?)))
    }

    /// `BETWEEN`, `IN`, `LIKE` and friends, which bind tighter than comparisons.
    fn pattern(&mut self) -> Result<Expr> {
        let left = self.other_op()?;
        let negated = self.is_word("not")
            && matches!(self.peek_at(1), Some(Token::Word(w)) if ["between", "in", "like", "ilike"].contains(&w.as_str()));
        if negated {
            self.pos += 1;
        }
        if self.eat_word("between") {
            let low = self.other_op()?;
            self.expect_word("and")?;
            let high = self.other_op()?;
            return Ok(Expr::Between(Box::new(left), Box::new(low), Box::new(high), negated));
        }
        if self.eat_word("in") {
            self.expect_punct('(')?;
            if self.is_word("select") {
                return Ok(Expr::InSubquery(Box::new(left), self.subquery()?, negated));
            }
            let list = self.list()?;
            self.expect_punct(')')?;
            return Ok(Expr::In(Box::new(left), list, negated));
        }
        for (word, op) in [("like", "~~"), ("ilike", "~~*")] {
            if self.eat_word(word) {
                let op = if negated { format!("!{op}") } else { op.to_string() };
                return Ok(Expr::Binary(Box::new(left), op, Box::new(self.other_op()?)));
            }
        }
        if negated {
            return fail("unsupported NOT form");
        }
        Ok(left)
    }

    /// User-visible operators other than arithmetic: `||`, `->`, `->>`, `~~`, `~`, `@>`, ...
    fn other_op(&mut self) -> Result<Expr> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(op))
                    if !["=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "^", "::"]
                        .contains(&op.as_str()) =>
                {
                    op.clone()
                }
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(Box::new(left), op, Box::new(self.additive()?));
        }
    }

    fn additive(&mut self) -> Result<Expr> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.eat_op("+") {
                "+"
            } else if self.eat_op("-") {
                "-"
            } else {
                return Ok(left);
            };
            left = Expr::Binary(Box::new(left), op.into(), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr> {
        let mut left = self.power()?;
        loop {
            let op = if self.eat_punct('*') {
                "*"
            } else if self.eat_op("/") {
                "/"
            } else if self.eat_op("%") {
                "%"
            } else {
                return Ok(left);
            };
            left = Expr::Binary(Box::new(left), op.into(), Box::new(self.power()?));
        }
    }

    fn power(&mut self) -> Result<Expr> {
        let mut left = self.unary()?;
        while self.eat_op("^") {
            left = Expr::Binary(Box::new(left), "^".into(), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat_op("-") {
            return Ok(Expr::Unary("-".into(), Box::new(self.unary()?)));
        }
        if self.eat_op("+") {
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr> {
        let mut expr = self.primary()?;
        loop {
            if self.eat_op("::") {
                expr = Expr::Cast(Box::new(expr), self.type_name()?);
            } else if self.peek() == Some(&Token::Punct('[')) {
                return fail("array subscripts have no MySQL equivalent");
            } else {
                return Ok(expr);
            }
        }
    }

    pub(crate) fn type_name(&mut self) -> Result<TypeName> {
        const CONTINUATIONS: &[&str] = &["varying", "precision", "with", "without", "time", "zone"];
        let mut name = self.dotted()?.join(".");
        while let Some(Token::Word(w)) = self.peek() {
            if !CONTINUATIONS.contains(&w.as_str()) {
                break;
            }
            name.push(' ');
            name.push_str(w);
            self.pos += 1;
        }
        let mut modifiers = Vec::new();
        if self.eat_punct('(') {
            loop {
                match self.next() {
                    Some(Token::Num(n)) => modifiers.push(n),
                    _ => return fail(format!("unexpected type modifier in {name}")),
                }
                if !self.eat_punct(',') {
                    break;
                }
            }
            self.expect_punct(')')?;
        }
        let mut array = false;
        while self.eat_punct('[') {
            self.expect_punct(']')?;
            array = true;
        }
        Ok(TypeName { name, modifiers, array })
    }

    fn list(&mut self) -> Result<Vec<Expr>> {
        let mut items = vec![self.expr()?];
        while self.eat_punct(',') {
            items.push(self.expr()?);
        }
        Ok(items)
    }

    fn primary(&mut self) -> Result<Expr> {
        let Some(token) = self.next() else {
            return fail("the expression ends too early");
        };
        match token {
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Num(n) => Ok(Expr::Num(n)),
            Token::Punct('(') => {
                if self.is_word("select") {
                    return Ok(Expr::Subquery(self.subquery()?));
                }
                let inner = self.expr()?;
                if self.eat_punct(',') {
                    return fail("row constructors have no MySQL equivalent");
                }
                self.expect_punct(')')?;
                Ok(inner)
            }
            Token::Punct('*') => Ok(Expr::Star(Vec::new())),
            Token::Word(word) => self.word(word),
            Token::Quoted(name) => self.name(name),
            other => {
                self.pos -= 1;
                fail(format!("unexpected {other:?}"))
            }
        }
    }

    fn word(&mut self, word: String) -> Result<Expr> {
        match word.as_str() {
            "null" => return Ok(Expr::Null),
            "true" => return Ok(Expr::Bool(true)),
            "false" => return Ok(Expr::Bool(false)),
            "current_timestamp" | "current_date" | "current_time" | "localtimestamp" | "localtime" | "current_user"
            | "session_user" | "current_role" | "user"
                if self.peek() != Some(&Token::Punct('(')) =>
            {
                return Ok(Expr::Keyword(word));
            }
            "exists" if self.eat_punct('(') => return Ok(Expr::Exists(self.subquery()?)),
            "array" if self.eat_punct('[') => {
                let items = if self.peek() == Some(&Token::Punct(']')) { Vec::new() } else { self.list()? };
                self.expect_punct(']')?;
                return Ok(Expr::Array(items));
            }
            "cast" if self.eat_punct('(') => {
                let inner = self.expr()?;
                self.expect_word("as")?;
                let type_name = self.type_name()?;
                self.expect_punct(')')?;
                return Ok(Expr::Cast(Box::new(inner), type_name));
            }
            "case" => return self.case(),
            "interval" | "date" | "timestamp" | "time" if matches!(self.peek(), Some(Token::Str(_))) => {
                let Some(Token::Str(value)) = self.next() else { return fail("expected a constant") };
                return Ok(Expr::Cast(
                    Box::new(Expr::Str(value)),
                    TypeName { name: word, modifiers: Vec::new(), array: false },
                ));
            }
            _ => {}
        }
        self.name(word)
    }

    fn name(&mut self, first: String) -> Result<Expr> {
        let mut parts = vec![first];
        while self.eat_punct('.') {
            if self.eat_punct('*') {
                return Ok(Expr::Star(parts));
            }
            parts.push(self.identifier()?);
        }
        if !self.eat_punct('(') {
            return Ok(Expr::Column(parts));
        }
        if self.eat_punct('*') {
            self.expect_punct(')')?;
            let filter = self.filter()?;
            return Ok(Expr::Func {
                name: parts,
                args: Vec::new(),
                star: true,
                distinct: false,
                order_by: Vec::new(),
                filter,
            });
        }
        let distinct = self.eat_word("distinct");
        let args = if self.peek() == Some(&Token::Punct(')')) { Vec::new() } else { self.list()? };
        let mut order_by = Vec::new();
        if self.eat_word("order") {
            self.expect_word("by")?;
            loop {
                let key = self.expr()?;
                let descending = self.eat_word("desc");
                if !descending {
                    self.eat_word("asc");
                }
                if self.is_word("nulls") {
                    return fail("NULLS FIRST/LAST has no MySQL equivalent");
                }
                order_by.push((key, descending));
                if !self.eat_punct(',') {
                    break;
                }
            }
        }
        if self.is_word("from") {
            return fail(format!("the argument syntax of {}() has no MySQL equivalent", parts.join(".")));
        }
        self.expect_punct(')')?;
        if self.is_word("over") || self.is_word("within") {
            return fail(format!("window and ordered-set aggregates ({}) are not translated", parts.join(".")));
        }
        let filter = self.filter()?;
        Ok(Expr::Func { name: parts, args, star: false, distinct, order_by, filter })
    }

    /// An aggregate's `FILTER (WHERE condition)`, when there is one.
    fn filter(&mut self) -> Result<Option<Box<Expr>>> {
        if !self.eat_word("filter") {
            return Ok(None);
        }
        self.expect_punct('(')?;
        self.expect_word("where")?;
        let condition = self.expr()?;
        self.expect_punct(')')?;
        Ok(Some(Box::new(condition)))
    }

    /// The tokens of a subquery up to its closing parenthesis, which is consumed; the opening one was.
    fn subquery(&mut self) -> Result<Vec<Token>> {
        let mut depth = 0;
        let mut tokens = Vec::new();
        loop {
            match self.next() {
                None => return fail("the subquery has no closing parenthesis"),
                Some(Token::Punct(')')) if depth == 0 => return Ok(tokens),
                Some(token) => {
                    match token {
                        Token::Punct('(') => depth += 1,
                        Token::Punct(')') => depth -= 1,
                        _ => {}
                    }
                    tokens.push(token);
                }
            }
        }
    }

    fn case(&mut self) -> Result<Expr> {
        let operand = if self.is_word("when") { None } else { Some(Box::new(self.expr()?)) };
        let mut whens = Vec::new();
        while self.eat_word("when") {
            let condition = self.expr()?;
            self.expect_word("then")?;
            whens.push((condition, self.expr()?));
        }
        let otherwise = if self.eat_word("else") { Some(Box::new(self.expr()?)) } else { None };
        self.expect_word("end")?;
        Ok(Expr::Case { operand, whens, otherwise })
    }
}

/// Parses one whole expression.
pub(crate) fn parse(text: &str) -> Result<Expr> {
    let mut parser = Parser::new(text)?;
    let expr = parser.expr()?;
    if !parser.at_end() {
        return fail(format!("unexpected {} after the expression", parser.describe()));
    }
    Ok(expr)
}
