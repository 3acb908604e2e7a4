//! What the linked librdkafka knows about its own configuration: every property with its scope
//! and allowed values, and the features it was built with.
//!
//! librdkafka prints its property table only to a C `FILE*` (`sys::conf` reads it back); it
//! is parsed once and cached. With the `testing` feature, `raise_fatal_error` raises a real
//! fatal error for fault drills (`sys::conf::test_fatal_error`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use rdkafka::config::ClientConfig;

/// Which clients use a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Consumers only.
    Consumer,
    /// Producers only.
    Producer,
    /// Every client.
    Both,
}

/// One librdkafka property as described by librdkafka itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Property {
    /// Which clients use it.
    pub(crate) scope: Scope,
    /// Allowed values as librdkafka words them (`earliest, latest, …` or `0 .. 3600000`);
    /// empty for free-form strings.
    pub(crate) range: String,
}

/// Every property (global and topic-level) by name; empty if librdkafka's table could not be
/// read, in which case only librdkafka's per-property verdict is available.
pub(crate) fn properties() -> &'static BTreeMap<String, Property> {
    static TABLE: OnceLock<BTreeMap<String, Property>> = OnceLock::new();
    TABLE.get_or_init(|| {
        crate::sys::conf::properties_table()
            .map(|text| parse_table(&text))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read librdkafka's property table; configuration checks will not suggest names or list allowed values");
                BTreeMap::new()
            })
    })
}

/// The features this librdkafka was built with (`builtin.features`), e.g. `gzip`, `zstd`,
/// `ssl`, `sasl_scram`.
pub(crate) fn builtin_features() -> Vec<String> {
    ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .map(|f| f.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

/// The linked librdkafka's version, e.g. `2.12.1`.
#[cfg(any(feature = "cli", test))]
pub(crate) fn version() -> String {
    rdkafka::util::get_rdkafka_version().1
}

/// Parses the markdown table librdkafka prints: `name | C/P | range | default | importance |
/// description`.
fn parse_table(text: &str) -> BTreeMap<String, Property> {
    let mut table = BTreeMap::new();
    for line in text.lines() {
        let mut cells = line.splitn(4, '|').map(str::trim);
        let (Some(name), Some(scope), Some(range)) = (cells.next(), cells.next(), cells.next())
        else {
            continue;
        };
        let scope = match scope {
            "C" => Scope::Consumer,
            "P" => Scope::Producer,
            "*" => Scope::Both,
            _ => continue, // the header and separator rows
        };
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        table.entry(name.to_string()).or_insert(Property {
            scope,
            range: range.to_string(),
        });
    }
    table
}

/// Raises a fatal error in `client` the way a real one would arrive (librdkafka's own testing
/// hook), so fault drills exercise the real fatal-error path. Only with the `testing` feature.
#[cfg(feature = "testing")]
pub(crate) fn raise_fatal_error<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    reason: &str,
) {
    crate::sys::conf::test_fatal_error(client, reason);
}

/// Without the `testing` feature no drill can be requested (`StopSignal::take_fatal_drill` is
/// always false), so this is never reached, and the test-only librdkafka call is not compiled.
#[cfg(not(feature = "testing"))]
pub(crate) fn raise_fatal_error<C: rdkafka::ClientContext>(
    _client: &rdkafka::client::Client<C>,
    reason: &str,
) {
    unreachable!("fault drill {reason:?} requested without the `testing` feature");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_property_table_comes_from_librdkafka() {
        let table = properties();
        assert!(table.len() > 100, "only {} properties", table.len());
        let reset = &table["auto.offset.reset"];
        assert_eq!(reset.scope, Scope::Consumer);
        assert!(reset.range.contains("earliest"), "{reset:?}");
        assert_eq!(table["linger.ms"].scope, Scope::Producer);
        assert_eq!(table["bootstrap.servers"].scope, Scope::Both);
        assert!(table["compression.codec"].range.contains("zstd"));
    }

    #[test]
    fn builtin_features_and_version_are_read() {
        let features = builtin_features();
        assert!(features.iter().any(|f| f == "zstd"), "{features:?}");
        assert!(version().starts_with("2."), "{}", version());
    }
}
