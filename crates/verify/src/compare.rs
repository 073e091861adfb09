//! One table, compared. First the checksum of the whole table on both sides at once; when it
//! differs, bisection by primary-key ranges, each range checksummed in the databases, down to
//! ranges of at most [`LEAF_ROWS`] rows whose rows are compared one by one. A table without a key
//! whose order both engines share is compared as a multiset of row hashes instead.
//!
//! Memory stays bounded: a leaf holds at most [`LEAF_ROWS`] rows a side, and multisets are merged
//! as two hash-ordered streams. The exception is a keyless table with client-side columns (json,
//! floats, geometry), whose row hashes exist only in Rust: its multiset is a map of the distinct
//! hashes, 40 bytes or so per distinct row.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::TryStreamExt;

use crate::canonical::Client;
use crate::digest::{combine, field, hash_fields, sha256_hex, Checksum};
use crate::report::{ChangedRow, RowCount, TableReport, LISTED};
use crate::session::{Side, Source, Target, TextRow};
use crate::sql::{Engine, Keying, Range, TablePlan};
use crate::{client, KeySet, VerifyError};

/// Ranges this small are compared row by row: few enough to hold, enough that bisection stops early.
const LEAF_ROWS: u64 = 1000;

/// Rows [`Comparison::differing_keys`] compares at once: a few megabytes of hashes a side.
const PASS_ROWS: u64 = 20_000;

/// The most differing keys listed for the cutover: past this, the table is compared whole there.
const MOST_DIFFERING_KEYS: usize = 100_000;

/// Key values looked up at once: one statement per few thousand rows (each a round trip inside
/// the cutover's window), well within both engines' 65,535 parameters.
const RECHECK_VALUES: usize = 4000;

/// A value shown in the report is cut to this many characters.
const SHOWN_CHARS: usize = 40;

/// The table being compared: its plan, its name for messages, the two connections.
pub struct Comparison<'a> {
    pub plan: &'a TablePlan,
    pub name: &'a str,
    pub source: &'a Source,
    pub target: &'a mut Target,
}

/// The keys the source changed in a table, as PostgreSQL's text of the columns named.
pub type Changed<'a> = (&'a [String], &'a KeySet);

/// The rows of a range that differ, by canonical key.
struct Differences {
    /// On the source only.
    missing: Vec<Vec<String>>,
    /// On the target only.
    extra: Vec<Vec<String>>,
    /// On both, with the columns whose values differ.
    changed: Vec<(Vec<String>, Vec<String>)>,
}

impl Differences {
    /// Every differing row's key.
    fn keys(self) -> impl Iterator<Item = Vec<String>> {
        self.missing.into_iter().chain(self.extra).chain(self.changed.into_iter().map(|(key, _)| key))
    }
}

/// The rows a re-check compares, by canonical key.
struct KeysToCompare {
    keys: Vec<Vec<String>>,
    /// How many of them the source changed (and still has).
    n_changed: usize,
    /// Keys per statement.
    per_statement: usize,
}

impl Comparison<'_> {
    /// Fills `report`'s counts and differences; `pinpointing` is called when the checksums differ.
    pub async fn run(&mut self, report: &mut TableReport, pinpointing: impl FnOnce()) -> Result<bool, VerifyError> {
        let whole = Range::default();
        let (source, target) = self.checksums(&whole).await?;
        report.source_rows = Some(source.n_rows);
        report.target_rows = Some(target.n_rows);
        report.source_checksum = Some(format!("{:016x}", source.sum));
        report.target_checksum = Some(format!("{:016x}", target.sum));
        if source == target {
            return Ok(true);
        }
        pinpointing();
        match self.plan.keying {
            Keying::Ordered(_) => self.bisect(source, target, report).await?,
            Keying::Multiset => self.multiset(report).await?,
        }
        Ok(false)
    }

    /// Compares only the rows whose keys the source changed since a full comparison, `keys` as
    /// PostgreSQL's text of the `key_names` columns, and the rows that differed then (`listed`,
    /// canonical keys), then the row counts: a count that differs makes it a full comparison, which
    /// names the rows (a delete lost leaves a row the key lookup cannot find on the source). A table
    /// without an ordered key is compared whole.
    pub async fn recheck(
        &mut self,
        report: &mut TableReport,
        changed: Changed<'_>,
        listed: &[Vec<String>],
        pinpointing: impl FnOnce(),
    ) -> Result<bool, VerifyError> {
        let Some(to_compare) = self.keys_to_compare(changed, listed).await? else {
            return self.run(report, pinpointing).await;
        };
        let (source_rows, target_rows) = tokio::try_join!(
            count(self.plan, self.name, Side::Source(self.source)),
            count(self.plan, self.name, Side::Target(&mut *self.target)),
        )?;
        report.source_rows = Some(source_rows);
        report.target_rows = Some(target_rows);
        if source_rows != target_rows {
            return self.run(report, pinpointing).await;
        }
        for chunk in to_compare.keys.chunks(to_compare.per_statement) {
            self.leaf(&Range { keys: chunk.to_vec(), ..Range::default() }, report).await?;
        }
        let n_changed = to_compare.n_changed;
        report.detail = match listed.len() {
            0 => format!("{n_changed} row(s) the source changed since the first verification, and the counts"),
            n => format!(
                "{n_changed} row(s) the source changed since the first verification, the {n} that differed in it, \
                 and the counts"
            ),
        };
        Ok(report.missing.count + report.extra.count + report.changed.count == 0)
    }

    /// Among the rows [`Comparison::recheck`] would compare, the canonical keys of those that differ
    /// now, for a pass while the source still changes; `None` where `recheck` would compare the whole
    /// table, or past [`MOST_DIFFERING_KEYS`].
    pub async fn differing_among(
        &mut self,
        changed: Changed<'_>,
        listed: &[Vec<String>],
    ) -> Result<Option<Vec<Vec<String>>>, VerifyError> {
        let Some(to_compare) = self.keys_to_compare(changed, listed).await? else { return Ok(None) };
        let mut differing = Vec::new();
        for chunk in to_compare.keys.chunks(to_compare.per_statement) {
            differing.extend(self.leaf_differences(&Range { keys: chunk.to_vec(), ..Range::default() }).await?.keys());
            if differing.len() > MOST_DIFFERING_KEYS {
                return Ok(None);
            }
        }
        Ok(Some(differing))
    }

    /// The canonical keys of the rows the source changed (looked up on the source by their
    /// PostgreSQL text cast to the column's type) and of `listed`, each once; `None` when the table
    /// has no ordered key, or the changed keys' columns are not all its own.
    async fn keys_to_compare(
        &mut self,
        (key_names, keys): Changed<'_>,
        listed: &[Vec<String>],
    ) -> Result<Option<KeysToCompare>, VerifyError> {
        let columns: Option<Vec<usize>> =
            key_names.iter().map(|name| self.plan.columns.iter().position(|column| column.name == *name)).collect();
        let (Keying::Ordered(key), Some(columns)) = (&self.plan.keying, columns) else { return Ok(None) };
        let per_statement = (RECHECK_VALUES / key.len().max(columns.len()).max(1)).max(1);
        let mut types = Vec::new();
        for &column in &columns {
            let sql = "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::text::regclass \
                       AND attname = $2::text";
            let params = [self.plan.pg_table.clone(), self.plan.columns[column].name.clone()];
            let rows = self.source.rows("reading a key column's type", sql, &params).await?;
            types.push(rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()).unwrap_or_default());
        }
        let raw: Vec<Vec<String>> =
            keys.iter().filter_map(|key| key.iter().cloned().collect::<Option<Vec<String>>>()).collect();
        // A row changed since may also have differed then: each compared once.
        let mut canonical: BTreeSet<Vec<String>> = listed.iter().cloned().collect();
        let mut n_changed = 0;
        for chunk in raw.chunks(per_statement) {
            let (sql, params) = self.plan.canonical_keys(&columns, &types, chunk);
            let context = format!("looking up the changed rows of {}", self.name);
            for row in Side::Source(self.source).rows(context, &sql, &params).await? {
                n_changed += 1;
                canonical.insert(row.into_iter().map(Option::unwrap_or_default).collect());
            }
        }
        Ok(Some(KeysToCompare { keys: canonical.into_iter().collect(), n_changed, per_statement }))
    }

    async fn checksums(&mut self, range: &Range) -> Result<(Checksum, Checksum), VerifyError> {
        let (plan, name) = (self.plan, self.name);
        tokio::try_join!(
            checksum(plan, name, Side::Source(self.source), range),
            checksum(plan, name, Side::Target(&mut *self.target), range),
        )
    }

    async fn bisect(
        &mut self,
        source: Checksum,
        target: Checksum,
        report: &mut TableReport,
    ) -> Result<(), VerifyError> {
        let mut pending = vec![(Range::default(), source, target)];
        while let Some((range, source, target)) = pending.pop() {
            if source == target {
                continue;
            }
            if report.missing.count + report.extra.count + report.changed.count >= LISTED as u64 {
                report.complete = false;
                return Ok(());
            }
            let larger = source.n_rows.max(target.n_rows);
            if larger <= LEAF_ROWS {
                self.leaf(&range, report).await?;
                continue;
            }
            // Split at the middle key of the side with more rows: that side's half-ranges hold half
            // its rows each, so every step shrinks the larger side.
            let mut side = match source.n_rows >= target.n_rows {
                true => Side::Source(self.source),
                false => Side::Target(&mut *self.target),
            };
            let (sql, params) = self.plan.split_key(side.engine(), &range, larger / 2);
            let context = format!("splitting a key range of {}", self.name);
            let Some(middle) = side.rows(context, &sql, &params).await?.into_iter().next() else {
                // The table changed under us; compare what is there now.
                self.leaf(&range, report).await?;
                continue;
            };
            let middle: Vec<String> = middle.into_iter().map(Option::unwrap_or_default).collect();
            let left = Range { lo: range.lo.clone(), hi: Some(middle.clone()), keys: Vec::new() };
            let right = Range { lo: Some(middle), hi: range.hi.clone(), keys: Vec::new() };
            let (left_source, left_target) = self.checksums(&left).await?;
            let empty = Checksum::default();
            if (left_source, left_target) == (source, target) || (left_source, left_target) == (empty, empty) {
                // No progress: the table changed under us, or the engines disagree on the key order.
                // Comparing the range row by row is still right, only larger.
                self.leaf(&range, report).await?;
                continue;
            }
            pending.push((right, source.minus(left_source), target.minus(left_target)));
            pending.push((left, left_source, left_target));
        }
        Ok(())
    }

    /// Compares the rows of a small range by key, column by column, into `report`.
    async fn leaf(&mut self, range: &Range, report: &mut TableReport) -> Result<(), VerifyError> {
        let differences = self.leaf_differences(range).await?;
        for key in differences.missing {
            report.missing.push(self.show_key(&key));
        }
        for key in differences.extra {
            report.extra.push(self.show_key(&key));
        }
        for (key, columns) in differences.changed {
            report.changed.push(ChangedRow { key: self.show_key(&key), columns });
        }
        Ok(())
    }

    /// The canonical keys of the rows of a small range that differ, each sorted.
    async fn leaf_differences(&mut self, range: &Range) -> Result<Differences, VerifyError> {
        let plan = self.plan;
        let name = self.name;
        let (source, target) = tokio::try_join!(
            leaf_rows(plan, name, Side::Source(self.source), range),
            leaf_rows(plan, name, Side::Target(&mut *self.target), range),
        )?;
        let mut source: HashMap<Vec<String>, Vec<String>> = source.into_iter().collect();
        let mut extra = Vec::new();
        let mut changed = Vec::new();
        for (key, hashes) in target {
            match source.remove(&key) {
                None => extra.push(key),
                Some(source_hashes) => {
                    let columns: Vec<String> = plan
                        .columns
                        .iter()
                        .zip(source_hashes.iter().zip(&hashes))
                        .filter(|(_, (a, b))| a != b)
                        .map(|(column, _)| column.name.clone())
                        .collect();
                    if !columns.is_empty() {
                        changed.push((key, columns));
                    }
                }
            }
        }
        let mut missing: Vec<Vec<String>> = source.into_keys().collect();
        missing.sort();
        extra.sort();
        changed.sort();
        Ok(Differences { missing, extra, changed })
    }

    /// The canonical keys of every row that differs, read in ranges of [`PASS_ROWS`] rows in key
    /// order: for rows that differed while the source changed, to be re-checked at the cutover.
    /// `None` past [`MOST_DIFFERING_KEYS`], or for a table without an ordered key: compare it whole.
    pub async fn differing_keys(&mut self) -> Result<Option<Vec<Vec<String>>>, VerifyError> {
        if !matches!(self.plan.keying, Keying::Ordered(_)) {
            return Ok(None);
        }
        let mut keys = Vec::new();
        let mut lo = None;
        loop {
            let (sql, params) =
                self.plan.split_key(Engine::Pg, &Range { lo: lo.clone(), ..Range::default() }, PASS_ROWS);
            let context = format!("splitting {} into ranges", self.name);
            let hi: Option<Vec<String>> = Side::Source(self.source)
                .rows(context, &sql, &params)
                .await?
                .into_iter()
                .next()
                .map(|row| row.into_iter().map(Option::unwrap_or_default).collect());
            let differences = self.leaf_differences(&Range { lo, hi: hi.clone(), keys: Vec::new() }).await?;
            keys.extend(differences.keys());
            if keys.len() > MOST_DIFFERING_KEYS {
                return Ok(None);
            }
            match hi {
                Some(hi) => lo = Some(hi),
                None => return Ok(Some(keys)),
            }
        }
    }

    /// `id=7` or `flight_id=7, ticket_no=0005432000987`.
    fn show_key(&self, key: &[String]) -> String {
        let Keying::Ordered(columns) = &self.plan.keying else { return key.join(", ") };
        columns
            .iter()
            .zip(key)
            .map(|(column, value)| format!("{}={}", self.plan.columns[column.column].name, shown(value)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Which row hashes occur a different number of times on the two sides, then those rows.
    async fn multiset(&mut self, report: &mut TableReport) -> Result<(), VerifyError> {
        let differing = match self.plan.has_client_columns() {
            false => self.merged_groups().await?,
            true => self.counted_rows().await?,
        };
        let mut listed: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut n_differing = 0;
        for (hash, counts) in differing {
            n_differing += 1;
            if listed.len() < LISTED {
                listed.insert(hash, counts);
            }
        }
        let shown_rows = self.find_rows(&listed).await?;
        for (hash, (source_count, target_count)) in listed {
            let row = shown_rows.get(&hash).cloned().unwrap_or_else(|| format!("row hash {hash}"));
            report.rows.push(RowCount { row, source_count, target_count });
        }
        report.rows.count = n_differing;
        Ok(())
    }

    /// Merges the two hash-ordered `GROUP BY` results.
    async fn merged_groups(&mut self) -> Result<Vec<(String, (u64, u64))>, VerifyError> {
        let context = format!("grouping the rows of {} by hash", self.name);
        let mut source = Side::Source(self.source);
        let mut source = source.stream(context.clone(), &self.plan.hash_groups(source.engine()), &[]).await?;
        let mut target = Side::Target(&mut *self.target);
        let sql = self.plan.hash_groups(target.engine());
        let mut target = target.stream(context, &sql, &[]).await?;
        let group = |row: Option<TextRow>| {
            row.map(|row| {
                let mut row = row.into_iter().map(Option::unwrap_or_default);
                (row.next().unwrap_or_default(), row.next().unwrap_or_default().parse::<u64>().unwrap_or(0))
            })
        };
        let mut differing = Vec::new();
        let mut a = group(source.try_next().await?);
        let mut b = group(target.try_next().await?);
        loop {
            match (&a, &b) {
                (None, None) => break,
                (Some((hash, n)), None) => {
                    differing.push((hash.clone(), (*n, 0)));
                    a = group(source.try_next().await?);
                }
                (None, Some((hash, n))) => {
                    differing.push((hash.clone(), (0, *n)));
                    b = group(target.try_next().await?);
                }
                (Some((ha, na)), Some((hb, nb))) => match ha.cmp(hb) {
                    std::cmp::Ordering::Less => {
                        differing.push((ha.clone(), (*na, 0)));
                        a = group(source.try_next().await?);
                    }
                    std::cmp::Ordering::Greater => {
                        differing.push((hb.clone(), (0, *nb)));
                        b = group(target.try_next().await?);
                    }
                    std::cmp::Ordering::Equal => {
                        if na != nb {
                            differing.push((ha.clone(), (*na, *nb)));
                        }
                        a = group(source.try_next().await?);
                        b = group(target.try_next().await?);
                    }
                },
            }
        }
        Ok(differing)
    }

    /// Counts row hashes computed in Rust, for tables with client-side columns.
    async fn counted_rows(&mut self) -> Result<Vec<(String, (u64, u64))>, VerifyError> {
        let mut counts: HashMap<String, (u64, u64)> = HashMap::new();
        let plan = self.plan;
        for mut side in [Side::Source(self.source), Side::Target(&mut *self.target)] {
            let is_source = matches!(side, Side::Source(_));
            let sql = plan.all_rows(side.engine());
            let mut rows = side.stream(format!("reading the rows of {}", self.name), &sql, &[]).await?;
            while let Some(row) = rows.try_next().await? {
                let entry = counts.entry(canonical_row(plan, row).0).or_default();
                match is_source {
                    true => entry.0 += 1,
                    false => entry.1 += 1,
                }
            }
        }
        let mut differing: Vec<(String, (u64, u64))> = counts.into_iter().filter(|(_, (a, b))| a != b).collect();
        differing.sort();
        Ok(differing)
    }

    /// The rows with the given hashes, read from the side that has them, as `column=value, ...`.
    async fn find_rows(
        &mut self,
        wanted: &BTreeMap<String, (u64, u64)>,
    ) -> Result<HashMap<String, String>, VerifyError> {
        let plan = self.plan;
        let mut found = HashMap::new();
        for mut side in [Side::Source(self.source), Side::Target(&mut *self.target)] {
            let is_source = matches!(side, Side::Source(_));
            let here: HashSet<&String> = wanted
                .iter()
                .filter(|(_, (source, target))| if is_source { *source > 0 } else { *target > 0 })
                .map(|(hash, _)| hash)
                .filter(|hash| !found.contains_key(*hash))
                .collect();
            if here.is_empty() {
                continue;
            }
            let sql = plan.all_rows(side.engine());
            let mut rows = side.stream(format!("reading the rows of {}", self.name), &sql, &[]).await?;
            while let Some(row) = rows.try_next().await? {
                let (hash, texts) = canonical_row(plan, row);
                if here.contains(&hash) && !found.contains_key(&hash) {
                    let shown: Vec<String> = plan
                        .columns
                        .iter()
                        .zip(&texts)
                        .map(|(column, text)| {
                            format!("{}={}", column.name, text.as_deref().map_or("NULL".into(), shown))
                        })
                        .collect();
                    found.insert(hash, shown.join(", "));
                }
            }
        }
        Ok(found)
    }
}

/// A value cut for display.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

fn client_kinds(plan: &TablePlan) -> Vec<Client> {
    plan.columns.iter().filter_map(|c| c.rendering.client).collect()
}

/// The row hash from a checksum row: the in-database hash, then the client-side raw texts.
fn checksum_row_hash(kinds: &[Client], row: TextRow) -> String {
    let mut row = row.into_iter();
    let in_database = row.next().flatten().unwrap_or_default();
    let client: Vec<Option<String>> =
        row.zip(kinds).map(|(raw, kind)| raw.map(|raw| client::canonical(*kind, &raw))).collect();
    combine(&in_database, &client)
}

/// A row read by [`TablePlan::all_rows`]: its hash, computed as the databases do, and its canonical texts.
fn canonical_row(plan: &TablePlan, row: TextRow) -> (String, Vec<Option<String>>) {
    let texts: Vec<Option<String>> = plan
        .columns
        .iter()
        .zip(row)
        .map(|(column, text)| match column.rendering.client {
            Some(kind) => text.map(|raw| client::canonical(kind, &raw)),
            None => text,
        })
        .collect();
    let in_database: Vec<Option<String>> = plan
        .columns
        .iter()
        .zip(&texts)
        .filter(|(column, _)| column.rendering.client.is_none())
        .map(|(_, text)| text.clone())
        .collect();
    let client: Vec<Option<String>> = plan
        .columns
        .iter()
        .zip(&texts)
        .filter(|(column, _)| column.rendering.client.is_some())
        .map(|(_, text)| text.clone())
        .collect();
    (combine(&hash_fields(&in_database), &client), texts)
}

async fn checksum(plan: &TablePlan, name: &str, mut side: Side<'_>, range: &Range) -> Result<Checksum, VerifyError> {
    let (sql, params) = plan.checksum(side.engine(), range);
    let context = format!("checksumming {name}");
    let mut rows = side.stream(context.clone(), &sql, &params).await?;
    if !plan.has_client_columns() {
        let row = rows.try_next().await?.unwrap_or_default();
        let text = |idx: usize| row.get(idx).and_then(|value| value.as_deref());
        return Checksum::from_sql(text(0), text(1)).ok_or(VerifyError::Unreadable { context });
    }
    let kinds = client_kinds(plan);
    let mut checksum = Checksum::default();
    while let Some(row) = rows.try_next().await? {
        checksum.add_row(&checksum_row_hash(&kinds, row));
    }
    Ok(checksum)
}

/// A leaf's rows: the canonical key, and each column's field hash.
async fn count(plan: &TablePlan, name: &str, mut side: Side<'_>) -> Result<u64, VerifyError> {
    let table = plan.table(side.engine());
    // The sessions read every value as text.
    let sql = match side.engine() {
        Engine::Pg => format!("SELECT count(*)::text FROM {table}"),
        Engine::My => format!("SELECT COUNT(*) FROM {table}"),
    };
    let rows = side.rows(format!("counting the rows of {name}"), &sql, &[]).await?;
    let n = rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()).unwrap_or_default();
    Ok(n.parse().unwrap_or(0))
}

async fn leaf_rows(
    plan: &TablePlan,
    name: &str,
    mut side: Side<'_>,
    range: &Range,
) -> Result<Vec<(Vec<String>, Vec<String>)>, VerifyError> {
    let Keying::Ordered(keys) = &plan.keying else { return Ok(Vec::new()) };
    let (sql, params) = plan.leaf_rows(side.engine(), range);
    let rows = side.rows(format!("reading a key range of {name}"), &sql, &params).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut row = row.into_iter();
            let key: Vec<String> = row.by_ref().take(keys.len()).map(Option::unwrap_or_default).collect();
            let hashes = plan
                .columns
                .iter()
                .zip(row)
                .map(|(column, value)| match column.rendering.client {
                    None => value.unwrap_or_default(),
                    Some(kind) => {
                        let mut bytes = Vec::new();
                        field(&mut bytes, value.map(|raw| client::canonical(kind, &raw)).as_deref());
                        sha256_hex(&bytes)
                    }
                })
                .collect();
            (key, hashes)
        })
        .collect())
}
