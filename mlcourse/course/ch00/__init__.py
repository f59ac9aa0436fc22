"""Chapter 00, welcome: the map of the field drawn in the first cell.

The names chapter 00's notebook calls, from this folder's modules and the shared ones.
"""

from __future__ import annotations

from mlcourse.course.ch00.figures import field_map

__all__ = ["field_map"]
