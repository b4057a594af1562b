//! sesroute: routes Amazon SES feedback from SQS queues to the teams who own it.
//!
//! The data flows one way, a module per stage: [`notification`] understands a
//! queue body, [`route`] decides where it goes, and [`cmd`] holds the commands
//! that put the stages together. [`config`] turns the TOML file into the
//! validated types every stage runs on.

pub mod audit;
pub mod aws;
pub mod batch;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod metrics;
pub mod notification;
pub mod route;
pub mod runtime;
pub mod server;
pub mod signature;
pub mod sink;
pub mod source;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
pub mod text;
