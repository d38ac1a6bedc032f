"""Shared fixtures. Real CIFAR-10 comes from $CIFAR10_DIR, or ../shared/data/cifar10 beside
the repository (as in CI); tests that need it are skipped, saying so, when neither exists."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "cifar10"


@pytest.fixture(scope="session")
def cifar10_dir() -> str:
    path = os.environ.get("CIFAR10_DIR") or (str(SHARED_DATA) if SHARED_DATA.is_dir() else "")
    if not path:
        pytest.skip("no CIFAR-10: set CIFAR10_DIR")
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """Decoded-data cache: $SNN_CACHE_DIR (the Makefile sets it to results/cache) or a temp dir."""
    return os.environ.get("SNN_CACHE_DIR") or str(tmp_path_factory.mktemp("cache"))
