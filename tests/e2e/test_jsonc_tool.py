"""cndp-jsonc end to end: real files, stdin, exit codes and stderr; and a configuration sent
over the config socket by real clients in other processes (our sender, a cndp-config.py-style
sender, and socat)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2].parent / "shared/reference/cndp-configs"
FWD = CORPUS / "examples_cndpfwd_fwd.jsonc"
TIMEOUT = 60


def tool() -> list[str]:
    """The installed console script when the venv has it, else the module."""
    script = Path(sys.executable).with_name("cndp-jsonc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cndp.apps.jsonc_tool"]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*tool(), *args], input=stdin, capture_output=True, timeout=TIMEOUT, check=False
    )


def no_traceback(p: subprocess.CompletedProcess) -> None:
    assert b"Traceback" not in p.stderr, p.stderr.decode()
    assert b"Traceback" not in p.stdout


def test_corpus_present():
    assert FWD.is_file(), f"{FWD} is missing: shared/ must sit beside the checkout"


def check_fwd(out: dict) -> None:
    u = out["umems"]["umem0"]
    assert (u["bufcnt"], u["bufsz"], u["bytes"], u["mtype"]) == (32768, 2048, 32768 * 2048, "2MB")
    assert (u["rxdesc"], u["txdesc"]) == (2048, 2048)
    assert [(r["bufcnt"], r["first"], r["offset"]) for r in u["regions"]] == [
        (16384, 0, 0),
        (16384, 16384, 16384 * 2048),
    ]
    a, b = out["lports"]["eth0:0"], out["lports"]["eth1:0"]
    assert (a["lpid"], a["netdev"], a["qid"], a["region"], a["pmd"]) == (
        0,
        "eth0",
        11,
        0,
        "net_af_xdp",
    )
    assert (b["lpid"], b["netdev"], b["qid"], b["region"], b["flags"]) == (1, "eth1", 12, 1, 0)
    assert out["lcore-groups"] == {
        "initial": [10],
        "group0": [13],
        "group1": [14],
        "default": [15, 16],
    }
    t = out["threads"]["fwd:0"]
    assert (t["type"], t["group"], t["cpus"], t["lports"]) == ("fwd", "group0", [13], ["eth0:0"])
    assert (t["idle_timeout"], t["intr_timeout"]) == (10, 2000)
    assert out["threads"]["main"]["type"] == "main"
    o = out["options"]
    assert (o["pkt_api"], o["mode"], o["cli"]) == ("xskdev", "drop", True)


def test_file():
    p = run(str(FWD))
    no_traceback(p)
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    check_fwd(out)
    assert out["source"] == str(FWD)
    # host warnings (if this host lacks CPUs/netdevs/hugepages) are on stderr, prefixed
    for line in p.stderr.decode().splitlines():
        assert line.startswith("cndp-jsonc: warning: "), line


def test_stdin():
    p = run("-", stdin=FWD.read_bytes())
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    check_fwd(out)
    assert out["source"] == "<stdin>"


def test_compact_and_no_host_checks():
    p = run("--compact", "--no-host-checks", str(FWD))
    assert p.returncode == 0 and p.stderr == b""
    assert p.stdout.count(b"\n") == 1
    assert json.loads(p.stdout)["warnings"] == []


def test_lport_groups_expanded():
    p = run("--no-host-checks", str(CORPUS / "test_testcne_files_json_example.jsonc"))
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    assert len(out["lports"]) == 18
    assert out["lports"]["eth8:8"]["lpid"] == 17
    assert out["lport-groups"]["rss0"]["queues"] == [1, 2, 4, 5, 8]
    assert out["umems"]["lport-group"]["auto"] is True


def test_raw_prints_the_last_document():
    p = run("--raw", str(CORPUS / "test_testcne_files_json_test-strings.jsonc"))
    assert p.returncode == 0
    assert json.loads(p.stdout) == {"user1-data": {"a key": "a value"}}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("examples_dlb_test_dlb_test.jsonc", "lport 'eth0:0' not found"),
        ("examples_l3fwd-graph_l3fwd-graph.jsonc", "lport 'eth2:0' not found"),
    ],
)
def test_broken_upstream_files(name, reason):
    p = run(str(CORPUS / name))
    no_traceback(p)
    assert p.returncode == 1
    assert p.stdout == b""
    err = p.stderr.decode()
    assert reason in err
    assert err.startswith(f"cndp-jsonc: {CORPUS / name}:")
    assert "\n\n" not in err.strip()  # one paragraph


def test_syntax_error(tmp_path):
    f = tmp_path / "bad.jsonc"
    f.write_text('{\n  "application": {"name": "x",},\n  "lports": {\n    "eth0:0": {"qid": 1 }\n')
    p = run(str(f))
    no_traceback(p)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode().strip() == (
        f"cndp-jsonc: {f}:5:1: unterminated object: expected ',' or '}}', got end of input"
    )


def test_value_error_names_line_and_path(tmp_path):
    f = tmp_path / "fwd.jsonc"
    f.write_text(FWD.read_text().replace('"qid": 11', '"qid": "x"'))
    p = run(str(f))
    assert p.returncode == 1
    assert p.stderr.decode().strip() == (
        f'cndp-jsonc: {f}:90: lports."eth0:0".qid: expected an integer, got "x"'
    )


def test_several_problems_listed(tmp_path):
    f = tmp_path / "two.jsonc"
    f.write_text('{"application": {},\n "umems": {"u": {"bufcnt": "a",\n "bufsz": "b"}}}')
    p = run(str(f))
    err = p.stderr.decode().splitlines()
    assert p.returncode == 1
    assert err[0].endswith("(and 1 more problem)")
    assert err[1] == f'  also: {f}:3: umems.u.bufsz: expected an integer, got "b"'


def test_strict_host(tmp_path):
    f = tmp_path / "big.jsonc"
    f.write_text(
        '{"application": {}, "lcore-groups": {"default": [1023]}, "threads": {"main": {}}}'
    )
    p = run(str(f))
    assert p.returncode == 0
    assert "CPU 1023 is not available" in p.stderr.decode()
    p = run("--strict-host", str(f))
    no_traceback(p)
    assert p.returncode == 1 and p.stdout == b""
    assert "the host lacks what the configuration uses" in p.stderr.decode()
    assert "CPU 1023 is not available" in p.stderr.decode()


def test_missing_file_and_usage():
    p = run("/nonexistent/x.jsonc")
    no_traceback(p)
    assert p.returncode == 1
    assert "no such file" in p.stderr.decode()
    for args in ([], ["-C", str(FWD)], ["--timeout", "1", str(FWD)], ["--bogus"]):
        p = run(*args)
        no_traceback(p)
        assert p.returncode == 2, args


def test_directory_and_binary_garbage(tmp_path):
    p = run(str(tmp_path))
    assert p.returncode == 1 and "is a directory" in p.stderr.decode()
    p = run("-", stdin=b"\xff\xfe\x00garbage")
    no_traceback(p)
    assert p.returncode == 1 and "invalid UTF-8" in p.stderr.decode()


def test_broken_stdout_pipe():
    a = subprocess.Popen(
        [*tool(), "--no-host-checks", str(FWD)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert a.stdout is not None
    a.stdout.read(10)
    a.stdout.close()
    _, err = a.communicate(timeout=TIMEOUT)
    assert b"Traceback" not in err
    assert a.returncode == 0


# --------------------------------------------------------------------------------------------
# config over the socket (-C), with real clients in other processes


def start_waiting(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    rdir = tmp_path / "run" / "cndp"
    proc = subprocess.Popen(
        [*tool(), "-C", "--runtime-dir", str(rdir), "--timeout", "30", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    sock = rdir / f"config.{proc.pid}"
    deadline = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _out, err = proc.communicate()
            pytest.fail(f"cndp-jsonc -C never listened on {sock}: {err.decode()}")
        time.sleep(0.02)
    assert oct(rdir.stat().st_mode & 0o777) == oct(0o755)
    assert oct(sock.stat().st_mode & 0o777) == oct(0o666)
    return proc, str(sock)


def finish(proc: subprocess.Popen) -> tuple[int, bytes, bytes]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_socket_with_our_sender(tmp_path):
    proc, sock = start_waiting(tmp_path)
    sender = subprocess.run(
        [sys.executable, "-m", "cndp.app.config_sock", str(FWD), "--socket", sock],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert sender.returncode == 0, sender.stderr.decode()
    assert f"sent {FWD.stat().st_size} bytes to {sock}" in sender.stderr.decode()
    rc, out, err = finish(proc)
    assert rc == 0, err.decode()
    assert f"waiting for a configuration on {sock}" in err.decode()
    data = json.loads(out)
    check_fwd(data)
    assert data["source"] == "<socket>"
    assert not os.path.exists(sock)


CNDP_CONFIG_PY = """
import socket, sys
path, file = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sock.connect(path)
with open(file, 'rb') as f:
    while True:
        chunk = f.read(1024)
        if not chunk:
            break
        sock.send(chunk)
sock.close()
"""


def test_socket_with_a_cndp_config_py_style_sender(tmp_path):
    proc, sock = start_waiting(tmp_path)
    subprocess.run(
        [sys.executable, "-c", CNDP_CONFIG_PY, sock, str(FWD)], check=True, timeout=TIMEOUT
    )
    rc, out, err = finish(proc)
    assert rc == 0, err.decode()
    check_fwd(json.loads(out))


def test_socket_with_socat(tmp_path):
    socat = shutil.which("socat")
    assert socat, "socat is needed (the Makefile installs it)"
    proc, sock = start_waiting(tmp_path)
    subprocess.run(
        [socat, "-u", f"OPEN:{FWD},rdonly", f"UNIX-CONNECT:{sock},type=5"],
        check=True,
        timeout=TIMEOUT,
    )
    rc, out, err = finish(proc)
    assert rc == 0, err.decode()
    check_fwd(json.loads(out))


def test_socket_invalid_config(tmp_path):
    proc, sock = start_waiting(tmp_path)
    bad = CORPUS / "examples_dlb_test_dlb_test.jsonc"
    subprocess.run(
        [sys.executable, "-m", "cndp.app.config_sock", str(bad), "--socket", sock],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    rc, out, err = finish(proc)
    assert rc == 1 and out == b""
    assert "cndp-jsonc: <socket>:146: " in err.decode()
    assert "lport 'eth0:0' not found" in err.decode()
    assert b"Traceback" not in err


def test_socket_timeout(tmp_path):
    rdir = tmp_path / "r"
    p = run("-C", "--runtime-dir", str(rdir), "--timeout", "0.3")
    no_traceback(p)
    assert p.returncode == 1
    assert "no configuration arrived" in p.stderr.decode()
    assert list(rdir.iterdir()) == []  # the socket file is removed


def test_sender_without_a_listener(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "cndp.app.config_sock",
            str(FWD),
            "--socket",
            str(tmp_path / "nobody"),
        ],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert p.returncode == 1
    assert "error: sending the configuration" in p.stderr.decode()
    assert b"Traceback" not in p.stderr
