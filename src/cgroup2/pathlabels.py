"""Labels a fleet groups by, read from a group's path: systemd unit, container, pod, job.

Dashboards group by job, container, pod or unit, not by path. :func:`path_labels` reads
them from the path's components, by the layouts of the common managers (the innermost
match wins when a path holds several):

==================  ==========================================================================
label               from
==================  ==========================================================================
``unit``            the innermost ``*.service``, ``*.scope`` or ``*.slice`` (systemd)
``container_id``    ``docker-<id>.scope``, ``cri-containerd-<id>.scope``, ``crio-<id>.scope``,
                    ``libpod-<id>.scope`` (systemd driver); ``/docker/<id>`` (cgroupfs)
``pod_uid``         ``kubepods[-burstable|-besteffort]-pod<uid>.slice`` (``_`` back to ``-``),
                    ``/kubepods/[burstable|besteffort/]pod<uid>``
``qos``             ``burstable``, ``besteffort`` or ``guaranteed`` (a pod without either),
                    also on the QoS level's own group (``kubepods-burstable.slice``)
``slurm_uid``,      ``/slurm/uid_<uid>/job_<id>/step_<n>`` (also ``slurm_<node>``), and
``slurm_job``,      ``slurmstepd.scope/job_<id>/step_<n>`` (cgroup/v2 plugin: no uid);
``slurm_step``      ``<n>`` is a number, ``batch``, ``extern`` or ``interactive``
==================  ==========================================================================

:class:`PathLabels` adds a site's own (``NAME=REGEX``: the first group of the regex,
searched in the path, or the whole match) and writes the label text of each group once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import CgroupError

__all__ = ["BUILTIN", "RESERVED", "PathLabels", "parse_label_rule", "path_labels"]

#: The built-in labels, in the order they are written.
BUILTIN = ("unit", "container_id", "pod_uid", "qos", "slurm_uid", "slurm_job", "slurm_step")
#: Label names the exposition uses itself.
RESERVED = frozenset(
    ("group", "key", "event", "device", "op", "resource", "kind", "window", "pagesize",
     "reason", "le", "quantile", "job", "instance")
)  # fmt: skip

_ID = r"([0-9a-f]{12,64})"
_CONTAINER_SCOPE = re.compile(rf"(?:docker|cri-containerd|crio|libpod)-{_ID}\.scope")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KUBE_POD_SLICE = re.compile(r"kubepods(?:-(burstable|besteffort))?-pod([0-9a-fA-F_-]+)\.slice")
_KUBE_QOS_SLICE = re.compile(r"kubepods-(burstable|besteffort)\.slice")
_KUBE_POD = re.compile(r"pod([0-9a-fA-F-]{8,})")
_SLURM_TOP = re.compile(r"slurm(?:_[^/]+)?|slurmstepd\.scope")
_SLURM_UID = re.compile(r"uid_(\d+)")
_SLURM_JOB = re.compile(r"job_(\d+)")
_SLURM_STEP = re.compile(r"step_(\d+|batch|extern|interactive)")
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def path_labels(path: str) -> dict[str, str]:
    """The built-in labels of the group at ``path`` (``/a/b``), by the layouts above."""
    parts = path.split("/")
    out: dict[str, str] = {}
    slurm = False
    for i, p in enumerate(parts):
        if not p:
            continue
        if p.endswith((".service", ".scope", ".slice")):
            out["unit"] = p
        if (m := _CONTAINER_SCOPE.fullmatch(p)) is not None:
            out["container_id"] = m[1]
        elif p == "docker" and i + 1 < len(parts) and _HEX64.fullmatch(parts[i + 1]):
            out["container_id"] = parts[i + 1]
        if p.startswith("kubepods"):
            if (m := _KUBE_POD_SLICE.fullmatch(p)) is not None:
                out["pod_uid"] = m[2].replace("_", "-")
                out["qos"] = m[1] or "guaranteed"
            elif (m := _KUBE_QOS_SLICE.fullmatch(p)) is not None:
                out["qos"] = m[1]
            elif p == "kubepods":  # cgroupfs: /kubepods/[qos/]pod<uid>
                rest = parts[i + 1 : i + 3]
                if rest and rest[0] in ("burstable", "besteffort"):
                    out["qos"] = rest[0]
                    rest = rest[1:]
                if rest and (m := _KUBE_POD.fullmatch(rest[0])) is not None:
                    out["pod_uid"] = m[1]
                    out.setdefault("qos", "guaranteed")
        if _SLURM_TOP.fullmatch(p):
            slurm = True
        elif slurm:
            if (m := _SLURM_UID.fullmatch(p)) is not None:
                out["slurm_uid"] = m[1]
            elif (m := _SLURM_JOB.fullmatch(p)) is not None:
                out["slurm_job"] = m[1]
            elif (m := _SLURM_STEP.fullmatch(p)) is not None:
                out["slurm_step"] = m[1]
    return out


def parse_label_rule(text: str) -> tuple[str, re.Pattern[str]]:
    """``NAME=REGEX`` -> (name, compiled regex); a clear error for a bad name or regex."""
    name, sep, rx = text.partition("=")
    if not sep or not _NAME.fullmatch(name) or name.startswith("__"):
        raise CgroupError(
            f"invalid --label {text!r}: NAME=REGEX, NAME a Prometheus label name "
            f"([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
        )
    if name in RESERVED or name in BUILTIN:
        raise CgroupError(f"invalid --label {text!r}: {name!r} is a label the exporter writes")
    try:
        pattern = re.compile(rx)
    except re.error as e:
        raise CgroupError(f"invalid --label {text!r}: {e}") from None
    return name, pattern


class PathLabels:
    """The label text (``,unit="…",container_id="…"``) of each group path: the built-in
    labels (unless ``builtin`` is false) and the site's ``rules`` (name, regex), values
    escaped as the exposition escapes them. Each path's text is worked out once."""

    def __init__(
        self, rules: Iterable[tuple[str, re.Pattern[str]]] = (), *, builtin: bool = True
    ) -> None:
        self.rules = list(rules)
        self.builtin = builtin
        self._cache: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        text = self._cache.get(path)
        if text is None:
            text = self._text(path)
            if len(self._cache) >= 1 << 20:
                self._cache.clear()
            self._cache[path] = text
        return text

    def _text(self, path: str) -> str:
        from .exporter import escape_label

        found = path_labels(path) if self.builtin else {}
        parts = [f',{k}="{escape_label(found[k])}"' for k in BUILTIN if k in found]
        for name, rx in self.rules:
            m = rx.search(path)
            if m is not None:
                value = m[1] if rx.groups else m[0]
                if value:
                    parts.append(f',{name}="{escape_label(value)}"')
        return "".join(parts)
