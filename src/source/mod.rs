//! Sources: where message bodies come from. One kind today: SQS queues.

pub mod sqs;
