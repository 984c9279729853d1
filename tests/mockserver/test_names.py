"""Mistakes get named: every provider, operation, model, method, setting, map key, state and
filter a user writes is checked, and a refusal names the word, the closest known one and the
allowed ones, on every way in (control plane, scenario file, flags, MOCK_* variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nanobanana_mock import names, schemas
from nanobanana_mock.cli import unknown_variables
from nanobanana_mock.config import ConfigError, config_from_env
from nanobanana_mock.engine.jobs import FATES
from nanobanana_mock.scenario import ScenarioError, parse_scenario
from tests.harness import Mock, mock_refuses

RULE = schemas.load("mock", "fault_rule")["$defs"]
SETTINGS = schemas.load("mock", "settings")["properties"]
SEAART_STATUS = "/model/v1/queue/nano_banana_pro/requests/{}/status"


async def post(mock: Mock, path: str, body: Any, expect: int) -> dict[str, Any]:
    resp = await mock.client.post(f"/_mock/{path}", json=body)
    answer = await resp.json()
    assert resp.status == expect, answer
    return answer


def refusal(answer: dict[str, Any]) -> str:
    return " ".join([answer["error"], *answer.get("problems", [])])


# -- the contract lists every name the api.json files have -----------------------------------


def test_the_rule_enums_are_the_providers_operations_and_models_of_the_contracts() -> None:
    assert RULE["provider"]["enum"] == list(schemas.PROVIDERS)
    operations = {op for p in schemas.PROVIDERS for op in schemas.load(p, "api")["operations"]}
    assert set(RULE["operation"]["enum"]) == operations | {"image"}
    models = {m for p in schemas.PROVIDERS for m in schemas.load(p, "api")["models"]}
    assert set(RULE["model"]["enum"]) == models


def test_the_map_settings_list_every_provider_and_model() -> None:
    expected = {"*"}
    for provider in schemas.PROVIDERS:
        expected |= {f"{provider}/*"} | {
            f"{provider}/{m}" for m in schemas.load(provider, "api")["models"]
        }
    assert set(SETTINGS["processing_seconds"]["propertyNames"]["enum"]) == expected
    assert SETTINGS["retention_seconds"]["propertyNames"]["enum"] == ["*", *schemas.PROVIDERS]


# -- fault rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "word", "meant"),
    [
        ("provider", "segmnd", "segmind"),
        ("operation", "sumbit", "submit"),
        ("model", "nano-banana-prro", "nano-banana-pro"),
        ("method", "post", "POST"),
    ],
)
@pytest.mark.parametrize("as_list", [False, True])
async def test_an_unknown_name_in_a_rule_is_refused_naming_it(
    mock: Mock, field: str, word: str, meant: str, as_list: bool
) -> None:
    value = [meant, word] if as_list else word
    rule = {"match": {field: value}, "effect": {"latency": {"fixed": 1}}}
    text = refusal(await post(mock, "faults", rule, 400))
    assert f"match.{field}{'[1]' if as_list else ''}: '{word}' is not one of" in text
    assert f"(did you mean '{meant}'?)" in text
    assert ", ".join(RULE[field]["enum"]) in text
    assert mock.state.faults.rules == []


async def test_a_number_given_as_a_string_is_told_its_type_not_to_mean_itself(
    mock: Mock,
) -> None:
    """`"500"` for the status 500 was answered `(did you mean '500'?)`."""
    rule = {"match": {"provider": "segmind"}, "effect": {"http_error": {"status": "500"}}}
    text = refusal(await post(mock, "faults", rule, 400))
    assert "effect.http_error.status: '500' is not one of" in text
    assert "did you mean '500'" not in text, text
    assert "the number 500, not the string '500'" in text, text


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        (None, "effect.latency: must be of type object, got NoneType"),
        (5, "effect.latency: must be of type object, got int"),
        ({"fixed": 1, "uniform": [1, 2]}, "effect.latency: give only one of 'fixed', 'uniform'"),
    ],
)
async def test_a_latency_of_no_kind_or_two_kinds_is_named_plainly(
    mock: Mock, latency: Any, expected: str
) -> None:
    """A oneOf of `required` branches said `None is valid under each of {'required': ...}`."""
    rule = {"match": {"provider": "segmind"}, "effect": {"latency": latency}}
    text = refusal(await post(mock, "faults", rule, 400))
    assert expected in text, text
    assert "is valid under each" not in text, text


@pytest.mark.parametrize(
    ("match", "effect", "expected"),
    [
        (
            {"provider": "segmind", "operation": "cancel"},
            {"latency": {"fixed": 1}},
            "match.operation: 'cancel' is not an operation of segmind, so the rule would never "
            "match; allowed: sync_generate, submit, status, result, poll, image",
        ),
        (
            {"provider": "pixazo", "model": "nano_banana_pro"},
            {"latency": {"fixed": 1}},
            "match.model: 'nano_banana_pro' is not a model of pixazo (did you mean "
            "'nano-banana-pro'?), so the rule would never match; allowed: nano-banana-pro",
        ),
        (
            {"operation": "sync_generate", "model": "nano_banana_2"},
            {"latency": {"fixed": 1}},
            "match.model: 'nano_banana_2' is not a model of segmind",
        ),
        (
            {"provider": "seaart", "operation": "status"},
            {"http_error": {"status": 410}},
            "effect.http_error.status: 410 is not an error code that seaart.status may answer",
        ),
        (
            {"operation": ["status", "result"]},
            {"job_failure": {"error_type": "CONTENT_BLOCKED"}},
            "effect.job_failure: changes the job a submit creates (operation batch_create or "
            "batch_create_stable or submit or sync_generate or sync_generate_stable), "
            "but match.operation is status, result",
        ),
    ],
)
async def test_a_rule_that_could_never_apply_is_refused(
    mock: Mock, match: dict, effect: dict, expected: str
) -> None:
    text = refusal(await post(mock, "faults", {"match": match, "effect": effect}, 400))
    assert expected in text


async def test_a_rule_on_names_that_exist_still_fires(mock: Mock) -> None:
    rule = {
        "match": {"provider": ["segmind", "seaart"], "operation": "status", "method": "GET"},
        "effect": {"http_error": {"status": 503}},
    }
    await post(mock, "faults", rule, 201)
    _, job = await mock.call(
        "seaart", "submit", "POST", "/model/v1/queue/nano_banana_pro", json={"prompt": "x"}
    )
    path = SEAART_STATUS.format(job["request_id"])
    await mock.call("seaart", "status", "GET", path, expect=503)


def test_a_scenario_rule_with_an_unknown_provider_names_its_line() -> None:
    text = (
        "faults:\n  - match: {provider: segmnd, operation: submit}\n"
        "    effect: {latency: {fixed: 1}}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    assert caught.value.problems == [
        's.yaml:2:23: faults[0].match.provider: "segmnd" is not one of "segmind", "seaart", '
        '"pixazo", "gemini", "fal" (did you mean \'segmind\'?)'
    ]


def test_a_scenario_rule_that_could_never_match_names_its_line() -> None:
    text = (
        "faults:\n  - match:\n      provider: segmind\n      operation: cancel\n"
        "    effect: {latency: {fixed: 1}}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("s.yaml:4:18: faults[0].match.operation: 'cancel' is not an")


# -- map-valued settings ---------------------------------------------------------------------

PROCESSING_KEYS = ", ".join(SETTINGS["processing_seconds"]["propertyNames"]["enum"])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"MOCK_PROCESSING_SECONDS": "segmnd/nano-banana=5"},
            "processing_seconds: unknown key 'segmnd/nano-banana' (did you mean "
            f"'segmind/nano-banana'?); allowed: {PROCESSING_KEYS}",
        ),
        (
            {"MOCK_PROCESSING_SECONDS": "seaart/nano-banana-pro=5"},
            "unknown key 'seaart/nano-banana-pro' (did you mean 'seaart/nano_banana_pro'?)",
        ),
        (
            {"MOCK_RETENTION_SECONDS": "seaart=600,pixzo=900"},
            "retention_seconds: unknown key 'pixzo' (did you mean 'pixazo'?); "
            "allowed: *, segmind, seaart, pixazo, gemini, fal",
        ),
    ],
)
def test_a_map_setting_with_an_unknown_key_is_refused(env: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_env(env)
    assert expected in str(caught.value)


def test_the_cli_refuses_an_unknown_key_in_one_line() -> None:
    stderr = mock_refuses("--retention-seconds", "segmnd=5")
    assert stderr.strip() == (
        "nanobanana-mock: retention_seconds: unknown key 'segmnd' (did you mean 'segmind'?); "
        "allowed: *, segmind, seaart, pixazo, gemini, fal"
    )


def test_a_scenario_names_the_line_of_an_unknown_key() -> None:
    text = "settings:\n  processing_seconds:\n    '*': 3\n    segmind/nano-banan: 5\n"
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    assert caught.value.problems == [
        's.yaml:4:5: settings.processing_seconds["segmind/nano-banan"]: unknown key (did you '
        f"mean 'segmind/nano-banana'?); allowed: {PROCESSING_KEYS}"
    ]


async def test_a_reset_with_an_unknown_key_changes_nothing(mock: Mock) -> None:
    body = {"settings": {"workers": 1, "retention_seconds": {"seeart": 5}}}
    text = refusal(await post(mock, "reset", body, 400))
    assert "unknown key 'seeart' (did you mean 'seaart'?)" in text
    assert mock.state.config.workers == 2


# -- setting names and control-plane fields ---------------------------------------------------


async def test_a_reset_names_an_unknown_setting_apart_from_a_start_up_one(mock: Mock) -> None:
    text = refusal(await post(mock, "reset", {"settings": {"wrokers": 1}}, 400))
    assert "unknown setting 'wrokers' (did you mean 'workers'?); allowed: api_keys" in text
    assert "cannot change" not in text
    text = refusal(await post(mock, "reset", {"settings": {"port": 1}}, 400))
    assert "cannot change port on reset (start-up settings)" in text
    text = refusal(await post(mock, "reset", {"settings": {"self_chek": True}}, 400))
    assert "unknown setting 'self_chek' (did you mean 'self_check'?)" in text


@pytest.mark.parametrize(
    ("path", "body", "word"),
    [
        ("reset", {"setings": {"workers": 1}}, "'setings' (did you mean 'settings'?)"),
        ("clock", {"advnce": 5}, "'advnce' (did you mean 'advance'?)"),
        ("credits", {"defualt": 5}, "'defualt' (did you mean 'default'?)"),
        ("rate-limits", {"rpm": 5, "scop": "all"}, "'scop' (did you mean 'scope'?)"),
    ],
)
async def test_an_unknown_field_of_a_control_body_is_named(
    mock: Mock, path: str, body: dict, word: str
) -> None:
    text = refusal(await post(mock, path, body, 400))
    assert f"unknown field {word}; allowed:" in text


HTTP_500 = {"http_error": {"status": 500}}


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [  # each said "Additional properties are not allowed ('methd' was unexpected)"
        (
            "faults",
            {"match": {"methd": "POST"}, "effect": HTTP_500},
            "match.methd: unknown key (did you mean 'method'?); allowed: provider, operation, "
            "method,",
        ),
        (
            "faults",
            {"effect": HTTP_500, "scope": {"frist": 1}},
            "scope.frist: unknown key (did you mean 'first'?); allowed: probability, first,",
        ),
        (
            "faults",
            {"faults": [{"effect": {"http_eror": {"status": 500}}}]},
            "effect.http_eror: unknown key (did you mean 'http_error'?); allowed: http_error, "
            "job_failure, latency, transport, drift",
        ),
        (
            "reset",
            {"scenario": {"rate_limts": [{"rpm": 1}]}},
            "rate_limts: unknown key (did you mean 'rate_limits'?); allowed: description, "
            "settings, faults, credits, rate_limits",
        ),
    ],
)
async def test_an_unknown_key_in_a_rule_or_scenario_body_is_named_with_the_allowed_ones(
    mock: Mock, path: str, body: dict, expected: str
) -> None:
    await post(mock, "rate-limits", {"rpm": 7}, 200)
    assert expected in refusal(await post(mock, path, body, 400))
    assert (await (await mock.client.get("/_mock/faults")).json())["faults"] == []
    limits = await (await mock.client.get("/_mock/rate-limits")).json()
    assert [limit["rpm"] for limit in limits["limits"]] == [7]  # the reset changed nothing


async def test_a_forced_failure_names_an_unknown_error_type(mock: Mock) -> None:
    _, job = await mock.call(
        "seaart", "submit", "POST", "/model/v1/queue/nano_banana_pro", json={"prompt": "x"}
    )
    body = {"state": "FAILED", "error_type": "CONTENT_BLOKED"}
    text = refusal(await post(mock, f"jobs/{job['request_id']}/state", body, 400))
    assert "unknown error_type 'CONTENT_BLOKED' (did you mean 'CONTENT_BLOCKED'?)" in text
    # the job is untouched, and its status answer keeps its contract
    path = SEAART_STATUS.format(job["request_id"])
    _, status = await mock.call("seaart", "status", "GET", path, expect=200)
    assert status["status"] == "IN_QUEUE"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "state: field required; allowed: SUCCEEDED, FAILED, CANCELLED, EXPIRED"),
        ({"state": None}, "state must be a string, got null; allowed: SUCCEEDED, FAILED"),
        ({"state": ["FAILED"]}, "state must be a string, got a list; allowed: SUCCEEDED, FAILED"),
    ],
)
async def test_a_forced_state_that_is_missing_or_no_string_is_named_so(
    mock: Mock, body: dict[str, Any], expected: str
) -> None:
    """`{"state": ["FAILED"]}` was `unknown state 'FAILED' (did you mean 'FAILED'?)`, and a
    missing state `unknown state None`."""
    _, job = await mock.call(
        "seaart", "submit", "POST", "/model/v1/queue/nano_banana_pro", json={"prompt": "x"}
    )
    text = refusal(await post(mock, f"jobs/{job['request_id']}/state", body, 400))
    assert expected in text, text
    assert "did you mean" not in text, text


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("rate-limits", {"rpm": 1, "scope": ["all"]}, "scope must be a string, got a list"),
        ("rate-limits", {"rpm": 1, "scope": None}, "scope must be a string, got null"),
        (
            "jobs/{}/state",
            {"state": "FAILED", "error_type": ["CONTENT_BLOCKED"]},
            "error_type must be a string, got a list; allowed: INFERENCE_FAILURE",
        ),
    ],
)
async def test_a_word_sent_as_a_list_is_told_its_type(
    mock: Mock, path: str, body: dict[str, Any], expected: str
) -> None:
    """`{"scope": ["all"]}` was `unknown scope 'all' (did you mean 'all'?)`."""
    _, job = await mock.call(
        "seaart", "submit", "POST", "/model/v1/queue/nano_banana_pro", json={"prompt": "x"}
    )
    text = refusal(await post(mock, path.format(job["request_id"]), body, 400))
    assert expected in text, text
    assert "did you mean" not in text, text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"provider": "segmnd"}, "unknown provider 'segmnd' (did you mean 'segmind'?)"),
        ({"operation": "sumbit"}, "unknown operation 'sumbit' (did you mean 'submit'?)"),
        ({"provder": "segmind"}, "unknown journal filter 'provder' (did you mean 'provider'?)"),
        # methods are upper case, as sent: 'post' matched nothing, silently
        ({"method": "post"}, "unknown method 'post' (did you mean 'POST'?); allowed: GET, HEAD"),
        ({"status": "4O4"}, "status must be a whole number from 100 to 599"),
        ({"status": "4xx"}, "status must be a whole number from 100 to 599"),
        # only one value counted: the second, which nobody checked
        ([("provider", "segmind"), ("provider", "segmnd")], "'provider' given more than once"),
    ],
)
async def test_a_journal_filter_that_could_match_nothing_is_named(
    mock: Mock, query: Any, expected: str
) -> None:
    resp = await mock.client.get("/_mock/journal", params=query)
    assert resp.status == 400
    assert expected in (await resp.json())["error"]


async def test_a_job_listing_names_an_unknown_provider(mock: Mock) -> None:
    resp = await mock.client.get("/_mock/jobs", params={"provider": "pixaz"})
    assert resp.status == 400
    assert "unknown provider 'pixaz' (did you mean 'pixazo'?)" in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [  # both listed every job, unfiltered
        (
            {"providr": "pixazo"},
            "unknown job listing filter 'providr' (did you mean 'provider'?); allowed: provider, "
            "limit",
        ),
        ([("provider", "segmind"), ("provider", "pixaz")], "'provider' given more than once"),
    ],
)
async def test_a_job_listing_names_an_unknown_or_repeated_filter(
    mock: Mock, query: Any, expected: str
) -> None:
    await mock.call("segmind", "submit", "POST", "/v2/nano-banana", json={"prompt": "x"})
    resp = await mock.client.get("/_mock/jobs", params=query)
    assert resp.status == 400
    assert expected in (await resp.json())["error"]


async def test_an_openapi_document_of_an_unknown_provider_is_named(mock: Mock) -> None:
    resp = await mock.client.get("/_mock/openapi/seart.json")
    assert resp.status == 404
    assert (await resp.json())["error"] == (
        "unknown provider 'seart' (did you mean 'seaart'?); "
        "allowed: segmind, seaart, pixazo, gemini, fal"
    )


def test_a_misspelt_mock_variable_is_warned_about() -> None:
    env = {"MOCK_WROKERS": "1", "MOCK_SEED": "3", "HOME": "/"}
    assert unknown_variables(env) == [
        "warning: MOCK_WROKERS is not a setting, ignored (did you mean 'MOCK_WORKERS'?)"
    ]


def test_an_unknown_word_is_cut_short_in_a_message() -> None:
    message = names.unknown("provider", "x" * 10_000, names.PROVIDERS)
    assert len(message) < 200 and "did you mean" not in message


def test_the_control_client_names_the_keyword_it_does_not_know() -> None:
    from nanobanana_mock.control.client import MockControl

    control = MockControl("http://127.0.0.1:9")  # never reached: refused before sending
    with pytest.raises(TypeError, match=r"provder \(did you mean 'provider'\?\)"):
        control.faults.http_error(503, provder="segmind")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"allowed: fault, job, key, limit"):
        control.journal.count(operaton="submit")  # type: ignore[call-arg]


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text("settings:\n  retention_seconds: {segmnd: 5}\n")
    return path


def test_the_cli_names_the_line_of_an_unknown_key_in_a_scenario(scenario_file: Path) -> None:
    stderr = mock_refuses("--scenario", str(scenario_file))
    assert f"{scenario_file}:2:23: settings.retention_seconds.segmnd: unknown key" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("status", "declared", "expected"),
    [
        (500, {500, 503}, True),
        (429, {500, 503}, False),
        (402, {406}, True),  # insufficient credits: either code asks for the provider's own
        (406, {402}, True),
        (402, {500}, False),
    ],
)
def test_answerable_is_the_one_credits_equivalence(
    status: int, declared: set[int], expected: bool
) -> None:
    """Fault rules, their reach check and prompt markers all ask this one predicate."""
    assert names.answerable(status, declared) is expected


def test_the_journal_schema_names_every_fate_of_a_job() -> None:
    """A job id not shown has one of ``jobs.FATES``; the journal's ``job`` says which (the
    control plane's ``?job=`` filter takes the same names)."""
    journal = schemas.load("mock", "control/journal")
    job = journal["properties"]["entries"]["items"]["properties"]["job"]
    assert job["enum"] == [*FATES, None]
