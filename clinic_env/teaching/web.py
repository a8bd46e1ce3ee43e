"""The teaching web page: play a case in the browser, read the feedback, browse run folders.

``create_app()`` builds a FastAPI app whose pages are rendered on the server with Jinja2 and driven by
plain HTML forms, so the page works without JavaScript (``static/web.js`` only scrolls the transcript,
sends on Enter and guards against double submits). Consultations live in memory, each under an unguessable id
(:func:`secrets.token_urlsafe`), at most ``max_sessions`` at once, dropped after ``idle_s`` seconds
without a request. Nothing changes state on a GET: starting a consultation and speaking are POSTs
answered with a redirect (post/redirect/get), so reloading a page never repeats a turn.

The app is meant for one machine (``clinic-env web`` binds 127.0.0.1): it accepts only loopback
``Host`` headers unless told otherwise (no DNS rebinding), refuses POSTs whose ``Origin`` is another
site, escapes every text it shows (Jinja2 autoescape) and sends a Content-Security-Policy that allows
its own stylesheet and script only. Run reports are :func:`clinic_env.competition.report.render_html`
pages, served with the policy they carry.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

if TYPE_CHECKING:
    from clinic_env.teaching.feedback import Feedback
    from clinic_env.teaching.session import PlaySession, Reply

__all__ = ["LOOPBACK_HOSTS", "CaseChoice", "Consultation", "RunBrowser", "SessionStore", "WebError", "create_app",
           "feedback_body", "is_loopback", "parse_choice", "serve", "start_play_session"]

HERE = Path(__file__).resolve().parent
#: ``Host`` header names accepted when the app is served on loopback only.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
COMMANDS = ("help", "hint", "status", "done", "quit")
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
MAX_TEXT = 2000
SEGMENT_NAMES = {"history": "History taking", "differential": "Differential diagnosis", "tests": "Tests",
                 "diagnosis": "Final diagnosis", "finished": "Finished"}


class WebError(Exception):
    """A request the page answers with a message (never a traceback): bad input, unknown id, full."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


# ------------------------------------------------------------------------------------- sessions

@dataclass(frozen=True)
class CaseChoice:
    """What the home page's form asked for: a bundled case, or a generated one."""

    case_id: str | None = None
    condition: str | None = None
    difficulty: int | None = None
    persona: str | None = None
    seed: int = 0


#: Starts a consultation for a choice (tests pass their own).
SessionFactory = Callable[[CaseChoice], "PlaySession"]
#: A transcript entry: who or what (``you`` or a :data:`clinic_env.teaching.session.LineKind`), the
#: text, and a result's grade.
Entry = tuple[str, str, "str | None"]


@dataclass
class Consultation:
    """A consultation in play: the session, what the page has shown so far, when it was last used."""

    session: PlaySession
    transcript: list[Entry] = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    feedback: Feedback | None = None

    @property
    def title(self) -> str:
        """The opening's first line (the setting and the presenting complaint)."""
        return self.transcript[0][1] if self.transcript else "Consultation"

    def add(self, reply: Reply) -> None:
        """Append a reply's lines."""
        self.transcript.extend((line.kind, line.text, line.grade) for line in reply.entries)

    def get_feedback(self) -> Feedback:
        """The feedback (computed once: it plays the scripted doctors on the same case)."""
        with self.lock:
            if self.feedback is None:
                self.feedback = self.session.feedback()
            return self.feedback


class SessionStore:
    """Consultations in memory by unguessable id, at most ``max_sessions``, dropped after ``idle_s``."""

    def __init__(self, max_sessions: int = 32, idle_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions, self.idle_s, self._clock = max_sessions, idle_s, clock
        self._items: dict[str, Consultation] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, c in self._items.items() if now - c.last_used > self.idle_s]:
            del self._items[key]

    def add(self, consultation: Consultation) -> str:
        """Keep ``consultation``; its new id. Raises :class:`WebError` (503) when the store is full."""
        with self._lock:
            self._expire()
            if len(self._items) >= self.max_sessions:
                raise WebError(f"{len(self._items)} consultations are in play, the most this server keeps; "
                               f"finish one or wait {self.idle_s / 60:.0f} minutes for idle ones to expire", 503)
            key = secrets.token_urlsafe(18)
            consultation.last_used = self._clock()
            self._items[key] = consultation
            return key

    def get(self, key: str) -> Consultation:
        """The consultation ``key`` (touched). Raises :class:`WebError` (404) for an unknown or expired id."""
        with self._lock:
            self._expire()
            found = self._items.get(key)
            if found is None:
                raise WebError("no such consultation: it finished long ago, expired after "
                               f"{self.idle_s / 60:.0f} idle minutes, or the server restarted", 404)
            found.last_used = self._clock()
            return found

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._items)


# ------------------------------------------------------------------------------------ the choices

def _case_options() -> dict[str, list[tuple[str, str]]]:
    """Bundled cases by specialty: ``{specialty: [(id, title), ...]}``."""
    from clinic_env.schema import load_cases

    grouped: dict[str, list[tuple[str, str]]] = {}
    for case in load_cases():
        grouped.setdefault(case.specialty.replace("_", " "), []).append((case.id, case.title))
    return {k: sorted(v, key=lambda item: item[1]) for k, v in sorted(grouped.items())}


def _condition_options() -> list[tuple[str, str]]:
    from clinic_env.generate.knowledge import load_knowledge

    return sorted(((c.id, c.title) for c in load_knowledge().conditions.values()), key=lambda item: item[1])


def _persona_options() -> list[str]:
    from clinic_env.schema import load_personas

    return sorted(p.id for p in load_personas())


def parse_choice(form: Mapping[str, str], personas: Sequence[str], cases: Sequence[str],
                 conditions: Sequence[str]) -> CaseChoice:
    """The home page's form as a :class:`CaseChoice`; :class:`WebError` naming the field otherwise."""
    source = form.get("source", "bundled")
    persona = form.get("persona", "").strip() or None
    if persona is not None and persona not in personas:
        raise WebError(f"persona {persona!r}: not a bundled persona ({', '.join(personas)})")
    seed_text = form.get("seed", "").strip() or "0"
    if not seed_text.isdigit() or len(seed_text) > 9:
        raise WebError(f"seed {seed_text!r}: give a whole number from 0 to 999999999")
    seed = int(seed_text)
    if source == "bundled":
        case_id = form.get("case_id", "").strip()
        if case_id == "*":  # "any case": drawn by the seed, so a class can share one surprise case
            case_id = random.Random(seed).choice(sorted(cases))
        if case_id not in cases:
            raise WebError(f"case {case_id!r}: not a bundled case id (pick one from the list)")
        return CaseChoice(case_id=case_id, persona=persona, seed=seed)
    if source != "generated":
        raise WebError(f"source {source!r}: must be 'bundled' or 'generated'")
    condition = form.get("condition", "").strip()
    if condition not in conditions:
        raise WebError(f"condition {condition!r}: not a condition of the knowledge base (pick one from the list)")
    difficulty = form.get("difficulty", "").strip()
    if difficulty not in ("", "1", "2", "3"):
        raise WebError(f"difficulty {difficulty!r}: must be 1, 2 or 3 (or left to chance)")
    return CaseChoice(condition=condition, difficulty=int(difficulty) if difficulty else None, persona=persona,
                      seed=seed)


# ------------------------------------------------------------------------------------ run folders

class RunBrowser:
    """The run folders under ``root`` (sub-folders holding ``results.jsonl``) and their report pages.

    Reports are rendered in memory with :func:`clinic_env.competition.report.render_html` (the run
    folder is never written) and cached until the folder's results or summary change.
    """

    def __init__(self, root: Path, cache_size: int = 8) -> None:
        self.root, self.cache_size = root, cache_size
        self._cache: dict[str, tuple[tuple[int, ...], str, str]] = {}
        self._lock = threading.Lock()

    def list(self) -> list[dict[str, Any]]:
        """One row per run folder, newest first: name, episodes, doctors, cases, modified."""
        import datetime
        import json

        if not self.root.is_dir():
            return []
        rows = []
        for folder in self.root.iterdir():
            results = folder / "results.jsonl"
            if not folder.is_dir() or not results.is_file():
                continue
            try:
                summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                summary = {}
            summary = summary if isinstance(summary, dict) else {}
            mtime = results.stat().st_mtime
            rows.append({"name": folder.name, "episodes": summary.get("episodes", "?"),
                         "doctors": ", ".join(str(d) for d in summary.get("doctors", []) or []),
                         "cases": summary.get("cases", "?"), "mtime": mtime,
                         "modified": datetime.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")})
        return sorted(rows, key=lambda row: -float(row["mtime"]))

    def report(self, name: str) -> tuple[str, str]:
        """The report page of run folder ``name`` and its Content-Security-Policy.

        Raises:
            WebError: ``name`` is not a run folder under ``root`` (404) or cannot be read (400).
        """
        import re

        from clinic_env.competition.report import ReportError, load_run, render_html

        if name not in {row["name"] for row in self.list()}:  # only listed names: no path tricks
            raise WebError(f"no run folder {name!r} under {self.root}", 404)
        folder = self.root / name
        stamp = tuple(int(x) for p in ("results.jsonl", "summary.json") if (folder / p).is_file()
                      for x in ((folder / p).stat().st_mtime_ns, (folder / p).stat().st_size))
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        try:
            records, summary = load_run(folder)
        except ReportError as exc:
            raise WebError(str(exc)) from None
        stats = summary.get("statistics")
        method = stats.get("method", {}) if isinstance(stats, dict) else {}
        html = render_html(records, summary, title=f"clinic-env run: {name}",
                           resamples=int(method.get("resamples", 2000)), seed=int(method.get("seed", 0)))
        html = html.replace("<nav>", '<nav><a href="/runs">&larr; Run folders</a>', 1)
        found = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
        csp = unescape(found.group(1)) if found else CSP
        with self._lock:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[name] = (stamp, html, csp)
        return html, csp


# ---------------------------------------------------------------------------------------- the app

def _security_headers(response: Response) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")


def create_app(runs_dir: str | Path = "runs", *, max_sessions: int = 32, idle_s: float = 3600.0,
               allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
               session_factory: SessionFactory | None = None) -> FastAPI:
    """The web app.

    Args:
        runs_dir: Folder whose sub-folders (run folders with ``results.jsonl``) the run browser lists.
        max_sessions: Most consultations kept at once.
        idle_s: Seconds without a request after which a consultation is dropped.
        allowed_hosts: ``Host`` header names accepted (None: any, for a server reachable by others).
        session_factory: Starts a consultation (default: :func:`start_play_session`, which saves a quit
            consultation under ``runs_dir/web-sessions/``).
    """
    app = FastAPI(title="clinic-env teaching", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                            trim_blocks=True, lstrip_blocks=True)
    store = SessionStore(max_sessions, idle_s)
    runs = RunBrowser(Path(runs_dir))
    start = session_factory or partial(start_play_session, save_dir=Path(runs_dir) / "web-sessions")
    choices: dict[str, Any] = {}

    def options() -> dict[str, Any]:
        if not choices:  # loaded once, on first use, so the app starts fast
            choices.update(cases=_case_options(), conditions=_condition_options(), personas=_persona_options())
        return choices

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status)

    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Response:
        origin = request.headers.get("origin")
        if request.method == "POST" and origin not in (None, "null") and \
                urlsplit(origin).netloc != request.headers.get("host"):
            response: Response = PlainTextResponse(f"cross-site request from {origin} refused", status_code=403)
        else:
            response = await call_next(request)
        _security_headers(response)
        return response

    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> HTMLResponse:
        return page("error.html", exc.status, message=exc.message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> HTMLResponse:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return page("error.html", exc.status_code, message=message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        fields = sorted({str(err["loc"][-1]) for err in exc.errors() if err.get("loc")})
        return page("error.html", 400, message=f"the form is missing or has bad values for: {', '.join(fields)}")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> HTMLResponse:
        return page("error.html", 500, message=f"the server failed on this request ({type(exc).__name__}: {exc})")

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:  # browsers ask for it on every page, the run reports' included
        return Response((HERE / "static" / "favicon.svg").read_bytes(), media_type="image/svg+xml")

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return page("home.html", **options(), in_play=len(store))

    @app.post("/play")
    def new_consultation(source: str = Form("bundled"), case_id: str = Form(""), condition: str = Form(""),
                         difficulty: str = Form(""), persona: str = Form(""), seed: str = Form("")) -> RedirectResponse:
        opts = options()
        form = {"source": source, "case_id": case_id, "condition": condition, "difficulty": difficulty,
                "persona": persona, "seed": seed}
        choice = parse_choice(form, opts["personas"], [cid for group in opts["cases"].values() for cid, _ in group],
                              [cid for cid, _ in opts["conditions"]])
        consultation = Consultation(start(choice))
        consultation.add(consultation.session.opening)
        return RedirectResponse(f"/play/{store.add(consultation)}", status_code=303)

    @app.get("/play/{key}", response_class=HTMLResponse)
    def consultation_page(key: str) -> Response:
        item = store.get(key)
        if item.session.done:
            return RedirectResponse(f"/play/{key}/feedback", status_code=303)
        state = item.session.state()
        return page("play.html", key=key, title=item.title, transcript=item.transcript, commands=COMMANDS,
                    segment=SEGMENT_NAMES.get(state.segment, state.segment), state=state)

    @app.post("/play/{key}")
    def speak(key: str, text: str = Form(""), command: str = Form("")) -> RedirectResponse:
        item = store.get(key)
        if command and command not in COMMANDS:
            raise WebError(f"command {command!r}: must be one of {', '.join(COMMANDS)}")
        words = command or text.strip()
        if len(words) > MAX_TEXT:
            raise WebError(f"that is {len(words)} characters; say at most {MAX_TEXT} at a time")
        with item.lock:
            if words and not item.session.done:
                reply = item.session.say(words)
                item.transcript.append(("you", words, None))
                item.add(reply)
            finished = item.session.done
        return RedirectResponse(f"/play/{key}{'/feedback' if finished else '#end'}", status_code=303)

    def finished(key: str) -> Consultation:
        item = store.get(key)
        if not item.session.done:
            raise WebError("this consultation is still going: give your final diagnosis, or press Quit, to get "
                           "the feedback", 409)
        return item

    @app.get("/play/{key}/feedback", response_class=HTMLResponse)
    def feedback(key: str) -> HTMLResponse:
        item = finished(key)
        return page("feedback.html", key=key, title=item.title, feedback=feedback_body(item.get_feedback().html()),
                    transcript=item.transcript)

    @app.get("/play/{key}/feedback.md", response_class=PlainTextResponse)
    def feedback_markdown(key: str) -> PlainTextResponse:
        return PlainTextResponse(finished(key).get_feedback().markdown(), media_type="text/markdown; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="feedback.md"'})

    @app.get("/runs", response_class=HTMLResponse)
    def run_list() -> HTMLResponse:
        return page("runs.html", runs_dir=str(runs.root), runs=runs.list())

    @app.get("/runs/{name}", response_class=HTMLResponse)
    def run_report(name: str) -> HTMLResponse:
        html, csp = runs.report(name)
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})

    return app


def feedback_body(page: str) -> str:
    """The inside of :meth:`Feedback.html`'s page (escaped there), to show within this site's page:
    its ``<body>`` without the heading (the page has its own) and without styles or scripts (this
    site's stylesheet styles it; the Content-Security-Policy would block them anyway)."""
    import re

    found = re.search(r"<body[^>]*>(.*)</body>", page, flags=re.S | re.I)
    body = found.group(1) if found else page
    body = re.sub(r"<(style|script)\b.*?</\1\s*>", "", body, flags=re.S | re.I)
    return re.sub(r"^\s*<h1>.*?</h1>", "", body, count=1, flags=re.S)


def start_play_session(choice: CaseChoice, save_dir: Path | None = None) -> PlaySession:
    """A :class:`~clinic_env.teaching.session.PlaySession` for ``choice``; ``quit`` saves it in
    ``save_dir/<time>-<random>/`` (default ``runs/web-sessions/...``).

    Raises:
        WebError: The session refused the choice (its message says why).
    """
    import datetime

    from clinic_env.teaching.session import PlaySession, SessionError

    folder = (save_dir or Path("runs") / "web-sessions") / f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    try:
        return PlaySession(choice.case_id, condition=choice.condition, difficulty=choice.difficulty,
                           persona=choice.persona, seed=choice.seed, save_dir=folder)
    except SessionError as exc:
        raise WebError(str(exc)) from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 8000, runs_dir: str | Path = "runs", *,
          allow_remote: bool = False, max_sessions: int = 32, idle_s: float = 3600.0) -> None:
    """Serve the app with uvicorn until interrupted.

    Raises:
        WebError: ``host`` is not a loopback address and ``allow_remote`` is False.
    """
    import uvicorn

    loopback = is_loopback(host)
    if not loopback and not allow_remote:
        raise WebError(f"--host {host}: not a loopback address; the page has no log-in, so serving it to "
                       "other machines needs --allow-remote")
    app = create_app(runs_dir, max_sessions=max_sessions, idle_s=idle_s,
                     allowed_hosts=LOOPBACK_HOSTS if loopback else None)
    uvicorn.run(app, host=host, port=port, log_level="warning")
