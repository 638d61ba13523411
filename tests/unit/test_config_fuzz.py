"""Hypothesis: the JSON-C reader and the config decoder, on arbitrary text, on JSON-C-like
token soup, on mutated corpus files and on random JSON trees built from CNDP's own keys, raise
nothing but ConfigError, and finish quickly (a per-example deadline catches a hang)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cndp.app import config as C
from cndp.app import jsonc
from cndp.app.config import StaticHost
from cndp.errors import ConfigError

CORPUS = Path(__file__).resolve().parents[2].parent / "shared/reference/cndp-configs"
HOST = StaticHost(cpus=range(8), netdevs={"eth0": 4, "eth1": 2, "eth2": 3}, hugepages={})

# CNDP_FUZZ_EXAMPLES=5000 runs a long, random campaign; by default a short fixed one (CI).
_LONG = int(os.environ.get("CNDP_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_LONG or 150,
    deadline=2000,  # ms per example: far above the normal few ms, so only a hang trips it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=not _LONG,
)


def check_text(data) -> None:
    with contextlib.suppress(ConfigError):
        jsonc.parse(data, "fuzz.jsonc")
    try:
        cfg = C.loads(data, "fuzz.jsonc", host=HOST)
    except ConfigError as e:
        assert str(e).startswith("fuzz.jsonc"), str(e)
    else:
        json.dumps(cfg.to_dict())


@FUZZ
@given(st.text())
def test_reader_and_decoder_on_arbitrary_text(text):
    check_text(text)


@FUZZ
@given(st.binary())
def test_reader_and_decoder_on_arbitrary_bytes(data):
    check_text(data)


TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "'",
    "\\",
    "/",
    "*",
    "//",
    "/*",
    "*/",
    "\n",
    " ",
    "0",
    "1",
    "-",
    ".",
    "e",
    "+",
    "12",
    "-3",
    "1.5",
    "true",
    "false",
    "null",
    "NaN",
    "True",
    '"a"',
    '"lports"',
    '"qid"',
    '"\\u00e9"',
    '"\\ud800"',
    "\x00",
    "\t",
    "\ufeff",
    "é",
]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup(tokens):
    check_text("".join(tokens))


def corpus_texts() -> list[str]:
    assert CORPUS.is_dir(), f"{CORPUS} is missing (shared/ must sit beside the checkout)"
    return [p.read_text() for p in sorted(CORPUS.glob("*.jsonc"))]


MUTATION = st.tuples(
    st.sampled_from(["delete", "insert", "replace", "duplicate"]),
    st.floats(0, 1),
    st.integers(0, 40),
    st.sampled_from([*TOKENS, '"x"', "99999999999", '"all"', '"1-3"', '"eth0:0"', "[]", "{}"]),
)


@FUZZ
@given(st.integers(0, 100), st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_corpus(which, mutations):
    texts = corpus_texts()
    text = texts[which % len(texts)]
    for op, where, length, token in mutations:
        i = int(where * len(text))
        j = min(len(text), i + length)
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + token + text[i:]
        elif op == "replace":
            text = text[:i] + token + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    check_text(text)


BASE_DOC = {
    "application": {"name": "t"},
    "defaults": {"bufcnt": 16, "bufsz": 2, "rxdesc": 2, "txdesc": 2, "cache": 256, "mtype": "4KB"},
    "umems": {"umem0": {"bufcnt": 32, "bufsz": 2, "regions": [16, 16], "rxdesc": 0}},
    "lports": {
        "eth0:9": {"pmd": "net_ring", "qid": 9, "umem": "umem0", "busy_poll": True},
        "eth1:0": {"pmd": "net_af_xdp", "qid": 0, "umem": "umem0", "region": 1},
    },
    "lcore-groups": {"initial": [0], "group0": [1], "default": ["2-3"]},
    "options": {"pkt_api": "xskdev", "mode": "drop", "rules": ["a", "b"]},
    "threads": {
        "main": {"group": "initial"},
        "fwd:0": {"group": "group0", "lports": ["eth0:9"], "idle_timeout": 10},
        "fwd:1": {"lports": ["eth1:0"]},
    },
    "lport-groups": {
        "rss": {"netdevs": ["eth2"], "queues": ["0-1", 2], "threads": ["fwd:0", "fwd:1"]},
        "all": {"netdevs": ["eth0"], "queues": "all", "threads": ["fwd:1"], "umem": "umem0"},
    },
}

KEYS = [
    "application",
    "defaults",
    "umems",
    "lports",
    "lcore-groups",
    "threads",
    "options",
    "lport-groups",
    "Lports",
    "name",
    "desc",
    "description",
    "bufcnt",
    "bufsz",
    "rxdesc",
    "txdesc",
    "cache",
    "mtype",
    "regions",
    "shared_umem",
    "pmd",
    "qid",
    "umem",
    "region",
    "busy_poll",
    "busy_polling",
    "busy_timeout",
    "busy_budget",
    "force_wakeup",
    "skb_mode",
    "xsk_pin_path",
    "uds_path",
    "unaligned_buffers",
    "group",
    "idle_timeout",
    "intr_timeout",
    "netdevs",
    "queues",
    "eth0:0",
    "eth1:0",
    "eth2",
    "umem0",
    "lport-group",
    "default",
    "initial",
    "main",
    "fwd:0",
    "fwd:1",
    "mode",
    "pkt_api",
    "cli",
    "q",
    "",
    "user1-data",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70000),
    st.sampled_from([0, 1, 2, 16, 32, 1024, 65535, 2**40, -1]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(
        [
            "",
            "all",
            "1-3",
            "3-1",
            "10-14,16",
            "eth0",
            "eth0:0",
            "umem0",
            "net_af_xdp",
            "net_ring",
            "2MB",
            "4KB",
            "xskdev",
            "drop",
            "default",
            "initial",
            "fwd:0",
            "x",
        ]
    ),
    st.text(max_size=8),
)
TREES = st.recursive(
    SCALARS,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5),
        st.dictionaries(st.sampled_from(KEYS), kids, max_size=6),
    ),
    max_leaves=40,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), TREES, max_size=8))
def test_random_config_trees(tree):
    check_text(json.dumps(tree))


@FUZZ
@given(st.data())
def test_valid_base_with_one_random_value(data):
    """Start from a valid config and replace one leaf: deep decoder paths get exercised."""
    doc = json.loads(json.dumps(BASE_DOC))
    node = doc
    path = []
    while isinstance(node, (dict, list)) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        k = data.draw(st.sampled_from(keys))
        path.append(k)
        if not isinstance(node[k], (dict, list)) or data.draw(st.booleans()):
            node[k] = data.draw(TREES)
            break
        node = node[k]
    check_text(json.dumps(doc, indent=1))
