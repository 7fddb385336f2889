"""axe-core in the browser tests: the WCAG 2.2 A and AA rules run against the page as it is.

axe-core comes from the npm registry (``make install`` puts it in .venv/axe; $AXE_CORE to use
another copy). It is brought in with ``page.evaluate(source)``: that runs through the DevTools
protocol, which the page's CSP (nonces, no inline script) does not govern, whereas a
``<script>`` tag added to the page would be refused. Missing, the tests that need it are
skipped with the reason, except when ``CI`` is set: then they fail (as Chromium does).

Colour contrast is computed by axe from the rendered colours; focus indicators are not
(see ``contrast`` below, used by the focus ring tests).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE_CORE = Path(os.environ.get("AXE_CORE", ROOT / ".venv/axe/node_modules/axe-core/axe.min.js"))
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@cache
def axe_source() -> str:
    if not AXE_CORE.exists():
        reason = f"no axe-core at {AXE_CORE} (make install: npm install --prefix .venv/axe axe-core)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the accessibility checks: {reason}")
        pytest.skip(reason)
    return AXE_CORE.read_text()


def axe_available() -> None:
    """Skip (or fail under CI) before a test does its set-up, when axe-core is missing."""
    axe_source()


def violations(page, context=None) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    return page.evaluate(
        """async ([context, tags]) => {
            const result = await axe.run(context || document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
            }));
        }""",
        [context, TAGS],
    )


def describe(found: list[dict]) -> str:
    lines = []
    for v in found:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:8]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary[:300]}")
        if len(v["nodes"]) > 8:
            lines.append(f"    ... and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


def assert_no_violations(page, context_label: str, context: str | None = None) -> None:
    """No WCAG 2.2 A/AA violation of any impact on the page (or inside the ``context`` selector)."""
    found = violations(page, context)
    assert not found, f"axe: {len(found)} WCAG violation(s) on {context_label} ({page.url}):\n{describe(found)}"


# WCAG's relative luminance and contrast ratio, computed in the page from getComputedStyle.
CONTRAST_JS = """
window.__kilnContrast = (() => {
  const parse = (c) => {
    const probe = document.createElement('span');
    probe.style.color = c;  // DevTools-evaluated script: the CSP does not apply
    document.body.appendChild(probe);
    const m = getComputedStyle(probe).color.match(/[\\d.]+/g).map(Number);
    probe.remove();
    return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
  };
  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
                                 b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  // The opaque background an element is drawn on: its own and its ancestors' backgrounds, composed.
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a > 0) layers.push(c);
      if (c.a >= 1) break;
    }
    let colour = {r: 255, g: 255, b: 255, a: 1};
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  return {parse, ratio, background, over};
})();
"""


def focus_ring(page, selector: str) -> dict:
    """Focus ``selector`` by keyboard-like focus and measure its outline: style, width, and its
    contrast against the background around the control and against the control's own fill."""
    page.evaluate(CONTRAST_JS)
    page.focus(selector)
    return page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            const s = getComputedStyle(el);
            const C = window.__kilnContrast;
            const ring = C.parse(s.outlineColor);
            const around = C.background(el.parentElement);
            const own = C.over(C.parse(s.backgroundColor), around);
            return {focusVisible: el.matches(':focus-visible'), style: s.outlineStyle, width: parseFloat(s.outlineWidth),
                    offset: parseFloat(s.outlineOffset), color: s.outlineColor,
                    againstBackground: C.ratio(C.over(ring, around), around), againstControl: C.ratio(C.over(ring, own), own)};
        }""",
        selector,
    )
