//! The one place that decides what is a secret and hides it.
//!
//! Every value shown to a person (`info`, `doctor`, validation problems, the `Debug` of the
//! configuration) and every librdkafka error turned into a ferrafka [`Error`](crate::Error)
//! goes through here. librdkafka echoes values in its configuration errors
//! (`Invalid value "…" for configuration property "…"`, and rdkafka appends the raw value to
//! every `ClientConfig` error), so those are rewritten before anyone can print them.

use std::collections::BTreeMap;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;

/// What a hidden value is shown as.
pub(crate) const REDACTED: &str = "[redacted]";

/// ClientProperties librdkafka 2.12 flags as sensitive (it redacts them in its own debug output);
/// librdkafka offers no API to read the flag, so the list is kept here.
const LIBRDKAFKA_SENSITIVE: &[&str] = &[
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.ca.pem",
    "ssl.keystore.password",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
];

/// Words that make any property name secret, whatever it is otherwise called (misspellings
/// included: a misspelled key is not known to librdkafka, so nothing else says it is secret).
const SECRET_WORDS: &[&str] = &[
    "password",
    "pasword",
    "passwd",
    "secret",
    "token",
    "passphrase",
    "private.key",
    "credential",
    "api.key",
    "apikey",
];

/// True for properties whose values must never be shown: the ones librdkafka flags as
/// sensitive (or a near-miss spelling of one), and anything named like a password, secret,
/// token, passphrase, credential or private key.
pub fn is_sensitive(property: &str) -> bool {
    let p = property.to_ascii_lowercase();
    // A misspelled secret (`sasl.pasword`) is still a secret. Names whose lengths differ by
    // more than 2 are further apart than that; skipping them keeps boot cheap (every property
    // of every client passes here).
    LIBRDKAFKA_SENSITIVE
        .iter()
        .any(|s| p.len().abs_diff(s.len()) <= 2 && strsim::damerau_levenshtein(&p, s) <= 2)
        || SECRET_WORDS.iter().any(|word| p.contains(word))
        || p.ends_with(".key.pem")
}

/// The value as it may be displayed: `[redacted]` for sensitive properties.
pub fn redact(property: &str, value: &str) -> String {
    if is_sensitive(property) {
        REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// `text` with every secret of `kafka` hidden: the value of each sensitive property (quoted
/// anywhere; bare when at least 3 characters long, so short values do not garble the text),
/// plus whatever [`redact_text_alone`] finds.
pub(crate) fn redact_text(text: &str, kafka: &BTreeMap<String, String>) -> String {
    let mut out = redact_text_alone(text);
    for (k, v) in kafka {
        if v.is_empty() || !is_sensitive(k) {
            continue;
        }
        out = out.replace(&format!("\"{v}\""), &format!("\"{REDACTED}\""));
        if v.chars().count() >= 3 {
            out = out.replace(v.as_str(), REDACTED);
        }
    }
    out
}

/// `text` with the secrets hidden that can be recognised without the configuration: the
/// value in librdkafka's `… value "V" for configuration property "K"` and `Configuration
/// property "K" value V …` when `K` is sensitive, and `K=V` words with a sensitive `K`.
pub(crate) fn redact_text_alone(text: &str) -> String {
    redact_assignments(&redact_value_after_name(&redact_value_before_name(text)))
}

/// `… value "V" for configuration property "K"` with `V` hidden when `K` is sensitive.
fn redact_value_before_name(text: &str) -> String {
    const MARK: &str = "\" for configuration property \"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at);
        let name = after[MARK.len()..].split('"').next().unwrap_or("");
        match before.rfind("value \"") {
            Some(open) if is_sensitive(name) => {
                out.push_str(&before[..open + "value \"".len()]);
                out.push_str(REDACTED);
            }
            _ => out.push_str(before),
        }
        out.push_str(MARK);
        rest = &after[MARK.len()..];
    }
    out.push_str(rest);
    out
}

/// `Configuration property "K" value V …` with `V` hidden when `K` is sensitive.
fn redact_value_after_name(text: &str) -> String {
    const OPEN: &str = "onfiguration property \"";
    const VALUE: &str = "\" value ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let start = at + OPEN.len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let name_end = rest.find('"').unwrap_or(rest.len());
        if !rest[name_end..].starts_with(VALUE) || !is_sensitive(&rest[..name_end]) {
            continue;
        }
        let value_start = name_end + VALUE.len();
        let value_end = rest[value_start..]
            .find(' ')
            .map_or(rest.len(), |e| value_start + e);
        out.push_str(&rest[..value_start]);
        out.push_str(REDACTED);
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

/// `K=V` words with `V` hidden when `K` is sensitive.
fn redact_assignments(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.split_once('=') {
            Some((k, v)) if !v.is_empty() && is_sensitive(k.trim_matches('"')) => {
                format!("{k}={REDACTED}")
            }
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `error` with every secret of `kafka` hidden (see [`redact_kafka_error_alone`]).
pub(crate) fn redact_kafka_error(
    error: &KafkaError,
    kafka: &BTreeMap<String, String>,
) -> KafkaError {
    map_text(&redact_kafka_error_alone(error), |t| redact_text(t, kafka))
}

/// `error` with the secrets hidden that can be recognised without the configuration. A
/// `ClientConfig` error carries the property and its raw value: the value is hidden when the
/// property is sensitive, and also when librdkafka does not know the property, since a
/// misspelled name says nothing about whether its value is secret (and the value does not
/// help fix a name).
pub(crate) fn redact_kafka_error_alone(error: &KafkaError) -> KafkaError {
    match error {
        KafkaError::ClientConfig(res, description, key, value) => {
            let hide = !value.is_empty()
                && (is_sensitive(key) || *res == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN);
            let (description, value) = if hide {
                let description =
                    description.replace(&format!("\"{value}\""), &format!("\"{REDACTED}\""));
                (description, REDACTED.to_string())
            } else {
                (description.clone(), value.clone())
            };
            KafkaError::ClientConfig(*res, redact_text_alone(&description), key.clone(), value)
        }
        other => map_text(other, redact_text_alone),
    }
}

/// `error` with `f` applied to the free text it carries.
fn map_text(error: &KafkaError, f: impl Fn(&str) -> String) -> KafkaError {
    match error {
        KafkaError::ClientConfig(res, description, key, value) => {
            KafkaError::ClientConfig(*res, f(description), key.clone(), f(value))
        }
        KafkaError::ClientCreation(text) => KafkaError::ClientCreation(f(text)),
        KafkaError::AdminOpCreation(text) => KafkaError::AdminOpCreation(f(text)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
