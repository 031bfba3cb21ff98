"""``reclaim validate``: every registered fact is a test, plus the command's contract.

A fact the current physics misses would be marked here
``xfail(strict=True, reason=<the miss, with figures>)``: the suite stays green, the miss
stays visible, and a fix turns it into an XPASS failure. No band is ever loosened.
"""

from __future__ import annotations

import json

import pytest

from experiments import validate as val
from experiments.cli import main

# Facts the current physics misses: id -> reason with the figures (none today).
MISSED: dict[str, str] = {}


@pytest.mark.parametrize(
    "fact_id",
    [
        pytest.param(i, marks=pytest.mark.xfail(strict=True, reason=MISSED[i]))
        if i in MISSED
        else i
        for i in val.FACTS
    ],
)
def test_fact(fact_id):
    (res,) = val.validate([fact_id])
    assert res.fact.startswith(f"{fact_id}:")
    assert res.source and res.published and res.simulated and res.band
    assert res.passed, val.to_text([res])


def test_registry_holds_the_facts_of_issue_10():
    assert {"a", "b", "e"} <= set(val.FACTS)


def test_fact_a_compares_a_ballooned_vm_with_a_smaller_one():
    """The two runs differ (the ballooned VM pages more as b grows), and each ratio is
    the ballooned VM's stall over the smaller VM's."""
    (res,) = val.validate(["a"])
    rows = list(res.values.values())
    stalls = [r["smaller_us"] for r in rows]
    assert stalls == sorted(stalls) and stalls[-1] > 10 * stalls[0] > 0
    for r in rows:
        assert r["ratio"] == pytest.approx(r["ballooned_us"] / r["smaller_us"])


def test_fact_b_measures_the_host_policy():
    """An LRU host evicts what the guest would: its stall is within 5 % of ballooning's,
    below the random host's at every amount; the verdict is computed from the gaps."""

    def ratios(res):
        return [r["host_swap_us"] / r["balloon_us"] for r in res.values["per_amount"].values()]

    (lru,) = val.validate(["b"], val.Physics.of(host_policy="lru"))
    (rnd,) = val.validate(["b"], val.Physics())
    assert all(1.0 <= r < 1.05 for r in ratios(lru))
    assert all(a < b for a, b in zip(ratios(lru), ratios(rnd), strict=True))
    gaps = lru.values["gap_us"]
    assert lru.passed == (all(g > 0 for g in gaps) and gaps == sorted(gaps))
    assert "'lru'" in lru.note


def test_sharing_savings_exclude_zero_pages():
    params = val._sharing_host(val.Physics(), identical=True)
    run = val.simulate(params, [0] * params.num_vms, 60)
    s = val.sharing_savings(run["sim"], params)
    assert 0 < s["saved_nonzero_frames"] < s["saved_frames"]
    assert s["saved_frames"] == int(run["last"].host_field("sharing_saved_frames")[0])


def test_physics_overrides_apply_to_every_host():
    phys = val.Physics.of(host_policy="lru").with_(ksm_max_sharing=8)
    p = phys.params(vms=(val._filling_guest(),), host_frames=2048)
    assert (p.host_policy, p.ksm_max_sharing, p.host_frames) == ("lru", 8, 2048)
    assert val.Physics().params(vms=(val._filling_guest(),)).host_policy == "random"


def test_registering_a_duplicate_fact_fails():
    with pytest.raises(ValueError, match="already registered"):
        val.fact("a")(lambda physics: None)


def test_unknown_fact_is_a_value_error():
    with pytest.raises(ValueError, match="unknown fact 'z'"):
        val.validate(["z"])


# ------------------------------------------------------------------ the command
def test_cli_json_and_out(tmp_path, capsys):
    out = tmp_path / "facts.json"
    assert main(["validate", "--facts", "a,e", "--json", "--out", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["fact"][0] for r in rows] == ["a", "e"]
    for r in rows:
        assert {"fact", "source", "published", "simulated", "passed", "note"} <= set(r)
        assert isinstance(r["passed"], bool)
    assert json.loads(out.read_text()) == rows


def test_cli_prints_the_table(capsys):
    assert main(["validate", "--facts", "a"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("[PASS] a:") and "published:" in text and "1/1 facts" in text


def test_cli_strict_returns_1_on_a_missed_fact(capsys, monkeypatch):
    def missed(physics):
        return val.FactResult("z: never", "nobody", "1", "2", "[1, 1]", passed=False)

    monkeypatch.setitem(val.FACTS, "z", val.Fact("z", missed))
    assert main(["validate", "--facts", "z"]) == 0  # reported, not failed
    assert "[MISS] z: never" in capsys.readouterr().out
    assert main(["validate", "--facts", "z", "--strict"]) == 1


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["validate", "--facts", "nope"], "--facts"),
        (["validate", "--set", "novalue"], "--set"),
        (["validate", "--set", "no_such_field=1"], "--set"),
        (["validate", "--set", "host_policy='magic'"], "--set"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(capsys, argv, flag):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reclaim validate: error:") and flag in err[0]
