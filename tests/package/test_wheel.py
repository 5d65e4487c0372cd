"""package: ``python -m build`` makes an sdist and a wheel (the wheel from the sdist, as an
installer would), and the wheel installed into a fresh virtual environment works: the
command, its man page, the license metadata, and the imports of the README's library
example.

Nothing is fetched: the build runs without isolation (this environment's setuptools), and
the fresh environment installs the dependencies from a local directory of wheels,
``CGROUP2_WHEELHOUSE`` (default ``build/wheelhouse``), which ``scripts/test-all`` fills when
it installs the test tools.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("CGROUP2_WHEELHOUSE", ROOT / "build" / "wheelhouse"))
MAN = "share/man/man1/cgroup2.1"


# the fresh environment sees nothing of this one (a PYTHONPATH naming the checkout's src
# would make pip take the package for installed)
_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                       env=_ENV, timeout=600, check=False)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not WHEELHOUSE.is_dir():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: scripts/test-all fills it (pip download)")
    env = tmp_path_factory.mktemp("venv") / "fresh"
    _run(sys.executable, "-m", "venv", "--without-pip", env)
    (wheel,) = dist.glob("cgroup2-*.whl")
    _run(sys.executable, "-m", "pip", "--python", env / "bin" / "python", "install", "-q",
         "--no-index", "--find-links", WHEELHOUSE, wheel)
    return env


def _version() -> str:
    text = (ROOT / "src" / "cgroup2" / "_version.py").read_text()
    m = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    assert m
    return m.group(1)


def test_sdist_holds_the_sources_and_the_build_step(dist: Path) -> None:
    (sdist,) = dist.glob("cgroup2-*.tar.gz")
    assert sdist.name == f"cgroup2-{_version()}.tar.gz"
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in ("pyproject.toml", "setup.py", "LICENSE", "README.md",
                 "src/cgroup2/__init__.py", "src/cgroup2/cli/_reference.py"):
        assert need in names, need


def test_wheel_holds_the_man_page_and_the_license(dist: Path) -> None:
    (wheel,) = dist.glob("cgroup2-*.whl")
    v = _version()
    assert wheel.name == f"cgroup2-{v}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        page = z.read(f"cgroup2-{v}.data/data/{MAN}").decode()
        meta = z.read(f"cgroup2-{v}.dist-info/METADATA").decode()
    assert page.startswith(f'.TH CGROUP2 1 "" "cgroup2 {v}"')
    assert '.SS "cgroup2 run"' in page and '.SS "cgroup2 completion"' in page
    assert f"cgroup2-{v}.dist-info/licenses/LICENSE" in names
    assert "cgroup2/py.typed" in names
    assert "Metadata-Version: 2.4" in meta
    assert "License-Expression: Apache-2.0" in meta
    assert "License-File: LICENSE" in meta


def test_installed_command_version_and_help(venv: Path) -> None:
    cmd = venv / "bin" / "cgroup2"
    assert _run(cmd, "--version") == f"cgroup2 {_version()}\n"
    help_text = _run(cmd, "--help")
    assert "usage: cgroup2" in help_text and "completion" in help_text
    assert "complete -F _cgroup2 cgroup2" in _run(cmd, "completion", "bash")


def test_installed_man_page(venv: Path) -> None:
    page = venv / MAN
    assert page.is_file()
    assert page.read_text().startswith(".TH CGROUP2 1")


def test_readme_library_example_imports(venv: Path, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^## Library\n```python\n(.*?)^```", readme, re.M | re.S)
    assert block, "README has no library example"
    imports = [line for line in block.group(1).splitlines()
               if re.match(r"(import |from \S+ import )", line)]
    assert any(line.startswith("from cgroup2 import") for line in imports)
    code = "\n".join([*imports, "import cgroup2", "print(cgroup2.__version__)"])
    # run away from the checkout, so the installed package is the one imported
    out = _run(venv / "bin" / "python", "-I", "-c", code, cwd=tmp_path)
    assert out == f"{_version()}\n"
    where = _run(venv / "bin" / "python", "-I", "-c", "import cgroup2; print(cgroup2.__file__)",
                 cwd=tmp_path)
    assert where.startswith(str(venv)), where
