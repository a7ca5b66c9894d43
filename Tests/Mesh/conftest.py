"""Puts the helpers the Python suites share (Tests/Python) on the import path."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "Python"))
