//! Types, routines, triggers and extensions: carried into columns, or listed as not migrated.

use super::{object, Planner};
use crate::report::Outcome;

impl Planner<'_> {
    /// Types, routines, triggers and extensions: carried into columns, or listed as not migrated.
    pub(super) fn types_and_code(&mut self) {
        for enumeration in &self.schema.enums {
            let detail = format!("an ENUM column type with labels {}", enumeration.labels.join(", "));
            self.objects.push(object("enum", enumeration.name.to_string(), Outcome::Migrated, detail));
        }
        for domain in &self.schema.domains {
            let detail = "inlined: each column gets the base type, NOT NULL and the checks";
            self.objects.push(object("domain", domain.name.to_string(), Outcome::Translated, detail));
        }
        for composite in &self.schema.composites {
            let detail = "no composite types in MySQL: columns of it hold JSON objects";
            self.objects.push(object("composite type", composite.name.to_string(), Outcome::Translated, detail));
        }
        let carried = self.triggers();
        let aggregates = self.concat_aggregates();
        let mut functions = Vec::new();
        for routine in &self.schema.routines {
            let name = format!("{}({})", routine.name, routine.arguments);
            let kind = if routine.kind == "procedure" { "procedure" } else { "function" };
            if let Some(separator) = aggregates.get(&routine.name).filter(|_| routine.kind == "aggregate") {
                let detail = format!("GROUP_CONCAT(... SEPARATOR '{separator}') in the views that call it");
                functions.push(object("aggregate", name, Outcome::Translated, detail));
                continue;
            }
            let transition_of = self.schema.routines.iter().find(|aggregate| {
                aggregates.contains_key(&aggregate.name)
                    && aggregate.aggregate.as_ref().is_some_and(|a| a.transition == routine.name)
            });
            if let Some(aggregate) = transition_of.filter(|_| routine.arguments == "text, text") {
                let detail = format!("the transition function of {}, carried with it", aggregate.name);
                functions.push(object(kind, name, Outcome::Translated, detail));
                continue;
            }
            if let Some(triggers) = carried.get(&routine.name).filter(|_| routine.arguments.is_empty()) {
                let detail = format!("a trigger function, carried by its triggers: {}", triggers.join(", "));
                functions.push(object(kind, name, Outcome::Translated, detail));
                continue;
            }
            let detail = format!(
                "{} code is not translated: rewrite it for MySQL if the application needs it",
                routine.language
            );
            functions.push(object(kind, name, Outcome::NotMigrated, detail));
        }
        // Functions are listed before the triggers that call them.
        let n_triggers = self.schema.triggers.len();
        let at = self.objects.len() - n_triggers;
        self.objects.splice(at..at, functions);
        for extension in &self.schema.extensions {
            let detail =
                format!("version {}: MySQL has no extensions; its types are mapped per column", extension.version);
            self.objects.push(object("extension", extension.name.clone(), Outcome::NotMigrated, detail));
        }
    }
}
