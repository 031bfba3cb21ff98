"""``reclaim data check`` and ``envs.data.check_published_data``: present, missing and
damaged published files, per trace-driven scenario (issue 22)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from envs.data import CHECKSUMS_FILE, check_published_data, published_checksums
from experiments.cli import main as cli_main

LIRS = "trace-lirs-v1"  # reads traces/lirs/{cpp,cs,gli,ps}.trace.gz


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder with one good file (its bytes made to match a patched checksum
    list), one damaged file, and the others of trace-lirs-v1 missing."""
    good, bad = "traces/lirs/cpp.trace.gz", "traces/lirs/cs.trace.gz"
    for rel, body in ((good, b"good bytes\n"), (bad, b"not the published bytes\n")):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(body)
    sums = published_checksums()
    sums[good] = hashlib.sha256(b"good bytes\n").hexdigest()
    listing = tmp_path / "sha256.txt"
    listing.write_text("".join(f"{sha}  {rel}\n" for rel, sha in sums.items()))
    monkeypatch.setattr("envs.data.CHECKSUMS_FILE", listing)
    monkeypatch.setattr("envs.data.published_checksums.__defaults__", (listing,))
    monkeypatch.setenv("RECLAIM_DATA_DIR", str(tmp_path))
    return tmp_path


def test_states_of_good_damaged_and_missing_files(data_dir: Path) -> None:
    (row,) = check_published_data([LIRS])
    states = {f.path: f.state for f in row.files}
    assert states == {
        "traces/lirs/cpp.trace.gz": "ok",
        "traces/lirs/cs.trace.gz": "damaged",
        "traces/lirs/gli.trace.gz": "missing",
        "traces/lirs/ps.trace.gz": "missing",
    }
    damaged = next(f for f in row.files if f.state == "damaged")
    assert "SHA-256" in damaged.detail and not row.ok
    assert (row.count("ok"), row.count("missing"), row.count("damaged")) == (1, 2, 1)


def test_every_trace_driven_scenario_is_listed_and_synthetic_ones_are_not(data_dir) -> None:
    ids = {r.scenario for r in check_published_data()}
    assert {"trace-lirs-v0", "trace-lirs-v1", "bitbrains-v1", "demand-v1"} <= ids
    assert "default-v1" not in ids and "trace-recorded-v1" not in ids  # shipped recordings
    assert all(not r.ok for r in check_published_data())  # nothing else in the folder


def test_a_folder_in_place_of_a_file_is_missing(data_dir: Path) -> None:
    (data_dir / "traces/lirs/gli.trace.gz").mkdir()
    (row,) = check_published_data([LIRS])
    assert {f.path: f.state for f in row.files}["traces/lirs/gli.trace.gz"] == "missing"


def test_cli_table_json_and_strict(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["data", "check", "--scenarios", LIRS]) == 0
    out = capsys.readouterr().out
    assert f"data folder: {data_dir}" in out
    assert "missing (2):" in out and "damaged (1):" in out
    assert "traces/lirs/cs.trace.gz: SHA-256" in out
    assert cli_main(["data", "--scenarios", LIRS, "--strict"]) == 1
    capsys.readouterr()
    assert cli_main(["data", "check", "--scenarios", LIRS, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["data_dir"] == str(data_dir)
    (sc,) = doc["scenarios"]
    assert sc["scenario"] == LIRS
    states = {f["path"]: f["state"] for f in sc["files"]}
    assert states["traces/lirs/cpp.trace.gz"] == "ok"
    assert states["traces/lirs/cs.trace.gz"] == "damaged"
    assert sorted(states.values()) == ["damaged", "missing", "missing", "ok"]
    assert cli_main(["data", "chek"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_checksums_ship_with_the_package() -> None:
    assert CHECKSUMS_FILE.parent.name == "envs" and CHECKSUMS_FILE.is_file()
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"data_sha256.txt"' in text
    assert len(published_checksums()) == 58


@pytest.mark.data
def test_the_shared_data_is_complete(shared_data: Path, capsys) -> None:
    rows = check_published_data(root=shared_data)
    assert rows and all(r.ok for r in rows), [
        (r.scenario, f.path, f.state) for r in rows for f in r.files if f.state != "ok"
    ]
    assert cli_main(["data", "check", "--strict"]) == 0
    assert "every file is present" in capsys.readouterr().out
