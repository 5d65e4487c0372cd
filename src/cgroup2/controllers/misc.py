"""The misc controller: its resource settings (written) and its statistics (read)."""

from __future__ import annotations

# --- what is written ------------------------------------------------------------------
# misc.max ("<resource> <limit>", one resource a write) has no typed setting, as in the
# reference: write it with Resources(unified={"misc.max": "sev 4"}), which also enables
# the misc controller (Resources.enabled_controllers()).

# --- what is read ---------------------------------------------------------------------
_READ_FILES = ("misc.current", "misc.max", "misc.events")

from dataclasses import dataclass as _dataclass  # noqa: E402, RUF100

from ._parse import Files, decode_key, invalid_format, parse_value  # noqa: E402, RUF100


@_dataclass(slots=True)
class MiscStat:
    """One resource of the misc controller (``sev``, ``sev_es``, ``tdx``, ...).

    ``current``: ``misc.current``; ``max``: ``misc.max`` (``U64_MAX`` for ``max``);
    ``failcnt``: the ``<name>.max`` count of ``misc.events`` (charges refused by the limit).
    ``None``: the kernel did not list the resource in that file.
    """

    name: str
    current: int | None = None
    max: int | None = None
    failcnt: int | None = None


def parse_misc(data: bytes, filename: str, *, limit: bool = False) -> dict[str, int]:
    """Parse ``misc.current`` / ``misc.max`` (``limit=True`` allows ``max``) /
    ``misc.events``: ``<name> <value>`` lines, as ``{name: value}``."""
    out: dict[str, int] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        v = parse_value(parts[1], limit=limit) if len(parts) == 2 else None
        if v is None:
            raise invalid_format(filename, lineno, line, "expected '<resource> <value>'")
        out[decode_key(parts[0])] = v
    return out


def read_misc(d: Files) -> tuple[MiscStat, ...] | None:
    """Read ``misc.current``, ``misc.max`` and ``misc.events``; ``None`` when the misc
    controller is off. Resources are in the order of ``misc.current``."""
    data = d.try_read("misc.current")
    if data is None:
        return None
    current = parse_misc(data, "misc.current")
    data = d.try_read("misc.max")
    limits = {} if data is None else parse_misc(data, "misc.max", limit=True)
    data = d.try_read("misc.events")
    events = {} if data is None else parse_misc(data, "misc.events")
    names = list(current)
    names += [n for n in limits if n not in current]
    return tuple(
        MiscStat(n, current.get(n), limits.get(n), events.get(n + ".max")) for n in names
    )
