package dev.ferrafka.peer;

import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The Java row of ferrafka-bench: a plain {@link KafkaConsumer} poll loop that reads every
 * value's length, measured like the bench's other clients: from the first partition
 * assignment to the last message, wall time and the CPU time of the whole process (every
 * thread, the JIT and GC included). It prints one line on stdout:
 *
 * <pre>result messages=N bytes=B startup_s=S wall_s=W cpu_s=C first_ms=F stalled=0|1</pre>
 */
final class BenchConsume {
    private BenchConsume() {}

    static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    static int run(String bootstrap, String group, String topic, long target, double timeoutS) {
        long started = System.nanoTime();
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "true");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        long[] assigned = {0, 0}; // wall ns, cpu ns at the first non-empty assignment
        long messages = 0;
        long bytes = 0;
        long first = -1;
        boolean stalled = false;
        long deadline = started + (long) (timeoutS * 1e9);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    if (!partitions.isEmpty() && assigned[0] == 0) {
                        assigned[0] = System.nanoTime();
                        assigned[1] = processCpuNanos();
                    }
                }

                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {}
            });
            while (messages < target) {
                if (System.nanoTime() > deadline) {
                    stalled = true;
                    break;
                }
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    if (first < 0) first = System.nanoTime();
                    bytes += r.value() == null ? 0 : r.value().length;
                    messages++;
                }
            }
            long end = System.nanoTime();
            long cpu = processCpuNanos();
            if (assigned[0] == 0) {
                assigned[0] = end;
                assigned[1] = cpu;
            }
            Peer.out.printf("result messages=%d bytes=%d startup_s=%.6f wall_s=%.6f cpu_s=%.6f first_ms=%.3f stalled=%d%n",
                    messages, bytes, (assigned[0] - started) / 1e9, (end - assigned[0]) / 1e9,
                    (cpu - assigned[1]) / 1e9, first < 0 ? -1.0 : (first - assigned[0]) / 1e6, stalled ? 1 : 0);
        }
        // A stall is a result (stalled=1), as for the bench's other peers: the bench reports it
        // as a stalled round instead of a failed peer.
        return 0;
    }
}
