"""One set of behaviour tests, run against the in-memory broker and against a real Kafka broker through each
real transport (aiokafka, and librdkafka when confluent-kafka is installed).

Every test talks to Kafka only through the transport seam (`transport.create_producer` /
`transport.create_consumer`, with aiokafka's keyword arguments), so whatever the in-memory broker or the
librdkafka transport does differently from aiokafka on Kafka, in a way an app could notice, shows up as a test
failing on one parameter only.
"""
import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IllegalOperation
from aiokafka.structs import ConsumerRecord, TopicPartition
from helpers import unique_topic

from fastkafka._components.transport import AIOKafkaTransport, Transport
from fastkafka._testing.in_memory_broker import InMemoryBroker

# murmur2 hashes computed by the Java client (its own unit tests), for keys we send
JAVA_MURMUR2 = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536, b"abc": 479470107}


def java_partition(key: bytes, partitions: int) -> int:
    "Partition the Java client's default partitioner picks for `key`."
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class Env:
    name: str
    transport: Transport
    bootstrap: str

    async def create_topic(self, topic: str, partitions: int) -> None:
        "Create `topic` with `partitions` partitions (admin client on Kafka, create_topic in memory)."
        if isinstance(self.transport, InMemoryBroker):
            self.transport.create_topic(topic, partitions, bootstrap_servers=self.bootstrap)
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        finally:
            await admin.close()
        async with AIOKafkaProducer(bootstrap_servers=self.bootstrap) as p:  # until the metadata shows them all
            for _ in range(100):
                if len(await p.partitions_for(topic)) == partitions:
                    return
                await p.client.force_metadata_update()
            raise AssertionError(f"topic {topic} never showed {partitions} partitions")

    def producer(self, **kw: Any) -> Any:
        return self.transport.create_producer(bootstrap_servers=self.bootstrap, **kw)

    def consumer(self, *topics: str, **kw: Any) -> Any:
        kw.setdefault("heartbeat_interval_ms", 100)
        kw.setdefault("session_timeout_ms", 6000)
        return self.transport.create_consumer(*topics, bootstrap_servers=self.bootstrap, **kw)


@pytest.fixture(params=["in-memory", pytest.param("kafka", marks=pytest.mark.broker),
                        pytest.param("librdkafka", marks=pytest.mark.broker)])
def env(request: pytest.FixtureRequest) -> Env:
    "The in-memory broker, or a real broker reached through the aiokafka or the librdkafka transport."
    if request.param == "in-memory":
        return Env("in-memory", InMemoryBroker(), "127.0.0.1:9092")
    if request.param == "librdkafka":
        pytest.importorskip("confluent_kafka", reason="the librdkafka transport needs fastkafka[librdkafka]")
        from fastkafka._components.librdkafka import LibrdkafkaTransport

        return Env("librdkafka", LibrdkafkaTransport(), request.getfixturevalue("kafka_broker"))
    return Env("kafka", AIOKafkaTransport(), request.getfixturevalue("kafka_broker"))


async def collect(consumer: Any, n: int, timeout: float = 15) -> list[ConsumerRecord]:
    "Exactly the next `n` records (fails on a timeout or on extra records already available)."
    got: list[ConsumerRecord] = []

    async def loop() -> None:
        while len(got) < n:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(records)

    await asyncio.wait_for(loop(), timeout)
    assert len(got) == n, f"expected {n} records, got {len(got)}"
    return got


async def ready(consumer: Any) -> None:
    "Wait until the consumer knows its position on every assigned partition (aiokafka resets lazily)."
    for tp in consumer.assignment():
        await asyncio.wait_for(consumer.position(tp), 15)


async def test_keys_go_to_murmur2_partition(env: Env) -> None:
    topic = unique_topic("keys")
    await env.create_topic(topic, 5)
    keys = [*JAVA_MURMUR2, *(f"user-{i}".encode() for i in range(40))]
    async with env.producer() as p:
        mds = [await (await p.send(topic, b"v", key=k)) for k in keys]
    assert [m.partition for m in mds] == [java_partition(k, 5) for k in keys]
    for k, h in JAVA_MURMUR2.items():
        assert java_partition(k, 5) == (h & 0x7FFFFFFF) % 5
    c = env.consumer(topic, auto_offset_reset="earliest")
    await c.start()
    try:
        records = await collect(c, len(keys))
    finally:
        await c.stop()
    assert {r.key: r.partition for r in records} == {k: java_partition(k, 5) for k in keys}


async def test_unkeyed_spread_and_order_per_partition(env: Env) -> None:
    topic = unique_topic("order")
    await env.create_topic(topic, 3)
    async with env.producer() as p:
        sent = [await p.send_and_wait(topic, f"{k}:{i}".encode(), key=k.encode()) for i in range(20) for k in "abc"]
        unkeyed = {(await p.send_and_wait(topic, b"u")).partition for _ in range(60)}
    assert unkeyed == {0, 1, 2}
    c = env.consumer(topic, auto_offset_reset="earliest", max_poll_records=7)
    await c.start()
    try:
        records = await collect(c, 120)
    finally:
        await c.stop()
    for k in "abc":
        assert [r.value for r in records if r.key == k.encode()] == [f"{k}:{i}".encode() for i in range(20)]
    for part in range(3):
        offsets = [r.offset for r in records if r.partition == part]
        assert offsets == list(range(len(offsets)))
    assert {(m.partition, m.offset) for m in sent} <= {(r.partition, r.offset) for r in records}


class Assignments(ConsumerRebalanceListener):
    "Records each member's latest assignment and wakes waiters."

    def __init__(self, cond: asyncio.Condition, state: dict[str, set[TopicPartition]], name: str) -> None:
        self.cond, self.state, self.name = cond, state, name

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.state[self.name] = set()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.cond:
            self.state[self.name] = set(assigned)
            self.cond.notify_all()


async def test_group_members_share_partitions(env: Env) -> None:
    topic, group = unique_topic("share"), unique_topic("group")
    await env.create_topic(topic, 4)
    cond, state = asyncio.Condition(), {}
    a = env.consumer(group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
    b = env.consumer(group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
    a.subscribe([topic], listener=Assignments(cond, state, "a"))
    b.subscribe([topic], listener=Assignments(cond, state, "b"))
    await a.start()
    assert a.assignment() == {TopicPartition(topic, i) for i in range(4)}
    polling = asyncio.create_task(a.getmany(timeout_ms=500))  # a keeps polling while b joins
    await b.start()
    try:
        def shared() -> bool:
            sa, sb = state.get("a", set()), state.get("b", set())
            return bool(sa) and bool(sb) and not sa & sb and len(sa | sb) == 4

        async with cond:
            await asyncio.wait_for(cond.wait_for(shared), 20)
        assert await polling == {}  # woke up for the rebalance, nothing to return
        assert a.assignment() | b.assignment() == {TopicPartition(topic, i) for i in range(4)}
        assert not a.assignment() & b.assignment()
        async with env.producer() as p:
            for i in range(40):
                await p.send_and_wait(topic, str(i).encode(), partition=i % 4)
        got_a, got_b = await asyncio.gather(collect(a, 20), collect(b, 20))
        assert {r.partition for r in got_a} == {tp.partition for tp in a.assignment()}
        assert sorted(int(r.value) for r in got_a + got_b) == list(range(40))
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_committed_offsets_survive_a_restart(env: Env) -> None:
    topic, group = unique_topic("commit"), unique_topic("group")
    tp = TopicPartition(topic, 0)
    async with env.producer() as p:
        for i in range(10):
            await p.send_and_wait(topic, str(i).encode())
    first = env.consumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
    await first.start()
    try:
        assert await first.committed(tp) is None
        got = (await first.getmany(timeout_ms=10_000, max_records=4))[tp]
        assert [r.value for r in got] == [b"0", b"1", b"2", b"3"]
        await first.commit({tp: got[-1].offset + 1})
        assert await first.committed(tp) == 4
    finally:
        await first.stop()
    # a restarted member resumes where the group committed, whatever auto_offset_reset says
    second = env.consumer(topic, group_id=group, auto_offset_reset="latest", enable_auto_commit=False)
    await second.start()
    try:
        assert await second.committed(tp) == 4
        assert [r.value for r in await collect(second, 6)] == [str(i).encode() for i in range(4, 10)]
    finally:
        await second.stop()


async def test_earliest_and_latest_apply_only_without_a_committed_offset(env: Env) -> None:
    topic = unique_topic("reset")
    async with env.producer() as p:
        for i in range(3):
            await p.send_and_wait(topic, f"old{i}".encode())
        early = env.consumer(topic, group_id=unique_topic("g"), auto_offset_reset="earliest")
        late = env.consumer(topic, group_id=unique_topic("g"), auto_offset_reset="latest")
        nogroup_late = env.consumer(topic, auto_offset_reset="latest")
        for c in (early, late, nogroup_late):
            await c.start()
            await ready(c)
        try:
            await p.send_and_wait(topic, b"new")
            assert [r.value for r in await collect(early, 4)] == [b"old0", b"old1", b"old2", b"new"]
            assert [r.value for r in await collect(late, 1)] == [b"new"]
            assert [r.value for r in await collect(nogroup_late, 1)] == [b"new"]
        finally:
            for c in (early, late, nogroup_late):
                await c.stop()


async def test_without_group_every_consumer_sees_everything_and_nothing_commits(env: Env) -> None:
    topic = unique_topic("nogroup")
    await env.create_topic(topic, 2)
    async with env.producer() as p:
        for i in range(6):
            await p.send_and_wait(topic, str(i).encode(), partition=i % 2)
    c1, c2 = env.consumer(topic, auto_offset_reset="earliest"), env.consumer(topic, auto_offset_reset="earliest")
    await c1.start()
    await c2.start()
    try:
        assert c1.assignment() == c2.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
        v1 = sorted(r.value for r in await collect(c1, 6))
        v2 = sorted(r.value for r in await collect(c2, 6))
        assert v1 == v2 == [str(i).encode() for i in range(6)]
        with pytest.raises(IllegalOperation, match="Requires group_id"):
            await c1.commit()
        with pytest.raises(IllegalOperation, match="Requires group_id"):
            await c1.committed(TopicPartition(topic, 0))
    finally:
        await c1.stop()
        await c2.stop()


async def test_batch_sizes_follow_max_records(env: Env) -> None:
    topic = unique_topic("batch")
    async with env.producer() as p:
        for i in range(25):
            await p.send(topic, str(i).encode())
        await p.flush()
    c = env.consumer(topic, auto_offset_reset="earliest", max_poll_records=10)
    await c.start()
    try:
        sizes: list[int] = []
        while sum(sizes) < 25:
            got = await c.getmany(timeout_ms=10_000)
            assert got, "timed out"
            sizes.append(sum(map(len, got.values())))
        assert sizes == [10, 10, 5]
        c.seek(TopicPartition(topic, 0), 0)
        got = await c.getmany(timeout_ms=10_000, max_records=3)
        assert [r.value for r in got[TopicPartition(topic, 0)]] == [b"0", b"1", b"2"]
    finally:
        await c.stop()


async def test_keys_headers_timestamps_and_sizes(env: Env) -> None:
    topic = unique_topic("meta")
    before = int(time.time() * 1000)
    async with env.producer() as p:
        md1 = await p.send_and_wait(topic, b'{"a": 1}', key=b"key-1", headers=[("trace", b"abc"), ("n", b"1")],
                                    timestamp_ms=1_600_000_000_000)
        md2 = await p.send_and_wait(topic, b"plain")
        md3 = await p.send_and_wait(topic, None, key=b"tombstone")
    after = int(time.time() * 1000)
    c = env.consumer(topic, auto_offset_reset="earliest")
    await c.start()
    try:
        r1, r2, r3 = await collect(c, 3)
    finally:
        await c.stop()
    assert (md1.offset, md2.offset, md3.offset) == (0, 1, 2)
    assert (md1.timestamp, md1.timestamp_type) == (1_600_000_000_000, 0)
    assert (r1.key, r1.value, r1.timestamp, r1.timestamp_type) == (b"key-1", b'{"a": 1}', 1_600_000_000_000, 0)
    assert list(r1.headers) == [("trace", b"abc"), ("n", b"1")]
    assert (r1.serialized_key_size, r1.serialized_value_size) == (5, 8)
    assert (r2.key, r2.serialized_key_size, list(r2.headers)) == (None, -1, [])
    assert before <= r2.timestamp <= after and r2.timestamp == md2.timestamp
    assert (r3.key, r3.value, r3.serialized_value_size) == (b"tombstone", None, -1)
    assert (r1.topic, r1.partition, r1.offset) == (topic, 0, 0)


async def test_auto_commit_at_stop_and_listener_calls(env: Env) -> None:
    topic, group = unique_topic("auto"), unique_topic("group")
    tp = TopicPartition(topic, 0)
    calls: list[tuple[str, set[TopicPartition]]] = []

    class Log(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
            calls.append(("revoked", set(revoked)))

        def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            calls.append(("assigned", set(assigned)))

    async with env.producer() as p:
        for i in range(5):
            await p.send_and_wait(topic, str(i).encode())
    c = env.consumer(group_id=group, auto_offset_reset="earliest", enable_auto_commit=True)
    c.subscribe([topic], listener=Log())
    await c.start()
    try:
        assert calls == [("revoked", set()), ("assigned", {tp})]
        assert len((await c.getmany(timeout_ms=10_000, max_records=3))[tp]) == 3
    finally:
        await c.stop()  # commits what was consumed
    assert calls == [("revoked", set()), ("assigned", {tp})]  # leaving does not call the listener
    again = env.consumer(topic, group_id=group, auto_offset_reset="earliest")
    await again.start()
    try:
        assert await again.committed(tp) == 3
        assert [r.value for r in await collect(again, 2)] == [b"3", b"4"]
    finally:
        await again.stop()


@pytest.mark.parametrize("group", [False, True])
async def test_subscribe_after_start(env: Env, group: bool) -> None:
    "What the app's consumer runner does: start the client, then subscribe with a listener."
    topic = unique_topic("late")
    await env.create_topic(topic, 2)
    assigned = asyncio.Event()

    class OnAssign(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None: ...

        def on_partitions_assigned(self, tps: set[TopicPartition]) -> None:
            if tps:
                assigned.set()

    c = env.consumer(group_id=unique_topic("g") if group else None, auto_offset_reset="earliest")
    await c.start()
    try:
        c.subscribe([topic], listener=OnAssign())
        if group:
            await asyncio.wait_for(assigned.wait(), 20)
        else:  # no group: aiokafka never calls the listener; the assignment follows a metadata update

            async def until_assigned() -> None:
                while not c.assignment():
                    await c.getmany(timeout_ms=100)

            await asyncio.wait_for(until_assigned(), 20)
            assert not assigned.is_set()
        assert c.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
        async with env.producer() as p:
            await p.send_and_wait(topic, b"x", partition=1)
        assert [r.value for r in await collect(c, 1)] == [b"x"]
    finally:
        await c.stop()


@pytest.mark.parametrize("group", [False, True])
async def test_subscribe_after_start_to_a_missing_topic(env: Env, group: bool) -> None:
    "Subscribing after start creates no topic; its partitions come with the metadata refresh after it appears."
    topic = unique_topic("missing")
    c = env.consumer(group_id=unique_topic("g") if group else None, auto_offset_reset="earliest",
                     metadata_max_age_ms=500)
    await c.start()
    try:
        c.subscribe([topic])
        await c.getmany(timeout_ms=300)
        assert c.assignment() == set()
        async with env.producer() as p:
            assert await p.partitions_for(topic) == {0}  # the producer's metadata request creates it
            await p.send_and_wait(topic, b"first")
        t0 = time.monotonic()
        assert [r.value for r in await collect(c, 1, timeout=10)] == [b"first"]
        assert time.monotonic() - t0 < 5
        assert c.assignment() == {TopicPartition(topic, 0)}
    finally:
        await c.stop()


async def test_consumer_start_creates_its_topics(env: Env) -> None:
    topic = unique_topic("created")
    c = env.consumer(topic, auto_offset_reset="earliest")
    await c.start()
    try:
        assert c.assignment() == {TopicPartition(topic, 0)}
        async with env.producer() as p:
            await p.send_and_wait(topic, b"x")
        assert [r.value for r in await collect(c, 1)] == [b"x"]
    finally:
        await c.stop()


async def test_a_revocation_may_wait_for_the_commit_in_flight(env: Env) -> None:
    # the runner's way: one commit at a time under a lock, and a revocation commits under the same lock, so it waits
    # for the commit in flight when the rebalance began; that commit must be answered meanwhile, or the rebalance
    # never ends (the librdkafka transport once answered it only after the revocation: a deadlock)
    topic, group = unique_topic("inflight"), unique_topic("group")
    await env.create_topic(topic, 4)
    lock, counts, going = asyncio.Lock(), {"commits": 0, "revocations": 0}, asyncio.Event()
    a = env.consumer(group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)

    class CommitOnRevoke(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
            if revoked:
                async with lock:
                    await a.commit({tp: 0 for tp in revoked})
                counts["revocations"] += 1

        async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            pass

    async def keep_committing() -> None:
        while True:
            async with lock:
                try:
                    await a.commit({tp: 0 for tp in a.assignment()})
                    counts["commits"] += 1
                    if counts["commits"] == 20:
                        going.set()
                except Exception:  # a partition went meanwhile: the next round commits what is assigned then
                    pass
            await asyncio.sleep(0)  # (the in-memory broker's commits do not suspend)

    async def keep_polling() -> None:
        while True:
            await a.getmany(timeout_ms=100)

    a.subscribe([topic], listener=CommitOnRevoke())
    await a.start()
    b = env.consumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False)
    tasks = [asyncio.create_task(keep_committing()), asyncio.create_task(keep_polling())]
    try:
        await asyncio.wait_for(going.wait(), 15)  # commits are going back to back
        await asyncio.wait_for(b.start(), 30)  # the group rebalances: `a` gives up partitions, committing first
        assert counts["revocations"] >= 1 and b.assignment()

        async def split() -> None:  # `a` may still be rejoining (its commits can fail with the old generation)
            while not (a.assignment() and b.assignment() and not a.assignment() & b.assignment()
                       and len(a.assignment() | b.assignment()) == 4):
                await asyncio.sleep(0.05)  # (a condition checked every 50 ms, bounded below)

        await asyncio.wait_for(split(), 30)  # the group settles: the two share the four partitions
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(a.stop(), b.stop())
