//! Views, translated where possible and created after every view they read; a materialized view
//! becomes a table filled from its definition.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use passerelle_model::schema::QualifiedName;

use super::{object, Planner};
use crate::expr::Untranslatable;
use crate::print::Printer;
use crate::report::Outcome;
use crate::view::{self, ViewScope};
use crate::Dialect;

impl Planner<'_> {
    /// Views, translated where possible and created after every view they read.
    pub(super) fn views(&mut self) {
        let mut translated: BTreeMap<QualifiedName, (String, Vec<QualifiedName>, Vec<String>)> = BTreeMap::new();
        let mut failed: HashMap<QualifiedName, String> = HashMap::new();
        let aggregates = self.concat_aggregates();
        for view in &self.schema.views {
            let name = view.name.to_string();
            if view.materialized && self.config.require_primary_key && self.config.server.dialect == Dialect::Mysql {
                let reason = "MySQL has no materialized views, and a table filled from the definition would have no \
                              primary key, which the target requires (sql_require_primary_key)";
                let mut report = object("materialized view", name, Outcome::NotMigrated, reason);
                report.source = Some(view.definition.clone());
                self.objects.push(report);
                continue;
            }
            let scope = ViewScope {
                databases: &self.config.databases,
                reads: RefCell::new(Vec::new()),
                aggregates: &aggregates,
            };
            let mut printer = Printer::new(self.config.server, &scope, false);
            match view::translate(&view.definition, &mut printer, &scope) {
                Ok(result) => {
                    let mut left_out: Vec<String> = result
                        .reads
                        .iter()
                        .filter(|read| self.schema.left_out.contains(read))
                        .map(ToString::to_string)
                        .collect();
                    left_out.sort();
                    left_out.dedup();
                    if !left_out.is_empty() {
                        let reason = format!("reads {}, left out of the migration", left_out.join(", "));
                        failed.insert(view.name.clone(), reason);
                        continue;
                    }
                    let mut caveats = printer.caveats;
                    if view.comment.is_some() {
                        caveats.push("MySQL views have no comments: the comment is dropped".into());
                    }
                    translated.insert(view.name.clone(), (result.sql, result.reads, caveats));
                }
                Err(Untranslatable(reason)) => {
                    failed.insert(view.name.clone(), reason);
                }
            }
        }
        let view_names: HashSet<&QualifiedName> = self.schema.views.iter().map(|v| &v.name).collect();
        let mut done: HashSet<QualifiedName> = HashSet::new();
        // Create views whose view dependencies are done, until no more can be; a view that reads a
        // view that failed fails too.
        loop {
            let ready: Vec<QualifiedName> = translated
                .iter()
                .filter(|(_, (_, reads, _))| reads.iter().all(|r| !view_names.contains(r) || done.contains(r)))
                .map(|(name, _)| name.clone())
                .collect();
            if ready.is_empty() {
                break;
            }
            for name in ready {
                let Some((sql, _, mut caveats)) = translated.remove(&name) else { continue };
                let Some(target) = self.target(&name) else { continue };
                let materialized = self.schema.views.iter().any(|v| v.name == name && v.materialized);
                if materialized {
                    // Post-data runs after the load and, online, after the cutover: the table holds
                    // what REFRESH MATERIALIZED VIEW would give at that moment.
                    self.post_views.push(format!("CREATE TABLE {target} AS {sql}"));
                    caveats.insert(
                        0,
                        format!(
                            "MySQL has no materialized views: a table filled from the definition at post-data (after \
                             the load, and the cutover of an online run), as a REFRESH then would; refresh it with \
                             DELETE FROM {target}; INSERT INTO {target} {sql}"
                        ),
                    );
                } else {
                    self.post_views.push(format!("CREATE OR REPLACE VIEW {target} AS {sql}"));
                }
                let kind = if materialized { "materialized view" } else { "view" };
                let outcome = if caveats.is_empty() { Outcome::Migrated } else { Outcome::Translated };
                let mut report = object(kind, name.to_string(), outcome, caveats.join("; "));
                if outcome == Outcome::Translated {
                    report.source = self.schema.views.iter().find(|v| v.name == name).map(|v| v.definition.clone());
                }
                self.objects.push(report);
                done.insert(name);
            }
        }
        for (name, (_, reads, _)) in translated {
            let blocked: Vec<String> =
                reads.iter().filter(|r| !done.contains(r) && view_names.contains(r)).map(ToString::to_string).collect();
            failed.insert(name, format!("reads {}, which is not migrated", blocked.join(", ")));
        }
        for view in &self.schema.views {
            if let Some(reason) = failed.remove(&view.name) {
                let kind = if view.materialized { "materialized view" } else { "view" };
                let mut report = object(kind, view.name.to_string(), Outcome::NotMigrated, reason);
                report.source = Some(view.definition.clone());
                self.objects.push(report);
            }
        }
    }
}
