"""What the portal's browser tests check on every page, and their screenshots.

The browser is tests/support/browser.py's (Debian's Chromium under Playwright; the tests skip
with the reason when either is missing). Screenshots go to var/screenshots/portal/ (not
committed).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.browser import chromium, unavailable  # noqa: F401 - the portal tests' launcher

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "portal"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


# What a page must get right at any width: plain words (no rule numbers), a language, one h1,
# a label for every field, a name for every link and button, text contrast of at least 4.5:1
# (3:1 for large text) against the background it sits on, and nothing wider than the screen.
_CHECKS = """() => {
  const problems = [];
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = el => { for (; el; el = el.parentElement) {
    const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  if (!document.documentElement.lang) problems.push('no lang');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  for (const el of document.querySelectorAll('input:not([type=hidden]), textarea, select'))
    if (!el.labels || !el.labels.length) problems.push('no label: ' + (el.name || el.id));
  for (const el of document.querySelectorAll('a, button'))
    if (!el.textContent.trim()) problems.push('no name: ' + el.outerHTML.slice(0, 80));
  for (const el of document.querySelectorAll('body *')) {
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!text || style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need)
      problems.push(`contrast ${ratio.toFixed(2)}: ${el.textContent.trim().slice(0, 40)}`);
  }
  if (/\\bD\\d{1,2}\\b/.test(document.body.innerText)) problems.push('a rule number');
  if (document.documentElement.scrollWidth > window.innerWidth)
    problems.push('wider than the screen: ' + document.documentElement.scrollWidth);
  return problems;
}"""


async def screenshot(page, name: str) -> None:
    """The page as it is now, at desktop and at phone width, after checking at each width
    what _CHECKS checks."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        assert await page.evaluate(_CHECKS) == [], f"{name} at {label} width"
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)
