"""Puts this checkout's root first on sys.path, so `python bench/NAME.py` imports its dstab with no
environment set (Python puts the script's own folder, bench/, on the path, not the repository root).
Each benchmark imports it before dstab."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
