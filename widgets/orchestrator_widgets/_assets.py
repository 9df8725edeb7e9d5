"""Where the widgets' front-end bundles are: ``static/``, built from ``widgets/src`` on install."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


class BundleMissing(RuntimeError):
    """The widgets' JavaScript was not built (an install that skipped npm)."""


def bundle(name: str, suffix: str = ".js") -> Path:
    """The built file of widget ``name``; a clear error (how to build it) when it is missing."""
    path = STATIC / f"{name}{suffix}"
    if not path.is_file():
        raise BundleMissing(
            f"The widget's front end {path} is not built. Install with Node 20+ and npm on PATH "
            "(pip install -e . runs `npm install` and `npm run build` in widgets/), or run them yourself."
        )
    return path
