//! `sesroute run` end to end: the binary as a subprocess against the local
//! fauxqs emulator (SQS and SNS), fed and inspected with the AWS SDK.
//!
//! Every test creates its own queues and topics, named for the test, the
//! process and a counter, so the tests run in parallel on one emulator.
//! Without `FAUXQS_ENDPOINT` (set by `scripts/test`) they print a
//! note and pass, unless `CI` is set, where they fail.

mod bounce_class;
mod corpus;
mod email;
mod harness;
mod in_process;
mod limits;
mod ops;
mod restarts;
mod retry;
mod s3;
mod safety;
mod unrouted;
mod webhook;
