"""The HTML book (course_utils.tools.book): its chapter list, and the built site in headless Chromium.

The browser test drives Debian's /usr/bin/chromium through the Chrome DevTools Protocol with the
tiny websocket client below (no extra package): every chapter and exercise page loads, every
image has a non-zero natural size, no output is an error (outside cells tagged
`raises-exception`), every internal link points to an existing page and anchor, no code line or
output is wider than its box (long lines wrap), formulas are typeset by the bundled MathJax (no raw
`$$` left), and no request leaves the machine. A screenshot of chapter 01 is kept in
_build/test-artefacts/book.png.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

from course_utils import book

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = REPO / "_build" / "test-artefacts"
CHAPTERS = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


# ---------------------------------------------------------------- the project book.py writes
def test_chapter_info_reads_title_goals_and_run_time(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": [
        "# 01 · Topic\n\n**What you will learn**\n- one thing;\n- another.\n\nMore text."]}],
        "metadata": {"papermill": {"duration": 125.0}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "01_topic.ipynb"
    path.write_text(json.dumps(nb))
    info = book.chapter_info(path)
    assert info == {"title": "01 · Topic", "goals": ["one thing;", "another."],
                    "seconds": 125.0, "stem": "01_topic"}


def test_every_chapter_has_goals_and_a_run_time():
    assert CHAPTERS, "no chapter notebooks"
    for path in CHAPTERS:
        info = book.chapter_info(path)
        assert info["goals"], f"{path.name}: no '**What you will learn**' bullets in its opening"
        assert info["seconds"], f"{path.name}: no papermill duration; run `make course`"


def test_project_lists_chapters_goals_times_and_exercises(tmp_path):
    chapters = book.write_project(tmp_path / "src")
    intro = (tmp_path / "src" / "intro.md").read_text()
    toc = json.loads((tmp_path / "src" / "_toc.yml").read_text())
    config = json.loads((tmp_path / "src" / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert [c["file"] for c in toc["parts"][0]["chapters"]] == [f"chapters/{p.stem}" for p in CHAPTERS]
    for ch in chapters:
        assert f"(chapters/{ch['stem']}.ipynb)" in intro and ch["goals"][0] in intro
        if (REPO / "exercises" / f"{ch['stem']}_exercises.ipynb").exists():
            assert f"(exercises/{ch['stem']}_exercises.ipynb)" in intro
    assert intro.count("**CPU run time (last full-mode run):**") == len(CHAPTERS)
    mathjax = config["sphinx"]["config"]["mathjax_path"]
    assert mathjax.startswith("../mathjax/MathJax.js"), f"MathJax must be bundled, not fetched: {mathjax}"
    assert (tmp_path / "src" / "_extra" / "mathjax" / "MathJax.js").is_file()
    assert "pre-wrap" in (tmp_path / "src" / "_static" / "course.css").read_text()


# ---------------------------------------------------------------- a minimal CDP client
class _WebSocket:
    """Just enough RFC 6455 for the DevTools protocol: masked text frames out, frames in."""

    def __init__(self, url: str, timeout: float = 60):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            data += chunk
        return data

    def send(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            n = struct.unpack(">H", self._read(2))[0] if n == 126 else \
                struct.unpack(">Q", self._read(8))[0] if n == 127 else n
            payload = self._read(n)
            if b0 & 0x0F in (0x9, 0xA):  # ping / pong: ignore
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class _Page:
    """One Chromium tab: navigate, evaluate, screenshot; collects the URLs it requests."""

    def __init__(self, ws_url: str):
        self.ws, self.next_id, self.requests, self.events = _WebSocket(ws_url), 0, [], []
        self.call("Page.enable")
        self.call("Network.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self._event(msg)

    def _event(self, msg):
        if msg.get("method") == "Network.requestWillBeSent":
            self.requests.append(msg["params"]["request"]["url"])
        self.events.append(msg.get("method"))

    def goto(self, url: str, timeout: float = 60) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        end = time.time() + timeout
        while "Page.loadEventFired" not in self.events:
            assert time.time() < end, f"{url} did not finish loading in {timeout} s"
            self._event(json.loads(self.ws.recv()))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"]["value"]


_INSPECT = """(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return {
    title: document.title,
    h1: [...document.querySelectorAll('main h1, article h1')].map(h => h.textContent.trim()),
    images: imgs.map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight,
                            shown: i.getBoundingClientRect().width})),
    errors: [...document.querySelectorAll('.cell:not(.tag_raises-exception) .output.traceback,'
                                          + '.cell:not(.tag_raises-exception) .output.error')]
            .map(e => e.textContent.slice(0, 300)),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    wide: [...document.querySelectorAll('main pre, article pre')]
            .filter(p => p.getClientRects().length && p.scrollWidth > p.clientWidth + 2)
            .map(p => p.textContent.slice(0, 80)),
  };
})()"""

# Wait until MathJax 2 has typeset the page, then count its output and any raw TeX left in the text.
_MATH = """(async () => {
  if (!window.MathJax || !MathJax.Hub) return {loaded: false, typeset: 0, raw: 0};
  await new Promise(done => MathJax.Hub.Queue(done));
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  let raw = 0;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest('pre, code, script, style, .MathJax_CHTML')) continue;
    raw += (node.textContent.match(/\\$\\$|\\\\frac|\\\\lVert|\\\\cos/g) || []).length;
  }
  return {loaded: true, raw: raw,
          typeset: document.querySelectorAll('.MathJax_CHTML, .MathJax, .MathJax_Display, mjx-container').length};
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(html: Path):
    """Serve folder `html` on 127.0.0.1 (a free port) with http.server; yields the base URL."""
    handler = functools.partial(type("Quiet", (http.server.SimpleHTTPRequestHandler,),
                                     {"log_message": lambda *a: None}), directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The course's book built into a temporary folder and served on 127.0.0.1."""
    html = book.build(tmp_path_factory.mktemp("book"))
    with _serve(html) as base:
        yield html, base


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): "
                    "apt-get install chromium — .ci/run does this on CI")
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-quic", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         "--window-size=1280,1400", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file, end = profile / "DevToolsActivePort", time.time() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.time() < end, "chromium did not start"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        yield _Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _check_site(browser: _Page, html: Path, base: str):
    """Visit every page of the built site; returns (problems, {page: what the page showed})."""
    pages = ["index.html", "intro.html"] + sorted(
        p.relative_to(html).as_posix() for folder in ("chapters", "exercises")
        for p in (html / folder).glob("*.html"))
    seen, problems = {}, []
    for page in pages:
        browser.goto(base + page)
        info = seen[page] = browser.evaluate(_INSPECT)
        if page != "index.html" and not info["h1"]:
            problems.append(f"{page}: no heading — did the page render?")
        for img in info["images"]:
            if not (img["w"] > 0 and img["h"] > 0 and img["shown"] > 0):
                problems.append(f"{page}: image {img['src']} did not render ({img})")
        problems += [f"{page}: error output: {e!r}" for e in info["errors"]]
        problems += [f"{page}: a code line or output is wider than the page: {w!r}" for w in info["wide"]]
    for page, info in seen.items():
        for link in info["links"]:
            target, fragment = urldefrag(urljoin(base + page, link))
            if not target.startswith(base):
                continue
            rel = target[len(base):] or "index.html"
            if not (html / rel).is_file():
                problems.append(f"{page}: broken link {link}")
            elif fragment and rel in seen and fragment not in seen[rel]["ids"]:
                problems.append(f"{page}: link {link} points to a missing anchor")
    return problems, seen


def test_browser_check_catches_errors_and_broken_images(tmp_path, browser):
    """Negative control: a chapter with an error output, a missing figure and a broken link."""
    chapters, exercises = tmp_path / "nb", tmp_path / "ex"
    chapters.mkdir(), exercises.mkdir()
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"papermill": {"duration": 3.0}},
          "cells": [
              {"cell_type": "markdown", "metadata": {}, "source": [
                  "# 01 · Broken\n\n**What you will learn**\n- nothing.\n\n"
                  "![a figure](missing.png) and [a link](no_such_page.html)"]},
              {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": ["1/0"],
               "outputs": [{"output_type": "error", "ename": "ZeroDivisionError",
                            "evalue": "division by zero", "traceback": ["ZeroDivisionError"]}]}]}
    (chapters / "01_broken.ipynb").write_text(json.dumps(nb))
    html = book.build(tmp_path / "book", notebooks=chapters, exercises_dir=exercises)
    (html / "_images").mkdir(exist_ok=True)
    with _serve(html) as base:
        problems, _ = _check_site(browser, html, base)
    text = "\n".join(problems)
    assert "error output" in text and "ZeroDivisionError" in text, text
    assert "did not render" in text or "missing.png" in text, text
    assert "broken link" in text or "missing anchor" in text, text  # myst makes it an anchor


def test_book_pages_render_in_chromium(site, browser):
    html, base = site
    browser.requests.clear()
    problems, seen = _check_site(browser, html, base)
    assert len([p for p in seen if p.startswith("chapters/")]) == len(CHAPTERS)
    math_pages = [f"chapters/{p.stem}.html" for p in CHAPTERS if "$$" in p.read_text(encoding="utf-8")]
    assert math_pages, "no chapter has a displayed formula to check"
    for page in math_pages:
        browser.goto(base + page)
        math = browser.evaluate(_MATH)
        assert math["loaded"], f"{page}: MathJax did not load"
        assert math["typeset"] > 0 and math["raw"] == 0, f"{page}: formulas not typeset: {math}"
    outside = {u for u in browser.requests if urlparse(u).scheme not in ("data", "blob", "about")
               and urlparse(u).hostname not in ("127.0.0.1", "localhost")}
    assert not outside, f"pages requested resources from outside: {sorted(outside)[:5]}"
    assert not problems, "\n".join(problems[:20])
    images = sum(len(i["images"]) for p, i in seen.items() if p.startswith("chapters/"))
    assert images >= len(CHAPTERS), f"only {images} figures in {len(CHAPTERS)} chapters"
    browser.goto(base + f"chapters/{CHAPTERS[0].stem}.html")
    shot = browser.call("Page.captureScreenshot", format="png")["data"]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "book.png").write_bytes(base64.b64decode(shot))


def test_saved_widget_views_are_dropped_so_the_book_needs_no_cdn():
    from course_utils.tools.book import WIDGET_VIEW, without_widgets

    out = {"output_type": "display_data", "data": {WIDGET_VIEW: {"model_id": "x"}, "text/plain": "100% 3/3"}}
    nb = without_widgets({"metadata": {"widgets": {"state": {}}}, "cells": [{"cell_type": "code", "outputs": [out]}]})
    assert "widgets" not in nb["metadata"] and out["data"] == {"text/plain": "100% 3/3"}
