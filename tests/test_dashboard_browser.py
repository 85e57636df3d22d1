"""One real-browser test: `streamlit run` on 127.0.0.1, Debian's Chromium driven by Selenium (no browser is
downloaded), every page loaded and screenshotted to test-artifacts/dashboard/, and an upload on "Try an image"
that must show every model's prediction; a non-image and a decompression bomb uploaded must each be one message."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.data.dataset import load_dataset
from tests.conftest import free_port, wait_until_up

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
PAGES = {
    "dataset": "",
    "leaderboard": "leaderboard",
    "per-class": "per-class-analysis",
    "try-an-image": "try-an-image",
    "tuning": "tuning",
    "train": "train",
    "report": "report",
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="Debian chromium + chromium-driver not installed (make setup)",
    ),
]


def start_dashboard(data_root: Path, results: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run streamlit_app.py` on a free loopback port, as a user starts it."""
    port = free_port()
    env = {**os.environ, "DASHBOARD_DATA": str(data_root), "RESULTS_DIR": str(results)}
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/_stcore/health")
    return server, url


def stop_dashboard(server: subprocess.Popen) -> None:
    """SIGTERM must end the server (a worker left by a process pool once kept it alive forever)."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        raise AssertionError("the dashboard did not stop on SIGTERM within 30 s") from None


def chromium(width: int = 1400, height: int = 1800):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture
def dashboard_url(tiny_scenes, tiny_results, fastai_run, keras_run, replica_run):
    server, url = start_dashboard(tiny_scenes.parent, tiny_results)
    yield url
    stop_dashboard(server)


def bad_uploads(tmp_path: Path) -> list[tuple[str, bytes, str]]:
    """A text file named .jpg, and a 60-Mpx PNG (a few KB compressed): each must be one message in the page."""
    import io

    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (10_000, 6_000)).save(bomb, format="PNG")
    return [
        ("notes.jpg", b"not an image at all", "cannot read image"),
        ("huge.png", bomb.getvalue(), "too large to decode safely"),
    ]


def test_every_page_in_chromium_and_an_upload_shows_every_model(dashboard_url, tiny_scenes, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        wait = WebDriverWait(driver, 120)
        for name, path in PAGES.items():
            driver.get(f"{dashboard_url}/{path}")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "h2"))
            time.sleep(2)  # let charts draw before the screenshot
            assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
            driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        driver.get(f"{dashboard_url}/try-an-image")
        upload = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
        upload.send_keys(str(load_dataset(tiny_scenes).image_paths("test")[0]))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").text.count("predicted:") >= 3)
        time.sleep(2)
        driver.save_screenshot(str(ARTIFACTS / "try-an-image-upload.png"))
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "fastai" in text and "keras" in text and "teachable_machine_replica" in text
        for upload_name, content, message in bad_uploads(tmp_path):
            driver.get(f"{dashboard_url}/try-an-image")
            picker = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0]
            (tmp_path / upload_name).write_bytes(content)
            picker.send_keys(str(tmp_path / upload_name))
            wait.until(lambda d: message in d.find_element(By.TAG_NAME, "body").text)
            assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()


def page_is_complete(driver, heading: str) -> bool:
    """The page's heading is there and Streamlit's 'running' indicator is gone. An element Streamlit replaced
    between finding and reading it (stale) means the page is still changing: poll again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        body = driver.find_element(By.TAG_NAME, "body").text
        running = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")
        return heading in body and not any(r.is_displayed() and "Running" in r.text for r in running)
    except StaleElementReferenceException:
        return False


PAGE_BUDGETS = {  # page path -> (text that shows it is there, seconds allowed on a fresh server)
    "": ("Quality checks (EDA)", 20),
    "leaderboard": ("Leaderboard", 10),
    "per-class-analysis": ("Per-class analysis", 10),
    "try-an-image": ("Try an image", 10),
    "report": ("Report", 10),
}


@pytest.fixture(scope="module")
def stamp_scenes(tmp_path_factory) -> Path:
    """A StampScenes build from the real Tux Paint stamps (600 images, 224 px) with its EDA report."""
    from benchmarks.data.eda_report import run_eda
    from benchmarks.data.stampscenes import build_stampscenes

    out = tmp_path_factory.mktemp("data") / "stampscenes"
    run_eda(build_stampscenes(out, size=600, img_size=224, seed=0))
    return out


def test_five_fresh_servers_never_hang_and_every_page_completes_in_budget(stamp_scenes, tmp_path):
    """Each page on a newly started server, five times: the Dataset page (which reads every image header) within
    20 s, the others within 10 s; then SIGTERM stops the server."""
    from selenium.webdriver.support.ui import WebDriverWait

    timings: dict[str, list[float]] = {path: [] for path in PAGE_BUDGETS}
    for _ in range(5):
        server, url = start_dashboard(stamp_scenes.parent, tmp_path / "results")
        driver = chromium()
        try:
            for path, (heading, budget) in PAGE_BUDGETS.items():
                start = time.perf_counter()
                driver.get(f"{url}/{path}")
                WebDriverWait(driver, budget, poll_frequency=0.2).until(lambda d, h=heading: page_is_complete(d, h))
                timings[path].append(round(time.perf_counter() - start, 1))
        finally:
            driver.quit()
            stop_dashboard(server)
    print(f"seconds per page on a fresh server (5 starts): {timings}")
