"""Seeds for random tests: every test prints its seed and replays with ``SEED=<n> make test``.

Without ``SEED`` each test process draws a fresh base seed, so every run explores new cases; a
failure prints the ``SEED`` that reproduces it. Each test derives its own stream from the base
seed and a label, so replaying one test does not depend on which other tests ran before it in
the same worker (pytest-xdist distributes them differently each run).
"""

import os
import random
import zlib

BASE_SEED = int(os.environ["SEED"]) if os.environ.get("SEED") else random.SystemRandom().randrange(1 << 32)


def seed_for(label=""):
    """The integer seed of the random stream named ``label``, printed with its replay command."""
    seed = (BASE_SEED << 32) ^ zlib.crc32(label.encode())
    print(f"[seed] {label or 'test'}: replay with SEED={BASE_SEED}")
    return seed


def seeded_rng(label=""):
    return random.Random(seed_for(label))
