//! Every `unsafe` block of ferrafka, and nowhere else: the crate denies `unsafe_code`
//! (`[workspace.lints.rust]`) and only this module allows it. Each block states the invariant
//! that keeps it sound in a `// SAFETY:` comment; `docs/safety.md` lists what each file calls
//! and why there is no safe way.
//!
//! - [`admin`], [`groups`], [`permissions`]: librdkafka admin calls rdkafka 0.39 does not wrap
//!   (IncrementalAlterConfigs, DescribeConsumerGroups, DescribeTopics with authorized
//!   operations).
//! - [`message`]: a polled message kept without the borrow of its consumer, and its headers.
//! - [`opaque`]: the delivery tracker handed to librdkafka and back.
//! - [`conf`]: librdkafka's property table (printed only to a C `FILE*`) and its test-only
//!   fatal-error hook.
//! - [`clock`]: the kernel's clock-synchronisation state (`adjtimex`).
#![allow(unsafe_code)]

pub(crate) mod admin;
pub(crate) mod clock;
pub(crate) mod conf;
pub(crate) mod groups;
pub(crate) mod message;
pub(crate) mod opaque;
pub(crate) mod permissions;
