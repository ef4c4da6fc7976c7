"""The image tests: a real Docker engine, the image `make test-docker` built, containers on the
host network against upstreams on 127.0.0.1.

Only ``make test-docker`` runs them (it sets ``MESHGATE_DOCKER_TESTS=1`` after preparing the
engine and the image): without it this directory is not even collected, so the normal
``pytest -q`` neither runs nor lists them, whatever ``-m`` or ``-k`` it is given.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker_env import docker

ENABLED = os.environ.get("MESHGATE_DOCKER_TESTS") == "1"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return True if not ENABLED else None


@pytest.fixture(scope="session")
def image() -> str:
    """The image under test (``MESHGATE_IMAGE``), which must exist: building it is
    ``make test-docker``'s work, far beyond a test's timeout."""
    name = os.environ.get("MESHGATE_IMAGE", "meshgate:test")
    found = subprocess.run([docker(), "image", "inspect", name], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail(f"no image {name}: `make test-docker` builds it ({found.stderr.strip()})")
    return name


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Names of the containers a test started: removed (forcibly) after it."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run([docker(), "rm", "-f", name], capture_output=True)
