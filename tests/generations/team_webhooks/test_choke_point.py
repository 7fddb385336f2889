"""Every move of a job to a final status goes through ``engine.common.end``, which writes the
team's webhook deliveries in the same transaction: a new ``.update(status=Status.FAILED, …)``
elsewhere would end jobs silently (no webhook). This reads Kiln's code with ``ast`` and names
any such write."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}


def _final_statuses(node: ast.expr) -> set[str]:
    return {n.attr for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "Status"
            and n.attr in FINAL}


def writes_outside_end(root: Path) -> list[str]:
    found = []
    for package in ("generations", "accounts"):
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("update", "bulk_update", "save")):
                    continue
                for keyword in node.keywords:
                    if keyword.arg == "status" and _final_statuses(keyword.value):
                        found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_jobs_reach_a_final_status_only_through_engine_common_end():
    assert writes_outside_end(ROOT) == [], ("a job's final status written outside generations.engine.common.end "
                                            "(its webhooks would not be sent)")


def test_the_scan_finds_such_a_write(tmp_path):
    (tmp_path / "generations").mkdir()
    (tmp_path / "accounts").mkdir()
    (tmp_path / "generations" / "x.py").write_text(
        "def f(qs):\n    qs.filter(pk=1).update(status=Status.CANCELLED if a else Status.FAILED)\n")
    assert writes_outside_end(tmp_path) == ["generations/x.py:2"]
