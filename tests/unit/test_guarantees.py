"""The book's "What is guaranteed" table (book/reproducibility.md) names only tests that exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def named_file(named: str) -> Path | None:
    """The test file a table row names: ``tests/<tier>/test_x.py`` as written, or ``tests/test_x.py`` (the name
    the rows were written with before the tiers) as the one file of that name in any tier; None when missing
    or ambiguous."""
    path = REPO / named
    if path.is_file():
        return path
    found = sorted((REPO / "tests").glob(f"*/{Path(named).name}")) if Path(named).parent == Path("tests") else []
    return found[0] if len(found) == 1 else None


def test_every_test_the_guarantees_table_names_exists():
    page = (REPO / "book" / "reproducibility.md").read_text()
    section = page.split("## What is guaranteed", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 40
    missing = [f"{f}::{t}" for f, t in named
               if (path := named_file(f)) is None or not re.search(rf"^def {t}\(", path.read_text(), flags=re.M)]
    assert not missing, missing
