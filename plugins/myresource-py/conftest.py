"""pytest configuration for the example: pytest puts this directory (the plugin module) on
``sys.path``; the SDK comes from this repository's ``guest-sdk/python``, as ``build.py``
takes it. A plugin outside the repository would install the SDK instead."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "guest-sdk" / "python"))
