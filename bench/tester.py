"""Tester benchmark: round-trip throughput and enter+exit time, on the in-memory broker.

    python bench/tester.py [--messages 20000] [--cycles 50]

Round trip: `tester.to_input(msg)` -> the app's consumer -> the app's producer -> the tester's observer
(`tester.on_output`), for N messages, timed until the observer has seen all N. The baseline, measured in the
same run, does the same hops by hand with the in-memory broker's clients and pydantic (no app, no Tester, no
mocks): it is what the Tester's machinery is compared with. Enter+exit: `async with Tester(app): pass` for the
same two-function app, averaged over the cycles. Not a test: it prints figures.
"""
import argparse
import asyncio
import gc
import os
import time

from pydantic import BaseModel

from fastkafka import FastKafka
from fastkafka._components.mocks import watch
from fastkafka._testing.in_memory_broker import InMemoryBroker
from fastkafka.testing import Tester


class Data(BaseModel):
    data: float


def make_app() -> FastKafka:
    app = FastKafka(kafka_brokers={"localhost": {"url": "localhost", "port": 9092}})

    @app.consumes(topic="input")
    async def on_input(msg: Data) -> None:
        await to_output(msg)

    @app.produces(topic="output")
    async def to_output(msg: Data) -> Data:
        return Data(data=msg.data + 1)

    return app


async def tester_round_trip(n: int) -> tuple[float, float]:
    "Messages per second through the Tester and the app: by wall-clock time and by this process's CPU time."
    tester = Tester(make_app())
    async with tester:
        mock = tester.mocks.on_output
        gc.collect()  # garbage left by earlier runs is not this run's cost
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            await tester.to_input(Data(data=i))
        while mock.await_count < n:
            change = watch(mock).next_change()
            if mock.await_count < n:
                await asyncio.wait_for(change, 60)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert mock.await_args.args[0] == Data(data=n), mock.await_args
    return n / elapsed, n / cpu


async def baseline_round_trip(n: int) -> tuple[float, float]:
    "The same hops by hand: send, poll, decode, encode, send, poll, decode."
    broker, servers = InMemoryBroker(), "localhost:9092"
    async with broker.create_producer(bootstrap_servers=servers) as producer:  # type: ignore[attr-defined]
        app_in = broker.create_consumer("input", bootstrap_servers=servers, auto_offset_reset="earliest")
        observer = broker.create_consumer("output", bootstrap_servers=servers, auto_offset_reset="earliest")
        await app_in.start()
        await observer.start()
        seen = 0
        done = asyncio.Event()

        async def app_loop() -> None:
            while True:
                for records in (await app_in.getmany(timeout_ms=1000, max_records=100)).values():
                    for r in records:
                        msg = Data.model_validate_json(r.value)
                        await producer.send("output", Data(data=msg.data + 1).model_dump_json().encode())

        async def observe() -> None:
            nonlocal seen
            while True:
                for records in (await observer.getmany(timeout_ms=1000)).values():
                    for r in records:
                        Data.model_validate_json(r.value)
                        seen += 1
                if seen >= n:
                    done.set()

        tasks = [asyncio.create_task(app_loop()), asyncio.create_task(observe())]
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            await (await producer.send("input", Data(data=i).model_dump_json().encode()))
        await asyncio.wait_for(done.wait(), 60)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app_in.stop()
        await observer.stop()
    return n / elapsed, n / cpu


async def enter_exit(cycles: int) -> float:
    "Mean seconds for `async with Tester(app): pass`."
    tester = Tester(make_app())
    t0 = time.perf_counter()
    for _ in range(cycles):
        async with tester:
            pass
    return (time.perf_counter() - t0) / cycles


async def main(n: int, cycles: int) -> None:
    await tester_round_trip(min(n, 1000))  # warm-up
    rate, rate_cpu = await tester_round_trip(n)
    base, base_cpu = await baseline_round_trip(n)
    per_cycle = await enter_exit(cycles)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n:,} messages, {os.cpu_count()} CPUs, load average {load:.1f} (other processes slow wall-clock figures)")
    print("                      wall clock   per CPU second")
    print(f"Tester round trip:   {rate:>9,.0f}/s   {rate_cpu:>9,.0f}/s   (target >= 20,000 msg/s)")
    print(f"baseline (by hand):  {base:>9,.0f}/s   {base_cpu:>9,.0f}/s   (same hops on the in-memory clients, no app)")
    print(f"ratio Tester/base:   {rate / base:>9.2f}    {rate_cpu / base_cpu:>9.2f}")
    print(f"enter+exit:          {per_cycle * 1000:>9.2f} ms  (two-function app, mean of {cycles}; target < 50 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--cycles", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.cycles))
