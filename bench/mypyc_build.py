"""An optional compiled build of the request path: the packages copied into ``build/mypyc/``
and the hot modules compiled there with mypyc, in place, so that tree imports them as C
extensions while the repository's own tree (which the tests and the cost guard import) stays
pure Python.

    python -m bench.mypyc_build            # build/mypyc/{gateway,discovery,resilience}
    python -m bench.mypyc_build --wheel    # and a wheel of that tree in build/mypyc-dist/
    PYTHONPATH=build/mypyc python -P -m gateway   # -P: the current directory goes first otherwise

Needs a C compiler and the interpreter's headers (``Python.h``); mypyc ships with mypy.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "mypyc"
DIST = ROOT / "build" / "mypyc-dist"
PACKAGES = ("gateway", "discovery", "resilience")

# What one proxied request runs through: the engine, the exchange and its headers, the stack
# and its forwarder, routing, the typical filters and predicates, the resilience call path and
# the observer. Each compiles and passes its tests compiled (bar the seam in NOT_COMPILED_TESTS).
MODULES = (
    # the engine
    "gateway/engine/request_head.py",
    "gateway/engine/framing.py",
    "gateway/engine/body.py",
    "gateway/engine/cycle.py",
    "gateway/engine/response_writer.py",
    "gateway/engine/pool.py",
    "gateway/engine/upstream.py",
    "gateway/engine/server.py",
    "gateway/engine/listener.py",
    "gateway/engine/replay.py",
    "gateway/engine/upgrade.py",
    "gateway/engine/sink.py",
    # the exchange, dispatch and forwarding
    "gateway/headers.py",
    "gateway/exchange.py",
    "gateway/forwarded.py",
    "gateway/forwarder.py",
    "gateway/dispatch.py",
    "gateway/stack.py",
    "gateway/request_id.py",
    "gateway/hash_key.py",
    "gateway/inflight.py",
    "gateway/baggage.py",
    # routing, and the filters and predicates of the typical route
    "gateway/routing/table.py",
    "gateway/routing/route.py",
    "gateway/routing/metadata.py",
    "gateway/patterns/path_pattern.py",
    "gateway/patterns/host_pattern.py",
    "gateway/predicates/path.py",
    "gateway/predicates/host.py",
    "gateway/predicates/method.py",
    "gateway/predicates/header.py",
    "gateway/filters/path.py",
    "gateway/filters/request_headers.py",
    "gateway/filters/response_headers.py",
    "gateway/filters/header_args.py",
    # KeptBody's subclass: an interpreted class can't subclass a compiled one.
    "gateway/filters/buffered_body.py",
    # observability
    "gateway/observability/observer.py",
    "gateway/observability/metrics.py",
    "gateway/observability/tracing.py",
    "gateway/observability/otlp_exporter.py",
    # the resilience call path, balancers and discovery's instances
    "resilience/picker.py",
    "resilience/runtime.py",
    "resilience/endpoint.py",
    "resilience/breaker.py",
    "resilience/budget.py",
    "resilience/bulkhead.py",
    "resilience/outlier.py",
    "resilience/deadline.py",
    "resilience/hedge.py",
    "resilience/lanes.py",
    "resilience/clock.py",
    "resilience/balancer/base.py",
    "resilience/balancer/factory.py",
    "resilience/balancer/round_robin.py",
    "resilience/balancer/least_request.py",
    "resilience/balancer/random_choice.py",
    "resilience/balancer/weighted.py",
    "resilience/balancer/consistent_hash.py",
    "resilience/balancer/zone.py",
    "discovery/instance.py",
    "discovery/registry.py",
    "discovery/lane.py",
    "discovery/static.py",
)

# Module -> why it stays interpreted (mypy 2.4's mypyc).
EXCLUDED = {
    "gateway/observability/access_log.py": (
        "compiled, format_record checks its record's declared types on entry, so a bad value "
        "raises before the fallback that still writes one valid line for it"
    ),
    "gateway/extension.py": (
        "the plugin API's base classes: plugins (interpreted) subclass them, which a compiled "
        "class refuses at instantiation"
    ),
    "gateway/errors.py": (
        "a compiled exception class loses the class-level defaults (status, error) its "
        "subclasses override: BadRequest() has no status"
    ),
    "gateway/filters/request_uri.py": (
        "ChangeRequestUri narrows GatewayFilter.order (int | None) to int, which a native "
        "class can't"
    ),
    "resilience/retry.py": (
        "a frozen slots dataclass that is Generic fails at import (type __dict__ not writable)"
    ),
}

# Tests that can't run against the compiled tree: they subclass a compiled class.
NOT_COMPILED_TESTS = {
    "tests/unit/test_stack.py": "RecordingForwarder subclasses gateway.forwarder.Forwarder",
    "tests/unit/test_stack_request_uri.py": "its TargetRecorder is a RecordingForwarder",
}

MYPY_INI = """\
[mypy]
strict = True
python_version = 3.11

[mypy-httptools.*,uvloop.*,matplotlib.*,consul.*]
ignore_missing_imports = True
"""

# The tree's setup.py: its metadata is the copied pyproject.toml's, its extensions are the
# modules listed in mypyc_modules.txt (the same list for the in-place build and the wheel).
SETUP = """\
from pathlib import Path

from mypyc.build import mypycify
from setuptools import setup

modules = Path("mypyc_modules.txt").read_text().split()
setup(ext_modules=mypycify(["--config-file", "mypy.ini", *modules], opt_level="3"))
"""


def check_toolchain() -> None:
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        sys.exit(
            f"no {header}: install the interpreter's headers "
            "(Debian: apt-get install -y python3.11-dev)"
        )
    if shutil.which(os.environ.get("CC", "cc")) is None:
        sys.exit("no C compiler: apt-get install -y gcc")


def copy_tree(modules: tuple[str, ...], tree: Path = TREE) -> None:
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    (tree / "mypy.ini").write_text(MYPY_INI)
    (tree / "setup.py").write_text(SETUP)
    (tree / "mypyc_modules.txt").write_text("\n".join(modules) + "\n")


def compile_in_place() -> None:
    started = time.monotonic()
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=TREE, check=True)
    print(f"compiled in {time.monotonic() - started:.0f} s: PYTHONPATH={TREE}")


def build_wheel() -> None:
    """A wheel of the compiled packages (sources and extensions), as black's and mypy's are
    built: setuptools runs mypyc itself (again: objects whose C is unchanged are reused).
    Without build isolation: mypyc type-checks against the venv's installed dependencies."""
    if not any(
        importlib.util.find_spec(name) for name in ("setuptools.command.bdist_wheel", "wheel")
    ):
        sys.exit("setuptools < 70.1 needs the wheel package for a wheel: pip install wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(DIST), "."),
        ],
        cwd=TREE,
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.mypyc_build")
    parser.add_argument("--wheel", action="store_true", help=f"also pack a wheel into {DIST}")
    parser.add_argument("modules", nargs="*", help="override the module list (repo-relative)")
    args = parser.parse_args()
    check_toolchain()
    copy_tree(tuple(args.modules) or MODULES)
    compile_in_place()
    if args.wheel:
        build_wheel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
