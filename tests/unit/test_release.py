"""unit: the release's shape: a clean repository, one version, the man page, the CLI
reference, shell completion, the README's command table and the API reference, each
checked against its source (the parser, ``cgroup2.__all__``) so none can go stale."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from shells import bash_complete, command_shim

import cgroup2
from cgroup2.cli import build_parser, main
from cgroup2.cli._completion import candidates, group_candidates
from cgroup2.cli._reference import manpage, markdown

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE = 100 * 1024
ARCHIVES = (".whl", ".tar", ".tar.gz", ".tgz", ".zip", ".egg", ".so", ".a", ".o", ".pyc",
            ".gz", ".bz2", ".xz", ".zst", ".deb", ".rpm", ".iso", ".img", ".bin", ".exe")


# ---- the repository ----------------------------------------------------------------------


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                         check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_tracked_file_over_100_kb() -> None:
    big = [(p, os.path.getsize(ROOT / p)) for p in _tracked()
           if (ROOT / p).is_file() and os.path.getsize(ROOT / p) > MAX_FILE]
    assert not big, f"tracked files over {MAX_FILE} bytes: {big}"


def test_no_archive_or_binary_at_the_root_or_in_src() -> None:
    bad = []
    for p in _tracked():
        if "/" in p and not p.startswith("src/"):
            continue
        f = ROOT / p
        if not f.is_file():
            continue
        if p.endswith(ARCHIVES) or b"\0" in f.read_bytes()[:8192]:
            bad.append(p)
    assert not bad, f"archives or binaries tracked at the root or in src/: {bad}"


def test_no_tracked_file_is_ignored() -> None:
    _tracked()
    out = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--ignored", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert not out, f"tracked files that .gitignore ignores: {out}"


# ---- one version, the package metadata -----------------------------------------------------


def _main(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's --version and --help exit
            rc = int(e.code or 0)
    return rc, out.getvalue()


def test_version_is_one_source() -> None:
    from cgroup2._version import __version__

    assert cgroup2.__version__ == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*(\.dev\d+)?", __version__)
    assert _main(["--version"]) == (0, f"cgroup2 {__version__}\n")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "cgroup2._version.__version__"
    }
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_license_metadata_is_pep_639() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert not any(c.startswith("License ::") for c in meta["project"].get("classifiers", []))
    req = {r.split(">=")[0]: r for r in meta["build-system"]["requires"]}
    assert req["setuptools"] == "setuptools>=77"  # the first with PEP 639


# ---- everything the parser knows -----------------------------------------------------------


def _subparsers(p: argparse.ArgumentParser) -> argparse._SubParsersAction[
    argparse.ArgumentParser
] | None:
    return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)


def _commands(
    p: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield words, p
    sub = _subparsers(p)
    if sub is not None:
        for name, child in sub.choices.items():
            yield from _commands(child, (*words, name))


def _options(p: argparse.ArgumentParser) -> list[str]:
    return [s for a in p._actions if a.help != argparse.SUPPRESS for s in a.option_strings
            if s not in ("-h", "--help")]


SUBCOMMANDS = [" ".join(w) for w, _ in _commands(build_parser()) if w]
TOP_LEVEL = [w for w in SUBCOMMANDS if " " not in w]


def test_the_parser_has_the_release_commands() -> None:
    assert "completion" in TOP_LEVEL and "devices check" in SUBCOMMANDS
    assert "--version" in _options(build_parser())


def test_man_page_covers_every_subcommand_and_option() -> None:
    text = manpage().replace("\\-", "-").replace("\\fB", "").replace("\\fR", "")
    assert text.startswith('.TH CGROUP2 1 "" "cgroup2 ' + cgroup2.__version__ + '"')
    for words, p in _commands(build_parser()):
        if words:
            assert f'.SS "cgroup2 {" ".join(words)}"' in text, words
        section = text.split(f'.SS "cgroup2 {" ".join(words)}"')[-1] if words else text
        section = section.split(".SS ")[0]
        for opt in _options(p):
            assert re.search(rf"(^|[\s,\[]){re.escape(opt)}\b", section, re.M), (words, opt)


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff")
def test_man_page_renders_without_warnings(tmp_path: Path) -> None:
    page = tmp_path / "cgroup2.1"
    page.write_text(manpage())
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and not r.stderr, r.stderr


def test_cli_reference_covers_every_subcommand_and_option() -> None:
    text = markdown()
    for words, p in _commands(build_parser()):
        if words:
            assert f"`cgroup2 {' '.join(words)}`" in text, words
        for opt in _options(p):
            assert opt in text, (words, opt)


def test_readme_table_names_every_subcommand() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `cgroup2 ([a-z][a-z ]*)` \|(.*)\|\s*$", readme, re.M)
    named = {name for name, _ in rows}
    missing = [c for c in TOP_LEVEL if not any(n.split()[0] == c for n in named)]
    assert not missing, f"README's subcommand table lacks: {missing}"
    unknown = [n for n in named if n not in SUBCOMMANDS]
    assert not unknown, f"README's table names what the parser lacks: {unknown}"
    import shlex

    from cgroup2.cli._units import UsageError

    for name, example in rows:
        m = re.search(r"(cgroup2 [^`)]*)", example)
        assert m and m.group(1).startswith(f"cgroup2 {name}"), f"no example for {name}"
        try:
            build_parser().parse_args(shlex.split(m.group(1))[1:])
        except (UsageError, SystemExit) as e:
            pytest.fail(f"README's example {m.group(1)!r} does not parse: {e}")


def test_readme_names_every_system_package_test_all_installs() -> None:
    script = (ROOT / "scripts" / "test-all").read_text()
    block = script.split("requirements=(", 1)[1].split("\n)", 1)[0]
    packages = {line.split()[1] for line in re.findall(r'"([^"]+)"', block)}
    assert len(packages) >= 8
    section = (ROOT / "README.md").read_text().split("## System packages", 1)[1]
    section = section.split("\n## ", 1)[0]
    missing = [p for p in sorted(packages) if f"`{p}`" not in section]
    assert not missing, f"README's system packages lack: {missing}"


# ---- the API reference ---------------------------------------------------------------------


def documented_names() -> set[str]:
    names: set[str] = set()
    for page in (ROOT / "docs").rglob("*.md"):
        names.update(re.findall(r"^::: cgroup2\.(\w+)\s*$", page.read_text(), re.M))
    return names


def test_api_reference_documents_exactly_the_public_names() -> None:
    documented = documented_names()
    public = set(cgroup2.__all__)
    assert not public - documented, f"in __all__ but not documented: {sorted(public - documented)}"
    assert not documented - public, f"documented but not public: {sorted(documented - public)}"
    assert len(documented) == len(cgroup2.__all__)


# ---- completion ----------------------------------------------------------------------------


def _values(words: list[str]) -> tuple[str, list[str]]:
    what, found = candidates(build_parser(), words)
    return what, [v for v, _ in found]


def test_completion_offers_subcommands_options_and_choices() -> None:
    assert _values([""])[1] == TOP_LEVEL
    assert _values(["st"])[1] == [c for c in TOP_LEVEL if c.startswith("st")]
    assert "--memory-max" in _values(["run", "--mem"])[1]
    assert _values(["top", "--sort", "m"]) == ("", ["memory"])
    assert _values(["devices", ""]) == ("", ["check"])
    assert _values(["--mountpoint", "/s"])[0] == "dirs"
    assert _values(["run", "--keep", "--", ""])[0] == "commands"
    assert _values(["run", "--", "sh", ""])[0] == "files"
    assert _values(["completion", ""]) == ("", ["bash", "zsh", "fish"])
    # a value never taken for an option or subcommand
    assert _values(["top", "--interval", ""]) == ("", [])


def test_group_paths_complete_from_the_mount(tmp_path: Path) -> None:
    # a fake mount under /tmp (unit tests take /tmp's file system as cgroup2)
    for d in ("jobs/a", "jobs/b/x", "web"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "cgroup.procs").write_text("")
    mnt = str(tmp_path)
    assert group_candidates("", mnt) == ["/jobs/", "/web"]
    assert group_candidates("/j", mnt) == ["/jobs/"]
    assert group_candidates("/jobs/", mnt) == ["/jobs/a", "/jobs/b/"]
    assert group_candidates("jobs/b", mnt) == ["jobs/b/"]
    assert group_candidates(f"{mnt}/we", mnt) == [f"{mnt}/web"]
    assert group_candidates("/jobs/../", mnt) == []
    assert group_candidates("/nothing/", mnt) == []
    assert _values(["--mountpoint", mnt, "stat", "/jobs/b/"]) == ("", ["/jobs/b/x"])
    assert _values(["--mountpoint", mnt, "run", "--parent", "/w"]) == ("", ["/web"])


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_a_subcommand_and_an_option(tmp_path: Path) -> None:
    shim = command_shim(tmp_path)
    assert bash_complete(["cgroup2", "ev"], shim) == ["events"]
    assert bash_complete(["cgroup2", "top", "--so"], shim) == ["--sort"]
    assert bash_complete(["cgroup2", "top", "--sort", "ta"], shim) == ["tasks"]
    assert bash_complete(["cgroup2", ""], shim) == TOP_LEVEL


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_parse(shell: str, tmp_path: Path) -> None:
    rc, text = _main(["completion", shell])
    assert rc == 0 and "cgroup2 completion " + shell in text
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    (tmp_path / "script").write_text(text)
    check = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}
    r = subprocess.run([*check[shell], str(tmp_path / "script")], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stderr


# ---- the examples of the documentation and the README ---------------------------------------


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks(lang: str) -> Iterator[tuple[Path, str]]:
    for page in _pages():
        for block in re.findall(rf"^```{lang}\n(.*?)^```", page.read_text(), re.M | re.S):
            yield page, block


def test_python_examples_compile_and_import_public_names() -> None:
    import ast

    n = 0
    for page, block in _blocks("python"):
        tree = ast.parse(block, filename=str(page))  # a syntax error fails here
        compile(tree, str(page), "exec")
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module == "cgroup2":  # a public name, or a module of the package
                for alias in node.names:
                    assert alias.name in cgroup2.__all__ or importlib.util.find_spec(
                        f"cgroup2.{alias.name}") is not None, (page.name, alias.name)
            elif node.module.startswith("cgroup2."):  # a name the module exports
                exported = importlib.import_module(node.module).__all__
                for alias in node.names:
                    assert alias.name in exported, (page.name, node.module, alias.name)
        n += 1
    assert n >= 10


def test_command_examples_parse() -> None:
    import shlex

    from cgroup2.cli._units import UsageError

    n = 0
    for page, block in _blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] != "cgroup2":
                continue
            try:
                build_parser().parse_args(words[1:])
            except (UsageError, SystemExit) as e:
                pytest.fail(f"{page.name}: {line.strip()!r} does not parse: {e}")
            n += 1
    assert n >= 15


@pytest.mark.parametrize("argv", [["--bogus"], ["--stress", "extra"]])
def test_test_all_refuses_an_unknown_argument_before_installing(argv: list[str]) -> None:
    r = subprocess.run(["bash", str(ROOT / "scripts" / "test-all"), *argv],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "usage: scripts/test-all [--stress]\n"


def test_stress_mode_is_documented_with_its_vm_cpus() -> None:
    tiers = (ROOT / "README.md").read_text().split("## Test tiers", 1)[1].split("\n## ", 1)[0]
    assert "`scripts/test-all --stress`" in tiers and "`CGROUP2_VM_CPUS`" in tiers
    assert '--cpus "${CGROUP2_VM_CPUS:-2}"' in (ROOT / "scripts" / "vm-test").read_text()
