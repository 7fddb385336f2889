"""A Django ``{# #}`` comment ends on its own line: one that runs over two lines is not a comment
but text, shown on the page (it was, on every gallery and studio card). Longer notes use
``{% comment %}``."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_template_comment_runs_over_a_line():
    found = []
    for path in sorted([*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/**/templates/**/*.html")]):
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        for match in re.finditer(r"\{#(?:(?!#\}).)*?\n", text, re.S):
            found.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert found == []
