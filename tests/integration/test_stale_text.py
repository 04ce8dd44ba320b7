"""The book's and README's prose never describes a run state that the committed results contradict: no
seeds "planned" or a sweep that "spans sessions" once every run of the study has finished, no "the study uses
the bc split" while its primary table is on the standard split. Only prose is read: code cells decide what to
say from the results at build time and may hold either wording."""

import re
from pathlib import Path

import pytest

from miar import report as R
from miar.report.study_time import study_wall

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
FENCE = re.compile(r"^(`{3,}|:{3,})\{code-cell\}.*?^\1\s*$", re.M | re.S)  # a MyST code cell
CODE = re.compile(r"^```.*?^```\s*$", re.M | re.S)  # a plain code block (README)


def finished(results: Path) -> bool:
    """Every sweep of the study has run to the end (the fine-tuned arm's resumed sweep included)."""
    study = study_wall(results)
    return bool(study and study.get("complete"))


def standard_primary(results: Path) -> bool:
    return R.present(R.load_summary(results), R.MAIN_TABLE)


#  (a phrase that describes a run state, the condition under which the results contradict it)
STALE = [
    (r"\b(seeds?|runs?) (are |is )?planned\b|\bare planned\b", finished),
    (r"\b(spans|spanning|will span)\b[^.]{0,30}\b(sessions|invocations)\b", finished),
    (r"\bruns over several sessions\b|\badds seeds [\d-]+ over several sessions\b", finished),
    (r"\b(is|are) (still )?(running|in progress|part way)\b|\bwhatever has run\b|\bhave run so far\b", finished),
    (r"\bstudy uses the bc split\b", standard_primary),
]


def prose(text: str) -> str:
    return CODE.sub("", FENCE.sub("", text))


def stale_phrases(text: str, results: Path) -> list[str]:
    """The phrases of ``text``'s prose that describe a run state ``results`` contradicts."""
    body = prose(text)
    return [m.group(0) for pattern, contradicted in STALE if contradicted(results)
            for m in re.finditer(pattern, body, re.I)]


PAGES = sorted((ROOT / "book").glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_prose_matches_the_committed_run_state(page):
    found = stale_phrases(page.read_text(), RESULTS)
    assert not found, f"{page.relative_to(ROOT)}: stale run-state text {found}"


def test_stale_phrases_are_found_only_when_the_results_contradict_them(tmp_path):
    text = ("Ten seeds are planned (1111-1120), so the sweep spans several sessions.\n\n"
            "```{code-cell} python\nR.show('seeds are planned' if x else 'ran')\n```\n")
    if finished(RESULTS):
        assert stale_phrases(text, RESULTS) == ["seeds are planned", "spans several sessions"]
    empty = tmp_path / "results"
    empty.mkdir()
    assert stale_phrases(text, empty) == []  # nothing has run: "planned" is true there
    assert stale_phrases("Why the study uses the bc split.", empty) == []
