"""A user in a real browser (headless Debian Chromium, driven by Selenium) on `make airflow`.

Logs in, submits a bad file path through the ad hoc DAG's form and sees the error within seconds,
triggers the DAG through its form, sees the job task deferred and progress lines in its log, opens
the "Gemini batch job" extra link, and finds the job with its progress and answers in the Gemini
batch view. Screenshots of each step land in a temporary folder whose path the test prints.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.integration import test_make_airflow as make_airflow_test

pytestmark = [
    pytest.mark.integration,
]

# `make airflow` started as a user would (the fixture of test_make_airflow.py).
make_airflow = make_airflow_test.make_airflow
wait_for = make_airflow_test.wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: How this machine runs Chromium headless: no sandbox as root, no calls to Google's services.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
DAG_ID = "gemini_batch_adhoc"
PROMPTS = ["Name a prime number.", "Name a colour.", "Name a river.", "Name a city."]
LINK_NAME = "Gemini batch job"
PROGRESS = re.compile(r"RUNNING \d+/\d+ rows")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: run include/dev/system_packages.sh (make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshots() -> Callable[[Any, str], None]:
    folder = Path(tempfile.mkdtemp(prefix="gemini-batch-browser-"))
    print(f"\nscreenshots: {folder}")

    def save(driver: Any, name: str) -> None:
        driver.save_screenshot(str(folder / f"{len(list(folder.iterdir())):02d}-{name}.png"))

    return save


def fresh(read: Callable[[], Any]) -> Any:
    """``read()``, or None when React re-rendered the element meanwhile (the caller polls again)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return read()
    except StaleElementReferenceException:
        return None


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return fresh(lambda: driver.find_element(By.TAG_NAME, "body").text) or ""


def button(driver: Any, text: str, *, within: str = "") -> Any:
    """The last visible button whose text is ``text`` (inside the CSS selector ``within``), or None."""
    from selenium.webdriver.common.by import By

    def find() -> Any:
        found = [
            e
            for e in driver.find_elements(By.CSS_SELECTOR, f"{within} button".strip())
            if e.text.strip() == text and e.is_displayed()
        ]
        return found[-1] if found else None

    return fresh(find)


def open_trigger_form(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/dags/{DAG_ID}")
    wait_for(lambda: button(driver, "Trigger"), timeout=60, what="the Trigger button").click()
    wait_for(lambda: driver.find_elements(By.NAME, "element_input_file"), timeout=30, what="the trigger form")


def set_faults(stack_dir: Path, **faults: Any) -> None:
    """Slow the local Gemini emulator down so the job visibly runs (its admin API)."""
    env = dict(line.split("=", 1) for line in (stack_dir / "env").read_text().splitlines() if "=" in line)
    admin = env["LOCAL_STACK_ADMIN_URL"].strip("'\"")
    request = urllib.request.Request(
        f"{admin}/faults",
        data=json.dumps(faults).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.mark.timeout(900)
def test_a_user_runs_the_adhoc_dag_from_the_browser_and_reads_the_answers_in_the_view(
    make_airflow, browser, screenshots, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    proc, api, stack_dir = make_airflow
    base = api.base

    def healthy() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"make airflow exited: {(tmp_path / 'make-airflow.log').read_text()[-3000:]}")
        return api.call("GET", "/api/v2/monitor/health")[0] == 200

    wait_for(healthy, timeout=180, what="the Airflow API server")
    status, token = api.call("POST", "/auth/token", {"username": "admin", "password": "admin"})
    assert status in (200, 201), token
    api.token = token["access_token"]
    wait_for(lambda: make_airflow_test.dag_is_listed_unpaused(api, DAG_ID), timeout=120, what="the DAG")
    # About 1.5 s a row: four prompts keep the job running long enough to watch it.
    set_faults(stack_dir, row_latency_ms=1500, queue_delay_s=2)

    # Log in.
    browser.get(f"{base}/")
    wait_for(lambda: browser.find_elements(By.NAME, "username"), timeout=30, what="the login form")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "/auth/login" not in browser.current_url, timeout=30, what="the login")
    screenshots(browser, "logged-in")

    # A bad file path: a clear error within seconds, and no run.
    open_trigger_form(browser, base)
    browser.find_element(By.NAME, "element_input_file").send_keys("/tmp/prompts.jsonl")
    started = time.monotonic()
    button(browser, "Trigger", within="[role=dialog]").click()
    wait_for(
        lambda: "Invalid input for param input_file" in page_text(browser),
        timeout=10,
        what="the form's error for a bad file path",
    )
    assert time.monotonic() - started < 10
    screenshots(browser, "bad-file-path")
    assert api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")[1]["total_entries"] == 0

    # The real run, through the form.
    open_trigger_form(browser, base)
    prompts = browser.find_element(By.NAME, "element_prompts")
    prompts.clear()
    prompts.send_keys("\n".join(PROMPTS))
    screenshots(browser, "trigger-form")
    button(browser, "Trigger", within="[role=dialog]").click()
    wait_for(lambda: "/runs/" in browser.current_url, timeout=30, what="the run's page")
    run_id = unquote(browser.current_url.rsplit("/runs/", 1)[1].split("/")[0])

    # The job task deferred, progress lines in its log (the page refreshes itself).
    browser.get(f"{base}/dags/{DAG_ID}/runs/{run_id}/tasks/run_job")
    seen: set[str] = set()

    def deferred_with_progress() -> bool:
        text = page_text(browser)
        if "Deferred" in text:
            seen.add("deferred")
        if PROGRESS.search(text):
            seen.add("progress")
        return seen == {"deferred", "progress"}

    wait_for(deferred_with_progress, timeout=240, what=f"run_job deferred with a progress line (saw {seen})")
    screenshots(browser, "deferred-with-progress")

    def finished() -> str | None:
        status, body = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        return body["state"] if status == 200 and body["state"] in ("success", "failed") else None

    assert wait_for(finished, timeout=300, what=f"run {run_id} to finish", interval=2) == "success"

    # The extra link opens the job in the view (the local stack: it works offline). Airflow 3.3's UI
    # shows a task instance's extra links (one button each) on its Details tab.
    browser.get(f"{base}/dags/{DAG_ID}/runs/{run_id}/tasks/run_job/details")
    link = wait_for(
        lambda: fresh(lambda: browser.find_elements(By.LINK_TEXT, LINK_NAME)),
        timeout=60,
        what=f"the {LINK_NAME!r} extra link on the task's Details tab",
    )[0]
    href = link.get_attribute("href")
    assert href.startswith(f"{base}/gemini-batch/job?"), href
    screenshots(browser, "extra-link")
    link.click()  # same origin: the UI opens it in this tab
    wait_for(lambda: "/gemini-batch/job?" in browser.current_url, timeout=30, what="the link to open the job")
    job_text = wait_for(
        lambda: "rows" in page_text(browser) and page_text(browser), timeout=30, what="the job page"
    )
    assert f"{len(PROMPTS)}/{len(PROMPTS)} rows" in job_text, job_text[:2000]
    answers = browser.find_elements(By.CSS_SELECTOR, "#answers tr.answer")
    assert len(answers) == len(PROMPTS), job_text[:2000]
    assert all("succeeded" in a.text for a in answers)
    screenshots(browser, "job-page")

    # The view in Airflow's menu (Browse > Gemini batch): the job with its progress, then its answers.
    browser.get(f"{base}/plugin/gemini-batch")
    frame = wait_for(lambda: browser.find_elements(By.TAG_NAME, "iframe"), timeout=30, what="the view")[0]
    browser.switch_to.frame(frame)
    row = wait_for(
        lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#jobs tr.job") if run_id in r.text],
        timeout=30,
        what=f"the job of {run_id} in the view",
    )[0]
    assert f"{len(PROMPTS)}/{len(PROMPTS)} rows" in row.text, row.text
    assert "SUCCEEDED" in row.text, row.text
    browser.switch_to.default_content()
    screenshots(browser, "gemini-batch-view")
    browser.switch_to.frame(frame)
    row.find_element(By.TAG_NAME, "a").click()
    wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#answers tr.answer")) == len(PROMPTS),
        timeout=30,
        what="the job's answers in the view",
    )
    browser.switch_to.default_content()
    screenshots(browser, "gemini-batch-job")
