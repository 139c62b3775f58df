from __future__ import annotations

import sys
from pathlib import Path

# tests/ holds shared helper modules (actors_for_tests, ...) imported by several test files.
sys.path.insert(0, str(Path(__file__).parent))
