//! How the command line writes log lines: the `log_format` setting, which the
//! `FERRAFKA_LOG_FORMAT` variable overrides.

use std::fmt;

/// Environment variable that chooses the log format (`text` or `json`) over the `log_format`
/// setting: a deployment switches to JSON without a rebuild.
pub const LOG_FORMAT_VAR: &str = "FERRAFKA_LOG_FORMAT";

/// How the command line (`ferrafka::cli`) writes log lines to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Lines for people: time, level, target, message, then the fields as `key=value`;
    /// coloured only on a terminal without `NO_COLOR`.
    #[default]
    Text,
    /// One JSON object per line for log shippers, with `timestamp`, `level`, `target` and
    /// `fields` (the message is `fields.message`); never coloured.
    Json,
}

impl LogFormat {
    /// The format a value of `FERRAFKA_LOG_FORMAT` names: `text` or `json`, in any case;
    /// `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// The format's name, as `FERRAFKA_LOG_FORMAT` takes it.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_and_nothing_else_does() {
        assert_eq!(LogFormat::from_name("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::from_name(" JSON "), Some(LogFormat::Json));
        assert_eq!(LogFormat::from_name("Text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::from_name("logfmt"), None);
        assert_eq!(LogFormat::from_name(""), None);
        assert_eq!(LogFormat::Json.to_string(), "json");
    }
}
