//! Sources: where message bodies come from. One kind today: SQS queues.

pub mod heartbeat;
pub mod sqs;
