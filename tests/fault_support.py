"""Fault injection on a real local broker: freeze its JVM (as a network partition looks to clients) and thaw it."""
import os
import signal
from pathlib import Path


def broker_pid(bootstrap: str) -> int:
    "The pid of the local Kafka JVM whose client listener is `bootstrap` (\"127.0.0.1:<port>\")."
    port = bootstrap.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" not in args:
            continue
        config = Path(args[args.index(b"kafka.Kafka") + 1].decode())
        if not config.is_absolute():
            config = Path(os.readlink(proc / "cwd")) / config
        if f"PLAINTEXT://127.0.0.1:{port}" in config.read_text():
            return int(proc.name)
    raise LookupError(f"no local Kafka JVM listens on {bootstrap}")


class Frozen:
    "`with Frozen(bootstrap):` stops the broker's JVM (SIGSTOP) for the block: connections stay open, nothing answers."

    def __init__(self, bootstrap: str) -> None:
        self.pid = broker_pid(bootstrap)

    def __enter__(self) -> "Frozen":
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)
