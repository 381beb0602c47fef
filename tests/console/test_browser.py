"""The console in a real headless Chromium (Playwright, Debian's chromium; never downloaded).

One journey as a community head: queue → conflict → resolve → return a record → close a
dispute case → reveal a field with a reason → export CSV → dashboard, with screenshots in
test-artifacts/screenshots/ and no Content-Security-Policy violation on the way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.console.conftest import ID_NUMBER, PHONE

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("LINLI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LINLI_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _case_form(page, action: str):
    return page.locator(f"form.case-form:has(input[name=action][value={action}])")


def test_review_journey(world, live_server, browser):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Sign in as the community head.
    page.goto(f"{live_server}/console/")
    assert page.url.startswith(f"{live_server}/console/login")
    _shot(page, "login.png")
    page.fill("input[name=username]", world.head.username)
    page.fill("input[name=password]", world.head.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/console/")

    # The queue.
    assert page.locator(".stat").first.inner_text().startswith("4")
    assert page.get_by_text("楼上漏水").is_visible()
    _shot(page, "queue.png")

    # A record with a conflict: both values, side by side; resolve with a reason.
    page.click("a.stat-warn")
    page.click("text=3号楼2单元502")
    page.wait_for_selector("section.conflicts")
    assert page.locator(".version").count() == 3  # two competing values + a new one
    _shot(page, "record_conflict.png")
    page.check("label.version:has-text('赵达') input[type=radio]")
    page.fill("form.conflict input[name=reason]", "电话核实，户主为赵达")
    page.click("form.conflict button[type=submit]")
    page.wait_for_selector("text=已解决“户主姓名”的冲突")
    assert page.locator("section.conflicts").count() == 0

    # Return a visit to the worker with a comment.
    page.goto(f"{live_server}/console/records/{world.visit}")
    assert page.locator("p.note-text").inner_text() == "<script>alert(1)</script>"  # as text
    page.fill("textarea[name=comment]", "请补充走访照片和老人用餐情况")
    page.click("button[value=returned]")
    page.wait_for_selector("text=已退回给网格员")

    # A dispute case: accept and assign here; the worker acts on the tablet; close here.
    page.goto(f"{live_server}/console/records/{world.dispute}")
    _case_form(page, "close").wait_for(state="detached")
    _case_form(page, "accept").locator("button").click()
    page.wait_for_selector("text=已受理。")
    form = _case_form(page, "assign")
    form.locator("input[name=responsible_unit]").fill("第一网格")
    form.locator("input[name=responsible_person]").fill("张网格")
    form.locator("button").click()
    page.wait_for_selector("text=等待网格员在移动端开始办理")
    world.dev.pull()
    world.dev.step(world.dispute, "start")
    world.dev.step(world.dispute, "resolve", mediation_outcome="written_agreement")
    world.dev.step(world.dispute, "follow_up", note="双方满意，已修好")
    world.dev.sync()
    page.reload()
    _case_form(page, "close").locator("textarea[name=opinion]").fill("调解成功，归档")
    _case_form(page, "close").locator("button").click()
    page.wait_for_selector("text=案件已归档，办理结束")
    assert page.locator(".path li.current").inner_text() == "已归档"
    _shot(page, "case_closed.png")

    # Reveal an ID number with a reason: shown once.
    page.goto(f"{live_server}/console/records/{world.resident}")
    assert ID_NUMBER not in page.content()
    page.select_option("form.reveal-form select[name=field]", "id_number")
    page.fill("form.reveal-form input[name=reason]", "办理低保，核实身份")
    page.click("form.reveal-form button[type=submit]")
    page.wait_for_selector("p.revealed")
    assert page.locator("p.revealed").inner_text() == ID_NUMBER
    _shot(page, "reveal.png")

    # Export the queue as CSV.
    page.goto(f"{live_server}/console/?status=all")
    with page.expect_download() as download_info:
        page.click("button[name=format][value=csv]")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    assert text.startswith("记录编号") and ID_NUMBER not in text and PHONE not in text

    # Dashboard, and the queue on a tablet.
    page.goto(f"{live_server}/console/dashboard")
    assert page.locator("svg.svgchart").count() >= 2
    _shot(page, "dashboard.png")
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto(f"{live_server}/console/")
    _shot(page, "queue_tablet.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768

    assert violations == [] and dialogs == []
    context.close()
