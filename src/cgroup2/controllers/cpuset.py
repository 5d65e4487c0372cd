"""The cpuset controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------

# --- what is read ---------------------------------------------------------------------
