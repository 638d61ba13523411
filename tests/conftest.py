"""Shared pytest configuration for pycndp.

Sections (add new fixtures in a section of their own, below the existing ones):

1. privilege policy: tests under tests/e2e/ (or using a test-host fixture) are marked ``e2e``
   and FAIL, not skip, when not run as root: CI runs as root, and a skipped e2e test would
   hide a broken setup as a green run.
2. test hosts: ``run_prefix`` (session), ``veth_pair`` (one default pair per test) and
   ``make_pair`` (a factory for pairs with other options; all closed after the test).
3. leak check: at the end of the session anything still carrying this run's prefix
   (namespaces, links, XDP programs, pins) is reported, removed, and the run FAILS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cndp.testing import netns as testnet

pytest_plugins = ("pytester",)  # for tests of the hooks below

E2E_DIR = Path(__file__).resolve().parent / "e2e"

# Fixtures that build namespaces: a test using one of them is an e2e test wherever it lives.
HOST_FIXTURES = frozenset({"veth_pair", "make_pair"})


# --------------------------------------------------------------------------------------------
# 1. privilege policy


def pytest_configure(config: pytest.Config) -> None:
    # also registered in pyproject.toml; repeated here so the conftest works on its own
    config.addinivalue_line("markers", "e2e: needs root, network namespaces and AF_XDP")


def _is_e2e_path(path: Path) -> bool:
    return path == E2E_DIR or E2E_DIR in path.parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_e2e_path(Path(str(item.path)).resolve()) or HOST_FIXTURES & set(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("e2e") is not None and os.geteuid() != 0:
        pytest.fail(
            "e2e test needs root (network namespaces, veth pairs, XDP, AF_XDP): run the suite "
            "as root, e.g. `sudo .venv/bin/pytest`. e2e tests fail instead of skipping so that "
            "missing privileges can never pass as a green run.",
            pytrace=False,
        )


# --------------------------------------------------------------------------------------------
# 2. test hosts


@pytest.fixture(scope="session")
def run_prefix() -> str:
    """This run's prefix ("cn" + 4 hex digits); every test object's name starts with it."""
    return testnet.run_prefix()


@pytest.fixture
def veth_pair(run_prefix: str) -> Iterator[testnet.VethPair]:
    """Two namespaces joined by a veth with the default options (1 queue, MTU 1500,
    198.18.0.1/2 and fd00:198:18::1/2, MACs 02:00:c6:12:00:01/02). Torn down after the test,
    whatever its outcome."""
    pair = testnet.make_veth_pair()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def make_pair(run_prefix: str) -> Iterator[Callable[..., testnet.VethPair]]:
    """Factory: ``make_pair(rxqueues=4, gro=True, ...)`` takes make_veth_pair's options; every
    pair made is closed after the test."""
    pairs: list[testnet.VethPair] = []

    def factory(**kw) -> testnet.VethPair:
        pair = testnet.make_veth_pair(**kw)
        pairs.append(pair)
        return pair

    yield factory
    errors = []
    for pair in reversed(pairs):
        try:
            pair.close()
        except Exception as e:
            errors.append(e)
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------------------------
# 3. leak check


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    prefix = testnet.run_prefix()
    leaked = testnet.leftovers(prefix)
    if not leaked:
        return
    problems = testnet.cleanup_prefix(prefix) if os.geteuid() == 0 else ["not root"]
    remaining = testnet.leftovers(prefix)
    lines = [f"tests left behind objects with prefix {prefix!r}:"]
    lines += [f"  {x}" for x in leaked]
    if remaining:
        lines.append("cleanup could NOT remove:")
        lines += [f"  {x}" for x in remaining]
        lines += [f"  ({p})" for p in problems]
    else:
        lines.append("(cleanup removed them; the test or fixture that leaked them is buggy)")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "LEAK CHECK FAILED", red=True, bold=True)
        for line in lines:
            reporter.write_line(line)
    else:  # pragma: no cover - only without the terminal plugin (-p no:terminal)
        print("\n".join(lines))
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --------------------------------------------------------------------------------------------
# 4. hugepages

NR_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
FREE_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"


RESV_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages"


def _free_2m() -> int:
    """Free 2 MiB hugepages not already promised to a mapping (free - reserved)."""
    try:
        with open(FREE_2M) as f:
            free = int(f.read())
        with open(RESV_2M) as f:
            resv = int(f.read())
    except OSError:
        return 0
    return free - resv


@pytest.fixture
def hugepages_2m() -> Iterator[None]:
    """At least 8 free 2 MiB hugepages for the test: reserved here as root if the machine has
    none, and given back afterwards (so hugepage code paths run in CI instead of skipping)."""
    if _free_2m() >= 8:
        yield
        return
    if os.geteuid() != 0:
        pytest.fail("reserving hugepages needs root: run the suite as root (CI does)")
    with open(NR_2M) as f:
        before = int(f.read())
    try:
        with open(NR_2M, "w") as f:
            f.write(str(before + 8 - _free_2m()))
        if _free_2m() < 8:
            pytest.fail("the kernel could not reserve 8 hugepages of 2 MiB")
        yield
    finally:
        with open(NR_2M, "w") as f:
            f.write(str(before))
