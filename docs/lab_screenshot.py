"""Regenerate docs/lab.png: the lab after two runs (Xavier vs Gaussian, same seed) on digits.

    PYTHONPATH=src python docs/lab_screenshot.py      # needs chromium and playwright

Starts ``sgdlab lab`` on a free loopback port, trains the paper's network twice from the
form (only the initialisation changed), and saves the first screen as a small PNG.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).parent / "lab.png"


def main() -> int:
    with tempfile.TemporaryDirectory() as store:
        lab = subprocess.Popen([sys.executable, "-m", "sgdlab", "lab", "--port", "0", "--store", store],
                               stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            url = re.search(r"http://\S+/", lab.stdout.readline()).group(0)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 1010})
                page.goto(url)
                page.wait_for_selector("body[data-ready='1']")
                page.fill("#f-epochs", "20")
                for init, card in (("xavier", "A"), ("gaussian", "B")):
                    page.select_option("#f-init", init)
                    page.click("#train")
                    page.wait_for_selector(f"#card-{card}[data-status='done']", timeout=120000)
                page.evaluate("window.scrollTo(0, 0)")
                png = page.screenshot()
                browser.close()
        finally:
            lab.send_signal(2)
            lab.wait(15)
    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128)
    img.save(OUT, optimize=True)
    print(f"{OUT}: {OUT.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
