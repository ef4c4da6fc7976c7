"""The optional mypyc build's module lists and tree, and the CPU-per-request loop that
compares it with the pure tree (run here on the pure tree only: no compiler needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.mypyc_build import EXCLUDED, MODULES, NOT_COMPILED_TESTS, PACKAGES, ROOT, copy_tree


def test_every_listed_module_is_a_file_of_ours_listed_once() -> None:
    assert len(set(MODULES)) == len(MODULES)
    for module in (*MODULES, *EXCLUDED):
        assert (ROOT / module).is_file(), module
        assert module.split("/")[0] in PACKAGES, module
    for test in NOT_COMPILED_TESTS:
        assert (ROOT / test).is_file(), test


def test_an_excluded_module_is_not_compiled() -> None:
    assert not set(MODULES) & set(EXCLUDED)


def test_the_tree_is_a_copy_with_the_module_list(tmp_path: Path) -> None:
    tree = tmp_path / "mypyc"
    copy_tree(MODULES[:2], tree)
    assert (tree / "mypyc_modules.txt").read_text().split() == list(MODULES[:2])
    for package in PACKAGES:
        assert (tree / package / "__init__.py").is_file()
        assert not list((tree / package).rglob("__pycache__"))
    assert (tree / MODULES[0]).read_text() == (ROOT / MODULES[0]).read_text()
    assert "mypycify" in (tree / "setup.py").read_text()


def test_the_loop_measures_the_pure_tree() -> None:
    out = subprocess.run(
        [
            *(sys.executable, "-m", "bench.engine_loop", "measure", "--kind", "typical"),
            *("-n", "300", "--warmup", "50", "-c", "2"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["compiled"] is False
    assert result["requests"] >= 300
    assert 0 < result["cpu_us_per_request"] < 10_000
