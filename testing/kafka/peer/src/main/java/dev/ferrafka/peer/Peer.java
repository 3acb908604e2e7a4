package dev.ferrafka.peer;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

/**
 * The Java peer: Apache Kafka's own Java client driven from the command line, so ferrafka's
 * tests can check interop with the reference client. See README.md beside the pom.
 *
 * <pre>
 *   produce   &lt;bootstrap&gt; &lt;topic&gt; &lt;partitions&gt;
 *   consume   &lt;bootstrap&gt; &lt;topic&gt; &lt;expected_count&gt; &lt;timeout_ms&gt;
 *   partition &lt;partitions&gt; &lt;key&gt;...          (key: a UTF-8 string)
 *   partition-b64 &lt;partitions&gt; &lt;b64key&gt;...   (key: standard base64 of the key bytes)
 *   produce-keys &lt;bootstrap&gt; &lt;topic&gt; &lt;partitions&gt; &lt;b64key&gt;...
 *   bench-consume &lt;bootstrap&gt; &lt;group&gt; &lt;topic&gt; &lt;messages&gt; &lt;timeout_s&gt;  (ferrafka-bench's Java row)
 * </pre>
 *
 * stdout carries only JSON objects, one per line (pure ASCII: non-ASCII is \\u-escaped);
 * everything else (errors, client WARN logs) goes to stderr. Any error exits 1.
 */
public final class Peer {
    /** The codecs `produce` uses, one producer each, in this order. */
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    /** Records each codec's producer sends (so `produce` writes CODECS.length * this). */
    static final int PER_CODEC = 40;
    /** Base of the explicit record timestamps (2023-11-14T22:13:20Z). */
    static final long TS0 = 1_700_000_000_000L;

    /** The real stdout; System.out is pointed at stderr so no stray print can corrupt it. */
    static PrintStream out;

    public static void main(String[] args) {
        out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out)), true,
                StandardCharsets.UTF_8);
        System.setOut(System.err);
        int rc;
        try {
            rc = run(args);
        } catch (Usage e) {
            System.err.println("peer: " + e.getMessage());
            System.err.println(USAGE);
            rc = 1;
        } catch (Throwable e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            System.err.println("peer: " + cause);
            rc = 1;
        }
        out.flush();
        System.exit(rc);
    }

    static final String USAGE = "usage: Peer produce <bootstrap> <topic> <partitions>\n"
            + "       Peer consume <bootstrap> <topic> <expected_count> <timeout_ms>\n"
            + "       Peer partition <partitions> <key>...\n"
            + "       Peer partition-b64 <partitions> <base64 key>...\n"
            + "       Peer produce-keys <bootstrap> <topic> <partitions> <base64 key>...\n"
            + "       Peer bench-consume <bootstrap> <group> <topic> <messages> <timeout_s>";

    static final class Usage extends Exception {
        Usage(String msg) {
            super(msg);
        }
    }

    static int run(String[] args) throws Exception {
        if (args.length == 0) throw new Usage("no command");
        switch (args[0]) {
            case "produce":
                if (args.length != 4) throw new Usage("produce takes 3 arguments");
                return produce(args[1], args[2], positive(args[3], "partitions"));
            case "consume":
                if (args.length != 5) throw new Usage("consume takes 4 arguments");
                return consume(args[1], args[2], nonNegative(args[3], "expected_count"),
                        nonNegative(args[4], "timeout_ms"));
            case "bench-consume":
                if (args.length != 6) throw new Usage("bench-consume takes 5 arguments");
                return BenchConsume.run(args[1], args[2], args[3], nonNegative(args[4], "messages"),
                        Double.parseDouble(args[5]));
            case "produce-keys":
                if (args.length < 5) throw new Usage("produce-keys takes <bootstrap> <topic> <partitions> <base64 key>...");
                return produceKeys(args[1], args[2], positive(args[3], "partitions"),
                        java.util.Arrays.copyOfRange(args, 4, args.length));
            case "partition":
            case "partition-b64": {
                if (args.length < 2) throw new Usage(args[0] + " takes <partitions> <key>...");
                boolean b64 = args[0].equals("partition-b64");
                int partitions = positive(args[1], "partitions");
                for (int i = 2; i < args.length; i++) {
                    byte[] key = b64 ? Base64.getDecoder().decode(args[i]) : utf8Arg(args[i]);
                    out.println(new Json().str("key", args[i])
                            .num("partition", BuiltInPartitioner.partitionForKey(key, partitions)).end());
                }
                return 0;
            }
            default:
                throw new Usage("unknown command '" + args[0] + "'");
        }
    }

    /** The UTF-8 bytes of a command-line key; refuses one the JVM could not decode. */
    static byte[] utf8Arg(String arg) throws Usage {
        String enc = System.getProperty("sun.jnu.encoding", "");
        if (arg.indexOf('\uFFFD') >= 0 && !enc.equalsIgnoreCase("UTF-8")) {
            throw new Usage("key '" + arg + "' was not decoded as UTF-8 (the JVM decodes arguments as "
                    + enc + "): run under a UTF-8 locale (LANG=C.UTF-8) or use partition-b64");
        }
        return arg.getBytes(StandardCharsets.UTF_8);
    }

    static int positive(String s, String what) throws Usage {
        int v = nonNegative(s, what);
        if (v == 0) throw new Usage(what + " must be > 0");
        return v;
    }

    static int nonNegative(String s, String what) throws Usage {
        try {
            int v = Integer.parseInt(s);
            if (v < 0) throw new NumberFormatException();
            return v;
        } catch (NumberFormatException e) {
            throw new Usage(what + " must be a non-negative integer, got '" + s + "'");
        }
    }

    // -----------------------------------------------------------------------------------------
    // produce

    /** One record to send; partition is set only for null-key records. */
    record Spec(Integer partition, byte[] key, byte[] value, Long timestamp, List<Header> headers) {}

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static byte[] bytes(int... v) {
        byte[] r = new byte[v.length];
        for (int i = 0; i < v.length; i++) r[i] = (byte) v[i];
        return r;
    }

    static List<Header> hs(Object... kv) {
        List<Header> r = new ArrayList<>();
        for (int i = 0; i < kv.length; i += 2) {
            Object v = kv[i + 1];
            r.add(new RecordHeader((String) kv[i], v instanceof String ? b((String) v) : (byte[]) v));
        }
        return r;
    }

    /**
     * The fixed records codec number c sends (the same on every run, except that records
     * without an explicit timestamp get the producer's clock).
     */
    static List<Spec> specs(int c, String codec, int partitions) {
        List<Spec> r = new ArrayList<>();
        List<Header> none = List.of();
        byte[] all256 = new byte[256];
        for (int i = 0; i < 256; i++) all256[i] = (byte) i;
        StringBuilder text = new StringBuilder();
        while (text.length() < 8192) text.append("compressible ").append(codec).append(" text ");
        byte[] noise = new byte[4096];
        new Random(42 + c).nextBytes(noise);
        long ts = TS0 + 1000L * c;

        // 0-2: null keys, placed explicitly
        r.add(new Spec(0 % partitions, null, b("null key " + codec), null, none));
        r.add(new Spec(1 % partitions, null, b("null key, one header " + codec), null, hs("h", "v")));
        r.add(new Spec(2 % partitions, null, null, null, none)); // null key and null value
        // 3-4: empty keys
        r.add(new Spec(null, new byte[0], b("empty key " + codec), null, none));
        r.add(new Spec(null, new byte[0], new byte[0], null, none)); // empty key and empty value
        // 5-6: tombstone, empty value
        r.add(new Spec(null, b("tombstone-" + codec), null, null, none));
        r.add(new Spec(null, b("empty-value-" + codec), new byte[0], null, none));
        // 7-9: non-ASCII UTF-8 and binary bytes
        r.add(new Spec(null, b("ключ-" + codec + "-ü-日本-🎉"), b("значение ✓ — 日本語 😀 " + codec), null, none));
        r.add(new Spec(null, bytes(0x00, 0xff, 0x80, 0x7f, 0x00, c), all256, null, none));
        r.add(new Spec(null, b("nul-ff-" + codec), bytes(0x00, 0xff, 0x00, 0xff, 0xfe, 0x00), null, none));
        // 10-14: headers
        r.add(new Spec(null, b("one-header-" + codec), b("v"), null, hs("trace", "abc-123")));
        r.add(new Spec(null, b("headers-" + codec), b("v"), null,
                hs("a", "1", "b", "two", "c", bytes(0x00, 0xff, 0x10), "content-type", "application/json")));
        r.add(new Spec(null, b("dup-headers-" + codec), b("v"), null,
                hs("dup", "first", "other", "x", "dup", "second", "dup", "third")));
        r.add(new Spec(null, b("null-header-" + codec), b("v"), null, hs("n", null, "after", "y")));
        r.add(new Spec(null, b("odd-headers-" + codec), b("v"), null,
                hs("empty", new byte[0], "ключ-ü", "значение", "", "empty key")));
        // 15-17: explicit timestamps
        r.add(new Spec(null, b("ts-" + codec), b("explicit timestamp"), ts + 15, none));
        r.add(new Spec(3 % partitions, null, b("ts null key " + codec), ts + 16, hs("t", "1")));
        r.add(new Spec(null, bytes(0xff, 0xfe, 0x00, c), null, ts + 17,
                hs("dup", "x", "n", null, "dup", bytes(0x00), "dup", new byte[0])));
        // 18-19: bigger values (compressible text, incompressible bytes)
        r.add(new Spec(null, b("big-text-" + codec), b(text.toString()), null, none));
        r.add(new Spec(null, b("big-noise-" + codec), noise, null, hs("size", "4096")));
        // 20..: plain keyed records, spread by the default partitioner
        for (int i = r.size(); i < PER_CODEC; i++) {
            List<Header> h = i % 3 == 0 ? hs("seq", Integer.toString(i)) : none;
            r.add(new Spec(null, b("key-" + codec + "-" + i), b("value-" + codec + "-" + i), null, h));
        }
        return r;
    }

    static int produce(String bootstrap, String topic, int partitions) throws Exception {
        for (int c = 0; c < CODECS.length; c++) {
            String codec = CODECS[c];
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.CLIENT_ID_CONFIG, "ferrafka-peer-" + codec);
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            p.put(ProducerConfig.LINGER_MS_CONFIG, "5"); // several records per batch
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                if (c == 0) {
                    int n = producer.partitionsFor(topic).size();
                    if (n != partitions) {
                        throw new IllegalStateException("topic " + topic + " has " + n + " partitions, not " + partitions);
                    }
                }
                List<Spec> specs = specs(c, codec, partitions);
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (Spec s : specs) {
                    acks.add(producer.send(new ProducerRecord<>(topic, s.partition(), s.timestamp(), s.key(), s.value(),
                            s.headers())));
                }
                producer.flush();
                for (int i = 0; i < specs.size(); i++) {
                    Spec s = specs.get(i);
                    RecordMetadata md = acks.get(i).get();
                    if (s.partition() == null && s.key() != null) {
                        int want = BuiltInPartitioner.partitionForKey(s.key(), partitions);
                        if (md.partition() != want) {
                            throw new IllegalStateException("keyed record went to partition " + md.partition()
                                    + ", the default partitioner's formula says " + want);
                        }
                    }
                    out.println(record(md.partition(), md.offset(), s.key(), s.value(), md.timestamp(), s.headers())
                            .str("codec", codec).end());
                }
            }
        }
        return 0;
    }

    // -----------------------------------------------------------------------------------------
    // produce-keys

    /**
     * Produces one record per key (value "java") with the Java client's default partitioner
     * and prints where each landed beside what Kafka's murmur2 formula says:
     * {"key":"<b64>","partition":P,"formula":F}. Fails if the topic does not have exactly
     * `partitions` partitions, or if a record landed elsewhere than the formula says.
     */
    static int produceKeys(String bootstrap, String topic, int partitions, String[] b64Keys) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "ferrafka-peer-keys");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        List<byte[]> keys = new ArrayList<>();
        for (String k : b64Keys) keys.add(Base64.getDecoder().decode(k));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            int n = producer.partitionsFor(topic).size();
            if (n != partitions) {
                throw new IllegalStateException("topic " + topic + " has " + n + " partitions, not " + partitions);
            }
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (byte[] key : keys) acks.add(producer.send(new ProducerRecord<>(topic, key, b("java"))));
            producer.flush();
            for (int i = 0; i < keys.size(); i++) {
                int landed = acks.get(i).get().partition();
                int formula = Utils.toPositive(Utils.murmur2(keys.get(i))) % partitions;
                if (landed != formula) {
                    throw new IllegalStateException("key " + b64Keys[i] + " went to partition " + landed
                            + ", Utils.toPositive(Utils.murmur2(key)) % " + partitions + " says " + formula);
                }
                out.println(new Json().str("key", b64Keys[i]).num("partition", landed).num("formula", formula).end());
            }
        }
        return 0;
    }

    // -----------------------------------------------------------------------------------------
    // consume

    static int consume(String bootstrap, String topic, int expected, int timeoutMs) {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "ferrafka-peer-consume");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        int got = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(timeoutMs, 1)));
            if (infos == null || infos.isEmpty()) {
                System.err.println("peer: consume: topic " + topic + " not found");
                return 1;
            }
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo info : infos) tps.add(new TopicPartition(topic, info.partition()));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            while (got < expected) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                if (left <= 0) break;
                for (ConsumerRecord<byte[], byte[]> rec : consumer.poll(Duration.ofMillis(Math.min(left, 500)))) {
                    List<Header> headers = new ArrayList<>();
                    rec.headers().forEach(headers::add);
                    out.println(record(rec.partition(), rec.offset(), rec.key(), rec.value(), rec.timestamp(), headers)
                            .end());
                    got++;
                }
            }
        }
        if (got < expected) {
            System.err.println("peer: consume: got " + got + " of " + expected + " records in " + timeoutMs + " ms");
            return 1;
        }
        if (got > expected) {
            System.err.println("peer: consume: note: got " + got + " records, more than the " + expected + " expected");
        }
        return 0;
    }

    // -----------------------------------------------------------------------------------------
    // JSON

    static Json record(int partition, long offset, byte[] key, byte[] value, long timestamp, List<Header> headers) {
        Json j = new Json().num("partition", partition).num("offset", offset).b64("key", key).b64("value", value)
                .num("timestamp", timestamp);
        j.sb.append(",\"headers\":[");
        for (int i = 0; i < headers.size(); i++) {
            Header h = headers.get(i);
            if (i > 0) j.sb.append(',');
            j.sb.append(new Json().str("key", h.key()).b64("value", h.value()).end());
        }
        j.sb.append(']');
        return j;
    }

    /** A one-line JSON object, written field by field. */
    static final class Json {
        final StringBuilder sb = new StringBuilder("{");

        Json name(String k) {
            if (sb.length() > 1) sb.append(',');
            quote(k);
            sb.append(':');
            return this;
        }

        Json num(String k, long v) {
            name(k).sb.append(v);
            return this;
        }

        Json str(String k, String v) {
            name(k).quote(v);
            return this;
        }

        Json b64(String k, byte[] v) {
            name(k);
            if (v == null) sb.append("null");
            else sb.append('"').append(Base64.getEncoder().encodeToString(v)).append('"');
            return this;
        }

        String end() {
            return sb.append('}').toString();
        }

        /** A JSON string, ASCII only: control and non-ASCII characters as \\uXXXX (UTF-16). */
        void quote(String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char ch = s.charAt(i);
                if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
                else if (ch >= 0x20 && ch < 0x7f) sb.append(ch);
                else sb.append(String.format("\\u%04x", (int) ch));
            }
            sb.append('"');
        }
    }
}
