"""The teaching web page (clinic_env.teaching.web, ``clinic-env web``): pages, bad input, escaping,
no state change on GET, the session store, the run browser, and a consultation played end to end in
headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``, stdlib only)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import contextlib

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from clinic_env.cli import app as cli_app
from clinic_env.teaching.web import (
    CaseChoice,
    Consultation,
    SessionStore,
    WebError,
    create_app,
    is_loopback,
)

BASE = "http://127.0.0.1"
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


# --------------------------------------------------------------------------------- a test double

@dataclass(frozen=True)
class _Line:
    kind: str
    text: str
    grade: str | None = None


@dataclass(frozen=True)
class _Reply:
    entries: tuple[_Line, ...]


@dataclass(frozen=True)
class _State:
    segment: str = "history"
    cycle: int = 2
    max_cycles: int = 150
    questions: int = 1
    tests: tuple[str, ...] = ()
    cost_usd: float = 0.0
    patience_left: int | None = None


@dataclass
class _Feedback:
    said: list[str]

    def html(self) -> str:
        from html import escape

        return "<h2>Diagnosis</h2><p>Gold: Fake disease</p><ul>" + "".join(
            f"<li>{escape(s)}</li>" for s in self.said) + "</ul>"

    def markdown(self) -> str:
        return "# Feedback\nGold: Fake disease\n"


@dataclass
class FakeSession:
    """A stand-in for PlaySession that echoes; ``quit`` ends the consultation."""

    said: list[str] = field(default_factory=list)
    done: bool = False
    opening: _Reply = _Reply((_Line("opening", "Fake case - feeling unwell"), _Line("patient", "Patient: I feel unwell.")))

    def say(self, text: str) -> _Reply:
        self.said.append(text)
        self.done = text == "quit"
        return _Reply((_Line("patient", f"Patient: you said {text}"), _Line("result", "Hb: 80 g/L", "markedly abnormal")))

    def state(self) -> _State:
        return _State()

    def feedback(self) -> _Feedback:
        return _Feedback(self.said)


def fake_factory(choice: CaseChoice) -> FakeSession:
    return FakeSession()


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "runs", session_factory=fake_factory), base_url=BASE) as c:
        yield c


def _start(client: TestClient, **form: str) -> str:
    data = {"source": "bundled", "case_id": "allergy-anaphylaxis", "seed": "0", **form}
    res = client.post("/play", data=data, follow_redirects=False)
    assert res.status_code == 303, res.text
    return str(res.headers["location"])


# ---------------------------------------------------------------------------------------- pages

def test_home_lists_cases_conditions_and_personas(client: TestClient) -> None:
    res = client.get("/")
    assert res.status_code == 200
    assert 'value="allergy-anaphylaxis"' in res.text and 'value="stemi-anterior"' in res.text
    assert 'value="cooperative"' in res.text and "<optgroup" in res.text
    assert "default-src 'none'" in res.headers["content-security-policy"]
    for external in ("http://", "https://", "//cdn"):
        assert external not in res.text
    assert client.get("/static/web.css").status_code == 200 and client.get("/static/web.js").status_code == 200


def test_play_and_feedback(client: TestClient) -> None:
    url = _start(client)
    assert re.fullmatch(r"/play/[A-Za-z0-9_-]{24}", url)
    page = client.get(url).text
    assert "I feel unwell." in page and "History taking" in page and 'class="result grade-markedly-abnormal"' not in page
    res = client.post(url, data={"text": "When did it start?", "command": ""}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"{url}#end"
    page = client.get(url).text
    assert "you said When did it start?" in page and 'class="result grade-markedly-abnormal"' in page
    assert client.get(f"{url}/feedback").status_code == 409  # still going
    res = client.post(url, data={"text": "", "command": "quit"}, follow_redirects=True)
    assert res.status_code == 200 and "Gold: Fake disease" in res.text
    assert client.get(url, follow_redirects=False).status_code == 303  # a finished one goes to feedback
    assert "Gold: Fake disease" in client.get(f"{url}/feedback.md").text


def test_a_real_session_through_the_pages(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path / "runs"), base_url=BASE) as c:
        url = _start(c, case_id="card-nstemi")
        page = c.get(url).text
        assert "indigestion" in page and 'id="segment">History taking<' in page and 'class="prompt"' in page
        c.post(url, data={"text": "when did it start?"})
        c.post(url, data={"command": "hint"})
        page = c.get(url).text
        assert 'class="patient"' in page and 'class="hint"' in page and "1 question(s)" in page
        res = c.post(url, data={"command": "quit"})  # follows to the feedback
        assert res.url.path.endswith("/feedback") and "Gold diagnosis:" in res.text and "<h1>Feedback: card" not in res.text
        assert "<style" not in res.text and res.text.count("<script") == 1
        assert list((tmp_path / "runs" / "web-sessions").glob("*/session.json"))  # quit saves the session
        url = _start(c, source="generated", condition="stemi-anterior", difficulty="1", seed="4")
        assert "chest pain" in c.get(url).text.lower()
        assert _start(c, case_id="*", seed="3") != url  # "any case", drawn by the seed


def test_text_is_escaped(client: TestClient) -> None:
    url = _start(client)
    client.post(url, data={"text": EVIL})
    page = client.get(url).text
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;script&gt;alert(1)" in page
    assert page.count("<script") == 1  # web.js only


def test_get_never_changes_state(client: TestClient) -> None:
    url = _start(client)
    before = client.get(url).text
    assert client.get(f"{url}?text=hello&command=quit").text == before
    assert client.get("/play").status_code == 405


@pytest.mark.parametrize(("form", "message"), [
    ({"case_id": "no-such-case"}, "not a bundled case id"),
    ({"seed": "-3"}, "seed '-3': give a whole number"),
    ({"seed": "abc"}, "seed 'abc'"),
    ({"persona": "pirate"}, "persona 'pirate': not a bundled persona"),
    ({"source": "generated", "condition": "scurvy"}, "condition 'scurvy'"),
    ({"source": "generated", "condition": "stemi-anterior", "difficulty": "9"}, "difficulty '9'"),
    ({"source": "other"}, "source 'other'"),
])
def test_bad_choices_get_a_message(client: TestClient, form: dict[str, str], message: str) -> None:
    res = client.post("/play", data={"source": "bundled", "case_id": "allergy-anaphylaxis", **form})
    assert res.status_code == 400 and message in res.text.replace("&#39;", "'"), res.text
    assert "Traceback" not in res.text


def test_unknown_ids_and_pages(client: TestClient) -> None:
    for path in ("/play/nope", "/play/nope/feedback", "/nowhere"):
        res = client.get(path)
        assert res.status_code == 404 and 'id="error-message"' in res.text
    assert client.post("/play/nope", data={"text": "hi"}).status_code == 404
    url = _start(client)
    res = client.post(url, data={"command": "explode"})
    assert res.status_code == 400 and "must be one of help, hint" in res.text
    assert client.post(url, data={"text": "x" * 2001}).status_code == 400


def test_crash_in_a_session_is_a_message(tmp_path: Path) -> None:
    def broken(choice: CaseChoice) -> FakeSession:
        raise RuntimeError("engine on fire")

    with TestClient(create_app(tmp_path, session_factory=broken), base_url=BASE, raise_server_exceptions=False) as c:
        res = c.post("/play", data={"source": "bundled", "case_id": "allergy-anaphylaxis"})
    assert res.status_code == 500 and "engine on fire" in res.text and "Traceback" not in res.text


def test_host_and_origin_checks(client: TestClient) -> None:
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding
    res = client.post("/play", data={"source": "bundled", "case_id": "allergy-anaphylaxis"},
                      headers={"origin": "http://evil.example"})
    assert res.status_code == 403
    assert _start(client).startswith("/play/")  # same-origin forms pass


def test_store_cap_and_idle_expiry() -> None:
    now = [0.0]
    store = SessionStore(max_sessions=2, idle_s=60, clock=lambda: now[0])
    first = store.add(Consultation(FakeSession(), [("opening", "a", None)]))
    store.add(Consultation(FakeSession()))
    with pytest.raises(WebError, match="2 consultations are in play") as full:
        store.add(Consultation(FakeSession()))
    assert full.value.status == 503
    now[0] = 50.0
    store.get(first)  # touched: stays
    now[0] = 100.0
    assert len(store) == 1 and store.get(first).title == "a"
    with pytest.raises(WebError, match="no such consultation"):
        store.get("x" * 24)


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.4", "example.org", "::"))


def test_cli_refuses_a_remote_host_without_allow_remote() -> None:
    res = CliRunner().invoke(cli_app, ["web", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "--allow-remote" in res.output and "Traceback" not in res.output
    assert "--runs" in CliRunner().invoke(cli_app, ["web", "--help"]).output


# ---------------------------------------------------------------------------------- run folders

@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import clinic_env
    from clinic_env.rollout import run_batch, write_records

    root = tmp_path_factory.mktemp("runs")
    (root / "first").mkdir()
    cases = clinic_env.load_cases()[:2]
    write_records(run_batch(cases, ["random", "thorough"], seed=1), root / "first" / "results.jsonl")
    (root / "first" / "summary.json").write_text(json.dumps({"episodes": 4, "cases": 2, "doctors": ["random", "thorough"],
                                                             "statistics": {"method": {"resamples": 200}}}))
    (root / "broken").mkdir()
    (root / "broken" / "results.jsonl").write_text("{not json\n")
    (root / "not-a-run").mkdir()
    return root


def test_run_browser(runs_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(runs_dir, session_factory=fake_factory), base_url=BASE) as c:
        listing = c.get("/runs").text
        assert 'href="/runs/first"' in listing and 'href="/runs/broken"' in listing and "not-a-run" not in listing
        report = c.get("/runs/first")
        assert report.status_code == 200 and 'id="replays"' in report.text and 'href="/runs"' in report.text
        assert report.headers["content-security-policy"].startswith("default-src 'none'; style-src 'sha256-")
        assert c.get("/runs/first").text == report.text  # cached
        bad = c.get("/runs/broken")
        assert bad.status_code == 400 and "not an episode record" in bad.text
        for name in ("not-a-run", "%2e%2e", "%2E%2E%2Ffirst", "nope"):
            assert c.get(f"/runs/{name}").status_code == 404
    with TestClient(create_app(tmp_path / "absent", session_factory=fake_factory), base_url=BASE) as c:
        assert "No run folders yet" in c.get("/runs").text


# ------------------------------------------------------------------------- headless Chromium (CDP)

def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        if os.environ.get("CLINIC_ENV_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (CLINIC_ENV_REQUIRE_CHROMIUM=1): apt-get install -y chromium")
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    return path


class DevTools:
    """A tiny Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out;
    messages are JSON ending in a NUL byte): one page, typed text, real mouse clicks, and every
    console error, uncaught exception and browser log error (CSP, failed loads) kept in ``errors``."""

    def __init__(self, chromium: str, profile: Path) -> None:
        import fcntl

        def high(fd: int) -> int:  # above 4, so the child's dup2 onto 3 and 4 always copies
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            return moved

        to_child, self._write = (high(fd) for fd in os.pipe())
        self._read, from_child = (high(fd) for fd in os.pipe())
        # posix_spawn, not Popen(preexec_fn=...): the uvicorn thread is running, and a fork that runs
        # Python code before exec can deadlock with threads.
        self.pid = os.posix_spawn(chromium, [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-background-networking", "--disable-extensions", "--remote-debugging-pipe",
            f"--user-data-dir={profile}", "about:blank"], os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, to_child, 3), (os.POSIX_SPAWN_DUP2, from_child, 4),
            *((os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2))])
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._next_id, self.events, self.errors = b"", 0, [], []  # type: ignore[var-annotated]
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session=True)
            self.call("Emulation.setDeviceMetricsOverride", session=True, width=1200, height=860,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._read], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(self._read, 1 << 20) if ready else b""
            if not chunk:
                raise TimeoutError("chromium did not answer in time" if not ready else "chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("exception", {}).get("description", "exception"))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())
        return message

    def call(self, method: str, session: bool = False, timeout: float = 20.0, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = self.session
        os.write(self._write, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for_load(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._message(deadline))
        self.events.clear()

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for_load()

    def type_into(self, selector: str, text: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", session=True, text=text)

    def click(self, selector: str) -> None:
        """A real left click in the middle of the element; waits for the page it loads."""
        box = self.eval(f"(function(){{var e=document.querySelector({json.dumps(selector)});e.scrollIntoView();"
                        "var r=e.getBoundingClientRect();return [r.x+r.width/2,r.y+r.height/2];})()")
        self.events.clear()
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)
        self.wait_for_load()

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        import base64

        self.eval("window.scrollTo(0, 0)")
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = min(int(self.eval("document.documentElement.scrollHeight")), 2400)
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": 1200, "height": height,
                                                            "scale": 1})
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", session=True, **params)["data"]))

    def close(self) -> None:
        with contextlib.suppress(TimeoutError, RuntimeError, OSError):
            self.call("Browser.close", timeout=5)
        deadline = time.monotonic() + 10
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        os.close(self._read)
        os.close(self._write)


@pytest.fixture()
def server(tmp_path: Path, runs_dir: Path) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(runs_dir), log_level="warning")  # real PlaySessions
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)
    sock.close()



@pytest.mark.parametrize("body", [
    "<script>console.error('broken');</script>",  # a logged error
    "<script>undefinedFunction();</script>",  # an uncaught exception
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\"><script>var x = 1;</script>",  # CSP
])
def test_console_check_catches_errors(tmp_path: Path, body: str) -> None:
    browser = DevTools(_chromium(), tmp_path / "profile")
    try:
        browser.open(f"data:text/html,{body}")
        assert browser.errors, "a broken page must be caught"
    finally:
        browser.close()


def test_play_a_case_in_chromium(server: str, tmp_path: Path) -> None:
    """A student plays card-nstemi through the page: picks it, asks, uses the buttons, orders tests,
    diagnoses; the feedback names the gold diagnosis; no console error on any page."""
    browser = DevTools(_chromium(), tmp_path / "profile")
    shots = Path(os.environ.get("CLINIC_ENV_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        browser.open(f"{server}/")
        assert browser.eval("document.body.dataset.ready") == "1"  # web.js ran under the CSP
        browser.eval("document.getElementById('case_id').value = 'card-nstemi'")
        browser.click("#bundled button[type=submit]")
        assert re.search(r"/play/[\w-]{24}$", browser.eval("location.pathname"))
        assert "indigestion" in browser.eval("document.getElementById('transcript').innerText")

        def say(words: str) -> None:
            browser.type_into("#text", words)
            browser.click("button.primary")

        say("When did the pain start? Does it go anywhere?")
        say("Do you smoke?")
        browser.click("button.cmd-hint")
        browser.click("button.cmd-done")  # history -> differential
        say("heart attack, pulmonary embolism")
        browser.click("button.cmd-done")
        assert browser.eval("document.getElementById('segment').innerText") == "Tests"
        say("ECG and troponin")
        browser.click("button.cmd-status")
        lines = browser.eval("document.getElementById('transcript').innerText")
        assert "ST depression" in lines and browser.eval("document.querySelectorAll('li.result .grade').length") >= 2
        browser.screenshot(shots / "web-play.png")
        browser.click("button.cmd-done")
        say("say: this is a heart attack; we will treat it now and keep you in hospital")
        say("NSTEMI")
        assert browser.eval("location.pathname").endswith("/feedback")
        text = browser.eval("document.getElementById('feedback').innerText")
        assert "Gold diagnosis: Acute subendocardial myocardial infarction (NSTEMI)" in text, text[:2000]
        assert "thorough" in text and "info-gain" in text
        browser.screenshot(shots / "web-feedback.png", full_page=True)
        browser.open(f"{server}/runs/first")
        assert browser.eval("document.body.dataset.ready") == "1"  # the report's own script ran
        assert browser.errors == [], browser.errors
    finally:
        browser.close()
    for name in ("web-play.png", "web-feedback.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_module_entry_point_help() -> None:
    res = subprocess.run([sys.executable, "-m", "clinic_env", "web", "--help"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert res.returncode == 0 and "--allow-remote" in res.stdout
