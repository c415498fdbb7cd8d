"""The HTML report in real headless chromium: no errors, no network, charts, filters, search."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from report_support import ROWS
from support.services import service_missing

from pytest_themis.comparison.baseline import report_run_data
from pytest_themis.report.html import write_html
from pytest_themis.testing.browser import available, chromium, requests, wait_for

pytestmark = pytest.mark.timeout(180)

CANARY = "sk-canary-5f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture(scope="module")
def report(
    two_runs: tuple[Path, Any, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Any, Any]:
    """The 2-model × 2-prompt run ``new`` compared with its better baseline, written as HTML.

    The manifest carries a canary API key where a provider's options would keep one.
    """
    if not available():
        service_missing(
            "chromium", "apt-get install -y chromium chromium-driver; pip install selenium"
        )
    _, base, new = two_runs
    manifest = copy.deepcopy(new.manifest)
    manifest["models"][0].setdefault("options", {})["api_key"] = CANARY
    manifest["settings"]["cache"]["url"] = f"postgresql://themis:{CANARY}@db.example/x"
    rows = report_run_data(new).samples
    path = write_html(
        tmp_path_factory.mktemp("html") / "report.html",
        manifest,
        # a response echoing the key must be redacted too
        [dict(r, response=f"{r['response']} {CANARY}") if r["row_id"] == "r1" else r for r in rows],
        comparison=new.compare(base),
        baseline_samples=report_run_data(base).samples,
    )
    return path, new, base


def test_canary_key_never_in_file(report: Any) -> None:
    path, _, _ = report
    text = path.read_text()
    assert CANARY not in text
    assert "***" in text  # the key was there and was redacted


def test_report_in_headless_chromium(report: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    path, new, base = report
    records = new.records
    wrong = sum(
        1 for r in records if r.generation.error is None and r.scores["ExactMatch"].value < 1
    )
    with chromium() as driver:
        driver.get(path.as_uri())
        wait_for(lambda: driver.execute_script("return document.body.dataset.ready === '1'"))
        driver.save_screenshot(str(path.parent / "report-2x2.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == []
        seen = requests(driver)
        # nothing at all went to the network (chromium's own chrome:// pages aside) ...
        assert not [u for _, u in seen if u.startswith(("http:", "https:", "ws:", "wss:"))]
        # ... and the report itself loaded only itself and inline data
        mine = [u for doc, u in seen if doc == path.as_uri()]
        assert mine and all(u.startswith(("file:", "data:")) for u in mine), mine
        # one bar per cell and metric: 4 cells × 1 metric
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")) == 4
        count = driver.find_element(By.ID, "count")
        assert count.text == f"{len(records)} of {len(records)} samples"

        Select(driver.find_element(By.ID, "filter")).select_by_value("wrong")
        assert count.text == f"{wrong} of {len(records)} samples" and wrong > 0
        shown = driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr")
        assert shown and all(tr.get_attribute("class") == "wrong" for tr in shown)

        Select(driver.find_element(By.ID, "filter")).select_by_value("changed")
        changed = int(count.text.split()[0])
        cells = {c.cell_id: c for c in new.compare(base).cells}
        assert changed == sum((c.metric("ExactMatch").worse or 0) for c in cells.values())

        Select(driver.find_element(By.ID, "filter")).select_by_value("all")
        Select(driver.find_element(By.ID, "cell")).select_by_value("evaluate [b-prompt1-t0]")
        assert count.text == f"{ROWS} of {len(records)} samples"
        cells_shown = driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr td:first-child")
        assert {td.text for td in cells_shown} == {"evaluate [b-prompt1-t0]"}
        Select(driver.find_element(By.ID, "cell")).select_by_value("")
        target = next(r for r in records if r.generation.task.row_id == "r37")
        search = driver.find_element(By.ID, "search")
        search.send_keys("r37")
        wait_for(lambda: count.text.startswith("4 of"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr")
        assert {tr.find_elements(By.TAG_NAME, "td")[1].text for tr in rows} == {"r37"}

        rows[0].click()
        detail = driver.find_element(By.ID, "detail")
        wait_for(detail.is_displayed)
        response = detail.find_element(By.CSS_SELECTOR, "pre.f-response").text
        assert response == target.generation.text or response in {
            r.generation.text for r in records if r.generation.task.row_id == "r37"
        }
        assert detail.find_element(By.CSS_SELECTOR, "pre.f-reference").text == "148"
        assert (path.parent / "report-2x2.png").stat().st_size > 10_000
