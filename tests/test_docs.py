"""The documentation: a README that stays a front page, the release files, links that
resolve, and a data checksum list that matches the scenarios."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests import REPO

README = REPO / "README.md"
README_MAX_BYTES = 12_000  # Stable-Baselines3's front page is about this size
DATA_SHA256 = REPO / "envs" / "data_sha256.txt"  # shipped with the package

# The first suffix envs.data tries for each kind: the published, gzipped files.
PUBLISHED_SUFFIX = {"lirs": ".trace.gz", "spec2000": ".trace.gz", "arc": ".lis.gz"}
DEMAND_SUFFIX = ".csv.gz"

_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_SHA_LINE = re.compile(r"^([0-9a-f]{64})  ((?:traces|demand)/[A-Za-z0-9_.\-/]+)$")


def _pages() -> list[Path]:
    """Every markdown page a reader reaches from the README."""
    pages = [README, REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
    pages += sorted((REPO / "experiments" / "results").glob("*/README.md"))
    return pages + [REPO / "experiments" / "results" / "README.md"]


def _links(text: str) -> list[str]:
    """The link targets of a markdown text, outside code blocks and code spans."""
    return _LINK.findall(_CODE_SPAN.sub("", _FENCE.sub("", text)))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a markdown page (lowercase, punctuation dropped,
    spaces to hyphens; a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in _FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _pyproject_version() -> str:
    m = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert m, "pyproject.toml has no version line"
    return m.group(1)


def _checksum_rows() -> list[tuple[str, str]]:
    return [
        (m.group(1), m.group(2))
        for m in map(_SHA_LINE.match, DATA_SHA256.read_text(encoding="utf-8").splitlines())
        if m
    ]


def test_readme_is_a_front_page() -> None:
    raw = README.read_bytes()
    assert len(raw) <= README_MAX_BYTES, f"README.md is {len(raw)} bytes"
    text = raw.decode("utf-8")
    assert "make demo" in text and "make test" in text
    assert "../shared" not in text, "a user's clone has no ../shared"


def test_readme_lists_every_cli_command() -> None:
    from experiments.cli import COMMANDS

    text = README.read_text(encoding="utf-8")
    missing = [name for name in COMMANDS if f"`reclaim {name}`" not in text]
    assert not missing, f"README's command table lacks {missing}"


def test_readme_headline_v2_matches_the_committed_run() -> None:
    """The front page's v2 headline numbers are headline-v2's headline.json, as written."""
    head = json.loads((REPO / "experiments/results/headline-v2/headline.json").read_text())
    text = " ".join(README.read_text(encoding="utf-8").split())  # lines joined
    best, heur = head["best_learned"], head["best_heuristic"]
    lo, hi = head["poi_ci"]
    poi = f"P({best} > {heur}) = **{head['poi_vs_best_heuristic']:.3f}** [{lo:.3f}, {hi:.3f}]"
    assert poi in text, f"README lacks {poi!r}"
    assert f"IQM **{head['iqm'][heur]['IQM']:.3f}**" in text
    tuned = head["strongest_tuned_heuristic"]
    assert f"{tuned} ({head['iqm'][tuned]['IQM']:.3f})" in text
    assert f"P = {head['poi_vs_strongest_tuned']:.3f}" in text
    assert f"scores {head['gap_closed'][best]:.3f}" in text
    assert head["goal_met"] is False and "no learned policy beats" in text.lower()


def test_readme_headline_matches_the_committed_run() -> None:
    """The front page's headline numbers are headline-v1's headline.json, as written."""
    head = json.loads((REPO / "experiments/results/headline-v1/headline.json").read_text())
    text = README.read_text(encoding="utf-8")
    best, heur = head["best_learned"], head["best_heuristic"]
    poi = f"P({best.upper()} > {heur.upper()}) = **{head['poi_vs_best_heuristic']:.3f}**"
    assert poi in text, f"README lacks {poi!r}"
    assert f"IQM **{head['iqm'][heur]['IQM']:.3f}**" in text
    assert head["goal_met"] is False and "no learned policy beats" in text.lower()


def test_release_files() -> None:
    version = _pyproject_version()
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
    license_text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "Copyright (c) 2026 The ReclaimGym authors" in license_text
    cff = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf"^version: {re.escape(version)}$", cff, re.M)
    assert re.search(r"^references:$", cff, re.M)


def test_citation_cff_parses() -> None:
    yaml = pytest.importorskip("yaml")  # installed with the rl/tune/cluster extras
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["type"] == "software" and cff["title"] == "ReclaimGym"
    assert cff["license"] == "MIT" and str(cff["version"]) == _pyproject_version()
    assert cff["authors"] == [{"name": "The ReclaimGym authors"}]
    titles = " ".join(ref["title"] for ref in cff["references"])
    cited_works = (
        "Business-Critical Workloads", "LIRS", "ARC", "SPEC CPU2000",  # the datasets
        "VMware ESX Server", "VSwapper", "Memory Sharing", "VIRTIO_BALLOON_F_SG",  # validate
    )  # fmt: skip
    for cited in cited_works:
        assert cited in titles, f"CITATION.cff does not cite {cited}"
    for ref in cff["references"]:
        assert ref["authors"] and all("name" in a or "family-names" in a for a in ref["authors"])


def test_relative_links_resolve() -> None:
    broken = []
    for page in _pages():
        for target in _links(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.\-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_readme_links_every_docs_page() -> None:
    """Every docs page is one click from the front page."""
    targets = {t.partition("#")[0] for t in _links(README.read_text(encoding="utf-8"))}
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{page.name}" in targets, f"README does not link docs/{page.name}"


def test_data_checksums_are_well_formed() -> None:
    lines = DATA_SHA256.read_text(encoding="utf-8").splitlines()
    assert lines, "envs/data_sha256.txt is empty"
    bad = [line for line in lines if not _SHA_LINE.match(line)]
    assert not bad, f"lines not in sha256sum format (<sha256>  <path>): {bad}"
    paths = [p for _, p in _checksum_rows()]
    assert len(paths) == len(set(paths)), "a file is listed twice"
    assert not any(".." in Path(p).parts for p in paths)
    table = (REPO / "docs" / "data.md").read_text(encoding="utf-8")
    for sha, path in _checksum_rows():
        assert f"| `{path}` | `{sha}` |" in table, f"docs/data.md's table lacks {path}"


def test_data_checksums_cover_exactly_the_scenarios_files() -> None:
    from envs.scenarios import get_scenario, scenario_ids

    needed = set()
    for sid in scenario_ids():
        for vm in get_scenario(sid).params.vms:
            for spec in vm.workload.traces:
                if spec.kind in PUBLISHED_SUFFIX:
                    needed.add(f"traces/{spec.name}{PUBLISHED_SUFFIX[spec.kind]}")
            if vm.workload.demand is not None:
                needed |= {f"demand/{n}{DEMAND_SUFFIX}" for n in vm.workload.demand.names}
    assert needed, "no scenario reads a published dataset"
    assert {p for _, p in _checksum_rows()} == needed


@pytest.mark.data
def test_data_checksums_match_the_shared_data(shared_data: Path) -> None:
    wrong = []
    for sha, path in _checksum_rows():
        f = shared_data / path
        if not f.exists():
            wrong.append(f"{path}: missing")
        elif hashlib.sha256(f.read_bytes()).hexdigest() != sha:
            wrong.append(f"{path}: checksum differs")
    assert not wrong, "\n".join(wrong)
