"""cndp-jsonc-gen: the pod-start configuration generator (CNDP's tools/jsonc_gen.sh).

Every output must load in cndp.app.config and be valid JSON once its comments are removed,
whatever the environment holds (hypothesis)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.app import config as C
from cndp.k8s import jsonc_gen as G

GEN = Path(sys.executable).parent / "cndp-jsonc-gen"
LAYOUT = [[0, 1, 2, 3], [4, 5, 6, 7]]  # two NUMA nodes


def strip_comments(text: str) -> str:
    # our output puts comments on lines of their own only
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def gen(env: dict, **opts) -> tuple[C.Config, str, list[str]]:
    text, warnings = G.generate(env, G.Options(**opts), layout=LAYOUT, numa_of=lambda d: 0)
    json.loads(strip_comments(text))  # plain JSON under the comments
    return C.loads(text, "gen.jsonc", host_checks=False), text, warnings


def test_devices_from_every_afxdp_variable_in_order():
    env = {
        "AFXDP_DEVICES_ZPOOL": "ens9,ens1",
        "AFXDP_DEVICES": "ens3",
        "AFXDP_DEVICES_MYPOOL": " ens1  ens2 ",
        "AFXDP_DEVICESX": "nope",  # not ours
        "PATH": "/bin",
    }
    devs, read = G.devices_from_env(env)
    assert devs == ["ens3", "ens1", "ens2", "ens9"]
    assert read == ["AFXDP_DEVICES", "AFXDP_DEVICES_MYPOOL", "AFXDP_DEVICES_ZPOOL"]


@pytest.mark.parametrize("bad", ["a/b", "x:1", "0123456789abcdef", ".", ".."])
def test_a_bad_netdev_name_is_an_error_naming_the_variable(bad):
    with pytest.raises(G.GenError, match="AFXDP_DEVICES_P"):
        G.devices_from_env({"AFXDP_DEVICES_P": f"ens1 {bad}"})


@pytest.mark.parametrize(
    "env,want",
    [
        ({}, False),
        ({"AFXDP_COPY_MODE": "true"}, True),
        ({"AFXDP_COPY_MODE": "False"}, False),
        ({"CNDP_COPY_MODE": "1"}, True),
        ({"AFXDP_COPY_MODE": "no", "CNDP_COPY_MODE": "yes"}, False),  # AFXDP_ wins
    ],
)
def test_copy_mode(env, want):
    assert G.copy_mode_from_env(env) is want


def test_copy_mode_garbage_is_an_error():
    with pytest.raises(G.GenError, match="AFXDP_COPY_MODE"):
        G.copy_mode_from_env({"AFXDP_COPY_MODE": "maybe"})


def test_the_cndp_pod_configuration():
    """What jsonc_gen.sh writes for one netdev in a kind cluster, checked on the decoded
    configuration."""
    cfg, _, warnings = gen({"AFXDP_DEVICES_MYPOOL": "veth5"}, kind=True)
    assert warnings == []
    (lp,) = cfg.lports.values()
    assert lp.name == "veth5:0" and lp.netdev == "veth5" and lp.pmd == "net_af_xdp"
    assert lp.qid == 0 and lp.region == 0 and lp.umem == "umem0"
    assert lp.uds_path == "/tmp/afxdp_dp/veth5/afxdp.sock" and lp.xsk_pin_path is None
    assert lp.unprivileged and not lp.skb_mode
    u = cfg.umems["umem0"]
    assert (u.bufcnt, u.bufsz, u.regions, u.mtype) == (16384, 2048, (16384,), "2MB")
    assert set(cfg.threads) == {"main", "fwd:0"}
    assert cfg.threads["fwd:0"].lports == ["veth5:0"] and cfg.threads["main"].group == "initial"
    assert cfg.option("mode") == "drop" and cfg.option("pkt_api") == "xskdev"
    assert cfg.lcore_groups["group0"].cpus == (0,)
    assert cfg.lcore_groups["initial"].cpus == (1,) and cfg.lcore_groups["default"].cpus == (2,)


def test_several_devices_pinned_copy_mode_and_real_nic_queue():
    env = {"AFXDP_DEVICES": "ens1 ens2 ens3", "AFXDP_COPY_MODE": "true"}
    cfg, _, _ = gen(env, pinned=True, copy_mode=G.copy_mode_from_env(env), bufcnt=4)
    assert list(cfg.lports) == ["ens1:0", "ens2:0", "ens3:0"]
    for i, lp in enumerate(cfg.lports.values()):
        assert lp.qid == G.DEFAULT_QID and lp.region == i and lp.skb_mode
        assert lp.xsk_pin_path == f"/tmp/afxdp_dp/{lp.netdev}/xsks_map" and lp.uds_path is None
        assert cfg.threads[f"fwd:{i}"].lports == [lp.name]
    assert cfg.umems["umem0"].regions == (4096,) * 3
    assert cfg.umems["umem0"].bufcnt == 3 * 4096


def test_path_templates_and_qid_and_mode():
    cfg, _, _ = gen(
        {"AFXDP_DEVICES": "ens1"},
        qid=7,
        uds_template="/run/dp/{dev}.sock",
        mode="lb",
    )
    lp = cfg.lports["ens1:0"]
    assert lp.qid == 7 and lp.uds_path == "/run/dp/ens1.sock" and cfg.option("mode") == "lb"
    with pytest.raises(G.GenError, match=r"only \{dev\} may appear"):
        G.generate({"AFXDP_DEVICES": "e1"}, G.Options(uds_template="/x/{pod}.sock"), layout=LAYOUT)
    # one socket for every netdev (newer plugins mount /tmp/afxdp.sock): the lports share it
    cfg, _, _ = gen({"AFXDP_DEVICES": "e1 e2"}, uds_template="/tmp/afxdp.sock")
    assert {lp.uds_path for lp in cfg.lports.values()} == {"/tmp/afxdp.sock"}
    with pytest.raises(G.GenError, match="qid"):
        G.generate({"AFXDP_DEVICES": "e1"}, G.Options(qid=70000), layout=LAYOUT)
    with pytest.raises(G.GenError, match="bufcnt"):
        G.generate({"AFXDP_DEVICES": "e1"}, G.Options(bufcnt=0), layout=LAYOUT)


def test_no_device_falls_back_to_net1_with_valid_json():
    """jsonc_gen.sh wrote an unquoted key here; ours is valid and warns."""
    cfg, text, warnings = gen({})
    assert list(cfg.lports) == ["net1:0"]
    assert cfg.lports["net1:0"].uds_path == "/tmp/afxdp_dp/net1/afxdp.sock"
    assert warnings and "net1" in warnings[0]
    assert '"uds_path": "/tmp/afxdp_dp/net1/afxdp.sock"' in text


@pytest.mark.parametrize(
    "layout,numa,devs,want_fwd,want_initial,want_default",
    [
        # CNDP: fwd i on CPU i of its NIC's node; main and default on the first free CPUs
        (LAYOUT, {"a": 1, "b": 1}, ["a", "b"], (4, 5), 0, 1),
        (LAYOUT, {"a": 0, "b": 1}, ["a", "b"], (0, 5), 1, 2),
        ([[3]], {"a": 0}, ["a"], (3,), 3, 3),  # one CPU: everything shares it
        ([[0, 1]], {"a": 0, "b": 0, "c": 0}, ["a", "b", "c"], (0, 1, 0), 1, 1),
        ([[2, 3]], {"a": 5}, ["a"], (2,), 3, 3),  # a node we cannot use: the first one
    ],
)
def test_cpu_assignment(layout, numa, devs, want_fwd, want_initial, want_default):
    c = G.assign_cpus(devs, layout, numa.__getitem__)
    assert c.fwd == want_fwd and c.initial == want_initial and c.default == want_default
    assert set(c.fwd) | {c.initial, c.default} <= {x for n in layout for x in n}


def test_cpu_layout_is_this_process_affinity():
    layout = G.cpu_layout()
    assert sorted(c for n in layout for c in n) == sorted(os.sched_getaffinity(0))


def test_no_cpu_is_an_error():
    with pytest.raises(G.GenError, match="no CPU"):
        G.assign_cpus(["a"], [], lambda d: 0)


# Device names and values as a hostile environment may hold them.
env_values = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=17),
        max_size=5,
    ).map(" ".join),
)


@settings(
    max_examples=150,
    deadline=3000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.dictionaries(
        st.sampled_from(["AFXDP_DEVICES", "AFXDP_DEVICES_A", "AFXDP_DEVICES_POOL2", "OTHER"]),
        env_values,
        max_size=4,
    ),
    st.booleans(),
    st.booleans(),
)
def test_any_environment_gives_a_loading_config_or_a_clear_error(env, kind, pinned):
    try:
        text, _ = G.generate(env, G.Options(kind=kind, pinned=pinned), layout=LAYOUT)
    except G.GenError as e:
        assert "AFXDP_DEVICES" in str(e)
        return
    json.loads(strip_comments(text))
    cfg = C.loads(text, "gen.jsonc", host_checks=False)
    devs, _ = G.devices_from_env(env)
    assert [lp.netdev for lp in cfg.lports.values()] == (devs or ["net1"])
    key = "xsk_pin_path" if pinned else "uds_path"
    assert all(getattr(lp, key) for lp in cfg.lports.values())


def test_console_script_writes_the_file(tmp_path):
    out = tmp_path / "config.jsonc"
    env = {**os.environ, "AFXDP_DEVICES_MYPOOL": "ens7"}
    r = subprocess.run(
        [str(GEN), "-k", "-o", str(out)], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == out.read_text()  # like the script, it shows what it wrote
    cfg = C.load(out, host_checks=False)
    assert list(cfg.lports) == ["ens7:0"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cndp-jsonc-")]


def test_main_errors_are_one_line_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "config.jsonc"
    assert G.main(["-o", str(out)], env={"AFXDP_DEVICES": "bad/dev"}) == 2
    err = capsys.readouterr().err
    assert err.startswith("cndp-jsonc-gen: error:") and "Traceback" not in err
    assert not out.exists()
    assert G.main(["-o", str(tmp_path / "nodir" / "c.jsonc")], env={"AFXDP_DEVICES": "e1"}) == 1
    assert "writing" in capsys.readouterr().err
    assert G.main(["-q", "-o", "-"], env={"AFXDP_DEVICES": "e1"}) == 0
    text = capsys.readouterr().out
    assert re.search(r'"e1:0"', text)
