//! Checks every librdkafka property of every client before anything connects.
//!
//! Each property is handed to librdkafka on its own (`rd_kafka_conf_set` through
//! [`ClientConfig::create_native_config`]), so librdkafka judges every one and all verdicts are
//! reported together. A verdict is wrapped with the clients that use the property, the layer that
//! set it, the allowed values, and a "did you mean" for a near-miss name. Values that need a
//! build feature (a codec, TLS, a SASL mechanism) are checked against `builtin.features` first,
//! with the remedy.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;

use super::ClientProperties;
use crate::config::{ConfigError, Problem, Source};
use crate::librdkafka::{self, Property};
use crate::secrets::{self, is_sensitive, redact};

/// A build feature a property value needs: the `builtin.features` name, what is missing, and
/// how to get it.
struct Requirement {
    feature: &'static str,
    missing: &'static str,
    remedy: &'static str,
}

const ZSTD: Requirement = Requirement {
    feature: "zstd",
    missing: "libzstd not available at build time",
    remedy: "enable the `zstd` feature of the `rdkafka` dependency (it bundles libzstd); when \
             linking a system librdkafka, install libzstd and pkg-config and rebuild it \
             (`cargo clean -p rdkafka-sys`); or pick another codec (gzip, lz4, snappy)",
};
const GZIP: Requirement = Requirement {
    feature: "gzip",
    missing: "zlib not available at build time",
    remedy: "enable the `libz` feature of the `rdkafka` dependency (on by default), or pick \
             another codec (lz4, snappy)",
};
const SNAPPY: Requirement = Requirement {
    feature: "snappy",
    missing: "snappy not enabled at build time",
    remedy: "rebuild librdkafka with snappy, or pick another codec (gzip, lz4)",
};
const SSL: Requirement = Requirement {
    feature: "ssl",
    missing: "OpenSSL not available at build time",
    remedy: "enable the `ssl` (or `ssl-vendored`) feature of the `rdkafka` dependency",
};
const SASL: Requirement = Requirement {
    feature: "sasl",
    missing: "SASL not available at build time",
    remedy: "rebuild librdkafka with SASL support",
};
const GSSAPI: Requirement = Requirement {
    feature: "sasl_gssapi",
    missing: "GSSAPI (Kerberos) support not available at build time",
    remedy: "enable the `gssapi` (or `gssapi-vendored`) feature of the `rdkafka` dependency \
             (needs cyrus-sasl)",
};
const SCRAM: Requirement = Requirement {
    feature: "sasl_scram",
    missing: "SCRAM needs OpenSSL, which was not available at build time",
    remedy: "enable the `ssl` (or `ssl-vendored`) feature of the `rdkafka` dependency",
};
const OAUTHBEARER: Requirement = Requirement {
    feature: "sasl_oauthbearer",
    missing: "OAUTHBEARER needs OpenSSL, which was not available at build time",
    remedy: "enable the `ssl` (or `ssl-vendored`) feature of the `rdkafka` dependency",
};
const OIDC: Requirement = Requirement {
    feature: "oidc",
    missing: "OAuth/OIDC needs libcurl and OpenSSL, which were not available at build time",
    remedy: "enable the `curl` and `ssl` features of the `rdkafka` dependency",
};

/// The build features `value` of `property` needs.
fn requirements(property: &str, value: &str) -> Vec<&'static Requirement> {
    let value = value.trim().to_ascii_lowercase();
    match property {
        "compression.codec" | "compression.type" => match value.as_str() {
            "zstd" => vec![&ZSTD],
            "gzip" => vec![&GZIP],
            "snappy" => vec![&SNAPPY],
            _ => vec![],
        },
        "security.protocol" => match value.as_str() {
            "ssl" => vec![&SSL],
            "sasl_ssl" => vec![&SSL, &SASL],
            "sasl_plaintext" => vec![&SASL],
            _ => vec![],
        },
        "sasl.mechanisms" | "sasl.mechanism" => match value.as_str() {
            "gssapi" => vec![&GSSAPI],
            "scram-sha-256" | "scram-sha-512" => vec![&SCRAM],
            "oauthbearer" => vec![&OAUTHBEARER],
            _ => vec![],
        },
        "sasl.oauthbearer.method" if value == "oidc" => vec![&OIDC],
        _ => vec![],
    }
}

/// What is wrong with one property and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) problem: String,
    pub(crate) fix: String,
    /// The value must not be shown: the property, or the one it is a typo of, is sensitive.
    pub(crate) sensitive: bool,
}

/// Judges one property: build features first (against `features`, librdkafka's
/// `builtin.features` outside tests), then librdkafka itself. `None` when it is fine.
pub(crate) fn check_property(
    name: &str,
    value: &str,
    features: &[String],
    table: &BTreeMap<String, Property>,
) -> Option<Verdict> {
    let shown = redact(name, value);
    if let Some(req) = requirements(name, value)
        .into_iter()
        .find(|r| !features.iter().any(|f| f == r.feature))
    {
        return Some(Verdict {
            sensitive: is_sensitive(name),
            problem: format!(
                "Unsupported value \"{shown}\" for configuration property \"{name}\": {} \
                 (this librdkafka's builtin.features: {})",
                req.missing,
                features.join(",")
            ),
            fix: req.remedy.to_string(),
        });
    }
    let mut probe = ClientConfig::new();
    probe.set(name, value);
    let Err(error @ KafkaError::ClientConfig(res, ..)) = probe.create_native_config() else {
        return None;
    };
    let KafkaError::ClientConfig(_, description, _, _) = secrets::redact_kafka_error_alone(&error)
    else {
        return None;
    };
    let near = (!table.is_empty() && !table.contains_key(name))
        .then(|| did_you_mean(name, table))
        .flatten();
    // A value is shown only when it is known which property it is for and that one is not
    // secret: an unknown name with no near miss (`sasl.pw`) may well hold a secret.
    let sensitive = is_sensitive(name)
        || near.is_some_and(is_sensitive)
        || (res == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN && near.is_none());
    let mut problem = description.trim().to_string();
    if sensitive && !value.is_empty() {
        problem = problem.replace(value, secrets::REDACTED);
    }
    let fix = if !table.is_empty() && !table.contains_key(name) {
        match near {
            Some(near) => {
                problem.push_str(&format!(" (did you mean \"{near}\"?)"));
                format!("rename `{name}` to `{near}`")
            }
            None => {
                format!("remove `{name}`; see librdkafka's CONFIGURATION.md for the property names")
            }
        }
    } else if problem.contains("not available at build time")
        || problem.contains("not enabled at build time")
    {
        "rebuild librdkafka with the missing library (see the `rdkafka` crate's features), or \
         choose another value"
            .to_string()
    } else {
        // librdkafka's table gives no range for `partitioner`, a string it validates itself.
        let partitioners;
        let range = match name {
            "partitioner" => {
                partitioners = super::partitioners::names();
                Some(partitioners.as_str())
            }
            _ => table.get(name).map(|p| p.range.as_str()),
        };
        match range {
            Some(range) if !range.is_empty() => {
                problem.push_str(&format!("; allowed values: {range}"));
                format!("set `{name}` to one of: {range}")
            }
            _ => format!("correct the value of `{name}`"),
        }
    };
    Some(Verdict {
        problem,
        fix,
        sensitive,
    })
}

/// The known property closest to `name`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    table: &'a BTreeMap<String, Property>,
) -> Option<&'a str> {
    table
        .keys()
        // The distance is at least the difference in length: most names need no computing.
        .filter(|k| name.len().abs_diff(k.len()) <= 2.max(k.len() / 8))
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 8))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Checks the librdkafka properties of one client built outside an app (`Producer::new`,
/// `Admin::new`): every problem at once, secrets redacted, before anything connects.
pub(crate) fn check_kafka(
    client: &str,
    kafka: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let features = librdkafka::builtin_features();
    let table = librdkafka::properties();
    let problems: Vec<Problem> = kafka
        .iter()
        .filter_map(|(name, value)| {
            let verdict = check_property(name, value, &features, table)?;
            let shown = if verdict.sensitive {
                secrets::REDACTED
            } else {
                value
            };
            Some(Problem::new(
                &format!("kafka.{name}"),
                shown,
                &format!("{} [used by {client}]", verdict.problem),
                &verdict.fix,
            ))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError { problems })
    }
}

/// Checks the properties of every client, each named by its label (`subscription group
/// shop/default`, `producer`). A property with the same value in several clients is reported
/// once, naming all of them.
pub(crate) fn check_clients(clients: &[(String, ClientProperties)], problems: &mut Vec<Problem>) {
    check_clients_with(
        clients,
        &librdkafka::builtin_features(),
        librdkafka::properties(),
        problems,
    );
}

pub(crate) fn check_clients_with(
    clients: &[(String, ClientProperties)],
    features: &[String],
    table: &BTreeMap<String, Property>,
    problems: &mut Vec<Problem>,
) {
    /// One property value and the clients that use it, in first-seen order.
    struct Use {
        name: String,
        value: String,
        source: Source,
        clients: Vec<String>,
    }
    let mut seen: Vec<Use> = Vec::new();
    let mut note = |k: &str, v: &str, source: Source, client: String| match seen
        .iter_mut()
        .find(|u| u.name == k && u.value == v)
    {
        Some(u) => u.clients.push(client),
        None => seen.push(Use {
            name: k.to_string(),
            value: v.to_string(),
            source,
            clients: vec![client],
        }),
    };
    for (client, properties) in clients {
        for (k, (v, source)) in properties.with_sources() {
            note(k, v, source.clone(), client.clone());
        }
    }
    for Use {
        name,
        value,
        source,
        clients,
    } in seen
    {
        if let Some(verdict) = check_property(&name, &value, features, table) {
            let shown = if verdict.sensitive {
                secrets::REDACTED.to_string()
            } else {
                value.clone()
            };
            problems.push(Problem::new(
                &format!("kafka.{name}"),
                &shown,
                &format!(
                    "{} [used by {}; set in {source}]",
                    verdict.problem,
                    clients.join(", ")
                ),
                &verdict.fix,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features_without(missing: &str) -> Vec<String> {
        librdkafka::builtin_features()
            .into_iter()
            .filter(|f| f != missing)
            .collect()
    }

    fn check(name: &str, value: &str) -> Option<Verdict> {
        check_property(
            name,
            value,
            &librdkafka::builtin_features(),
            librdkafka::properties(),
        )
    }

    #[test]
    fn a_near_miss_name_gets_a_suggestion() {
        let v = check("bootstrap.server", "b:9092").expect("unknown property");
        assert_eq!(
            v.problem,
            "No such configuration property: \"bootstrap.server\" (did you mean \
             \"bootstrap.servers\"?)"
        );
        assert_eq!(v.fix, "rename `bootstrap.server` to `bootstrap.servers`");
        let v = check("auto.offset.rest", "earliest").expect("unknown property");
        assert!(
            v.problem.ends_with("(did you mean \"auto.offset.reset\"?)"),
            "{}",
            v.problem
        );
    }

    #[test]
    fn a_name_far_from_every_property_gets_no_suggestion() {
        let v = check("completely.made.up.setting", "1").expect("unknown property");
        assert!(!v.problem.contains("did you mean"), "{}", v.problem);
        assert!(v.fix.starts_with("remove `completely.made.up.setting`"));
    }

    #[test]
    fn an_invalid_value_lists_the_allowed_ones() {
        let v = check("auto.offset.reset", "oldest").expect("invalid value");
        assert!(
            v.problem.starts_with(
                "Invalid value \"oldest\" for configuration property \"auto.offset.reset\""
            ),
            "{}",
            v.problem
        );
        assert!(v.problem.contains("allowed values: "), "{}", v.problem);
        assert!(
            v.fix.contains("earliest") && v.fix.contains("latest"),
            "{}",
            v.fix
        );
        let v = check("session.timeout.ms", "-5").expect("out of range");
        assert!(v.problem.contains("outside allowed range"), "{}", v.problem);
    }

    #[test]
    fn an_unknown_partitioner_lists_librdkafka_s_partitioners() {
        let v = check("partitioner", "murmur2-random").expect("invalid value");
        assert!(v.problem.contains("\"partitioner\""), "{}", v.problem);
        assert!(
            v.problem.ends_with(
                "allowed values: random, consistent, consistent_random, murmur2, \
                 murmur2_random, fnv1a, fnv1a_random"
            ),
            "{}",
            v.problem
        );
        assert!(
            v.fix.starts_with("set `partitioner` to one of: "),
            "{}",
            v.fix
        );
        assert_eq!(check("partitioner", "murmur2_random"), None);
    }

    #[test]
    fn valid_properties_pass() {
        for (k, v) in [
            ("bootstrap.servers", "a:9092,b:9092"),
            ("compression.codec", "zstd"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("sasl.password", "hunter2"),
        ] {
            assert_eq!(check(k, v), None, "{k}={v}");
        }
    }

    #[test]
    fn zstd_missing_from_the_build_fails_like_librdkafka_with_the_remedy() {
        let features = features_without("zstd");
        let v = check_property(
            "compression.codec",
            "zstd",
            &features,
            librdkafka::properties(),
        )
        .expect("zstd unavailable");
        assert!(
            v.problem.starts_with(
                "Unsupported value \"zstd\" for configuration property \"compression.codec\": \
                 libzstd not available at build time"
            ),
            "{}",
            v.problem
        );
        assert!(v.fix.contains("`zstd` feature"), "{}", v.fix);
        // The other codecs are still fine on that build.
        assert_eq!(
            check_property(
                "compression.codec",
                "lz4",
                &features,
                librdkafka::properties()
            ),
            None
        );
    }

    #[test]
    fn a_missing_security_feature_is_reported_with_its_remedy() {
        let v = check_property(
            "sasl.mechanisms",
            "GSSAPI",
            &features_without("sasl_gssapi"),
            librdkafka::properties(),
        )
        .expect("gssapi unavailable");
        assert!(v.problem.contains("GSSAPI (Kerberos)"), "{}", v.problem);
        assert!(v.fix.contains("`gssapi`"), "{}", v.fix);
        let v = check_property(
            "security.protocol",
            "SASL_SSL",
            &features_without("ssl"),
            librdkafka::properties(),
        )
        .expect("ssl unavailable");
        assert!(v.problem.contains("OpenSSL not available"), "{}", v.problem);
    }

    #[test]
    fn the_value_of_a_property_nobody_knows_is_not_shown() {
        let kafka = BTreeMap::from([
            ("sasl.pw".to_string(), "hunter2".to_string()),
            ("bootstrap.server".to_string(), "b:9092".to_string()),
        ]);
        let problems = check_kafka("producer", &kafka)
            .expect_err("unknown")
            .problems;
        let shown: Vec<_> = problems
            .iter()
            .map(|p| (p.setting.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("kafka.bootstrap.server", "b:9092"),
                ("kafka.sasl.pw", "[redacted]")
            ]
        );
        assert!(
            problems[1].problem.ends_with("[used by producer]"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_misspelled_secret_is_redacted_like_the_property_it_resembles() {
        let group = ClientProperties::from_parts(
            &BTreeMap::from([("sasl.pasword".to_string(), "hunter2".to_string())]),
            &BTreeMap::from([("sasl.pasword".to_string(), Source::Setup)]),
        );
        let mut problems = Vec::new();
        let clients = [("subscription group shop/default".to_string(), group)];
        check_clients(&clients, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let text = problems[0].to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("did you mean \"sasl.password\"?"), "{text}");
        assert!(
            text.contains("[used by subscription group shop/default; set in setup]"),
            "{text}"
        );
    }
}
