"""argon2id's buffer goes back to the system after each hash."""

from __future__ import annotations

import subprocess
import sys

# A process of its own: the malloc setting is process-wide, and the memory
# measured is this process's alone.
HASHING = """
import threading
from idp.accounts.passwords import PasswordService

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

service = PasswordService(concurrency=2, memory_kib=19456, time_cost=1)
before = rss_mib()
threads = [threading.Thread(target=service.hash, args=(f"password {n}",)) for n in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(rss_mib() - before)
"""


def test_the_hashing_threads_keep_no_argon2_buffer() -> None:
    grown = subprocess.run(
        [sys.executable, "-c", HASHING], capture_output=True, text=True, timeout=60, check=True
    )
    # Each of the two pool threads kept a 19 MiB buffer in its arena before.
    assert float(grown.stdout) < 8, grown.stdout
