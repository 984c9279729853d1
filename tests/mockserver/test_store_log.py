"""The shared store's log codec (``store/log.py``): a request's operations go by marshal,
the rest (a failure's job effects, a rule's facts, a config) by the sealing pickle, and
each comes back equal to what went."""

from __future__ import annotations

import pickle

from nanobanana_mock.config import MockConfig
from nanobanana_mock.engine.jobs import Failure
from nanobanana_mock.faults.effects import JobEffects
from nanobanana_mock.store.log import MARSHALLED, dumps_op, loads_op

READ = ("segmind", "0f8fad5b-d9cb-469f-a165-70867728950e", "fp:abcdef12", None, True)
BODY = {"prompt": "ünïcode", "n": 2, "ratio": 1.5, "urls": ["a", "b"], "x": None, "big": 10**30}


def test_a_status_poll_and_a_plain_submit_go_by_marshal_and_come_back_equal() -> None:
    for name, args in (
        ("read", READ),
        ("take", ("fp:abcdef12", True)),
        ("submit", ("segmind", "nano-banana", BODY, "fp:abcdef12", "bench-****", JobEffects())),
        ("submit", ("seaart", "m", BODY, "fp:1", None, JobEffects(None, 2.0, 0.5, 2.0))),
    ):
        data = dumps_op(name, args, 3, "p.7")
        assert data[:1] == MARSHALLED
        back = loads_op(data)
        assert back == (name, args, 3, "p.7")
        assert type(back[1]) is tuple and type(back[1][-1]) is type(args[-1])


def test_what_marshal_refuses_goes_by_the_sealing_pickle() -> None:
    failing = JobEffects(Failure("boom", after_polls=2))
    data = dumps_op("submit", ("pixazo", "m", BODY, "fp:1", None, failing), None, "p.8")
    assert data[:1] == b"\x80" and loads_op(data)[1][-1] == failing
    config = MockConfig(api_keys=frozenset({"sk-secret-key"}), control_token="ctl-token-4711")
    data = dumps_op("reset", (config, []), 1, "p.9")
    assert data[:1] == b"\x80"
    assert b"sk-secret-key" not in data and b"ctl-token-4711" not in data  # sealed, no token
    name, (back, scenarios), cv, token = loads_op(data, "mine")
    assert (name, scenarios, cv, token) == ("reset", [], 1, "p.9")
    assert back.control_token == "mine" and "sk-secret-key" not in back.api_keys
    # a str subclass is not plain data: pickled, and back as it was
    data = dumps_op("read", (*READ[:3], _Name("m"), True), None, "p.10")
    assert data[:1] == b"\x80" and type(loads_op(data)[1][3]) is _Name
    assert pickle.loads(data)[0] == "read"


class _Name(str):
    pass
