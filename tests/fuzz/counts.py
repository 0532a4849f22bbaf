"""How many cases each fuzz target ran (printed at the end of the run by ``tests/conftest.py``).

``STROM_FUZZ_SCALE`` multiplies every target's example count (default 1, sized for CI).
"""

from __future__ import annotations

import os
from collections import Counter

CASES: Counter[str] = Counter()
SCALE = float(os.environ.get("STROM_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    """A target's example count, scaled."""
    return max(1, int(n * SCALE))
