"""The book's "What is guaranteed" table (book/reproducibility.md) names only tests that exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_test_the_guarantees_table_names_exists():
    page = (REPO / "book" / "reproducibility.md").read_text()
    section = page.split("## What is guaranteed", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 40
    missing = [f"{f}::{t}" for f, t in named
               if not re.search(rf"^def {t}\(", (REPO / f).read_text(), flags=re.M)]
    assert not missing, missing
