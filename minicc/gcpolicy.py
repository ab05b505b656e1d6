"""How ``minicc serve`` runs Python's cyclic garbage collector: rarely, and never over the
start-up heap.

Measured under load (``MINICC_STALL_REPORT``, :mod:`minicc.diagnostics`): with the default
thresholds (700, 10, 10) a full (generation 2) collection ran every ~4 s at 200 calls/s and
stopped the event loop for 65-470 ms, growing with the heap: every loop stall over 50 ms was
one, and they made the p95 call-setup time ~200 ms and the relay's p99 packet delay ~100 ms.
A full collection visits every tracked object: the ~100 each live call holds (its dialogs and
transactions), and the few hundred thousand of the imported libraries (FastAPI, pydantic...).

Two changes:

- :func:`gc.freeze` once start-up is done moves the start-up heap (modules, the HTTP app, the
  loaded tenants) to the permanent generation, which collections skip.
- Larger thresholds. The call path creates no cyclic garbage (``tests/unit/test_gcpolicy.py``
  checks that whole calls leave nothing for the collector), so collections find little and
  exist for the rare cycle (an exception's traceback, a closed task); young collections stay
  frequent enough to catch those, and full ones become minutes apart instead of seconds.

A full collection still pauses the loop for a time proportional to the live calls when it
runs; it is just rare.
"""

from __future__ import annotations

import gc

THRESHOLDS = (2_000, 10, 1_000)
"""Generation 0 after 2,000 net new container objects (default 700); generation 1 every 10 of
those, so it visits at most ~20,000 young objects (measured: 5,000 x 10 paused the loop for
~25 ms, too much); generation 2 every 1,000 generation-1 collections (default 10), and only
once the objects promoted since the last full collection exceed a quarter of the long-lived
ones (CPython's own rule): at 200 calls/s every several minutes instead of every 4 s."""


def tune() -> None:
    """Set the thresholds (call at start-up, before the heap grows)."""
    gc.set_threshold(*THRESHOLDS)


def freeze_startup_heap() -> None:
    """Collect once, then exempt everything alive now from future collections.

    Call once start-up is done and before the first call: what is frozen is never freed.
    """
    gc.collect()
    gc.freeze()
