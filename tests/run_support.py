"""Helpers for the `fastkafka run` tests: line sinks a test can wait on, and subprocesses that are always cleaned up."""
import asyncio
import contextlib
import io
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence


class Lines(io.TextIOBase):
    "A text sink that keeps whole lines and wakes up whoever waits for one."

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""
        self._changed = asyncio.Event()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        *done, self._partial = (self._partial + s).split("\n")
        self.lines += done
        if done:
            self._changed.set()
        return len(s)

    def having(self, text: str) -> list[str]:
        "The lines that contain `text`."
        return [line for line in self.lines if text in line]

    async def wait_until(self, check: Callable[[list[str]], bool], timeout: float = 60) -> None:
        "Wait until `check(lines)` is true; TimeoutError (with the lines seen) after `timeout` seconds."

        async def until() -> None:
            while not check(self.lines):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout} s; lines so far:\n" + "\n".join(self.lines)) from None

    async def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> list[str]:
        "Wait until `count` lines contain `text`; those lines."
        await self.wait_until(lambda lines: len(self.having(text)) >= count, timeout)
        return self.having(text)


async def process_exits(pid: int, timeout: float = 30) -> None:
    "Wait (on a pidfd, no polling) until process `pid` has exited."
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
    try:
        await asyncio.wait_for(gone, timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class Command:
    "A command run as an asyncio subprocess in its own process group, its output collected line by line."

    def __init__(self, args: Sequence[str], cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        self.args, self.cwd = list(args), cwd
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.out, self.err = Lines(), Lines()
        self.proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task] = []

    async def start(self) -> "Command":
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd, env=self.env, start_new_session=True,
        )
        self._pumps = [asyncio.create_task(self._pump(s, sink)) for s, sink in
                       [(self.proc.stdout, self.out), (self.proc.stderr, self.err)]]
        return self

    @staticmethod
    async def _pump(stream: asyncio.StreamReader | None, sink: Lines) -> None:
        assert stream is not None
        while line := await stream.readline():
            sink.write(line.decode(errors="replace"))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 60) -> int:
        "Wait for the exit code (and the rest of the output)."
        assert self.proc is not None
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.args} still running after {timeout} s; output:\n{self.output()}") from None
        await asyncio.wait(self._pumps, timeout=10)
        return rc

    def output(self) -> str:
        return "\n".join(["--- stdout", *self.out.lines, "--- stderr", *self.err.lines])

    def worker_pids(self) -> set[int]:
        "Pids of the workers the supervisor said it started."
        return {int(m.group(1)) for line in self.out.lines if (m := re.search(r"Started worker (\d+)", line))}

    async def cleanup(self) -> None:
        "Stop the command and everything in its process group: SIGTERM, then SIGKILL."
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 40)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in the group, workers included
        if self.proc.returncode is None:
            await self.proc.wait()
        for task in self._pumps:
            task.cancel()


def fastkafka_cli(*args: str) -> list[str]:
    "The `fastkafka` command line, run by this Python."
    return [sys.executable, "-c", "from fastkafka._cli import app; app(prog_name='fastkafka')", *args]
