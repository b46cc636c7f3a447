#!/usr/bin/env python3
"""Fresh-clone smoke of `make run`: the README's first command must work first try on a new machine.

Clones the checkout into a temporary folder (no .venv, a new CALSYNC_VAR_DIR), runs `make run` on
free ports in its own process group, waits until the web app and every emulator answer, logs in as
a demo user, then stops the whole group. Fails on a timeout, an early exit, a failed login, or a
traceback in anything the stack printed. Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEADLINE_SECONDS = 170  # the whole smoke stays under 3 minutes
DEMO_EMAIL = "alice@demo.calsync.test"
DEMO_PASSWORD = "demo-password-1"  # published in the README for `make run`'s demo data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    """True once anything answers HTTP(S) at `url` (any status: the server is up)."""
    context = ssl._create_unverified_context()  # noqa: S323 (the emulator's throwaway CA; only liveness is checked)
    try:
        with urllib.request.urlopen(url, timeout=3, context=context):  # noqa: S310 (loopback URLs we built)
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def log_in(base: str) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/accounts/login/", timeout=10) as response:
        page = response.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if match is None:
        raise SystemExit("smoke: the login page has no CSRF token")
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": match.group(1), "login": DEMO_EMAIL, "password": DEMO_PASSWORD}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback URL we built)
        f"{base}/accounts/login/", data=body, headers={"Referer": f"{base}/accounts/login/"}
    )
    with opener.open(request, timeout=20) as response:
        landed = response.geturl()
        html = response.read().decode()
    if "/activities/" not in landed or "Log out" not in html:
        raise SystemExit(
            f"smoke: logging in as {DEMO_EMAIL} did not reach the activities page (landed on {landed})"
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the whole group, as a terminal would; SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # Children that outlived make (the group is gone once every member exits).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    source = Path(__file__).resolve().parent.parent
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="calsync-smoke-") as tmp:
        clone = Path(tmp) / "calsync"
        subprocess.run(["git", "clone", "--quiet", str(source), str(clone)], check=True)  # noqa: S607
        ports = {name: free_port() for name in ("web", "google", "graph", "identity", "exchange")}
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "VIRTUAL_ENV"}
        }
        env["CALSYNC_VAR_DIR"] = str(Path(tmp) / "var")
        argv = [
            "make", "run",
            f"PORT={ports['web']}", f"EMULATOR_PORT={ports['google']}",
            f"MICROSOFT_GRAPH_PORT={ports['graph']}", f"MICROSOFT_IDENTITY_PORT={ports['identity']}",
            f"EXCHANGE_PORT={ports['exchange']}",
        ]  # fmt: skip
        log_path = Path(tmp) / "make-run.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            base = f"http://127.0.0.1:{ports['web']}"
            urls = {
                "web": f"{base}/accounts/login/",
                "google emulator": f"http://127.0.0.1:{ports['google']}/",
                "graph emulator": f"http://127.0.0.1:{ports['graph']}/",
                "identity emulator": f"https://127.0.0.1:{ports['identity']}/",
                "exchange emulator": f"http://127.0.0.1:{ports['exchange']}/",
            }
            failure = ""
            try:
                waiting = dict(urls)
                while waiting:
                    if process.poll() is not None:
                        failure = f"make run exited with code {process.returncode} before answering"
                        break
                    if time.monotonic() - started > DEADLINE_SECONDS:
                        failure = f"still not answering after {DEADLINE_SECONDS} s: {', '.join(waiting)}"
                        break
                    waiting = {name: url for name, url in waiting.items() if not answers(url)}
                    time.sleep(1)
                if not failure:
                    print(f"smoke: everything answers after {time.monotonic() - started:.0f} s")
                    log_in(base)
                    time.sleep(3)  # let the worker and beat start their first ticks
                    if process.poll() is not None:
                        failure = f"make run exited with code {process.returncode} after start-up"
            finally:
                stopping = time.monotonic()
                stop(process)
                print(f"smoke: stopped the process group in {time.monotonic() - stopping:.0f} s")
        output = log_path.read_text(errors="replace")
        if "Traceback (most recent call last)" in output:
            failure = failure or "something in `make run` logged a traceback"
        if failure or os.environ.get("SMOKE_VERBOSE"):
            print(output[-8000:])
        if failure:
            print(f"smoke: FAILED: {failure}")
            return 1
    print(
        f"smoke: fresh-clone `make run` OK in {time.monotonic() - started:.0f} s (logged in as {DEMO_EMAIL})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
