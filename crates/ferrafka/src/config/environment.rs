//! The environment the app runs in, where a consumer group starts, and the layers settings come from.

use std::fmt;

/// The environment the app runs in; it decides defaults that must differ between a laptop and
/// production. Any name other than the three known ones is accepted and treated as
/// non-production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environment {
    /// Local development (the default).
    Development,
    /// Automated tests.
    Test,
    /// Production.
    Production,
    /// Any other name, e.g. `staging`; treated as non-production.
    Other(String),
}

impl Environment {
    /// Parses a name as found in `FERRAFKA_ENV`; empty means development.
    pub fn from_name(name: &str) -> Self {
        match name.trim() {
            "" | "development" => Environment::Development,
            "test" => Environment::Test,
            "production" => Environment::Production,
            other => Environment::Other(other.to_string()),
        }
    }

    /// The environment's name.
    pub fn name(&self) -> &str {
        match self {
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Production => "production",
            Environment::Other(name) => name,
        }
    }

    /// True only for production.
    pub fn is_production(&self) -> bool {
        matches!(self, Environment::Production)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a consumer starts on a partition that has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialOffset {
    /// From the oldest retained message (`auto.offset.reset=earliest`).
    Earliest,
    /// Only messages produced after the group first joined (`auto.offset.reset=latest`).
    Latest,
}

impl InitialOffset {
    pub(crate) fn as_kafka(self) -> &'static str {
        match self {
            InitialOffset::Earliest => "earliest",
            InitialOffset::Latest => "latest",
        }
    }
}

/// The layer an effective setting came from, lowest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// ferrafka's default, the same in every environment.
    Default,
    /// The profile of the named environment (e.g. production turns topic auto-creation off).
    Profile(String),
    /// The app's `setup` closure.
    Setup,
    /// An override on the named topic in the routes.
    Topic(String),
    /// The named environment variable.
    EnvVar(String),
    /// Owned by ferrafka and not changeable (e.g. `group.id`, `enable.auto.offset.store`).
    Framework,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Profile(env) => write!(f, "profile:{env}"),
            Source::Setup => f.write_str("setup"),
            Source::Topic(topic) => write!(f, "topic:{topic}"),
            Source::EnvVar(var) => write!(f, "env:{var}"),
            Source::Framework => f.write_str("framework"),
        }
    }
}
