//! Integration tests against the embedded tansu broker: one binary, one module per area.

mod support;

mod admin_api;
mod consumer_protocol;
mod declarative;
mod doctor;
mod environments;
mod executor_faults;
mod filters;
mod happy_path;
mod http_probes;
mod instrumentation;
mod java_peer;
mod logs;
mod partition_core;
mod partitioning;
mod patterns;
mod producer;
mod reader;
mod rebalance_pause;
mod reload;
mod resilience;
mod restarts;
mod runs;
mod security;
mod slow_consumer;
mod topics_cli;
mod transactions;
mod virtual_partitions;
mod web_commands;
mod web_dead_letters;
mod web_errors;
mod web_operations;
mod web_reporting;
mod web_ui;
mod zero_copy;
