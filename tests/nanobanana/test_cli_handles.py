"""The CLI's job-handle files: every accepted job leaves one, and resuming it saves the images
where the first run's ``--out`` pointed. Also the failure summary and the unexpected-error code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nanobanana_mock.client import JobHandle
from nanobanana_mock.client.cli import main
from tests.nanobanana.test_cli import INSTANT, KEY, MODEL, PROVIDERS, generate, on_handle


def images_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*_1.*"))


@INSTANT
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_completed_generate_leaves_a_handle_for_status_wait_and_cancel(
    nanobanana_mock, tmp_path, capsys, monkeypatch, provider
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(generate(nanobanana_mock, provider, Path("out"))) == 0
    (image,) = Path("out").glob("*_1.*")
    request_id = image.name.split("_1.")[0]
    handle_file = Path("out") / f"{request_id}.job.json"
    assert capsys.readouterr().out.endswith(f"; job handle {handle_file}\n")

    assert main(on_handle("status", handle_file)) == 0
    assert f"[{provider}] {request_id} SUCCEEDED" in capsys.readouterr().out
    image.unlink()
    assert main(on_handle("wait", handle_file)) == 0  # saved again, into out/
    assert capsys.readouterr().out.startswith("saved 1 image (") and image.exists()
    assert images_in(tmp_path) == []
    expected = 0 if provider == "seaart" else 13  # NotSupported elsewhere
    assert main(on_handle("cancel", handle_file)) == expected
    if provider == "seaart":
        assert capsys.readouterr().out == "already finished\n"


def test_wait_saves_where_the_first_out_pointed(
    nanobanana_mock, tmp_path, capsys, monkeypatch
) -> None:
    first, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(first)
    args = generate(nanobanana_mock, "seaart", Path("images"), "--timeout", "0", "--quiet")
    assert main(args) == 10
    (handle_file,) = (first / "images").glob("*.job.json")
    capsys.readouterr()
    nanobanana_mock.clock.advance(120)

    monkeypatch.chdir(elsewhere)  # another folder: the handle still knows where images go
    assert main(on_handle("wait", Path("..") / "project" / "images" / handle_file.name)) == 0
    assert images_in(first / "images") != [] and images_in(elsewhere) == []
    assert main(on_handle("wait", handle_file, "--out", "mine")) == 0  # a new --out wins
    assert images_in(elsewhere / "mine") == images_in(first / "images")

    moved = tmp_path / "moved"  # the folder moved with its handle
    shutil.move(first / "images", moved)
    assert main(on_handle("wait", moved / handle_file.name)) == 0
    assert images_in(moved) == images_in(elsewhere / "mine")
    assert not (first / "images").exists()
    capsys.readouterr()


@INSTANT
def test_save_handle_elsewhere_records_the_out_folder(
    nanobanana_mock, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    handle_file = Path("handles") / "apple.json"  # a folder that does not exist yet
    args = generate(nanobanana_mock, "pixazo", Path("pictures"), "--save-handle", str(handle_file))
    assert main(args) == 0
    assert json.loads(handle_file.read_text())["out"] == str(Path("..") / "pictures")
    assert list(Path("pictures").glob("*.job.json")) == []  # one handle, where it was asked
    shutil.rmtree("pictures")
    assert main(on_handle("wait", handle_file)) == 0
    assert len(images_in(tmp_path / "pictures")) == 1
    capsys.readouterr()


@INSTANT
def test_a_handle_saved_by_the_library_waits_into_the_current_folder(
    nanobanana_mock, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(generate(nanobanana_mock, "segmind", Path("out"))) == 0
    (handle_file,) = Path("out").glob("*.job.json")
    library_file = JobHandle.load(handle_file).save("job.json")  # no "out" member
    assert main(on_handle("wait", library_file)) == 0
    assert len(images_in(tmp_path)) == 1
    capsys.readouterr()


@pytest.mark.parametrize("out", [5, "", ["a"]])
def test_a_handle_file_with_a_bad_out_is_a_usage_error(tmp_path, capsys, out) -> None:
    handle = JobHandle("seaart", MODEL["seaart"], "x", "http://127.0.0.1:9")
    handle_file = tmp_path / "h.json"
    handle_file.write_text(json.dumps({**handle.to_dict(), "out": out}))
    assert main(on_handle("wait", handle_file)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nanobanana: UsageError: cannot read the handle file {handle_file}")
    assert '"out" is a folder name' in err


def test_an_out_folder_that_cannot_be_made_exits_2_before_paying(
    nanobanana_mock, tmp_path, capsys
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(generate(nanobanana_mock, "seaart", blocker / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nanobanana: UsageError: cannot create the output folder {blocker}")
    assert nanobanana_mock.journal.count(operation="submit") == 0


@INSTANT
def test_job_failed_names_the_error_type(nanobanana_mock, tmp_path, capsys) -> None:
    nanobanana_mock.faults.job_failure("Blocked by the filter", error_type="CONTENT_BLOCKED")
    assert main(generate(nanobanana_mock, "seaart", tmp_path)) == 7
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "nanobanana: JobFailed: seaart: CONTENT_BLOCKED: Blocked by the filter"
    assert main(generate(nanobanana_mock, "seaart", tmp_path, "--json")) == 7
    data = json.loads(capsys.readouterr().out)
    assert (data["error"], data["error_type"], data["exit_code"]) == (
        "JobFailed", "CONTENT_BLOCKED", 7
    )  # fmt: skip
    assert "CONTENT_BLOCKED: Blocked by the filter" in data["message"]


@INSTANT
def test_a_contract_violation_under_strict_exits_1(nanobanana_mock, tmp_path, capsys) -> None:
    drift = {"replace": {"path": "/images/0/width", "value": "1024"}}
    nanobanana_mock.faults.add(match={"provider": "pixazo", "operation": "result"},
                               effect={"drift": drift})  # fmt: skip
    assert main(generate(nanobanana_mock, "pixazo", tmp_path, "--strict", "--api-key", KEY)) == 1
    assert "nanobanana: ContractViolation: " in capsys.readouterr().err
