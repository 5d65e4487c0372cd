"""Write the samples printed by tests/vm/capture_stat_samples.py (read from stdin) to
tests/unit/data/<name>/<dir>/<file>.  Usage: extract_samples.py NAME < vm-test-output"""

from __future__ import annotations

import base64
import os
import sys


def main() -> None:
    dest = os.path.join(os.path.dirname(os.path.abspath(__file__)), sys.argv[1])
    n = 0
    for raw in sys.stdin:
        line = raw[raw.find("CGROUP2-SAMPLE") :]  # pytest may print a dot before it
        if line.startswith("CGROUP2-SAMPLE "):
            parts = line.split()
            rel, b64 = parts[1], parts[2] if len(parts) > 2 else ""
            path = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(base64.b64decode(b64))
            n += 1
        elif line.startswith("CGROUP2-SAMPLE-NOTES"):
            print(line.strip())
    print(f"{n} files written under {dest}")


if __name__ == "__main__":
    main()
