"""argon2id password hashing with a per-process cap on concurrent hashes.

The cost comes from the settings (``password_hash_memory_kib``,
``password_hash_time_cost``); by default OWASP's minimum, m=19 MiB, t=2, p=1.

Hashes run on a small pool of threads of their own (``concurrency`` per
process), never on the request threads: a burst of logins waits there instead
of occupying every worker thread (and gives its database connection back
first, ``verify_password_login``); and argon2's buffer, which glibc keeps in the arena
of the thread that allocated it, stays in those few threads' arenas instead of
one per request thread that ever hashed (RSS grew with the thread count).
And glibc is told to map blocks of a MiB and more from the system and give them
back when freed (``map_large_blocks``), so that not even those few keep one.
"""

from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# mallopt's parameter in glibc's malloc.h.
M_MMAP_THRESHOLD = -3
MAPPED_FROM = 1 << 20


def map_large_blocks() -> None:
    """Blocks of ``MAPPED_FROM`` bytes and more: mapped from the system, given back when freed.

    glibc raises its threshold for that to the size of the largest mapped block
    freed so far (up to 32 MiB): after the first hash, argon2id's 19 MiB came
    from the hashing thread's arena and stayed there, 19 MiB for good per pool
    thread and process (40 MiB of a worker's 107 MiB after the benchmark's
    logins). Setting the threshold ends that adjustment. Elsewhere than glibc
    there is no ``mallopt`` (nothing done) or it ignores the parameter.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MAPPED_FROM)


class PasswordService:
    def __init__(self, *, concurrency: int, memory_kib: int, time_cost: int) -> None:
        map_large_blocks()
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Threads start on first use (after gunicorn forked the worker).
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        # Verified when the account does not exist, so the time taken does not
        # tell whether it does.
        self._dummy_hash = self._hasher.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        return self._pool.submit(self._hasher.hash, password).result()

    def verify(self, stored_hash: str | None, password: str) -> bool:
        return self._pool.submit(self._verify, stored_hash, password).result()

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and bool(
                stored_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


def check_password_policy(password: str) -> str | None:
    """NIST SP 800-63B-4 §3.1.1.2: length rules only. Returns a problem or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"at most {MAX_PASSWORD_LENGTH} characters"
    return None
