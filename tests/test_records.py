"""Episode records: record -> JSON -> replay round trip, and tampering is reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.records import EpisodeRecord, counter_names, load, record_episode, save, validate
from experiments.cli import main as cli_main


@pytest.fixture(scope="module")
def record() -> EpisodeRecord:
    return record_episode(seed=4, max_episode_steps=12, host_policy="lru")


def test_record_has_every_step(record):
    assert len(record.actions) == len(record.counters) == 12  # truncated at 12
    assert len(record.counters[0]) == len(counter_names(4))
    assert record.overrides == {"host_policy": "lru"} and record.params_digest


def test_round_trip_through_json(record, tmp_path):
    path = save(record, tmp_path / "ep.json")
    again = load(path)
    assert again == record
    result = validate(again)
    assert result.ok and bool(result) and result.steps == 12
    assert "OK" in result.report()


def test_tampered_counter_is_reported_with_step_and_name(record):
    data = json.loads(record.to_json())
    names = counter_names(4)
    col = names.index("vm2.guest_major_faults")
    data["counters"][6][col] += 1
    result = validate(EpisodeRecord(**data))
    assert not result.ok
    first = result.mismatches[0]
    assert (first.step, first.counter) == (7, "vm2.guest_major_faults")
    assert first.expected == first.actual + 1
    assert "step 7" in result.report() and "vm2.guest_major_faults" in result.report()


def test_tampered_action_or_seed_diverges(record):
    data = json.loads(record.to_json())
    data["actions"][3] = [-1.0, -1.0, -1.0, -1.0]
    result = validate(EpisodeRecord(**data))
    assert not result.ok and result.mismatches[0].step == 4
    data = json.loads(record.to_json())
    data["seed"] = 5
    assert not validate(EpisodeRecord(**data)).ok


def test_changed_params_and_bad_config_are_reported(record):
    data = json.loads(record.to_json())
    data["overrides"] = {"host_policy": "random"}
    result = validate(EpisodeRecord(**data))
    assert result.mismatches[0].counter == "params_digest"
    data["overrides"] = {"no_such_knob": 1}
    result = validate(EpisodeRecord(**data))
    assert result.mismatches[0].counter == "config" and "no_such_knob" in result.report()
    data = json.loads(record.to_json())
    data["actions"][0] = [float("nan")] * 4
    result = validate(EpisodeRecord(**data))
    assert result.mismatches[0].counter == "action" and result.mismatches[0].step == 1


def test_discrete_record_and_given_actions():
    acts = [np.array([2, 2, 1, 0])] * 3 + [np.array([0, 1, 2, 1])] * 2
    rec = record_episode(seed=1, actions=acts, action_mode="discrete")
    assert len(rec.actions) == 5 and rec.actions[0] == [2, 2, 1, 0]
    assert validate(EpisodeRecord.from_json(rec.to_json())).ok


def test_record_rejects_bad_arguments():
    with pytest.raises(ValueError, match="JSON scalars"):
        record_episode(seed=0, max_steps=1, vms=())
    with pytest.raises(ValueError, match="unknown option"):
        record_episode(seed=0, max_steps=1, nope=1)
    with pytest.raises(ValueError, match="format"):
        EpisodeRecord.from_json('{"format": 99}')


def test_replay_cli(record, tmp_path, capsys):
    path = save(record, tmp_path / "ok.json")
    assert cli_main(["replay", str(path)]) == 0
    assert "OK: 12 steps" in capsys.readouterr().out
    data = json.loads(record.to_json())
    data["counters"][2][0] += 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert cli_main(["replay", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "step 3: vm0.refs" in out
    (tmp_path / "junk.json").write_text("[1, 2]")
    assert cli_main(["replay", str(tmp_path / "junk.json")]) == 2
