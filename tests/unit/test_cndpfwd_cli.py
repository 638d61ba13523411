"""cndpfwd's command line: any argv gives a clear error or usage, never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.apps import cndpfwd

TOKENS = st.sampled_from(
    [
        "-a",
        "-b",
        "-c",
        "-C",
        "-M",
        "-L",
        "--no-color",
        "-d",
        "-D",
        "--duration",
        "xskdev",
        "pktdev",
        "drop",
        "lb",
        "fwd",
        "tx-only",
        "0",
        "999",
        "-1",
        "abc",
        "02:00:00:00:00:01",
        "/nonexistent",
        "debug",
        "--runtime-dir",
        "-h",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(TOKENS, st.text(max_size=12)), max_size=8))
def test_random_argv_never_crashes(capsys, argv):
    if "-C" in argv:  # would wait for a configuration on a socket
        argv = [a for a in argv if a != "-C"]
    try:
        rc = cndpfwd.main(argv)
    except SystemExit as e:  # argparse: usage error (2) or -h (0)
        assert e.code in (0, 2)
    else:
        assert rc != 0  # no argv here names a usable configuration
    err = capsys.readouterr().err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "level,ok", [("1", True), ("8", True), ("debug", True), ("9", False), ("loud", False)]
)
def test_log_levels(level, ok):
    if ok:
        cndpfwd._log_level(level)
    else:
        with pytest.raises(cndpfwd.UsageError):
            cndpfwd._log_level(level)
