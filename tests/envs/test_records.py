"""Episode records: record -> JSON -> replay round trip, and tampering is reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.records import (
    EpisodeRecord,
    LegacyRecordWarning,
    RecordDigestError,
    counter_names,
    env_id_for,
    load,
    record_digest,
    record_episode,
    save,
    validate,
)
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
    data["digest"] = record_digest(data)  # re-sealed: a record that the sim no longer matches
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert cli_main(["replay", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "step 3: vm0.refs" in out
    (tmp_path / "junk.json").write_text("[1, 2]")
    assert cli_main(["replay", str(tmp_path / "junk.json")]) == 2


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("seed", "4", "'seed' must be an int >= 0"),
        ("seed", 4.0, "'seed' must be an int >= 0"),
        ("seed", -1, "'seed' must be an int >= 0"),
        ("actions", [1.0, 2.0], "'actions': entry 0 must be a list"),
        ("actions", {"a": 1}, "'actions' must be a list of lists"),
        ("overrides", ["host_policy", "lru"], "'overrides' must be an object"),
        ("counters", 7, "'counters' must be a list of lists of ints"),
        ("episode_return", "1.5", "'episode_return' must be a finite number"),
        ("max_episode_steps", 0, "'max_episode_steps' must be None or an int >= 1"),
        ("scenario_id", 3, "'scenario_id' must be a string"),
    ],
)
def test_malformed_records_are_rejected_naming_the_field(record, tmp_path, capsys, field,
                                                         value, match):  # fmt: skip
    data = json.loads(record.to_json())
    data[field] = value
    data["digest"] = record_digest(data)  # well sealed, but malformed
    with pytest.raises(ValueError, match=match):
        EpisodeRecord.from_json(json.dumps(data))
    path = tmp_path / "malformed.json"
    path.write_text(json.dumps(data))
    assert cli_main(["replay", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and "Traceback" not in err[0]


def test_saved_records_carry_a_digest_of_their_content(record, tmp_path):
    data = json.loads(save(record, tmp_path / "ep.json").read_text())
    assert data["digest"] == record_digest(data) and len(data["digest"]) == 64


@pytest.mark.parametrize("cut", [1, 5])
def test_truncated_record_fails_its_digest_check(record, tmp_path, capsys, cut):
    """Cutting the last steps consistently (actions and counters) used to replay "OK"."""
    data = json.loads(record.to_json())
    data["actions"], data["counters"] = data["actions"][:-cut], data["counters"][:-cut]
    with pytest.raises(RecordDigestError, match="edited or truncated"):
        EpisodeRecord.from_json(json.dumps(data))
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(data))
    assert cli_main(["replay", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "OK" not in out
    assert len(err.strip().splitlines()) == 1 and "digest" in err


def test_edited_record_fails_its_digest_check(record, tmp_path, capsys):
    data = json.loads(record.to_json())
    data["episode_return"] += 1.0
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    assert cli_main(["replay", str(path)]) == 1
    assert "digest" in capsys.readouterr().err


def test_legacy_record_without_digest_loads_with_a_warning(record, tmp_path, capsys):
    data = json.loads(record.to_json())
    del data["digest"]
    with pytest.warns(LegacyRecordWarning, match="no digest"):
        again = EpisodeRecord.from_json(json.dumps(data))
    assert validate(again).ok
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(data))
    assert cli_main(["replay", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "OK: 12 steps" in out and "no digest" in err and len(err.strip().splitlines()) == 1


def test_records_name_the_env_version_of_their_scenario():
    """A record of a -v1 scenario says reclaim/Balloon-v1, one of a -v0 scenario
    reclaim/Balloon-v0 (issue 22: a default-v1 record used to say -v0)."""
    v1 = record_episode("default-v1", seed=1, max_episode_steps=4)
    assert v1.env_id == "reclaim/Balloon-v1"
    assert record_episode("default-v0", seed=1, max_episode_steps=4).env_id == "reclaim/Balloon-v0"
    assert env_id_for("thrash-v1") == "reclaim/Balloon-v1"
    assert env_id_for("steady-v0") == "reclaim/Balloon-v0"
    again = EpisodeRecord.from_json(v1.to_json())
    assert again.env_id == "reclaim/Balloon-v1" and validate(again).ok


def test_old_records_labelled_v0_still_load_and_replay(tmp_path):
    """Records written before the label followed the scenario say reclaim/Balloon-v0 for
    a -v1 scenario: they load (digest intact) and replay exactly."""
    rec = record_episode("default-v1", seed=2, max_episode_steps=6)
    data = json.loads(rec.to_json())
    data["env_id"] = "reclaim/Balloon-v0"  # as the old code wrote it, sealed by its digest
    data["digest"] = record_digest(data)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = load(path)
    assert old.env_id == "reclaim/Balloon-v0" and old.scenario_id == "default-v1"
    assert validate(old).ok
    assert cli_main(["replay", str(path)]) == 0


def test_unknown_env_id_is_a_mismatch(record):
    data = json.loads(record.to_json())
    data["env_id"] = "reclaim/Nope-v9"
    data["digest"] = record_digest(data)
    res = validate(EpisodeRecord.from_json(json.dumps(data)))
    assert not res.ok and res.mismatches[0].counter == "env_id"


def test_params_digest_counts_later_fields_once_set():
    """Fields added after v1 (kernel metadata, content model, closed loop) leave the
    digest of an unchanged host as it was (old records and the committed headroom rows
    stay valid) and change it once set."""
    import dataclasses

    from envs.physics import with_v2_physics
    from envs.records import params_digest
    from envs.scenarios import get_scenario
    from envs.sim.params import params_repr

    p = get_scenario("default-v1").params
    assert "closed_loop" not in params_repr(p) and "content_model" not in params_repr(p)
    assert params_repr(p).startswith("HostParams(") and "vms=(VmParams(" in params_repr(p)
    assert params_digest(with_v2_physics(p)) != params_digest(p)
    assert params_digest(dataclasses.replace(p, closed_loop=True)) != params_digest(p)
