//! Where each table's rows land and how each of its values converts: what the sink loads by and
//! verify renders by. Decided here, beside the column types, so that the three cannot drift apart.

use std::collections::HashSet;

use passerelle_model::schema::{ColumnType, PgType, QualifiedName, Schema, TableKind};
use passerelle_model::target::{ArrayElement, Conversion, Shape, TargetColumn, TargetTable};

use crate::ident::shorten;
use crate::{Config, IntervalAs, UuidAs};

/// One entry per source table that holds rows, partitions included: a partition's rows land in its
/// parent's table. `generated`: the columns the target computes itself.
pub(crate) fn target_tables(
    schema: &Schema,
    config: &Config,
    generated: &HashSet<(QualifiedName, String)>,
) -> Vec<TargetTable> {
    let mut tables = Vec::new();
    for table in &schema.tables {
        let lands_in = match &table.kind {
            TableKind::Partition { parent, .. } => parent,
            TableKind::Ordinary | TableKind::Partitioned { .. } => &table.name,
        };
        let Some(database) = config.databases.get(&lands_in.schema) else { continue };
        let columns = table
            .columns
            .iter()
            .map(|column| TargetColumn {
                name: shorten(&column.name).into_owned(),
                conversion: conversion(&column.data_type, config, schema),
                generated: generated.contains(&(lands_in.clone(), column.name.clone())),
            })
            .collect();
        tables.push(TargetTable {
            source: table.name.clone(),
            database: database.clone(),
            name: shorten(&lands_in.name).into_owned(),
            columns,
            key: table.key_positions(),
        });
    }
    tables
}

/// The conversion that matches [`crate::types`]' choice of target type for `column_type`.
pub fn conversion(column_type: &ColumnType, config: &Config, schema: &Schema) -> Conversion {
    if column_type.array_dims > 0 {
        return Conversion::Array(array_element(&column_type.base, schema));
    }
    base_conversion(&column_type.base, config, schema)
}

fn base_conversion(base: &PgType, config: &Config, schema: &Schema) -> Conversion {
    match base {
        PgType::Numeric(_) | PgType::Real | PgType::Double => Conversion::Number,
        PgType::Money => Conversion::Money,
        PgType::Boolean => Conversion::Boolean,
        PgType::Bytea => Conversion::Bytes,
        PgType::Date | PgType::Timestamp(_) | PgType::TimestampTz(_) => Conversion::DateTime,
        PgType::TimeTz(_) => Conversion::TimeUtc,
        PgType::Interval(_) if config.types.interval == IntervalAs::Microseconds => Conversion::IntervalMicros,
        PgType::Uuid if config.types.uuid == UuidAs::Binary16 => Conversion::UuidBytes,
        PgType::Bit(length) if length.unwrap_or(1) <= 64 => Conversion::Bits,
        PgType::Point => Conversion::Geometry(Shape::Point),
        PgType::Lseg | PgType::Path => Conversion::Geometry(Shape::LineString),
        PgType::Polygon => Conversion::Geometry(Shape::Polygon),
        PgType::Box => Conversion::Geometry(Shape::Box),
        PgType::Composite(name) => Conversion::Record {
            fields: schema
                .composites
                .iter()
                .find(|composite| &composite.name == name)
                .map(|composite| composite.fields.iter().map(|(field, _)| field.clone()).collect())
                .unwrap_or_default(),
        },
        PgType::Hstore => Conversion::Hstore,
        PgType::Domain(name) => match schema.domains.iter().find(|domain| &domain.name == name) {
            Some(domain) => conversion(&domain.base, config, schema),
            None => Conversion::Text,
        },
        _ => Conversion::Text,
    }
}

fn array_element(base: &PgType, schema: &Schema) -> ArrayElement {
    match base {
        PgType::SmallInt | PgType::Integer | PgType::BigInt | PgType::Numeric(_) | PgType::Real | PgType::Double => {
            ArrayElement::Number
        }
        PgType::Oid(name) if name == "oid" => ArrayElement::Number,
        PgType::Boolean => ArrayElement::Boolean,
        PgType::Domain(name) => match schema.domains.iter().find(|domain| &domain.name == name) {
            Some(domain) if domain.base.array_dims == 0 => array_element(&domain.base.base, schema),
            _ => ArrayElement::Text,
        },
        _ => ArrayElement::Text,
    }
}
