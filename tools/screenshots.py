"""``python -m tools.screenshots``: every dashboard page in Debian's Chromium, at a desktop's and a phone's width, as
JPEGs for docs/dashboard/ — taken from the runs in RESULTS, so the manual shows what the current code shows."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from PIL import Image

from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError, run_cli

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PAGES = {  # file name -> the page's URL path (the app's title, lower-case, dashes for spaces)
    "dataset": "",
    "leaderboard": "leaderboard",
    "per-class": "per-class-analysis",
    "try-an-image": "try-an-image",
    "frameworks": "frameworks",
    "robustness": "robustness",
    "images-needed": "images-needed",
    "train": "train",
    "report": "report",
}
WIDTHS = {"": 1400, "-390": 390}  # file name suffix -> window width (390 px: a phone)
PORT = 8599
TALLEST = 5000  # px: a page longer than this is cut


def start_dashboard(data_root: Path, results: Path) -> subprocess.Popen:
    env = {**os.environ, "DASHBOARD_DATA": str(data_root), "RESULTS_DIR": str(results)}
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true"]
    command += ["--server.port", str(PORT), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/_stcore/health", timeout=1).ok:
                return server
        except requests.ConnectionError:
            time.sleep(0.5)
    server.terminate()
    raise BenchmarkError(f"the dashboard did not answer on port {PORT} within 120 s")


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def shoot(driver, url: str, out: Path, width: int, upload: Path | None = None) -> None:
    """The page once it has drawn (header shown, script finished, charts given a few seconds), at ``width`` (a
    phone's, emulated, below 600 px), the viewport as tall as the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 180)
    metrics = {"width": width, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": 1000})  # short first
    driver.get(url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "h2"))
    time.sleep(1)  # then until the script has finished (Streamlit's running indicator gone): a slow page is whole
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid=stStatusWidget]"))
    if upload is not None:
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))[0].send_keys(str(upload))
        wait.until(lambda d: "predicted:" in d.find_element(By.TAG_NAME, "body").text)
    time.sleep(4)
    height = driver.execute_script(
        "const main = document.querySelector('[data-testid=stMainBlockContainer]');"
        "return main ? main.getBoundingClientRect().top + main.scrollHeight : document.body.scrollHeight"
    )
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": min(int(height) + 120, TALLEST)})
    time.sleep(1)
    Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB").save(out, quality=80, optimize=True)
    print(f"wrote {out}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__.split(": ", 1)[1])
    parser.add_argument("--dataset", type=Path, default=Path("data/stampscenes"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard"))
    parser.add_argument("--upload", type=Path, help="the image Try an image scores (default: the first test image)")
    parser.add_argument(
        "--pages", nargs="+", choices=list(PAGES), default=list(PAGES), metavar="PAGE", help="default: every page"
    )
    args = parser.parse_args(argv)

    def body() -> None:
        if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            raise BenchmarkError("Debian's chromium and chromium-driver are needed: make setup installs them")
        dataset = load_dataset(args.dataset)
        upload = Path(args.upload or dataset.image_paths("test")[0]).resolve()
        args.out.mkdir(parents=True, exist_ok=True)
        server = start_dashboard(dataset.root.parent, args.results)
        try:
            for suffix, width in WIDTHS.items():
                driver = chromium()
                try:
                    for name, path in ((n, PAGES[n]) for n in args.pages):
                        url = f"http://127.0.0.1:{PORT}/{path}"
                        chosen = upload if name == "try-an-image" else None
                        shoot(driver, url, args.out / f"{name}{suffix}.jpg", width, chosen)
                finally:
                    driver.quit()
        finally:
            server.terminate()
            server.wait(timeout=30)

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
