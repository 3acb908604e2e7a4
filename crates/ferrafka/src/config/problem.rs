//! Invalid settings, reported all at once.

use std::fmt;

/// One invalid setting: which, its value, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting's path, e.g. `concurrency` or `routes.analytics.visits.max_messages`.
    pub setting: String,
    /// The offending value (redacted when sensitive).
    pub value: String,
    /// What is wrong, phrased as what the value needs to be.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl Problem {
    pub(crate) fn new(setting: &str, value: &str, problem: &str, fix: &str) -> Self {
        Problem {
            setting: setting.into(),
            value: value.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {:?}: {} (fix: {})",
            self.setting, self.value, self.problem, self.fix
        )
    }
}

/// Every problem found in the configuration and routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in the order they were found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
