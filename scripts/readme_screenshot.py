"""Retake docs/screenshot.png (the README's picture) from the app on the embedded demo.

    python scripts/readme_screenshot.py [--family demo-refusal-mix-rewarded-soups] [--w 0.75,0.25] [--out docs/screenshot.png]
    python scripts/readme_screenshot.py --family demo-k3-rewarded-soups --w 0.5,0,0.5 --width 390 --height 844 \
        --full-page --out /tmp/k3-phone.png          # any family, any width (a phone here)

Starts `python app.py` on a free port, opens it in Debian's Chromium (1400 x 900 by default) with the
family and w in the link, asks one question and waits until the answer carries its w label
(the answer is complete), then writes the picture. Nothing here waits a fixed time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from soak import free_port, wait_until_up  # noqa: E402  (the soak test starts the app the same way)
from ui_support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

QUESTION = "Give me three tips to sleep better."


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="demo-refusal-mix-rewarded-soups")
    p.add_argument("--w", default="0.75,0.25", help="the preference shown (as in the app's link)")
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--full-page", action="store_true", help="the whole page, not only the window")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, proc, timeout=600)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.set_default_timeout(300_000)
            page.goto(f"{url}?family={args.family}&w={args.w}")
            page.wait_for_selector("#pa-front .scatterlayer .point")
            page.locator("#pa-msg textarea").fill(QUESTION)
            page.locator("#pa-msg textarea").press("Enter")
            page.locator("#pa-chat sub.pa-w-label").first.wait_for()  # the label comes with the last token
            page.screenshot(path=args.out, full_page=args.full_page)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
