"""matrix.html as a person sees it: headless Chromium driven by selenium + chromedriver.

The page is rendered from a real run (the builtin reference provider and some fault variants
of a reference server, among them one that accepts any key, two providers without a key, an
unreachable one), compared with a baseline, then opened from file://, clicked, filtered,
sorted and screenshotted (also at phone size).  Without Chromium these tests skip with the
reason; CI installs it (.ci/run) and sets CONFORMANCE_REQUIRE_BROWSER=1 so they cannot skip
there.  ``CONFORMANCE_UPDATE_SCREENSHOT=1`` writes the README's docs/matrix.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conformance.reference.server import ReferenceServer
from conformance.report import write_reports
from conformance.report.diff import Snapshot, stored_baseline
from conformance.report.matrix import render_matrix
from conformance.results import RunData, load_run
from tests.conftest import (
    KEY_ENV,
    REPO,
    SELFTEST_KEY,
    RunOutput,
    external,
    run_suite,
    write_providers,
)
from tests.test_i18n import chinese_demo_run
from tests.test_report import synthetic_run
from tests.test_report_cli import shared_runs

BROWSER = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser"))
                if p), None)
DRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--hide-scrollbars")
FAMILIES = "models or chat or streaming or stop or errors or auth"

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select, WebDriverWait
    SELENIUM: str | None = None
except ImportError as exc:  # pragma: no cover - the test extra installs it
    SELENIUM = f"selenium is not installed ({exc}); pip install -e '.[test]'"


def _missing() -> str | None:
    if SELENIUM:
        return SELENIUM
    if BROWSER is None or DRIVER is None:
        return ("Chromium and chromedriver are not installed "
                "(apt-get install chromium chromium-driver; CI installs them)")
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    reason = _missing()
    if reason:
        if os.environ.get("CONFORMANCE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required here: {reason}")
        pytest.skip(reason)
    assert BROWSER and DRIVER
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1400,900")
    options.add_argument("--force-device-scale-factor=1")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@dataclass
class Page:
    path: Path
    data: dict[str, Any]      # results.json
    providers: list[str]

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def result(self, provider: str, check: str) -> dict[str, Any]:
        return next(r for r in self.data["results"]
                    if r["provider"] == provider and r["check"] == check)

    def column(self, provider: str) -> int:
        """The provider's ``data-col`` in the page (its place among the shown columns in
        run order; unrun providers have none)."""
        shown = [p["name"] for p in self.data["providers"] if not p.get("skipped")]
        return shown.index(provider)


@pytest.fixture(scope="module")
def matrix(reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Page:
    """A real run of ten providers covering every outcome, with a baseline in which the
    stop checks of ``ignores-stop`` still passed and ``no-done`` was failing one more
    check. ``reference`` is the builtin one (shown apart); two providers have no key."""
    def build(tmp: Path) -> dict[str, RunOutput]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = write_providers(tmp / "providers.yaml", [
            {"name": "reference", "builtin": "reference"},
            external("ignores-stop", reference_server.variant_url(["ignore_stop"])),
            external("any-key", reference_server.variant_url(["accept_any_key"])),
            external("untidy", reference_server.variant_url(
                ["omit_nullable_fields", "chunk_ids_vary", "models_retrieve_html_404"])),
            external("declines-stop", reference_server.variant_url(["reject_stop"])),
            external("no-done", reference_server.variant_url(["no_done"])),
            external("html-errors", reference_server.variant_url(["errors_as_html"])),
            {"name": "no-key", "base_url": "https://relay.example/v1",
             "api_key": "${DEMO_RELAY_API_KEY}", "model": "gpt-4o-mini"},
            {"name": "no-key-either", "base_url": "https://other-relay.example/v1",
             "api_key": "${DEMO_OTHER_API_KEY}", "model": "gpt-4o-mini"},
            external("unreachable", f"http://127.0.0.1:{port}/v1", retries=0,
                     timeouts={"connect": 2, "read": 2, "total": 5, "stall": 2}),
        ])
        return {"run": run_suite(config, tmp / "report", "-m", FAMILIES, "-n", "2")}

    shared = shared_runs(tmp_path_factory, "browser", build)["run"]
    assert shared.returncode == 0, shared.stdout[-3000:] + shared.stderr[-2000:]
    # This module's own copy: rendering below must not race another worker's reading.
    out = RunOutput(0, shared.stdout, shared.stderr, tmp_path_factory.mktemp("page") / "report")
    shutil.copytree(shared.report_dir, out.report_dir)
    data = load_run(out.report_dir)
    baseline = Snapshot.from_run(data)
    for key, (outcome, _) in list(baseline.outcomes.items()):
        if key[0] == "ignores-stop" and outcome != "pass":
            baseline.outcomes[key] = ("pass", "")
    baseline.outcomes[("no-done", "streaming.reassembled")] = ("fail", "reassembled text empty")
    baseline.run["id"] = "20261121T031700Z-night"
    write_reports(out.report_dir, data, baseline)
    return Page(out.report_dir / "matrix.html", out.data,
                [p["name"] for p in out.data["providers"]])


def wait(browser: WebDriver, condition: Any, timeout: float = 10) -> Any:
    return WebDriverWait(browser, timeout).until(condition)


def cell(browser: WebDriver, page: Page, provider: str, check: str) -> Any:
    column = browser.find_element(By.CSS_SELECTOR, f'th[data-provider="{provider}"]')
    assert int(column.get_attribute("data-col")) == page.column(provider)
    return browser.find_element(
        By.CSS_SELECTOR,
        f'tr[data-check="{check}"] td[data-col="{page.column(provider)}"] button')


def head_order(browser: WebDriver) -> list[str]:
    return [str(n) for n in browser.execute_script(
        "return Array.from(document.querySelectorAll('thead th[data-provider]'))"
        ".map(h => h.dataset.provider)")]


def row_order(browser: WebDriver, check: str) -> list[str]:
    """The providers of a row's cells, left to right (by the heads' data-col)."""
    return [str(n) for n in browser.execute_script(
        "var names = {}; document.querySelectorAll('thead th[data-provider]').forEach("
        "h => names[h.dataset.col] = h.dataset.provider);"
        "return Array.from(document.querySelectorAll("
        "'tr[data-check=\"' + arguments[0] + '\"] td[data-col]')).map(c => names[c.dataset.col])",
        check)]


def shown_providers(browser: WebDriver) -> list[str]:
    """The providers whose column head is displayed, left to right."""
    return [str(n) for n in browser.execute_script(
        "return Array.from(document.querySelectorAll('thead th[data-provider]'))"
        ".filter(h => h.offsetParent !== null).map(h => h.dataset.provider)")]


def visible_checks(browser: WebDriver) -> list[str]:
    return [str(c) for c in browser.execute_script(
        "return Array.from(document.querySelectorAll('tr.chk'))"
        ".filter(r => r.offsetParent !== null).map(r => r.dataset.check)")]


def panel_text(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def severe_console_errors(browser: WebDriver) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def load(browser: WebDriver, url: str) -> None:
    browser.get("about:blank")
    browser.get(url)
    wait(browser, lambda b: b.execute_script("return document.readyState") == "complete")


def test_clicking_a_cell_shows_its_evidence(driver: WebDriver, matrix: Page) -> None:
    driver.set_window_size(1400, 900)
    load(driver, matrix.url)
    expected = matrix.result("ignores-stop", "stop.string")
    assert expected["outcome"] == "fail"
    target = cell(driver, matrix, "ignores-stop", "stop.string")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    target.click()
    panel = wait(driver, lambda b: b.find_element(By.ID, "panel"))
    wait(driver, lambda b: panel.is_displayed())
    assert panel_text(driver, "panel-message") == expected["message"]
    assert "fail" in panel_text(driver, "panel-outcome")
    assert panel_text(driver, "panel-check") == "stop.string"
    text = panel.text
    assert "regression" in text and "20261121T031700Z-night" in text
    assert "POST /variant/ignore_stop/v1/chat/completions" in text and '"stop"' in text
    assert "Bearer ***" in text
    assert driver.current_url.endswith("#stop.string%40ignores-stop")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait(driver, lambda b: not panel.is_displayed())
    assert severe_console_errors(driver) == []


def test_screenshot(driver: WebDriver, matrix: Page) -> None:
    """What the README shows: families folded to their scores but one, a failed cell open.
    The panel docks beside the matrix on a wide screen, so every column stays visible."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1760, "height": 1240, "deviceScaleFactor": 1,
                            "mobile": False})
    try:
        load(driver, matrix.url)
        driver.find_element(By.ID, "collapse-all").click()
        driver.find_element(By.CSS_SELECTOR, 'tbody[data-family="stop"] button.toggle').click()
        cell(driver, matrix, "ignores-stop", "stop.string").click()
        panel = driver.find_element(By.ID, "panel")
        wait(driver, lambda b: panel.is_displayed())
        last_column = driver.find_elements(By.CSS_SELECTOR, "thead th[data-col]")[-1]
        assert last_column.rect["x"] + last_column.rect["width"] <= panel.rect["x"] + 1
        shot = matrix.path.parent / "matrix.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("CONFORMANCE_UPDATE_SCREENSHOT") == "1":
            (REPO / "docs").mkdir(exist_ok=True)
            shutil.copy(shot, REPO / "docs" / "matrix.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_stream_evidence_lists_events_with_timing(driver: WebDriver, matrix: Page) -> None:
    load(driver, matrix.url)
    target = cell(driver, matrix, "no-done", "streaming.done_sentinel")
    driver.execute_script("arguments[0].click()", target)
    wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    expected = matrix.result("no-done", "streaming.done_sentinel")
    assert panel_text(driver, "panel-message") == expected["message"]
    events = driver.find_elements(By.CSS_SELECTOR, "#panel ol.events li")
    exchange = expected["evidence"]["exchanges"][0]
    assert len(events) == len(exchange["response"]["events"]) > 2
    first = exchange["response"]["events"][0]
    assert events[0].text.startswith(f"+{first['t_ms']:g} ms")
    assert "data: {" in events[0].text


def test_deep_link_opens_the_cell(driver: WebDriver, matrix: Page) -> None:
    load(driver, matrix.url + "#stop.list%40declines-stop")
    wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    expected = matrix.result("declines-stop", "stop.list")
    assert expected["outcome"] == "unsupported"
    assert panel_text(driver, "panel-message") == expected["message"]
    assert "unsupported" in panel_text(driver, "panel-outcome")


def test_filters(driver: WebDriver, matrix: Page) -> None:
    load(driver, matrix.url)
    all_checks = visible_checks(driver)
    assert len(all_checks) == len({r["check"] for r in matrix.data["results"]})
    provider = Select(driver.find_element(By.ID, "f-provider"))
    deviations = driver.find_element(By.ID, "f-dev")
    # One provider, only deviations: exactly its non-passing (or changed) checks.
    provider.select_by_visible_text("ignores-stop")
    deviations.click()
    expected = {r["check"] for r in matrix.data["results"]
                if r["provider"] == "ignores-stop" and r["outcome"] != "pass"}
    assert expected and set(visible_checks(driver)) == expected
    shown_columns = driver.execute_script(
        "return Array.from(document.querySelectorAll('thead th[data-col]'))"
        ".filter(c => c.offsetParent !== null).map(c => c.textContent.trim().split(/\\s/)[0])")
    assert shown_columns == ["ignores-stop"]
    # The reference passes everything: nothing deviates.
    provider.select_by_visible_text("reference")
    assert visible_checks(driver) == []
    assert "0 of" in driver.find_element(By.ID, "f-count").text
    deviations.click()
    provider.select_by_visible_text("all")
    Select(driver.find_element(By.ID, "f-family")).select_by_visible_text("stop")
    assert {c.split(".")[0] for c in visible_checks(driver)} == {"stop"}
    Select(driver.find_element(By.ID, "f-family")).select_by_visible_text("all")
    search = driver.find_element(By.ID, "f-text")
    search.send_keys("done")
    assert set(visible_checks(driver)) == {"streaming.done_sentinel",
                                           "streaming.nothing_after_done"}
    search.send_keys(Keys.BACKSPACE * len("done"))  # as typed: fires input events
    assert len(visible_checks(driver)) == len(all_checks)
    # Families fold and unfold.
    toggle = driver.find_element(By.CSS_SELECTOR, 'tbody[data-family="chat"] button.toggle')
    toggle.click()
    assert not any(c.startswith("chat.") for c in visible_checks(driver))
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert any(c.startswith("chat.") for c in visible_checks(driver))
    assert severe_console_errors(driver) == []


def test_narrow_screen(driver: WebDriver, matrix: Page) -> None:
    driver.set_window_size(390, 844)
    try:
        load(driver, matrix.url)
        width = driver.execute_script("return window.innerWidth")
        # The page itself does not scroll sideways; the matrix scrolls inside its box.
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        scroller = driver.find_element(By.CLASS_NAME, "scroller")
        assert driver.execute_script(
            "return arguments[0].scrollWidth > arguments[0].clientWidth", scroller)
        target = cell(driver, matrix, "html-errors", "errors.malformed_json")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
        target.click()
        panel = driver.find_element(By.ID, "panel")
        wait(driver, lambda b: panel.is_displayed())
        assert abs(panel.size["width"] - width) <= 2
        expected = matrix.result("html-errors", "errors.malformed_json")
        assert panel_text(driver, "panel-message") == expected["message"]
        driver.save_screenshot(str(matrix.path.parent / "matrix-narrow.png"))
    finally:
        driver.set_window_size(1400, 900)


def test_twenty_providers_by_a_hundred_checks(driver: WebDriver, tmp_path: Path) -> None:
    data = synthetic_run(20, 100, pad=200)
    write_reports(tmp_path, data)
    started = time.perf_counter()
    load(driver, (tmp_path / "matrix.html").resolve().as_uri())
    assert time.perf_counter() - started < 20
    # Past twelve providers the rest are folded; "show all" brings every column back.
    assert len(shown_providers(driver)) == 12
    driver.find_element(By.ID, "fold-all").click()
    assert shown_providers(driver) == head_order(driver) and len(head_order(driver)) == 20
    # Sticky headers: scrolled down and right, the provider row and the check column stay.
    scroller = driver.find_element(By.CLASS_NAME, "scroller")
    driver.execute_script("arguments[0].scrollTop = 3000; arguments[0].scrollLeft = 900",
                          scroller)
    top = driver.execute_script("return arguments[0].getBoundingClientRect().top", scroller)
    header = driver.find_element(By.CSS_SELECTOR, "thead th[data-col='19']")
    assert abs(header.rect["y"] - top) <= 2
    last = data.results[-1]
    button = driver.find_element(
        By.CSS_SELECTOR, f'tr[data-check="{last.check}"] td[data-col="19"] button')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    row_header = driver.find_element(By.CSS_SELECTOR, f'tr[data-check="{last.check}"] th')
    scroller_left = driver.execute_script(
        "return arguments[0].getBoundingClientRect().left", scroller)
    assert abs(row_header.rect["x"] - scroller_left) <= 2
    button.click()
    try:
        wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    except TimeoutException:  # pragma: no cover - shows what the page said
        raise AssertionError(json.dumps(severe_console_errors(driver))) from None
    assert panel_text(driver, "panel-message") == last.message
    assert severe_console_errors(driver) == []


# -- picking a provider (issue 13) --------------------------------------------------------------

def _sorted_by(browser: WebDriver, key: str) -> list[str]:
    """The real providers in the order sorting by ``key`` must give (the reference last)."""
    heads = browser.execute_script(
        "return Array.from(document.querySelectorAll('thead th[data-provider]')).map(h => "
        "[h.dataset.provider, h.dataset[arguments[0]], +h.dataset.order, "
        "h.classList.contains('ref')])", key)
    real = [h for h in heads if not h[3]]

    def rank(head: list[Any]) -> tuple[bool, float, int]:
        value = head[1]
        if value == "":
            return True, 0.0, head[2]
        return False, float(value) if key == "speed" else -float(value), head[2]
    return [h[0] for h in sorted(real, key=rank)] + [h[0] for h in heads if h[3]]


def test_sorting_reorders_the_columns(driver: WebDriver, matrix: Page) -> None:
    load(driver, matrix.url)
    default = head_order(driver)
    assert default == _sorted_by(driver, "score")
    assert default[-1] == "reference" and "no-key" not in default
    orders = {}
    for key, label in (("rate", "pass rate"), ("speed", "speed"), ("score", "score")):
        button = driver.find_element(By.CSS_SELECTOR, f'.sort button[data-sort="{key}"]')
        assert button.text == label
        button.click()
        assert button.get_attribute("aria-pressed") == "true"
        orders[key] = head_order(driver)
        assert orders[key] == _sorted_by(driver, key)
        # Every row follows its head: the cells moved with the columns.
        assert row_order(driver, "stop.string") == orders[key]
        assert row_order(driver, "auth.wrong_key") == orders[key]
        family = driver.execute_script(
            "var names = {}; document.querySelectorAll('thead th[data-provider]').forEach("
            "h => names[h.dataset.col] = h.dataset.provider); return Array.from("
            "document.querySelectorAll('tbody[data-family=\"stop\"] tr.fam td')).map("
            "c => names[c.dataset.col])")
        assert family == orders[key]
    assert orders["score"] == default
    # any-key fails one security check, untidy three cosmetic ones: any-key has the better
    # pass rate, but its failure weighs 8 against 3 × 1, so it ranks below by score.
    assert orders["rate"] != orders["score"]
    assert orders["rate"].index("any-key") < orders["rate"].index("untidy")
    assert orders["score"].index("any-key") > orders["score"].index("untidy")
    assert orders["speed"][-2:] == ["unreachable", "reference"]  # no speed: last but the ref
    # The evidence still opens from a moved cell.
    target = cell(driver, matrix, "ignores-stop", "stop.string")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    target.click()
    wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    assert panel_text(driver, "panel-check") == "stop.string"
    assert severe_console_errors(driver) == []


def test_security_badge_for_a_provider_that_accepts_any_key(driver: WebDriver,
                                                            matrix: Page) -> None:
    assert matrix.result("any-key", "auth.wrong_key")["outcome"] == "fail"
    load(driver, matrix.url)
    badge = driver.find_element(By.CSS_SELECTOR, 'th[data-provider="any-key"] .badge.sec')
    assert badge.is_displayed() and badge.text == "⚠ 1 security"
    assert "auth.wrong_key" in str(badge.get_attribute("title"))
    for clean in ("ignores-stop", "reference", "declines-stop"):
        assert not driver.find_elements(By.CSS_SELECTOR,
                                        f'th[data-provider="{clean}"] .badge.sec')
    assert "any-key (1)" in driver.find_element(By.ID, "security-total").text
    summary = (matrix.path.parent / "summary.md").read_text(encoding="utf-8")
    assert summary.index("### ⚠ Security failures") < summary.index("| provider |")


def test_charts_render_offline_from_file(driver: WebDriver, matrix: Page) -> None:
    assert matrix.url.startswith("file://")
    load(driver, matrix.url)
    # Nothing but the file itself was loaded: no CDN, no fonts, no images from the network.
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert [r for r in resources if not str(r).startswith(("file:", "data:"))] == []
    columns = head_order(driver)
    families = len(driver.find_elements(By.CSS_SELECTOR, "tbody.family"))
    charts = driver.find_elements(By.CSS_SELECTOR, "thead th[data-provider] svg.famchart")
    assert len(charts) == len(columns)
    for chart in charts:
        assert chart.size["width"] > 0 and chart.size["height"] > 0
        bars = chart.find_elements(By.TAG_NAME, "rect")
        assert len(bars) == families
        assert all(b.size["height"] > 0 for b in bars)
    latency = driver.find_element(By.CSS_SELECTOR, "svg.latency")
    driver.execute_script("arguments[0].scrollIntoView()", latency)
    assert latency.size["width"] > 300 and latency.size["height"] > 50
    rows = latency.find_elements(By.CSS_SELECTOR, "g.lrow")
    timed = {str(r.get_attribute("data-provider")) for r in rows}
    assert timed == set(columns) - {"unreachable"}  # nothing answered there, nothing timed
    for row in rows:
        for rect in row.find_elements(By.CSS_SELECTOR, "rect.ttft, rect.total"):
            assert rect.size["width"] > 0 and rect.size["height"] > 0
    # The reference is drawn apart, labelled.
    assert "(ref.)" in latency.find_element(
        By.CSS_SELECTOR, 'g.lrow[data-provider="reference"]').text
    # The same charts without JavaScript: they are markup, not drawn by a script.
    raw = matrix.path.read_text(encoding="utf-8")
    assert raw.count('<svg class="famchart"') == len(columns) and '<svg class="latency"' in raw


def test_unrun_providers_take_one_row_and_the_reference_stands_apart(
        driver: WebDriver, matrix: Page) -> None:
    load(driver, matrix.url)
    strip = driver.find_element(By.ID, "unrun")
    chips = strip.find_elements(By.CLASS_NAME, "chip")
    assert [c.text for c in chips] == ["no-key set DEMO_RELAY_API_KEY",
                                       "no-key-either set DEMO_OTHER_API_KEY"]
    assert strip.text.startswith("2 not run:")
    assert len({c.rect["y"] for c in chips}) == 1  # one row
    assert strip.size["height"] < 40
    assert not driver.find_elements(By.CSS_SELECTOR, 'th[data-provider^="no-key"]')
    reference = driver.find_element(By.CSS_SELECTOR, 'th[data-provider="reference"]')
    assert "ref" in str(reference.get_attribute("class")).split()
    assert "REFERENCE, FOR COMPARISON" in reference.text.upper()
    assert head_order(driver)[-1] == "reference"
    # Left out of the overall figures: they count the other providers' results only.
    counted = [r for r in matrix.data["results"] if r["provider"] != "reference"
               and r["outcome"] in ("pass", "fail")]
    passed = sum(r["outcome"] == "pass" for r in counted)
    assert driver.find_element(By.ID, "overall").text == f"{100 * passed // len(counted)}%"


def test_copy_as_curl_and_the_event_a_stream_verdict_is_about(
        driver: WebDriver, matrix: Page, reference_server: ReferenceServer) -> None:
    load(driver, matrix.url)
    expected = matrix.result("no-done", "streaming.done_sentinel")
    about = expected["evidence"]["event"]
    target = cell(driver, matrix, "no-done", "streaming.done_sentinel")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    target.click()
    wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    marked = driver.find_element(By.ID, "panel-event")
    assert "at" in str(marked.get_attribute("class")).split()
    assert int(marked.get_attribute("data-n")) == about["index"]
    event = expected["evidence"]["exchanges"][about["exchange"]]["response"]["events"][
        about["index"]]
    assert event["data"] in marked.text
    assert f"event #{about['index']}" in driver.find_element(By.ID, "panel").text
    highlighted = driver.find_elements(By.CSS_SELECTOR, "#panel li.at")
    assert len(highlighted) == 1
    # Copy as curl: the key as $VARIABLE, never its value; the request as it was sent.
    driver.find_element(By.CSS_SELECTOR, "#panel button.copy-curl").click()
    command = wait(driver, lambda b: b.find_element(By.CSS_SELECTOR, "#panel pre.curl")).text
    assert command.startswith("curl -N -X POST '")
    assert "/variant/no_done/v1/chat/completions'" in command
    assert f'-H "Authorization: Bearer ${KEY_ENV}"' in command.replace("authorization",
                                                                         "Authorization")
    assert '"stream":true' in command and "--data-raw '" in command
    assert SELFTEST_KEY not in command and "***" not in command
    # And it runs: with the variable set, the same request gets the same (faulty) stream.
    # (Sent to this process's reference server: under xdist the page may have been made by
    # another worker, whose server and key are its own.)
    if shutil.which("curl") and shutil.which("bash"):
        here = re.sub(r"http://127\.0\.0\.1:\d+", reference_server.origin, command, count=1)
        ran = subprocess.run(["bash", "-c", here], capture_output=True, text=True,
                             timeout=60, env={**os.environ, KEY_ENV: SELFTEST_KEY})
        assert ran.returncode == 0, ran.stderr
        assert "data: {" in ran.stdout and "[DONE]" not in ran.stdout
    page_text = driver.execute_script("return document.documentElement.outerHTML")
    assert SELFTEST_KEY not in page_text
    assert severe_console_errors(driver) == []


def test_phone_width_shows_the_first_table_row_on_the_first_screen(
        driver: WebDriver, matrix: Page, tmp_path: Path) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 1,
                            "mobile": True})
    try:
        load(driver, matrix.url)
        assert driver.execute_script("return [innerWidth, innerHeight]") == [390, 844]
        first = driver.find_element(By.CSS_SELECTOR, "table.matrix tbody tr")
        box = driver.execute_script(
            "var b = arguments[0].getBoundingClientRect();"
            "return [b.left, b.top, b.right, b.bottom]", first)
        assert box[1] >= 0 and box[3] <= 844, box
        assert box[0] >= 0 and box[0] < 390
        # The controls are still there, folded into one scrolling line.
        toolbar = driver.find_element(By.CLASS_NAME, "toolbar")
        assert toolbar.size["height"] < 60
        assert driver.find_element(By.CSS_SELECTOR, '.sort button[data-sort="speed"]')
        shot = tmp_path / "matrix-phone.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 5_000
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


#: English words the Chinese page may show: names and technical tokens, kept in English by the
#: glossary (docs/glossary.zh-CN.md), never a label.
KEPT_ENGLISH = frozenset({
    "OpenAI", "Chat", "Completions", "API", "SDK", "JavaScript", "SSE", "TTFT", "HTTP", "POST",
    "GET", "curl", "token", "tok", "ms", "s", "p", "Esc", "conformance", "results", "json", "junit",
    "xml", "md", "html", "w", "K", "security", "breaks-clients", "degrades", "cosmetic",
    "usage", "attempts",  # the exchange record's fields, under an exchange in the panel
})
#: A run of two English words: what an untranslated label or sentence leaves.
ENGLISH_RUN = re.compile(r"\b[A-Za-z]{3,}\b[ ,:;]+\b[A-Za-z]{3,}\b")
#: The phrase names kept in English (the API's name).
KEPT_PHRASES = ("Chat Completions",)

#: The page's visible text and its tooltips, less what is data rather than the page's words:
#: check ids, provider and model names, run ids, verdict messages (a check's words around a
#: provider's; the stored one-liners are localized), request/response bodies, the exchanges'
#: summary lines, and the catalogue's texts (title, proves, spec, severity: the field names
#: they quote stay English, and tests/test_i18n.py holds every check to a translation).
PAGE_WORDS_JS = """
var data = JSON.parse(document.getElementById("conformance-data").textContent);
var text = document.body.innerText;
var drop = [];
document.querySelectorAll(
    "pre, code, #panel-message, #panel .sub, details.ex > summary, .prov .name, .prov .model,"
    + " option, .chip b, svg text, b.mono, th.rowh .title, #panel h2, #panel dd"
).forEach(function (e) {
  drop.push(e.innerText || e.textContent);
});
data.results.forEach(function (r) {  /* verdicts: the check's words and provider data */
  drop.push(r.m);
  if (r.b && r.b[1]) drop.push(r.b[1]);
});
var attrs = [];
document.querySelectorAll("[title], [aria-label], [placeholder]").forEach(function (e) {
  /* a verdict's message; a base URL; the security failures' messages */
  if (e.matches("button[data-r], th.prov, .badge.sec, #security-total")) return;
  ["title", "aria-label", "placeholder"].forEach(function (a) {
    if (e.hasAttribute(a)) attrs.push(e.getAttribute(a));
  });
});
document.querySelectorAll("svg title").forEach(function (t) { attrs.push(t.textContent); });
return {text: text, drop: drop, attrs: attrs,
        names: data.providers.map(function (p) { return p.name; })
          .concat(data.providers.map(function (p) { return p.model; })),
        families: data.checks.map(function (c) { return c.behavior; }),
        checks: data.checks.map(function (c) { return c.id; })};
"""


def english_left(page: dict[str, Any]) -> list[str]:
    """The English words and runs of words left on the page once data is taken out."""
    text = "\n".join([page["text"], *page["attrs"]])
    # Pieces without words (a chart's "0") would cut other tokens apart: left to the regex.
    pieces = [p for p in page["drop"] if p and re.search(r"[A-Za-z]{2}", p)]
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, " ")
    for name in sorted({*page["names"], *page["checks"]}, key=len, reverse=True):
        text = text.replace(name, " ")
    # URLs, dotted ids and file names, numbers, $VARIABLES, `field` names, the SSE end marker
    text = re.sub(r"https?://\S+|\b[\w-]+(?:\.[\w-]+)+\b|\b\w*\d\w*\b|\$\w+|`[^`]*`"
                  r"|\bdata: \[DONE\]|\b[a-z]+_[a-z_]+\b|\b[A-Z0-9]+(?:_[A-Z0-9]+)+\b", " ", text)
    for phrase in KEPT_PHRASES:
        text = text.replace(phrase, " ")
    kept = {w.lower() for w in KEPT_ENGLISH | set(page["families"])}  # CSS may upper-case
    left = [m.group(0) for m in ENGLISH_RUN.finditer(text)]
    left += sorted({w for w in re.findall(r"[A-Za-z][A-Za-z-]*", text) if w.lower() not in kept})
    return left


@pytest.fixture(scope="module")
def chinese_matrix(tmp_path_factory: pytest.TempPathFactory) -> Page:
    """The Chinese matrix of the demo (``LANG=zh_CN.UTF-8 make demo``): the builtin reference
    and the labelled broken variant, run in a Chinese locale."""
    run = chinese_demo_run(tmp_path_factory)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = tmp_path_factory.mktemp("zh-page") / "report"
    shutil.copytree(run.report_dir, report)
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    return Page(report / "matrix.html", data, [p["name"] for p in data["providers"]])


def test_the_chinese_matrix_has_no_english_ui_left(driver: WebDriver,
                                                   chinese_matrix: Page) -> None:
    """Every label, legend, button, tooltip and evidence-panel word of the Chinese page is
    Chinese: with the families unfolded and a failed stream cell of the broken variant open
    (its highlighted event, "copy as curl" clicked), what is left once provider data, ids and
    technical tokens are taken out has no English word. Screenshotted for the README."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1760, "height": 1240, "deviceScaleFactor": 1,
                            "mobile": False})
    try:
        load(driver, chinese_matrix.url)
        assert driver.execute_script("return document.documentElement.lang") == "zh-CN"
        driver.find_element(By.ID, "expand-all").click()
        driver.find_element(By.ID, "f-dev").click()
        target = cell(driver, chinese_matrix, "reference-broken-demo", "streaming.done_sentinel")
        assert "o-fail" in target.find_element(By.XPATH, "..").get_attribute("class")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
        target.click()
        panel = driver.find_element(By.ID, "panel")
        wait(driver, lambda b: panel.is_displayed())
        assert "失败" in panel_text(driver, "panel-outcome")
        copy = panel.find_elements(By.CSS_SELECTOR, "button.copy-curl")
        assert copy and copy[0].text == "复制为 curl 命令"
        copy[0].click()
        wait(driver, lambda b: b.find_elements(By.CSS_SELECTOR, "#panel pre.curl"))
        page = driver.execute_script(PAGE_WORDS_JS)
        assert "证据" in page["text"] and "只看不符合项" in page["text"]
        left = english_left(page)
        where = {w: re.findall(rf".{{0,40}}\b{re.escape(w)}\b.{{0,40}}",
                               "\n".join([page["text"], *page["attrs"]]))[:2] for w in left}
        assert not left, f"English left on the Chinese page: {where}"
        shot = chinese_matrix.path.parent / "matrix.zh-CN.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("CONFORMANCE_UPDATE_SCREENSHOT") == "1":
            shutil.copy(shot, REPO / "docs" / "matrix.zh-CN.png")
        assert severe_console_errors(driver) == []
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_english_check_catches_an_untranslated_label() -> None:
    """The check above fails on one English label or phrase left among the Chinese."""
    page = {"text": "只看不符合项\n全部展开\nstreaming.done_sentinel\nstreaming 5 个检查项",
            "drop": [], "attrs": ["加权得分"], "names": ["reference"], "families": ["streaming"],
            "checks": ["streaming.done_sentinel"]}
    assert english_left(page) == []
    assert english_left({**page, "text": page["text"] + "\nexpand all"}) == [
        "expand all", "all", "expand"]
    assert english_left({**page, "attrs": ["speed"]}) == ["speed"]


def test_every_part_of_the_matrix_in_chinese(driver: WebDriver, matrix: Page) -> None:
    """The busiest page (ten providers: a baseline with regressions and fixes, a security
    badge, unrun chips, an unreachable provider, the reference apart) re-rendered in Chinese,
    as ``conformance report --lang zh-CN`` does: no English UI word is left."""
    from conformance import i18n

    page_dir = matrix.path.parent.parent / "zh-report"
    if not page_dir.exists():
        shutil.copytree(matrix.path.parent, page_dir)
        data = load_run(page_dir)
        with i18n.using("zh-CN"):
            write_reports(page_dir, data, stored_baseline(page_dir))
    load(driver, (page_dir / "matrix.html").resolve().as_uri())
    driver.find_element(By.ID, "expand-all").click()
    target = cell(driver, matrix, "ignores-stop", "stop.string")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    target.click()
    wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    assert "回退" in panel_text(driver, "panel-change")
    page = driver.execute_script(PAGE_WORDS_JS)
    assert "回退" in page["text"] and "未运行" in page["text"]
    left = english_left(page)
    where = {w: re.findall(rf".{{0,60}}\b{re.escape(w)}\b.{{0,60}}",
                           "\n".join([page["text"], *page["attrs"]]))[:2] for w in left}
    assert not left, f"English left on the Chinese page: {where}"


# -- a hundred providers: folded columns (issue 16) ---------------------------------------------

#: How many real providers the page shows before it folds the rest (report/matrix.py FOLD).
FOLD = 12


def _total_ms(p: int) -> float:
    """Provider ``p``'s time per request in the hundred-provider run: every provider another."""
    return 100.0 + 3 * (p * 37 % 101)


def col(provider: str) -> int:
    """The ``data-col`` of ``provN`` in the hundred-provider page (its index in the run)."""
    return int(provider.removeprefix("prov"))


@dataclass
class Hundred:
    path: Path
    data: RunData
    reference: str

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def real(self) -> list[str]:
        return [str(p["name"]) for p in self.data.providers if p["name"] != self.reference]

    def result(self, provider: str, check: str) -> Any:
        return next(r for r in self.data.results
                    if r.provider == provider and r.check == check)


@pytest.fixture(scope="module")
def hundred(tmp_path_factory: pytest.TempPathFactory) -> Hundred:
    """100 providers × 100 checks and the builtin reference (the 101st), each provider with
    its own speed (every request of ``provN`` takes ``_total_ms(N)``)."""
    data = synthetic_run(101, 100)
    data.providers[100]["base_url"] = "builtin:reference"
    for result in data.results:
        p = int(result.provider.removeprefix("prov"))
        for exchange in result.evidence["exchanges"]:
            exchange["elapsed_ms"] = _total_ms(p)
    out = tmp_path_factory.mktemp("hundred")
    write_reports(out, data)
    return Hundred(out / "matrix.html", data, "prov100")


def test_a_hundred_providers_page_holds_the_fold_control_and_every_cell(
        hundred: Hundred) -> None:
    """No browser: the page holds all 101 columns' cells (the fold is the script's, so
    without JS every column shows) and the fold control, hidden until the script runs."""
    html = hundred.path.read_text(encoding="utf-8")
    assert len(re.findall(r'<td class="c [^"]*" data-col="\d+"', html)) == 101 * 100
    assert len(set(re.findall(r'data-r="(\d+)"', html))) == len(hundred.data.results)
    assert len(re.findall(r"<th class=\"prov[^\"]*\" scope=\"col\"", html)) == 101
    control = re.search(r'<span class="fold" id="fold" [^>]*>', html)
    assert control and 'data-fold="12"' in control.group(0) and " hidden" in control.group(0)
    assert len(re.findall(r'<button type="button" data-pick="\d+"', html)) == 100
    # The top twelve from the first paint; without JS, the <noscript> style shows them all.
    assert "#matrix.fold-top tr > [data-col]:nth-child(n+14):nth-last-child(n+2)" in html
    assert 'class="matrix fold-top"' in html
    assert "<noscript><style>#matrix.fold-top tr > [data-col] { display: table-cell" in html
    # Twelve providers fold nothing: no control, no rule.
    few = render_matrix(synthetic_run(FOLD, 5))
    assert '<span class="fold"' not in few and 'class="matrix fold-top"' not in few
    assert "#matrix.fold-top" not in few and 'data-pick="0"' not in few


def test_a_hundred_providers_show_the_top_twelve_and_all_on_demand(
        driver: WebDriver, hundred: Hundred) -> None:
    started = time.perf_counter()
    load(driver, hundred.url)
    assert time.perf_counter() - started < 30
    order = head_order(driver)
    assert len(order) == 101 and order[-1] == hundred.reference
    assert shown_providers(driver) == [*order[:FOLD], hundred.reference]
    assert driver.find_element(By.ID, "fold-count").text == "12 of 100 providers"
    # Rows follow: a check row shows twelve cells and the reference's, the others stay.
    check = hundred.data.checks[-1]["id"]
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('tr[data-check=\"' + arguments[0] + "
        "'\"] td[data-col]')).map(c => c.offsetParent !== null)", check)
    assert len(cells) == 101 and sum(cells) == FOLD + 1
    show = driver.find_element(By.ID, "fold-all")
    assert show.text == "show all"
    show.click()
    assert shown_providers(driver) == order
    assert driver.find_element(By.ID, "fold-count").text == "100 of 100 providers"
    assert show.text == "show top 12"
    show.click()
    assert shown_providers(driver) == [*order[:FOLD], hundred.reference]
    # Sorted by speed: the twelve fastest show, fastest first (the reference stays apart).
    driver.find_element(By.CSS_SELECTOR, '.sort button[data-sort="speed"]').click()
    fastest = sorted(hundred.real(), key=lambda n: _total_ms(int(n.removeprefix("prov"))))
    assert shown_providers(driver) == [*fastest[:FOLD], hundred.reference]
    assert row_order(driver, check)[:FOLD] == fastest[:FOLD]
    assert severe_console_errors(driver) == []


def test_a_folded_provider_is_brought_into_view_by_name_or_from_the_list(
        driver: WebDriver, hundred: Hundred) -> None:
    load(driver, hundred.url)
    top = shown_providers(driver)
    folded = [n for n in head_order(driver) if n not in top]
    assert len(folded) == 100 - FOLD
    # Typed: the matching columns alone (by name or by model), then back to the top twelve.
    find = driver.find_element(By.ID, "fold-find")
    name = folded[-1]
    find.send_keys(name)
    assert shown_providers(driver) == [name, hundred.reference]
    assert driver.find_element(By.ID, "fold-count").text == "1 of 100 providers"
    find.send_keys(Keys.BACKSPACE * len(name))
    assert shown_providers(driver) == top
    model = hundred.data.providers[int(folded[3].removeprefix("prov"))]["models"]["default"]
    find.send_keys(model)
    assert shown_providers(driver) == [folded[3], hundred.reference]
    find.send_keys(Keys.BACKSPACE * len(model))
    # Picked from the list of folded providers: its column joins the top twelve.
    summary = driver.find_element(By.ID, "fold-summary")
    assert summary.text == "88 folded"
    summary.click()
    pick = driver.find_element(By.CSS_SELECTOR, f'#fold-list button[data-pick="{col(name)}"]')
    assert pick.text == name and pick.is_displayed()
    assert not driver.find_element(
        By.CSS_SELECTOR, f'#fold-list button[data-pick="{col(top[0])}"]').is_displayed()
    pick.click()
    assert shown_providers(driver) == [*top[:FOLD], name, hundred.reference]
    assert not pick.is_displayed()  # the list closes: the column is in view
    head = driver.find_element(By.CSS_SELECTOR, f'th[data-provider="{name}"]')
    assert "pinned" in str(head.get_attribute("class")).split()
    assert pick.get_attribute("aria-pressed") == "true"
    # The panel opens from a cell of the column brought into view.
    check = hundred.data.checks[10]["id"]
    target = driver.find_element(
        By.CSS_SELECTOR, f'tr[data-check="{check}"] td[data-col="{col(name)}"] button')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    target.click()
    wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    assert panel_text(driver, "panel-message") == hundred.result(name, check).message
    assert driver.find_element(By.CSS_SELECTOR, "#panel .sub").text.startswith(name + " · ")
    # Clicked again, it folds back.
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    summary.click()
    assert pick.is_displayed()
    pick.click()
    assert shown_providers(driver) == top
    assert severe_console_errors(driver) == []


def test_a_deep_link_unfolds_the_providers_column(driver: WebDriver, hundred: Hundred) -> None:
    name = hundred.real()[-1]  # the last by score: folded
    check = hundred.data.checks[42]["id"]
    load(driver, hundred.url + "#" + quote(f"{check}@{name}"))
    wait(driver, lambda b: b.find_element(By.ID, "panel").is_displayed())
    assert panel_text(driver, "panel-message") == hundred.result(name, check).message
    assert panel_text(driver, "panel-check") == check
    shown = shown_providers(driver)
    assert name in shown and len(shown) == FOLD + 2
    button = driver.find_element(
        By.CSS_SELECTOR, f'tr[data-check="{check}"] td[data-col="{col(name)}"] button')
    assert button.is_displayed()
    assert "sel" in str(button.find_element(By.XPATH, "..").get_attribute("class")).split()
    assert severe_console_errors(driver) == []


def test_without_javascript_every_column_shows(driver: WebDriver, hundred: Hundred) -> None:
    """The fold is the script's: with scripts off (file:// in a locked-down browser) the
    page shows all 101 columns and no fold control."""
    driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        load(driver, hundred.url)
        assert len(shown_providers(driver)) == 101
        assert not driver.find_element(By.ID, "fold").is_displayed()
    finally:
        driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    load(driver, hundred.url)
    assert len(shown_providers(driver)) == FOLD + 1


def test_twelve_providers_or_fewer_fold_nothing(driver: WebDriver, matrix: Page) -> None:
    load(driver, matrix.url)
    assert shown_providers(driver) == head_order(driver)
    assert not driver.find_elements(By.ID, "fold")
    assert driver.execute_script("return document.getElementById('fold-style').textContent") \
        == ""


def test_the_fold_control_in_chinese(driver: WebDriver, tmp_path: Path) -> None:
    """The fold control's words, shown and in tooltips, are Chinese."""
    from conformance import i18n

    with i18n.using("zh-CN"):
        write_reports(tmp_path, synthetic_run(FOLD + 3, 6))
    load(driver, (tmp_path / "matrix.html").resolve().as_uri())
    assert driver.find_element(By.ID, "fold").is_displayed()
    driver.find_element(By.ID, "fold-summary").click()
    driver.find_element(By.CSS_SELECTOR, "#fold-list button[data-pick]:not([hidden])").click()
    page = driver.execute_script(PAGE_WORDS_JS)
    fold = driver.find_element(By.ID, "fold").text
    assert "显示" in fold and "服务商" in fold
    left = english_left(page)
    where = {w: re.findall(rf".{{0,60}}\b{re.escape(w)}\b.{{0,60}}",
                           "\n".join([page["text"], *page["attrs"]]))[:2] for w in left}
    assert not left, f"English left on the Chinese page: {where}"
    driver.find_element(By.ID, "fold-all").click()
    assert "12" in driver.find_element(By.ID, "fold-all").text
