"""What every benchmark here needs: quiet OpenMP threads, the repository on sys.path, a timer.
Import it first: `from common import timed` (bench/ is on sys.path when a script runs)."""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn) -> float:
    """Seconds one call of fn takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
