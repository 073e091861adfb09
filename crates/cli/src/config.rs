//! The command line, second stage: validated endpoints built from the raw flags. Stages receive these,
//! never the flags or the environment.

use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};

use crate::args::EndpointArgs;

pub struct Endpoints {
    pub source: DbEndpoint,
    pub kafka: KafkaEndpoint,
    pub target: DbEndpoint,
}

impl Endpoints {
    pub fn from_args(args: &EndpointArgs) -> anyhow::Result<Endpoints> {
        Ok(Endpoints {
            source: DbEndpoint::parse_postgres(&args.source)?,
            kafka: KafkaEndpoint::parse(&args.kafka)?,
            target: DbEndpoint::parse_mysql(&args.target)?,
        })
    }
}
