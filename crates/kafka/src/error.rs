//! Kafka errors: a one-line cause naming the brokers, topic or partition, then what to do.

use std::fmt;

use rdkafka::error::KafkaError as RdKafkaError;

#[derive(Debug)]
pub enum KafkaError {
    /// The client could not be configured or the brokers did not answer.
    Unreachable { brokers: String, cause: String },
    /// A topic could not be created, described or deleted.
    Topic { topic: String, cause: String },
    /// A message was not delivered (after librdkafka's own retries).
    Delivery { topic: String, cause: String },
    /// Reading or committing from the consumer group failed.
    Consume { cause: String },
    /// A message that is not a Passerelle envelope, or does not fit its table.
    Decode { topic: String, partition: i32, offset: i64, cause: String },
}

impl KafkaError {
    pub fn cause(&self) -> String {
        match self {
            KafkaError::Unreachable { brokers, cause } => format!("cannot reach Kafka at {brokers}: {cause}"),
            KafkaError::Topic { topic, cause } => format!("topic {topic}: {cause}"),
            KafkaError::Delivery { topic, cause } => format!("could not deliver to topic {topic}: {cause}"),
            KafkaError::Consume { cause } => format!("consuming from Kafka failed: {cause}"),
            KafkaError::Decode { topic, partition, offset, cause } => {
                format!("message {topic}/{partition}@{offset} cannot be decoded: {cause}")
            }
        }
    }

    pub fn hint(&self) -> &'static str {
        match self {
            KafkaError::Unreachable { .. } => "check --kafka / PASSERELLE_KAFKA and that the brokers are up",
            KafkaError::Topic { .. } => "check the principal's topic ACLs and the broker log",
            KafkaError::Delivery { .. } => "check the broker log and free disk space on the brokers, then run again",
            KafkaError::Consume { .. } => "check the broker log, then run again: the sink resumes where it stopped",
            KafkaError::Decode { .. } => "the topic holds messages Passerelle did not write; use another topic prefix",
        }
    }

    /// Transport failures are worth another try; a message that cannot be decoded is not.
    pub fn retryable(&self) -> bool {
        !matches!(self, KafkaError::Decode { .. })
    }
}

/// librdkafka's code name says more than its prose: `BrokerTransportFailure`, `TopicAuthorizationFailed`.
pub(crate) fn describe(error: &RdKafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}: {code}"),
        None => error.to_string(),
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.cause(), self.hint())
    }
}

impl std::error::Error for KafkaError {}
