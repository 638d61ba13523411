"""txgen's command language: parsing, errors, save/load, the jsonc section; fuzzed."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.apps.txgen import main as txmain
from cndp.apps.txgen.app import decode_section, section_commands
from cndp.apps.txgen.cli import Actions, Cli, save_script
from cndp.apps.txgen.state import PortDesc, TxgenState, parse_portlist
from cndp.apps.txgen.stream import Range, TxgenError
from cndp.net.pcap import PcapWriter

CNDP_XDP_CFG = """\
# TX-Gen 20.11.0
######################### Port  0 ##################################
#
# Port:  0, Burst: 64, Rate:100%, Flags:00000100, TX Count:Forever
set 0 count 0
set 0 size 64
set 0 rate 100
set 0 burst 64
set 0 sport 1234
set 0 dport 5678
set 0 type ipv4
set 0 proto udp
set 0 dst ip 192.168.1.1
set 0 src ip 192.168.0.1/32
set 0 dst mac 3c:fd:fe:e4:34:c1
set 0 src mac 3c:fd:fe:e4:34:c0
set 0 pattern abc
"""


def make_state(n=4, any_address=False) -> TxgenState:
    ports = [
        PortDesc(i, f"eth{i}:0", f"eth{i}", mac=f"02:00:c6:12:00:{i + 1:02x}", mtu=1500)
        for i in range(n)
    ]
    return TxgenState(ports, any_address=any_address)


class Recorder(Actions):
    def __init__(self):
        super().__init__()
        self.calls = []

    def start(self, lpids):
        self.calls.append(("start", lpids))
        return super().start(lpids)

    def stop(self, lpids):
        self.calls.append(("stop", lpids))
        return super().stop(lpids)

    def clear(self, lpids):
        self.calls.append(("clear", lpids))
        return ""

    def capture(self, lpids, path):
        self.calls.append(("capture", lpids, path))
        return ""


# ------------------------------------------------------------------------------------- portlists


@pytest.mark.parametrize(
    ("text", "want"),
    [("0", [0]), ("all", [0, 1, 2, 3]), ("0,2", [0, 2]), ("1-3", [1, 2, 3]), ("3,0-1", [0, 1, 3])],
)
def test_portlists(text, want):
    assert parse_portlist(text, range(4)) == want


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("5", "port 5 does not exist"),
        ("2-1", "runs backwards"),
        ("x", "is not a port list"),
        ("", "empty port list"),
        ("1,,2", "is not a port list"),
        ("0-99999999", "too long"),
    ],
)
def test_bad_portlists(text, msg):
    with pytest.raises(TxgenError, match=msg):
        parse_portlist(text, range(4))


# ------------------------------------------------------------------------------------- commands


def test_pktgen_commands_change_settings():
    st_ = make_state()
    rec = Recorder()
    cli = Cli(st_, rec)
    for line in [
        "set 0,1 size 128",
        "set 0 rate 10%",
        "set 1 pps 1.5k",
        "set all count 1000",
        "set 0 proto tcp",
        "set 0 src ip 198.18.5.1/16",
        "set 0 dst ip 198.18.9.9",
        "set 0 dst mac 0200:c612:0099",
        "set 0 vlan 12",
        "set 0 prio 3",
        "set 0 ttl 7",
        "set 0 tos 32",
        "set 0 pattern user",
        'set 0 user pattern "hi there"',
        "range 0 dst ip start 198.18.9.9",
        "range 0 dst ip min 198.18.9.1",
        "range 0 dst ip max 198.18.9.100",
        "range 0 dst ip inc 0.0.0.2",
        "range 0 src port 1000 1000 1100 -1",
        "range 0 size 64 64 256 16",
        "enable 0 range",
        "str",
        "stp",
        "start 2-3",
        "clr",
        "enable 1 capture /tmp/x.pcap",
        "disable 1 capture",
    ]:
        r = cli.execute(line)
        assert r.ok, (line, r.text)
    s0, s1 = st_.get(0), st_.get(1)
    assert (s0.size, s1.size, s0.rate, s1.pps, s0.count) == (128, 128, 10.0, 1500.0, 1000)
    assert (s0.proto, s0.src_ip, s0.src_prefix, s0.dst_ip) == (
        "tcp",
        "198.18.5.1",
        16,
        "198.18.9.9",
    )
    assert s0.dst_mac == "02:00:c6:12:00:99"
    assert (s0.vlan, s0.vlan_prio, s0.ttl, s0.tos) == (12, 3, 7, 32)
    assert (s0.pattern, s0.user_pattern) == ("user", "hi there")
    ip = lambda a: int.from_bytes(bytes(map(int, a.split("."))), "big")  # noqa: E731
    assert s0.ranges["dst_ip"] == Range(ip("198.18.9.9"), ip("198.18.9.1"), ip("198.18.9.100"), 2)
    assert s0.ranges["sport"] == Range(1000, 1000, 1100, -1)
    assert s0.ranges["length"] == Range(60, 60, 252, 16)
    assert s0.range_mode
    assert rec.calls == [
        ("start", [0, 1, 2, 3]),
        ("stop", [0, 1, 2, 3]),
        ("start", [2, 3]),
        ("clear", [0, 1, 2, 3]),
        ("capture", [1], "/tmp/x.pcap"),
        ("capture", [1], None),
    ]


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        ("frobnicate", "unknown command 'frobnicate'"),
        ("set 0 size 63", "size 63 is out of range"),
        ("set 0 size 9999999", "out of range"),
        ("set 0 rate 101", "rate 101 is out of range"),
        ("set 0 burst 0", "burst 0 is out of range"),
        ("set 0 sport 65536", "sport 65536 is out of range"),
        ("set 0 count -1", "count -1 is out of range"),
        ("set 0 count lots", "'lots' is not a number"),
        ("set 9 size 64", "port 9 does not exist"),
        ("set 0 dst ip 10.1.1.1", "outside the benchmarking ranges"),
        ("set 0 dst ip fd00:198:18::1", "not an IPv4 address and the packet type is ipv4"),
        ("set 0 dst mac zz", "is not a MAC address"),
        ("set 0 proto sctp", "expected udp, tcp or icmp"),
        ("set 0 user pattern 12345678901234567", "at most 16 characters"),
        ("set 0 pcap /nonexistent/file.pcap", "cannot read pcap file"),
        ("enable 0 pcap", "no pcap file set"),
        ("set 0 size 1600", "exceeds the port MTU 1500"),
        ("set 0 engine warp", "expected one of port, live"),
        ("range 0 dst ip 10.0.0.1 198.18.1.9 198.18.1.1 1", "range dst ip"),
        ("range 0 colour start 1", "unknown field"),
        ("enable 0 warp", "unknown feature"),
        ("page 12x", "unknown page"),
        ("set 0", "incomplete set command"),
        ('set 0 user pattern "abc', "balance the quotes"),
        ("load /nonexistent/script", "cannot read script"),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(line, msg):
    st_ = make_state()
    before = {lp: st_.get(lp).to_dict() for lp in st_.lpids}
    r = Cli(st_).execute(line)
    assert not r.ok and msg in r.text, r.text
    assert r.text.startswith("error: ")
    assert {lp: st_.get(lp).to_dict() for lp in st_.lpids} == before


def test_ranges_are_checked_when_range_mode_is_on():
    st_ = make_state()
    cli = Cli(st_)
    # any order while range mode is off ...
    assert cli.execute("range 0 dst ip start 198.18.1.5").ok
    r = cli.execute("enable 0 range")  # ... but enabling checks start within min..max
    assert not r.ok and "start 198.18.1.5 is outside min..max" in r.text
    assert not st_.get(0).range_mode
    assert cli.execute("range 0 dst ip max 198.18.1.9").ok
    assert cli.execute("range 0 dst ip min 198.18.1.1").ok
    assert cli.execute("enable 0 range").ok
    r = cli.execute("range 0 dst ip min 198.18.1.7")
    assert not r.ok and "start 198.18.1.5 is outside min..max (198.18.1.7..198.18.1.9)" in r.text
    r = cli.execute("range 0 dst ip 198.18.1.5 198.18.1.9 198.18.1.1 1")
    assert not r.ok and "min 198.18.1.9 is above max 198.18.1.1" in r.text


def test_unreadable_pcap_contents(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    r = Cli(make_state()).execute(f"set 0 pcap {bad}")
    assert not r.ok and "looks like pcapng" in r.text and "editcap" in r.text
    good = tmp_path / "good.pcap"
    with PcapWriter(good) as w:
        w.write(bytes(60))
    cli = Cli(make_state())
    assert cli.execute(f"set 0 pcap {good}").ok
    assert cli.execute("enable 0 pcap").ok and cli.state.get(0).pcap_mode


def test_type_switch_keeps_a_valid_stream():
    st_ = make_state()
    cli = Cli(st_)
    cli.execute("range 0 dst ip 198.18.1.1 198.18.1.1 198.18.1.9 1")
    r = cli.execute("set 0 type ipv6")
    assert r.ok and "dst ip set to fd00:198:18:1::1" in r.text and "range dst ip removed" in r.text
    assert st_.get(0).size == 66 and "size raised to 66" in r.text
    assert cli.execute("set 0 dst ip fd00:198:18:7::5").ok
    assert cli.execute("range 0 dst ip fd00:198:18:7::5 fd00:198:18:7::1 fd00:198:18:7::9 1").ok
    r = cli.execute("range 0 dst ip start fd00:198:18:8::5")
    assert not r.ok and "above the last 32 bits" in r.text


def test_cndp_xdp_cfg_script_loads(tmp_path):
    path = tmp_path / "xdp.cfg"
    path.write_text(CNDP_XDP_CFG)
    r = Cli(make_state()).execute(f"load {path}")
    assert not r.ok and f"{path}:13:" in r.text and "benchmarking ranges" in r.text
    st_ = make_state(any_address=True)
    r = Cli(st_).execute(f"load {path}")
    assert r.ok, r.text
    s = st_.get(0)
    assert (s.dst_ip, s.src_ip, s.src_prefix, s.dst_mac) == (
        "192.168.1.1",
        "192.168.0.1",
        32,
        "3c:fd:fe:e4:34:c1",
    )


def test_save_load_round_trip_with_ranges_and_pcap(tmp_path):
    pc = tmp_path / "a b.pcap"
    with PcapWriter(pc) as w:
        w.write(bytes(60))
    st_ = make_state()
    cli = Cli(st_)
    for line in [
        "set 1 type ipv6",
        "set 1 proto icmp",
        "set 1 size 200",
        "set 0 vlan 5",
        "range 0 vlan 5 1 9 2",
        "range 0 dst mac 02:00:00:00:00:01 02:00:00:00:00:01 02:00:00:00:00:ff 1",
        "enable 0 range",
        f"set 2 pcap '{pc}'",
        "enable 2 pcap",
        "set 3 user pattern ' a\"b'",
        "set 3 pattern user",
        "set 3 pps 123.25",
        "set 3 latency off",
        "set 3 rate 33.3333333",
    ]:
        assert cli.execute(line).ok, line
    path = tmp_path / "saved.txt"
    assert cli.execute(f"save {path}").ok
    text = path.read_text()
    assert "set 0 count 0" in text and "######################### Port  0" in text
    st2 = make_state()
    r = Cli(st2).execute(f"load {path}")
    assert r.ok, r.text
    for lp in st_.lpids:
        assert st2.get(lp) == st_.get(lp), lp


# ------------------------------------------------------------------------------------- fuzz

VOCAB = [
    "set",
    "range",
    "start",
    "stop",
    "enable",
    "disable",
    "page",
    "show",
    "clear",
    "reset",
    "0",
    "1",
    "all",
    "0-1",
    "9",
    "size",
    "rate",
    "count",
    "burst",
    "src",
    "dst",
    "ip",
    "mac",
    "port",
    "start",
    "min",
    "max",
    "inc",
    "type",
    "ipv6",
    "ipv4",
    "proto",
    "tcp",
    "udp",
    "icmp",
    "vlan",
    "off",
    "ttl",
    "tos",
    "64",
    "1500",
    "-1",
    "1k",
    "198.18.1.1",
    "fd00:198:18::9",
    "02:00:00:00:00:01",
    "pattern",
    "user",
    "zero",
    "latency",
    "on",
    "stats",
    "capture",
    "pcap",
    "engine",
    "live",
    "pps",
    "100",
    "x",
    "'",
    '"',
    "#",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=8))
def test_fuzz_command_words_never_raise(words):
    st_ = make_state()
    r = Cli(st_).execute(" ".join(words))
    assert isinstance(r.ok, bool) and isinstance(r.text, str)
    if not r.ok:
        assert r.text.startswith("error: ") and "Traceback" not in r.text
    for lp in st_.lpids:  # whatever happened, every port's settings are still valid
        st_.validate(lp, st_.get(lp))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "\0é\u2028", max_size=120))
def test_fuzz_arbitrary_text_never_raises(text):
    r = Cli(make_state()).execute(text)
    assert isinstance(r.ok, bool)
    if not r.ok:
        assert r.text.startswith("error: ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.lists(st.sampled_from(VOCAB), max_size=7).map(" ".join), max_size=25))
def test_fuzz_save_load_round_trips_any_reachable_state(lines, tmp_path_factory):
    st_ = make_state()
    cli = Cli(st_)
    for line in lines:
        cli.execute(line)
    path = tmp_path_factory.mktemp("rt") / "s.txt"
    path.write_text(save_script(st_))
    st2 = make_state()
    r = Cli(st2).run_script_file(str(path))
    assert r.ok, r.text
    for lp in st_.lpids:
        assert st2.get(lp) == st_.get(lp)


# ------------------------------------------------------------------------------------- jsonc


def test_jsonc_section_becomes_commands():
    obj = {
        "size": 128,
        "dst_ip": "198.18.1.9",
        "latency": False,
        "vlan": None,
        "ranges": {"dst_port": {"start": 1, "min": 1, "max": 9, "inc": 1}},
        "user_pattern": "a b",
        "commands": ["set 0 ttl 9"],
    }
    cmds = [c for _, c in section_commands(0, obj)]
    assert cmds == [
        "set 0 size 128",
        "set 0 dst ip 198.18.1.9",
        "set 0 latency off",
        "set 0 vlan off",
        "set 0 user pattern 'a b'",
        "range 0 dst port 1 1 9 1",
        "enable 0 range",
        "set 0 ttl 9",
    ]
    st_ = make_state()
    cli = Cli(st_)
    assert all(cli.execute(c).ok for c in cmds)
    assert st_.get(0).ranges["dport"] == Range(1, 1, 9, 1)


def test_jsonc_section_structure_errors(tmp_path):
    from cndp.app import config as cfgmod

    base = {
        "application": {"name": "t"},
        "umems": {"u": {"bufcnt": 1, "bufsz": 2, "regions": [1]}},
        "lports": {"lo:0": {"pmd": "net_af_packet", "qid": 0, "umem": "u"}},
    }
    for bad, msg in (
        ({"lo:0": {"sise": 1}}, "unknown key 'sise'"),
        ({"lo:0": 5}, "expected an object of settings"),
        ({"lo:0": {"commands": "set"}}, "array of strings"),
    ):
        text = json.dumps({**base, "txgen": bad}, indent=1)
        with pytest.raises(cfgmod.ConfigError, match=msg):
            cfgmod.loads(text, "t.jsonc", decoders={"txgen": decode_section}, host_checks=False)


def test_main_reports_errors_without_traceback(tmp_path, capsys):
    assert txmain.main(["-c", str(tmp_path / "missing.jsonc")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("txgen: ") and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        txmain.main(["-c", "x", "--json"])
    assert e.value.code == 2
    assert "--json reports a timed run" in capsys.readouterr().err
    cfg = tmp_path / "c.jsonc"
    cfg.write_text(
        json.dumps(
            {
                "application": {"name": "t"},
                "umems": {"u": {"bufcnt": 1, "bufsz": 2, "regions": [1]}},
                "lports": {"nosuchdev0:0": {"pmd": "net_af_xdp", "qid": 0, "umem": "u"}},
                "lcore-groups": {"default": [0]},
                "threads": {"rxtx:0": {"lports": ["nosuchdev0:0"]}},
            }
        )
    )
    assert txmain.main(["-c", str(cfg), "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "lport 'nosuchdev0:0'" in err and "does not exist" in err


# ------------------------------------------------------------------------------------- app


def _null_app(tmp_path, section=None, **opts):
    from cndp.app import config as cfgmod
    from cndp.apps.txgen.app import Options, TxgenApp

    cfg = {
        "application": {"name": "t"},
        "umems": {"u": {"bufcnt": 2, "bufsz": 2, "regions": [1, 1]}},
        "lports": {
            "null0:0": {"pmd": "net_null", "qid": 0, "umem": "u", "region": 0},
            "null1:0": {"pmd": "net_null", "qid": 0, "umem": "u", "region": 1},
        },
        "lcore-groups": {"default": [0]},
        "options": {},
        "threads": {"rxtx:0": {"lports": ["null0:0"]}, "rx_only:0": {"lports": ["null1:0"]}},
        "txgen": section or {},
    }
    path = tmp_path / "n.jsonc"
    path.write_text(json.dumps(cfg))
    c = cfgmod.load(path, decoders={"txgen": decode_section}, host_checks=False)
    return TxgenApp(c, Options(**opts))


def test_app_report_computes_loss_latency_and_rates(tmp_path):
    from cndp.apps.txgen.board import PK, SK

    app = _null_app(tmp_path, {"null0:0": {"count": 1000, "pps": 500}})
    assert app.apply_initial() == []
    assert app.descs[1].can_tx is False and app.descs[1].can_rx is True
    b = app.board
    p0 = b.ports[0]
    p0[PK["tx_pkts"]], p0[PK["tx_bytes"]] = 1000, 60000
    p0[PK["tx_first_ns"]], p0[PK["tx_first_k"]], p0[PK["tx_last_ns"]] = 10**9, 1, 3 * 10**9
    b.ports[1][PK["rx_pkts"]] = 950
    row = b.streams[1, 0]
    row[SK["pkts"]], row[SK["lat_n"]], row[SK["lat_sum"]] = 900, 900, 900 * 20_000_000
    row[SK["lat_min"]], row[SK["lat_max"]], row[SK["reorder"]] = 19_000_000, 25_000_000, 3
    b.sumsq[1, 0] = 900 * (20e6**2) + 900 * (1e6**2)
    b.hist[1, 0, 15] = 900
    rep = app.report(2.0)
    p = rep["ports"]["null0:0"]
    assert p["tx"]["pps"] == 499.5  # 999 frames after the first burst over 2 s
    assert p["loss"] == {"sent": 1000, "received": 900, "lost": 100, "ratio": 0.1}
    lat = p["latency_ns"]
    assert (lat["min"], lat["avg"], lat["max"], lat["stddev"]) == (19e6, 20e6, 25e6, 1e6)
    assert lat["histogram"] == {"16.384ms-32.768ms": 900} and p["reordered"] == 3
    assert rep["ports"]["null1:0"]["rx"]["from"] == {"null0:0": 900}
    assert rep["ports"]["null1:0"]["loss"] is None  # it sent nothing
    json.dumps(rep)  # plain JSON
    for page in ("main", "range", "pcap", "latency"):
        text = app.page(page)
        assert "null0:0" in text or page in ("range", "pcap")
    assert "Lost (stream)" in app.page("main") and "100" in app.page("main")
    assert "20,000.0" in app.page("latency")


def test_app_refuses_unknown_thread_types_and_start_of_rx_only(tmp_path):
    from cndp.app import config as cfgmod
    from cndp.apps.txgen.app import Options, TxgenApp

    app = _null_app(tmp_path)
    out = app.start([0, 1])  # no runtime: port 1 is rx-only and says so
    assert "only receive" in out
    cfg = json.loads((tmp_path / "n.jsonc").read_text())
    cfg["threads"] = {"fwd:0": {"lports": ["null0:0"]}}
    (tmp_path / "n.jsonc").write_text(json.dumps(cfg))
    c = cfgmod.load(tmp_path / "n.jsonc", decoders={"txgen": decode_section}, host_checks=False)
    with pytest.raises(TxgenError, match="unknown thread type 'fwd'"):
        TxgenApp(c, Options())


def test_app_reports_section_errors_with_file_and_line(tmp_path):
    app = _null_app(
        tmp_path, {"null0:0": {"size": 10, "dst_ip": "10.0.0.1"}, "nope:0": {"size": 64}}
    )
    errs = app.apply_initial()
    assert any("n.jsonc" in e and "size 10 is out of range" in e for e in errs), errs
    assert any("outside the benchmarking ranges" in e for e in errs), errs
    assert any("lport 'nope:0' not found" in e for e in errs), errs


def test_app_applies_section_then_scripts_then_commands(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("set 0 size 100\nset 0 ttl 9\n")
    app = _null_app(
        tmp_path,
        {"null0:0": {"size": 80, "ttl": 5, "pps": 10}},
        scripts=[str(script)],
        commands=["set 0 ttl 11", "set all engine port"],
    )
    assert app.apply_initial() == []
    s = app.state.get(0)
    assert (s.size, s.ttl, s.pps) == (100, 11, 10.0)  # later sources win
