"""Lets the tests import ``app`` from this folder, however pytest is run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
