"""bench/ab.py's variant syntax: MODE[:key=value,...], with clear errors."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "bench")


@pytest.fixture(scope="module")
def ab():
    before = set(sys.modules)
    sys.path.insert(0, os.path.abspath(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_ab", os.path.join(BENCH, "ab.py"))
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["bench_ab"] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
        yield mod
    finally:
        # bench/ imports its siblings by bare names (run, harness, testpmd): forget them
        for name in {"bench_ab", "run", "harness", "testpmd"} - before:
            sys.modules.pop(name, None)
        sys.path.remove(os.path.abspath(BENCH))


def test_variants_parse(ab):
    v = ab.parse_variant("macswap:tx_qid=1,burst=256,need_wakeup=false")
    assert (v.mode, v.opts) == ("macswap", {"tx_qid": 1, "burst": 256, "need_wakeup": False})
    assert ab.parse_variant("rx-drop").opts == {}
    assert ab.parse_variant("testpmd-macswap:burst=0x40").opts == {"burst": 64}


@pytest.mark.parametrize(
    "text,msg",
    [
        ("mac", "mode must be one of"),
        ("macswap:foo=1", "unknown key 'foo'"),
        ("macswap:tx_qid", "is not key=value"),
        ("macswap:burst=big", "is not an integer or true/false"),
        ("testpmd-macswap:tx_qid=1", "unknown key 'tx_qid' for testpmd-macswap"),
        ("rx-drop:uds_path=1", "unknown key 'uds_path'"),
    ],
)
def test_bad_variants_say_what_is_wrong(ab, text, msg):
    with pytest.raises(argparse.ArgumentTypeError, match=msg):
        ab.parse_variant(text)
