"""The cpuset controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------

def cpu_list_text(field: str, value: object) -> str:
    """Check a ``cpuset.cpus``/``cpuset.mems`` list such as ``"0-3,5"``; return it.

    The kernel's list format: comma-separated numbers and ``a-b`` ranges with ``a <= b``.
    """
    from ._values import invalid

    if not isinstance(value, str):
        raise invalid(field, value, "must be a str such as '0-3,5'")
    for part in value.split(","):
        lo, dash, hi = part.partition("-")
        if not (lo.isascii() and lo.isdigit()) or (dash and not (hi.isascii() and hi.isdigit())):
            raise invalid(
                field, value, f"malformed element {part!r}: expected N or N-M, e.g. '0-3,5'"
            )
        if dash and int(lo) > int(hi):
            raise invalid(field, value, f"range {part!r} is not ascending")
    return value


# --- what is read ---------------------------------------------------------------------
