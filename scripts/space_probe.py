"""Start ``python app.py`` as a Space would and check what a visitor needs (run by space_check.sh).

Run with the Python of the environment under test. It starts a stand-in OpenID
provider (a Space points ``OPENID_PROVIDER_URL`` at huggingface.co; a stand-in
keeps the check offline and still lets the login route do its real work),
starts the app with the variables a Space sets, then checks, each within a
time limit:

* ``/config`` is served;
* ``/login/huggingface`` redirects to the provider's authorisation endpoint
  (the route exists only when ``gradio[oauth]`` is installed);
* ``/generate`` answers at a chosen w for every family the app lists;
* the ZeroGPU decorator the app applied is the one expected (``--expect-spaces``).

It prints the app's resident memory after start and after the answers, and
exits non-zero, with the app's last log lines, on the first failure.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_LIMIT_S = 600      # cold start: data wheels installed at start, the base converted once
ANSWER_LIMIT_S = 180     # one short answer on 2 CPU cores
PROMPT = "Give me three tips to sleep better."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stand_in_openid_provider() -> str:
    """A loopback server answering the OpenID discovery request authlib makes."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    discovery = json.dumps({"issuer": base, "authorization_endpoint": f"{base}/oauth/authorize",
                            "token_endpoint": f"{base}/oauth/token", "userinfo_endpoint": f"{base}/oauth/userinfo",
                            "jwks_uri": f"{base}/oauth/jwks"}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            ok = self.path == "/.well-known/openid-configuration"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(discovery if ok else b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return base


def space_environment(port: int, provider: str, cache: str) -> dict:
    """The variables a Space with ``hf_oauth: true`` sets (dummy values), on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARETOAPP_", "GRADIO_", "OAUTH_"))}
    env.update({
        "SPACE_ID": "paretoapp/space-check", "SPACE_AUTHOR_NAME": "paretoapp", "SPACE_REPO_NAME": "space-check",
        "SPACE_HOST": "paretoapp-space-check.hf.space", "SYSTEM": "spaces",
        "OAUTH_CLIENT_ID": "space-check-client", "OAUTH_CLIENT_SECRET": "space-check-secret",
        "OAUTH_SCOPES": "openid profile write-repos", "OPENID_PROVIDER_URL": provider,
        "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
        "PARETOAPP_CACHE": cache, "PYTHONUNBUFFERED": "1",
    })
    return env


def rss_mib(pid: int) -> float:
    """Resident memory of the app process (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def http_status(url: str) -> tuple[int, dict]:
    """Status and headers of one GET, redirects not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=30) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


class Failure(Exception):
    pass


def wait_for_config(url: str, app: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise Failure(f"the app exited with code {app.returncode} before serving /config")
        try:
            if http_status(f"{url}/config")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(2)
    raise Failure(f"/config not served within {START_LIMIT_S} s")


def check(url: str, app: subprocess.Popen, log: Path, expect_spaces: bool) -> dict:
    report: dict = {}
    t0 = time.monotonic()
    wait_for_config(url, app, t0 + START_LIMIT_S)
    report["start_s"] = round(time.monotonic() - t0, 1)
    report["rss_after_start_mib"] = round(rss_mib(app.pid))

    status, headers = http_status(f"{url}/login/huggingface")
    location = headers.get("location") or headers.get("Location") or ""
    if status not in (302, 303, 307) or "/oauth/authorize" not in location:
        raise Failure(f"/login/huggingface answered {status} (location {location!r}); the OAuth login route is missing")
    report["login"] = f"{status} -> provider's authorize endpoint"

    want = "spaces.GPU" if expect_spaces else "no ZeroGPU decorator"
    if want not in log.read_text(errors="replace"):
        raise Failure(f"the app's log does not say {want!r}: the ZeroGPU path was not taken as expected")

    from gradio_client import Client

    client = Client(url, verbose=False)
    families = client.predict(api_name="/families")
    if not families:
        raise Failure("/families lists no family")
    report["families"] = len(families)
    answers = {}
    for fam in families:
        w = fam["default_w"]
        t = time.monotonic()
        job = client.submit(PROMPT, w, fam["name"], 24, 0.0, "", api_name="/generate")
        try:
            text = job.result(timeout=ANSWER_LIMIT_S)
        except Exception as exc:
            raise Failure(f"/generate on {fam['name']} at w={w} failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(text, str) or not text.strip():
            raise Failure(f"/generate on {fam['name']} at w={w} returned {text!r}")
        answers[fam["name"]] = (round(time.monotonic() - t, 1), text[:60])
    report["answers"] = answers
    report["rss_after_answers_mib"] = round(rss_mib(app.pid))
    return report


def stop(app: subprocess.Popen) -> None:
    """End the app and anything it started (it runs in its own process group)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(app.pid, sig)
            app.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="Space")
    ap.add_argument("--expect-spaces", action="store_true", help="the environment has the spaces package")
    ap.add_argument("--keep-cache", metavar="DIR", default=None,
                    help="reuse this PARETOAPP_CACHE (default: a fresh one, as on a new Space)")
    args = ap.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="space-check-") as tmp:
        cache = args.keep_cache or str(Path(tmp) / "cache")
        log = Path(tmp) / "app.log"
        env = space_environment(port, stand_in_openid_provider(), cache)
        with open(log, "wb") as out:
            app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            report = check(url, app, log, args.expect_spaces)
        except Failure as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            print(f"space_check FAILED ({args.label}): {exc}\n--- last lines of the app's log ---\n{tail}")
            return 1
        finally:
            stop(app)
    print(f"space_check ok ({args.label}): started in {report['start_s']} s; login {report['login']}; "
          f"{report['families']} families answered")
    for name, (secs, text) in report["answers"].items():
        print(f"  {name}: {secs} s  {text!r}")
    print(f"  resident memory: {report['rss_after_start_mib']} MiB after start, "
          f"{report['rss_after_answers_mib']} MiB after one answer from each family")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
