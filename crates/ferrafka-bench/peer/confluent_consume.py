"""The peer row of ferrafka-bench: confluent-kafka-python's batch consume loop.

Run by the bench (src/peer.rs) as

    python confluent_consume.py CONFIG_JSON TOPIC MESSAGES STORE_EVERY TIMEOUT_S

CONFIG_JSON holds the librdkafka properties the bench gives its raw Rust loop (group id
included). The loop mirrors that raw loop: `consume(num_messages=500)`, read every payload's
length, store an offset every STORE_EVERY messages (librdkafka auto-commits stored offsets).

It measures itself the way the bench measures the Rust clients: from the partition assignment
(seen in `on_assign`) to the last message, wall time from `time.monotonic()` and process CPU
time from `time.process_time()` (CLOCK_PROCESS_CPUTIME_ID: every thread of the process,
librdkafka's included). It prints one line:

    result messages=N bytes=B startup_s=S wall_s=W cpu_s=C first_ms=F stalled=0|1
"""

import json
import sys
import time

from confluent_kafka import Consumer


def main():
    started = time.monotonic()
    config = json.loads(sys.argv[1])
    topic = sys.argv[2]
    target = int(sys.argv[3])
    store_every = int(sys.argv[4])
    timeout_s = float(sys.argv[5])

    assigned = {}

    def on_assign(consumer, partitions):
        # The first non-empty assignment starts the measured window, as for the Rust clients.
        if partitions and not assigned:
            assigned["wall"] = time.monotonic()
            assigned["cpu"] = time.process_time()

    consumer = Consumer(config)
    consumer.subscribe([topic], on_assign=on_assign)
    deadline = time.monotonic() + timeout_s
    count = size = 0
    first = None
    stalled = False
    while count < target:
        for message in consumer.consume(num_messages=500, timeout=0.1):
            if message.error():
                print(f"peer: consume error: {message.error()}", file=sys.stderr)
                continue
            if first is None:
                first = time.monotonic()
            size += len(message.value() or b"")
            count += 1
            if count % store_every == 0 or count == target:
                consumer.store_offsets(message=message)
        if time.monotonic() >= deadline:
            stalled = True
            break
    end_wall = time.monotonic()
    end_cpu = time.process_time()
    # Closing (final commit, leaving the group) is not measured, as for the Rust clients.
    start_wall = assigned.get("wall", started)
    start_cpu = assigned.get("cpu", 0.0)
    first_ms = ((first or end_wall) - start_wall) * 1e3
    print(
        f"result messages={count} bytes={size} startup_s={start_wall - started:.6f} "
        f"wall_s={end_wall - start_wall:.6f} cpu_s={end_cpu - start_cpu:.6f} "
        f"first_ms={first_ms:.1f} stalled={int(stalled)}",
        flush=True,
    )
    consumer.close()


if __name__ == "__main__":
    main()
