"""Small file helpers shared by the nightly run and the validation gate."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def stage_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` beside ``path`` under a temporary name and return that name; ``os.replace`` it over ``path``
    to publish it. Writing takes disk space, the rename does not: a caller can stage several files and only then
    change anything."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(data)
    except BaseException:
        partial.unlink(missing_ok=True)  # a full disk leaves no half file behind
        raise
    return partial


def stage_json(path: Path, payload: dict[str, Any]) -> Path:
    """``payload`` as JSON text, staged like ``stage_bytes``."""
    return stage_bytes(path, (json.dumps(payload, indent=2, default=str) + "\n").encode())


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write ``path`` in one rename, so a reader (the nightly flow, a dashboard) never sees half a file."""
    os.replace(stage_json(path, payload), path)
