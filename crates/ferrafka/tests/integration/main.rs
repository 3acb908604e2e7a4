//! Integration tests against the embedded tansu broker: one binary, one module per area.

mod support;

mod happy_path;
mod producer;
mod resilience;
mod restarts;
mod slow_consumer;
