"""Where the embedded broker keeps its files: stdlib only, so the settings can name them.

The broker (vsmsite/broker.py) wakes its consumers through UNIX datagram sockets, its
doorbells, in one directory per broker file. The agent sandbox must hide that directory
wherever it is, so the settings and the broker ask this one function.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

# AF_UNIX paths are limited to 108 bytes on Linux; a socket's name inside the directory
# takes up to 48 more, so a directory longer than this goes to the temp dir instead.
UNIX_PATH_MAX = 100
SOCKET_NAME_MAX = 48


def doorbell_directory(database: str) -> str:
    """Where the doorbells of one broker file live: beside it, or (for a path too long
    for a socket address) in the temp directory under a name derived from it."""
    real = os.path.realpath(database)
    beside = f"{real}.doorbells"
    if len(beside) + SOCKET_NAME_MAX <= UNIX_PATH_MAX:
        return beside
    digest = hashlib.sha256(real.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"vsm-broker-{digest}")
