"""Small helpers shared by the test suite: `from helpers import unique_topic`."""
import itertools
import os
import uuid

_counter = itertools.count()


def unique_topic(prefix: str = "t") -> str:
    "A topic name no other test (in this or any other pytest run) uses: `<prefix>-<pid>-<n>-<random>`."
    return f"{prefix}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:8]}"
