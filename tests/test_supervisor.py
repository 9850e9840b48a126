"""The `fastkafka run` supervisor on its own, with a stand-in worker script (no broker needed)."""
import asyncio
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from run_support import Command, Lines, process_exits

from fastkafka._components.logger import configure_logging
from fastkafka._server import Supervisor
from fastkafka._server import logger as server_logger

pytestmark = pytest.mark.subprocess

STAND_IN = textwrap.dedent(
    """
    import os, signal, sys, threading
    from pathlib import Path
    from fastkafka._server import notify_ready

    mode, marker = sys.argv[1], Path(sys.argv[2])
    print("starting")
    print("a line on stderr", file=sys.stderr)
    if mode == "crash" or (mode == "crash-once" and not marker.exists()):
        marker.touch()
        sys.exit("RuntimeError: cannot connect to the broker")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    # like a real worker, end when the supervisor goes away (stdin is its pipe)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    notify_ready()
    print("ready")
    if mode == "die-once" and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "exit-once" and not marker.exists():
        marker.touch()
        sys.exit(0)
    if mode == "die-after":  # runs a while, then dies: a crash after useful work
        import time
        time.sleep(float(sys.argv[3]))
        os.kill(os.getpid(), signal.SIGKILL)
    waiting_for = {signal.SIGINT} if mode == "stubborn" else {signal.SIGINT, signal.SIGTERM}
    print("stopping on", signal.Signals(signal.sigwait(waiting_for)).name)
    """
)


@pytest.fixture
def stand_in(tmp_path: Path):
    "Make a supervisor of stand-in workers; every supervisor made is cancelled (and its workers killed) at the end."
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    made: list[tuple[Supervisor, Lines, Lines, Lines]] = []

    def make(mode: str, n: int = 1, *extra: str, **kwargs):
        out, err, log = Lines(), Lines(), Lines()
        configure_logging(stream=log, name=server_logger.name)
        cmd = [sys.executable, str(tmp_path / "stand_in.py"), mode, str(tmp_path / f"marker-{len(made)}"), *extra]
        sup = Supervisor(cmd, n, stdout=out, stderr=err, **kwargs)
        made.append((sup, out, err, log))
        return sup, out, err, log

    yield make
    configure_logging(name=server_logger.name)
    leftover = [pid for sup, *_ in made for pid in sup.pids]
    assert not leftover, f"workers still running after the test: {leftover}"


async def test_prefixes_both_streams_and_stops_cleanly(stand_in):
    sup, out, err, log = stand_in("serve", 2)
    running = asyncio.create_task(sup.run(handle_signals=False))
    try:
        await out.wait_for("ready", count=2)
        pids = set(sup.pids)
        assert len(pids) == 2
        assert set(out.having("starting")) == {f"[{pid}]: starting" for pid in pids}
        assert set(err.lines) == {f"[{pid}]: a line on stderr" for pid in pids}
        sup.stop()
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        running.cancel()
    assert len(out.having("stopping on SIGTERM")) == 2
    assert log.having("All workers stopped cleanly")


async def test_worker_killed_after_ready_is_reported_and_restarted(stand_in):
    sup, out, _, log = stand_in("die-once", backoff=0.1)
    running = asyncio.create_task(sup.run(handle_signals=False))
    try:
        crash = (await log.wait_for("was killed by signal SIGKILL after running for"))[0]
        assert "restarting it in 0.1 s; its last lines on stderr:" in crash
        await out.wait_for("ready", count=2)
        assert len(log.having("Started worker")) == 2
        sup.stop()
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        running.cancel()


async def test_worker_that_exits_cleanly_is_replaced_without_an_error(stand_in):
    sup, out, _, log = stand_in("exit-once", backoff=5)
    running = asyncio.create_task(sup.run(handle_signals=False))
    try:
        await out.wait_for("ready", count=2, timeout=4)  # at once, not after the 5 s backoff
        assert log.having("stopped cleanly (exit code 0) after running for"), log.lines
        assert not log.having("[ERROR]"), log.lines
        sup.stop()
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        running.cancel()


async def test_crash_streak_resets_after_a_useful_run(stand_in):
    # each worker serves 1.5 s and then dies: past 1 s and four times its backoff, so every
    # restart waits 0.1 s again instead of 0.1, 0.2, 0.4, ...
    sup, out, _, log = stand_in("die-after", 1, "1.5", backoff=0.1, healthy_after=10)
    running = asyncio.create_task(sup.run(handle_signals=False))
    try:
        crashes = await log.wait_for("was killed by signal SIGKILL after running for", count=4, timeout=30)
        assert all("restarting it in 0.1 s" in line for line in crashes), crashes
        sup.stop()
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        running.cancel()


async def test_startup_failure_once_is_retried_with_backoff(stand_in):
    sup, out, _, log = stand_in("crash-once", backoff=0.1)
    running = asyncio.create_task(sup.run(handle_signals=False))
    try:
        await out.wait_for("ready")
        assert log.having("exited with code 1 before it was ready; restarting it in 0.1 s")
        sup.stop()
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        running.cancel()


async def test_backoff_doubles_and_the_supervisor_gives_up(stand_in):
    sup, _, _, log = stand_in("crash", 2, backoff=0.2, max_startup_failures=4)
    assert await asyncio.wait_for(sup.run(handle_signals=False), 60) == 1
    delays = [line.split("restarting it in ")[1].split(";")[0] for line in log.having("restarting it in")]
    assert {"0.2 s", "0.4 s", "0.8 s"} <= set(delays), delays
    assert sup.error is not None and "before it was ready, 4 times in a row; giving up" in sup.error
    assert sup.error.endswith("a line on stderr\n    RuntimeError: cannot connect to the broker")
    assert sup.pids == set()


async def test_worker_ignoring_sigterm_is_killed_after_the_timeout(stand_in):
    sup, out, _, log = stand_in("stubborn", stop_timeout=1)
    running = asyncio.create_task(sup.run(handle_signals=False))
    try:
        await out.wait_for("ready")
        sup.stop()
        assert await asyncio.wait_for(running, 30) == 1
    finally:
        running.cancel()
    assert log.having("did not stop within 1 s; killing it")
    assert len(sup.unclean) == 1


async def test_cancelled_supervisor_leaves_no_worker(stand_in):
    sup, out, _, _ = stand_in("serve", 2)
    running = asyncio.create_task(sup.run(handle_signals=False))
    await out.wait_for("ready", count=2)
    pids = set(sup.pids)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    for pid in pids:
        await process_exits(pid, timeout=10)


def _supervisor_script(tmp_path: Path, mode: str, n: int, stop_timeout: float = 30) -> list[str]:
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    code = (
        "import asyncio, sys\n"
        "from fastkafka._components.logger import configure_logging\n"
        "from fastkafka._server import Supervisor\n"
        "configure_logging()\n"
        f"cmd = [sys.executable, {str(tmp_path / 'stand_in.py')!r}, {mode!r}, {str(tmp_path / 'marker')!r}]\n"
        f"sys.exit(asyncio.run(Supervisor(cmd, {n}, stop_timeout={stop_timeout}).run()))\n"
    )
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_to_the_supervisor_stops_every_worker(tmp_path, sig):
    cmd = await Command(_supervisor_script(tmp_path, "serve", 2)).start()
    try:
        await cmd.out.wait_for("ready", count=2)
        cmd.send_signal(sig)
        assert await cmd.wait(30) == 0, cmd.output()
        assert len(cmd.out.having("stopping on SIGTERM")) == 2, cmd.output()
        assert cmd.out.having(f"Received {sig.name}; stopping 2 worker(s)")
    finally:
        await cmd.cleanup()


async def test_second_signal_kills_the_workers_at_once(tmp_path):
    cmd = await Command(_supervisor_script(tmp_path, "stubborn", 1, stop_timeout=300)).start()
    try:
        await cmd.out.wait_for("ready")
        cmd.send_signal(signal.SIGTERM)
        await cmd.out.wait_for("Received SIGTERM")
        cmd.send_signal(signal.SIGTERM)
        assert await cmd.wait(30) == 1, cmd.output()
        assert cmd.out.having("Received SIGTERM again; killing the workers now")
        assert cmd.out.having("was killed by signal SIGKILL while stopping")
    finally:
        await cmd.cleanup()
