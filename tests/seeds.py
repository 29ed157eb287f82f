"""Seeds for random tests: printed, and replayable with ``SEED=<n> make test``.

Each test derives its own stream from the base seed and a label, so replaying one test does not
depend on which other tests ran before it (pytest-xdist reorders them).
"""

import os
import random
import zlib

BASE_SEED = int(os.environ.get("SEED", "1"))


def seeded_rng(label):
    seed = (BASE_SEED << 32) ^ zlib.crc32(label.encode())
    print(f"[seed] {label}: SEED={BASE_SEED} (stream {seed:#x})")
    return random.Random(seed)
