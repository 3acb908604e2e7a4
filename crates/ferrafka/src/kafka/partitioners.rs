//! librdkafka's partitioners (its `partitioner` property): which hash each applies to a key and
//! where it puts messages without one. ferrafka's producer defaults to [`JAVA_COMPATIBLE`];
//! `docs/partitioning.md` explains why and what changing it costs.

/// The partitioner ferrafka's producer uses unless a layer sets `partitioner`: the Java
/// client's murmur2 hash for keyed messages (so Kafka Streams, Kafka Connect and kafkajs put a
/// key on the same partition), a random partition for keyless ones.
pub(crate) const JAVA_COMPATIBLE: &str = "murmur2_random";

/// One of librdkafka's partitioners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Partitioner {
    /// Its name, as the `partitioner` property takes it.
    pub(crate) name: &'static str,
    /// The hash that places a keyed message; two partitioners with the same hash put every
    /// non-empty key on the same partition.
    pub(crate) hash: &'static str,
    /// Where messages without a key (and, for CRC32, with an empty key) go.
    pub(crate) keyless: &'static str,
}

/// Every partitioner librdkafka 2.12 accepts, as its CONFIGURATION.md describes them.
pub(crate) const PARTITIONERS: &[Partitioner] = &[
    Partitioner {
        name: "random",
        hash: "none (keys are ignored)",
        keyless: "a random partition",
    },
    Partitioner {
        name: "consistent",
        hash: "CRC32",
        keyless: "one partition (empty keys too)",
    },
    Partitioner {
        name: "consistent_random",
        hash: "CRC32",
        keyless: "a random partition (empty keys too)",
    },
    Partitioner {
        name: "murmur2",
        hash: "murmur2 (the Java client's)",
        keyless: "one partition",
    },
    Partitioner {
        name: JAVA_COMPATIBLE,
        hash: "murmur2 (the Java client's)",
        keyless: "a random partition",
    },
    Partitioner {
        name: "fnv1a",
        hash: "FNV-1a",
        keyless: "one partition",
    },
    Partitioner {
        name: "fnv1a_random",
        hash: "FNV-1a",
        keyless: "a random partition",
    },
];

/// The partitioner named `name`, if librdkafka has one of that name.
pub(crate) fn find(name: &str) -> Option<&'static Partitioner> {
    PARTITIONERS.iter().find(|p| p.name == name)
}

/// The names librdkafka accepts, comma-separated (for problems and fixes).
pub(crate) fn names() -> String {
    PARTITIONERS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn librdkafka_accepts(name: &str) -> bool {
        rdkafka::config::ClientConfig::new()
            .set("partitioner", name)
            .create_native_config()
            .is_ok()
    }

    #[test]
    fn the_partitioners_are_the_ones_librdkafka_accepts() {
        for p in PARTITIONERS {
            assert!(librdkafka_accepts(p.name), "{}", p.name);
        }
        for wrong in ["murmur2-random", "Murmur2_random", "crc32", "sticky", ""] {
            assert!(!librdkafka_accepts(wrong), "{wrong:?}");
            assert_eq!(find(wrong), None, "{wrong:?}");
        }
        assert_eq!(
            find("murmur2_random").map(|p| p.name),
            Some(JAVA_COMPATIBLE)
        );
        assert_eq!(
            names(),
            "random, consistent, consistent_random, murmur2, murmur2_random, fnv1a, fnv1a_random"
        );
    }
}
