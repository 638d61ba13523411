"""Every file in shared/reference/cndp-configs/ is a test case (CNDP-INVENTORY.md §4).

The ones CNDP loads must load here with the same values; the two broken upstream files must be
rejected with CNDP's reason. The directory sits beside the checkout (CI copies shared/ there); a
missing directory FAILS the run rather than skipping it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cndp.app import config as C
from cndp.app import jsonc
from cndp.app.config import ConfigFileError, StaticHost

CORPUS = Path(__file__).resolve().parents[2].parent / "shared/reference/cndp-configs"

# A host big enough for every example: 64 CPUs, the netdevs they name, plenty of hugepages.
NETDEVS = [
    "eth0",
    "eth1",
    "eth2",
    "eth3",
    "eth4",
    "eth8",
    "net1",
    "enp94s0f0",
    "enp94s0f1",
    "enp134s0",
    "enp134s0f0",
    "enp175s0f0",
    "ens17f0",
    "eno12399",
]
BIG_HOST = StaticHost(
    cpus=range(64), netdevs=dict.fromkeys(NETDEVS, 64), hugepages={2 << 20: 1 << 16}
)

OK = "ok"
# file -> OK, or the reason CNDP's loader gives for rejecting it
EXPECTED = {
    "containerization_docker_ubuntu_fwd.jsonc": OK,
    "examples_cndp-frr_docker_cnetfrr-graph.jsonc": OK,
    "examples_cndpfwd_fwd.jsonc": OK,
    "examples_cnet-graph_cnetfwd-graph.jsonc": OK,
    "examples_cnet-quic_quic.jsonc": OK,
    "examples_dlb_test_dlb_test.jsonc": "lport 'eth0:0' not found",
    "examples_l3fwd-graph_l3fwd-graph.jsonc": "lport 'eth2:0' not found",
    "examples_phil_phil.jsonc": OK,
    "lang_go_bindings_examples_distributor_config.jsonc": OK,
    "lang_go_bindings_examples_fwd_fwd.jsonc": OK,
    "lang_go_bindings_examples_sampling_sampling.jsonc": OK,
    "lang_rs_apis_cne_fwd.jsonc": OK,
    "lang_rs_examples_echo_server_fwd.jsonc": OK,
    "lang_rs_examples_fwd_fwd.jsonc": OK,
    "test_testcne_files_json_example.jsonc": OK,
    "test_testcne_files_json_test-strings.jsonc": OK,
    "tools_cndp.schema": "schema",
    "usrtools_txgen_txgen.jsonc": OK,
}
# the line of the thread's "lports" in the broken files
BROKEN_AT = {
    "examples_dlb_test_dlb_test.jsonc": (146, 'threads."producer:0".lports[0]'),
    "examples_l3fwd-graph_l3fwd-graph.jsonc": (149, 'threads."fwd:0".lports[0]'),
}


def test_corpus_directory_is_present():
    assert CORPUS.is_dir(), (
        f"{CORPUS} is missing: the config corpus lives in shared/ beside the checkout "
        "(CI copies it there); without it these tests cannot run"
    )


def corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir()) if CORPUS.is_dir() else []


def test_every_corpus_file_has_an_expectation():
    assert CORPUS.is_dir(), f"{CORPUS} is missing"
    assert corpus_files() == sorted(EXPECTED), "a corpus file was added or removed: update EXPECTED"


def path(name: str) -> Path:
    p = CORPUS / name
    assert p.is_file(), f"{p} is missing"
    return p


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name):
    p = path(name)
    expect = EXPECTED[name]
    if expect == "schema":
        # our packaged copy is this file plus a comment header
        assert jsonc.loads(p.read_bytes()) == C._upstream_schema()
        return
    if expect == OK:
        cfg = C.load(p, host=BIG_HOST)
        json.dumps(cfg.to_dict())
        if "test-strings" not in name:
            assert cfg.warnings == [], cfg.warnings
        return
    with pytest.raises(ConfigFileError) as ei:
        C.load(p, host=BIG_HOST)
    assert expect in str(ei.value)
    line, kpath = BROKEN_AT[name]
    assert (ei.value.line, ei.value.path) == (line, kpath)
    assert str(ei.value) == f"{p}:{line}: {kpath}: {expect}"


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e == OK))
def test_corpus_loads_on_this_host_with_warnings_only(name):
    """Host checks never stop a load: whatever this machine lacks is a warning."""
    cfg = C.load(path(name))
    assert all(isinstance(w, str) and w for w in cfg.warnings)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e not in (OK, "schema")))
def test_broken_corpus_rejected_on_this_host_too(name):
    with pytest.raises(ConfigFileError, match=EXPECTED[name]):
        C.load(path(name))


def test_strict_host_rejects_a_small_host():
    small = StaticHost(cpus=[0, 1], netdevs={"eth0": 1})
    with pytest.raises(ConfigFileError) as ei:
        C.load(path("examples_cndpfwd_fwd.jsonc"), host=small, strict_host=True)
    text = "\n".join(ei.value.problems)
    assert "CPU 10 is not available" in text and "netdev 'eth1' does not exist" in text


# --------------------------------------------------------------------------------------------
# golden values (CNDP-INVENTORY.md §4)


def test_fwd_jsonc_golden():
    cfg = C.load(path("examples_cndpfwd_fwd.jsonc"), host=BIG_HOST)
    assert cfg.application.name == "cndpfwd"
    assert list(cfg.umems) == ["umem0"]
    u = cfg.umems["umem0"]
    assert u.bufcnt == 32768 == 32 * 1024
    assert u.bufsz == 2048
    assert u.mtype == "2MB"
    assert u.regions == (16384, 16384)
    assert (u.rxdesc, u.txdesc) == (0, 0)
    assert (u.rx_size, u.tx_size) == (2048, 2048)  # the xskdev default applies

    assert list(cfg.lports) == ["eth0:0", "eth1:0"]
    a, b = cfg.lports["eth0:0"], cfg.lports["eth1:0"]
    assert (a.netdev, a.pmd, a.qid, a.region, a.lpid, a.umem) == (
        "eth0",
        "net_af_xdp",
        11,
        0,
        0,
        "umem0",
    )
    assert (b.netdev, b.pmd, b.qid, b.region, b.lpid, b.umem) == (
        "eth1",
        "net_af_xdp",
        12,
        1,
        1,
        "umem0",
    )
    assert a.flags == b.flags == 0

    groups = {n: set(g.cpus) for n, g in cfg.lcore_groups.items()}
    assert groups == {"initial": {10}, "group0": {13}, "group1": {14}, "default": {15, 16}}

    assert list(cfg.threads) == ["main", "fwd:0", "fwd:1"]
    m, f0, f1 = cfg.threads["main"], cfg.threads["fwd:0"], cfg.threads["fwd:1"]
    assert (m.type, m.group, m.lports) == ("main", "initial", [])
    assert (f0.type, f0.group, f0.lports, f0.idle_timeout, f0.intr_timeout) == (
        "fwd",
        "group0",
        ["eth0:0"],
        10,
        2000,
    )
    assert (f1.type, f1.group, f1.lports, f1.idle_timeout, f1.intr_timeout) == (
        "fwd",
        "group1",
        ["eth1:0"],
        10,
        2000,
    )
    assert cfg.option("pkt_api") == "xskdev"
    assert cfg.option("mode") == "drop"
    assert cfg.option("cli") is True
    assert cfg.option("no-metrics") is False
    assert cfg.option("l3fwd-fib-rules") == [
        "198.18.0.0/24,02:00:01:02:03:04,1",
        "198.18.1.0/24,06:00:01:02:03:04,0",
    ]
    assert cfg.option("hs-patterns")[0] == "0x80000000:/foobar/iH"
    assert cfg.defaults.cache_size == 256

    x = cfg.lport_xsk_config("eth1:0")
    assert (x.ifname, x.qid, x.rx_size, x.tx_size, x.busy_timeout, x.busy_budget) == (
        "eth1",
        12,
        2048,
        2048,
        20,
        64,
    )
    r = cfg.umem_regions("umem0")
    assert [(g.first, g.bufcnt, g.offset) for g in r] == [
        (0, 16384, 0),
        (16384, 16384, 16384 * 2048),
    ]


def test_example_jsonc_lport_groups_expansion():
    cfg = C.load(path("test_testcne_files_json_example.jsonc"), host=BIG_HOST)
    names = list(cfg.lports)
    assert names[:2] == ["eth0:0", "eth1:0"]
    queues = [1, 2, 4, 5, 8]
    rss0 = [f"{nd}:{q}" for nd in ("eth2", "eth3", "eth4") for q in queues]
    assert len(rss0) == 15
    assert names[2:17] == rss0
    assert names[17:] == ["eth8:8"]
    assert [cfg.lports[n].lpid for n in names] == list(range(18))
    # round-robin over fwd:0/fwd:1, counting across netdevs
    for i, n in enumerate(rss0):
        assert cfg.lports[n].threads == [("fwd:0", "fwd:1")[i % 2]], n
        assert cfg.lports[n].lport_group == "rss0"
    assert cfg.lports["eth8:8"].threads == ["fwd:0"]
    assert cfg.threads["fwd:0"].lports == ["eth0:0", *rss0[0::2], "eth8:8"]
    assert cfg.threads["fwd:1"].lports == ["eth1:0", *rss0[1::2]]
    # every generated lport is on the auto umem 'lport-group', region 0
    for n in names[2:]:
        lp = cfg.lports[n]
        assert (lp.umem, lp.region, lp.pmd, lp.netdev) == ("lport-group", 0, "net_af_xdp", n[:4])
    u = cfg.umems["lport-group"]
    assert u.auto and u.index == 1
    # sizes from defaults, which the common umem DOES scale by 1024 (as in C)
    assert (u.bufcnt, u.bufsz, u.rxdesc, u.txdesc, u.mtype) == (16384, 2048, 2048, 2048, "2MB")
    assert u.regions == (16384,)
    g = cfg.lport_groups["rss0"]
    assert g.queues == queues and g.netdevs == ["eth2", "eth3", "eth4"]
    assert g.threads == ["fwd:0", "fwd:1"]
    assert cfg.lport_groups["rss1"].lports == ["eth8:8"]


def test_test_strings_multi_document_and_custom_section():
    p = path("test_testcne_files_json_test-strings.jsonc")
    doc = jsonc.parse(p.read_bytes(), str(p))
    assert doc.count == 5
    assert doc.value == {"user1-data": {"a key": "a value"}}
    # without a decoder the section is ignored (with a warning)
    cfg = C.load(p, host=BIG_HOST)
    assert cfg.users == {}
    assert any("5 JSON documents" in w for w in cfg.warnings)
    assert any("user1-data: unknown section ignored" in w for w in cfg.warnings)
    assert cfg.lports == {} and cfg.threads == {}
    # with a registered decoder it is decoded, and only through it
    calls = []

    def user1(value, section):
        calls.append(section.name)
        return dict(value)

    C.register_decoder("user1-data", user1)
    try:
        cfg = C.load(p, host=BIG_HOST)
    finally:
        C.unregister_decoder("user1-data")
    assert calls == ["user1-data"]
    assert cfg.users == {"user1-data": {"a key": "a value"}}
    assert not any("unknown section" in w for w in cfg.warnings)


def test_sampling_trailing_comma_and_l3fwd_mode():
    p = path("lang_go_bindings_examples_sampling_sampling.jsonc")
    assert ",\n    }\n}" in p.read_text()  # the trailing comma is really there
    cfg = C.load(p, host=BIG_HOST)
    assert cfg.option("mode") == "l3fwd"
    assert list(cfg.threads) == ["main", "fwd:0"]
    assert cfg.umems["umem0"].regions == (65536,)


def test_distributor_netdev_is_the_whole_key_and_threads_share_it():
    cfg = C.load(path("lang_go_bindings_examples_distributor_config.jsonc"), host=BIG_HOST)
    lp = cfg.lports["ens17f0"]
    assert (lp.netdev, lp.tag, lp.qid) == ("ens17f0", None, 40)
    assert lp.threads == ["rx:0", "tx:0"]
    assert cfg.option("burst-size") == 64 and cfg.option("no-color") is False
    assert cfg.lcore_groups["default"].cpus == tuple(range(50, 56))


def test_frr_pinned_maps_are_unprivileged():
    cfg = C.load(path("examples_cndp-frr_docker_cnetfrr-graph.jsonc"), host=BIG_HOST)
    for nd in ("eth0", "eth1"):
        lp = cfg.lports[f"{nd}:0"]
        assert lp.xsk_pin_path == f"/sys/fs/bpf/{nd}/xsk_map"
        assert lp.flag_names == ("LPORT_UNPRIVILEGED",)
        assert cfg.lport_xsk_config(lp).xsk_pin_path == lp.xsk_pin_path
    assert cfg.threads["graph:0"].lports == ["eth0:0", "eth1:0"]


def test_phil_empty_sections():
    cfg = C.load(path("examples_phil_phil.jsonc"), host=BIG_HOST)
    assert cfg.umems == {} and cfg.lports == {}
    assert [t.type for t in cfg.threads.values()] == ["cli", "phil", "phil", "phil", "phil"]


def test_cnet_graph_options_for_a_missing_thread_are_legal():
    cfg = C.load(path("examples_cnet-graph_cnetfwd-graph.jsonc"), host=BIG_HOST)
    assert "graph:1" not in cfg.threads
    assert cfg.option("graph:1-chnl")[-1] == "tcp4-connect:198.18.2.1:2222"
    assert [t.type for t in cfg.threads.values()] == ["main", "timer", "graph"]


def test_txgen_and_rust_and_docker():
    tx = C.load(path("usrtools_txgen_txgen.jsonc"), host=BIG_HOST)
    assert [t.name for t in tx.threads.values()] == ["cli", "stats", "rxtx:0", "rxtx:1"]
    rs = C.load(path("lang_rs_apis_cne_fwd.jsonc"), host=BIG_HOST)
    assert rs.option("pkt_api") == "pktdev"
    assert rs.lcore_groups["default"].cpus == tuple(range(22, 36))
    dk = C.load(path("containerization_docker_ubuntu_fwd.jsonc"), host=BIG_HOST)
    assert dk.lports["net1:0"].qid == 4
