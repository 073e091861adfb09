//! Triggers. A timestamp-maintenance trigger (`BEFORE UPDATE ... FOR EACH ROW` whose PL/pgSQL
//! function only sets `NEW.col = now()` and returns `NEW`) becomes its columns' `ON UPDATE
//! CURRENT_TIMESTAMP`, MySQL's own form of it; every other trigger is reported with its source.
//!
//! The `ON UPDATE` is added in post-data, which runs once the rows are loaded and, in an online run,
//! after the cutover drained the stream: a column that maintained itself during the load would stamp
//! the sink's writes with the target's clock instead of keeping the source's values.

use std::collections::HashMap;

use passerelle_model::schema::{QualifiedName, Trigger};

use super::{object, Planner};
use crate::expr::Expr;
use crate::ident::{quote, shorten};
use crate::plpgsql::{self, Statement};
use crate::print::{Printer, Scope};
use crate::report::Outcome;

/// How an `ON UPDATE CURRENT_TIMESTAMP` column differs from PostgreSQL's trigger, for the report.
const ON_UPDATE_DIFFERENCES: &str = "added at post-data (after the load, and after the cutover of an online run), so \
     replicated rows keep the source's values; unlike the trigger, an UPDATE that sets the column keeps the value \
     given, an UPDATE that changes no value leaves it as it was, and the time is the statement's (now() is the \
     transaction's), in the writing session's time zone";

/// `now()`, `CURRENT_TIMESTAMP`, `clock_timestamp()` and their kin, possibly cast to a timestamp type.
fn is_current_time(expr: &Expr) -> bool {
    match expr {
        Expr::Cast(inner, type_name) => type_name.name.starts_with("timestamp") && is_current_time(inner),
        Expr::Keyword(word) => word == "current_timestamp" || word == "localtimestamp",
        Expr::Func { name, args, star: false, distinct: false, .. } => match name.last().map(String::as_str) {
            Some("now" | "clock_timestamp" | "statement_timestamp" | "transaction_timestamp") => args.is_empty(),
            Some("current_timestamp" | "localtimestamp") => args.len() <= 1,
            _ => false,
        },
        _ => false,
    }
}

impl Planner<'_> {
    /// Every trigger, translated or reported; returns the functions whose triggers were all translated.
    pub(super) fn triggers(&mut self) -> HashMap<QualifiedName, Vec<String>> {
        let mut carried: HashMap<QualifiedName, Vec<String>> = HashMap::new();
        let mut untranslated: Vec<QualifiedName> = Vec::new();
        for trigger in &self.schema.triggers {
            let name = format!("{}.{}", trigger.table, trigger.name);
            let translated = self
                .timestamp_trigger(trigger)
                .or_else(|not_timestamp| self.row_trigger(trigger).map_err(|reason| reason.unwrap_or(not_timestamp)));
            match translated {
                Ok(detail) => {
                    let mut report = object("trigger", name.clone(), Outcome::Translated, detail);
                    report.source = Some(trigger.definition.clone());
                    self.objects.push(report);
                    if let Some(function) = &trigger.function {
                        carried.entry(function.name.clone()).or_default().push(name);
                    }
                }
                Err(reason) => {
                    let mut report = object("trigger", name, Outcome::NotMigrated, reason);
                    report.source = Some(match &trigger.function {
                        Some(function) => format!(
                            "{}\n{} function {}: {}",
                            trigger.definition,
                            function.language,
                            function.name,
                            function.body.trim()
                        ),
                        None => trigger.definition.clone(),
                    });
                    self.objects.push(report);
                    untranslated.extend(trigger.function.as_ref().map(|f| f.name.clone()));
                }
            }
        }
        for function in untranslated {
            carried.remove(&function);
        }
        carried
    }

    /// The columns a timestamp-maintenance trigger keeps, each given its `ON UPDATE` in post-data;
    /// else why the trigger is not one.
    fn timestamp_trigger(&mut self, trigger: &Trigger) -> Result<String, String> {
        let (Some(firing), Some(function)) = (&trigger.firing, &trigger.function) else {
            return Err("triggers call PostgreSQL functions, which are not migrated".into());
        };
        let on = firing.events.join(" OR ");
        let updates = firing.events.iter().any(|e| e == "UPDATE");
        let only_writes = firing.events.iter().all(|e| e == "UPDATE" || e == "INSERT");
        if !(firing.before && firing.for_each_row && updates && only_writes) {
            return Err(format!(
                "fires {} {on} FOR EACH {}: only BEFORE UPDATE row triggers that set a timestamp are translated",
                if firing.before { "BEFORE" } else { "AFTER" },
                if firing.for_each_row { "ROW" } else { "STATEMENT" }
            ));
        }
        if !firing.update_of.is_empty() || firing.has_when || firing.n_arguments > 0 {
            return Err("UPDATE OF columns, a WHEN condition or arguments are not translated".into());
        }
        if function.language != "plpgsql" {
            return Err(format!("its function {} is written in {}, not PL/pgSQL", function.name, function.language));
        }
        let statements =
            plpgsql::parse(&function.body).map_err(|e| format!("its function {}: {}", function.name, e.0))?;
        let Some((Statement::ReturnNew, assignments)) = statements.split_last() else {
            return Err(format!("its function {} does not end with RETURN NEW", function.name));
        };
        let mut columns = Vec::new();
        for statement in assignments {
            match statement {
                Statement::Assign { column, value } if is_current_time(value) => columns.push(column.clone()),
                _ => {
                    return Err(format!(
                        "its function {} does more than set columns to the current time",
                        function.name
                    ))
                }
            }
        }
        if columns.is_empty() {
            return Err(format!("its function {} sets no column", function.name));
        }
        let Some(target) = self.target(&trigger.table) else { return Err("its table is not migrated".into()) };
        let mut clauses = Vec::new();
        for column in &columns {
            let Some(definition) = self.column_definitions.get(&(trigger.table.clone(), column.clone())) else {
                return Err(format!("{} has no column {column}", trigger.table));
            };
            let Some(precision) = definition
                .strip_prefix(&format!("{} DATETIME(", quote(column)))
                .and_then(|rest| rest.split(')').next())
            else {
                return Err(format!("{column} is not a timestamp column"));
            };
            let now = format!("CURRENT_TIMESTAMP({precision})");
            if firing.events.iter().any(|e| e == "INSERT") && !definition.contains(&format!(" DEFAULT {now}")) {
                return Err(format!(
                    "it fires on INSERT too, and {column}'s default is not the current time: an INSERT that gives no \
                     value would differ"
                ));
            }
            clauses.push(format!("MODIFY COLUMN {definition} ON UPDATE {now}"));
        }
        self.post_triggers.push(format!("ALTER TABLE {target} {}", clauses.join(", ")));
        let columns: Vec<String> = columns.iter().map(|column| format!("{}.{column}", trigger.table)).collect();
        Ok(format!("ON UPDATE CURRENT_TIMESTAMP of {}: {ON_UPDATE_DIFFERENCES}", columns.join(", ")))
    }

    /// A simple row trigger (`NEW.col := expression`, `IF ... THEN RAISE EXCEPTION '...'`, `RETURN
    /// NEW`) as one MySQL `BEFORE` trigger per event, created in post-data; `Err(None)` when it is no
    /// such trigger (the caller keeps its earlier reason), `Err(Some(reason))` when it is one that
    /// cannot be translated.
    fn row_trigger(&mut self, trigger: &Trigger) -> Result<String, Option<String>> {
        let (Some(firing), Some(function)) = (&trigger.firing, &trigger.function) else { return Err(None) };
        let writes = !firing.events.is_empty() && firing.events.iter().all(|e| e == "UPDATE" || e == "INSERT");
        let plain = firing.update_of.is_empty() && !firing.has_when && firing.n_arguments == 0;
        if !(firing.before && firing.for_each_row && writes && plain && function.language == "plpgsql") {
            return Err(None);
        }
        let statements = plpgsql::parse(&function.body).map_err(|_| None)?;
        let Some((Statement::ReturnNew, body)) = statements.split_last() else { return Err(None) };
        if body.is_empty() || body.contains(&Statement::ReturnNew) {
            return Err(None);
        }
        let fail = |reason: String| Err(Some(format!("its function {}: {reason}", function.name)));
        if let Some(refusal) = &self.config.trigger_refusal {
            return fail(format!("it would become a MySQL trigger, but {refusal}"));
        }
        let (Some(database), Some(target)) = (self.database(&trigger.table.schema), self.target(&trigger.table)) else {
            return Err(Some("its table is not migrated".into()));
        };
        let database = database.to_string();
        let mut created = Vec::new();
        let mut caveats = Vec::new();
        for event in &firing.events {
            let scope = TriggerScope { old: event == "UPDATE" };
            let mut printer = Printer::new(self.config.server, &scope, false);
            let mut lines = Vec::new();
            for statement in body {
                let line = match statement {
                    Statement::Assign { column, value } => match printer.print(value) {
                        Ok(value) => format!("SET NEW.{} = {value};", quote(column)),
                        Err(reason) => return fail(reason.0),
                    },
                    Statement::Raise { condition, message } => {
                        let condition = match printer.print(condition) {
                            Ok(condition) => condition,
                            Err(reason) => return fail(reason.0),
                        };
                        // MESSAGE_TEXT holds 128 characters.
                        let message: String = message.chars().take(128).collect();
                        format!(
                            "IF {condition} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = {}; END IF;",
                            super::quote_string(&message)
                        )
                    }
                    Statement::ReturnNew => continue,
                };
                lines.push(line);
            }
            caveats.extend(printer.caveats);
            let suffix = if event == "INSERT" { "ins" } else { "upd" };
            let name = shorten(&format!("{}_{}_{suffix}", trigger.table.name, trigger.name)).into_owned();
            created.push(format!(
                "CREATE TRIGGER {}.{} BEFORE {event} ON {target} FOR EACH ROW BEGIN {} END",
                quote(&database),
                quote(&name),
                lines.join(" ")
            ));
        }
        caveats.sort();
        caveats.dedup();
        let mut detail = format!(
            "{} at post-data, after the load (and the cutover of an online run), so none fires on migrated rows; \
             RAISE EXCEPTION becomes SIGNAL SQLSTATE '45000': {}",
            if created.len() == 1 { "a MySQL trigger, created" } else { "MySQL triggers, created" },
            created.join("; ")
        );
        for caveat in caveats {
            detail.push_str(&format!("; {caveat}"));
        }
        self.post_triggers.extend(created);
        Ok(detail)
    }
}

/// Names in a trigger's expressions: `NEW.col`, and `OLD.col` in an UPDATE trigger (an INSERT has no
/// OLD row in MySQL; PostgreSQL's is NULL there).
struct TriggerScope {
    old: bool,
}

impl Scope for TriggerScope {
    fn column(&self, parts: &[String]) -> crate::expr::Result<String> {
        match parts {
            [row, column] if row == "new" => Ok(format!("NEW.{}", quote(column))),
            [row, column] if row == "old" && self.old => Ok(format!("OLD.{}", quote(column))),
            [row, _] if row == "old" => crate::expr::fail("OLD in an INSERT trigger has no MySQL equivalent"),
            _ => crate::expr::fail(format!("{} is not a column of NEW or OLD", parts.join("."))),
        }
    }
}
