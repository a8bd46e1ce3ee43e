"""``clinic-env play`` in a pseudo-terminal (stdlib ``os.openpty``): a student types plain English
to a diagnosis; the printed feedback names the gold, a missed item and the cost, and the session and
feedback files are written. Ctrl-D (end of input) saves like ``quit``."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = "you> "


class Terminal:
    """A child process on a pseudo-terminal: read until a marker appears, type lines."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "160", "LINES": "50"}
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                     close_fds=True, start_new_session=True)
        os.close(slave)
        self.output = ""

    def read_until(self, marker: str, timeout: float = 20.0) -> str:
        """Everything read until ``marker`` is in the output after the last read position."""
        start, deadline = len(self.output), time.monotonic() + timeout
        while marker not in self.output[start:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {marker!r}; output so far:\n{self.output[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    if marker not in self.output[start:]:
                        raise AssertionError(f"exited before {marker!r}; output:\n{self.output[-3000:]}")
                    break
                self.output += _ANSI.sub("", chunk.decode("utf-8", "replace")).replace("\r", "")
        return self.output[start:]

    def type(self, line: str) -> str:
        """Type ``line`` and return what is printed up to the next prompt."""
        os.write(self.master, line.encode() + b"\n")
        return self.read_until(PROMPT)

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            os.close(self.master)


def _command() -> list[str]:
    script = Path(sys.executable).with_name("clinic-env")
    return [str(script)] if script.exists() else [sys.executable, "-m", "clinic_env"]


def test_play_a_case_in_plain_english(tmp_path: Path) -> None:
    save = tmp_path / "session"
    term = Terminal([*_command(), "play", "card-nstemi", "--seed", "0", "--save", str(save)], tmp_path)
    try:
        opening = term.read_until(PROMPT)
        assert "71-year-old woman" in opening and "History." in opening
        assert "yesterday teatime" in term.type("when did it start?")
        assert "heavy" in term.type("chest pain").lower()
        assert "Differential." in term.type("done")
        assert "Differential #1: Acute subendocardial myocardial infarction (NSTEMI) (I21.4)" in term.type("heart attack")
        assert "Tests." in term.type("done")
        assert "ST depression" in term.type("ECG")
        assert "131 ng/L" in term.type("troponin")
        assert "Final diagnosis." in term.type("done")
        os.write(term.master, b"NSTEMI\n")
        out = term.read_until("feedback.html")
    finally:
        code = term.close()
    assert code == 0, term.output[-3000:]
    assert "Gold diagnosis: Acute subendocardial myocardial infarction (NSTEMI) (I21.4)" in out
    assert "missed test: Vital signs" in out and "missed question:" in out
    assert re.search(r"Total cost: \$\d+", out) and "thorough" in out and "info-gain" in out
    for name in ("session.json", "feedback.md", "feedback.html"):
        assert (save / name).is_file()
    data = json.loads((save / "session.json").read_text(encoding="utf-8"))
    assert data["record"]["final_diagnosis"] == "I21.4" and data["done"]
    assert "I21.4" in (save / "feedback.md").read_text(encoding="utf-8")


def test_end_of_input_saves_like_quit(tmp_path: Path) -> None:
    save = tmp_path / "quit"
    term = Terminal([*_command(), "play", "card-nstemi", "--seed", "1", "--save", str(save), "--no-compare"], tmp_path)
    try:
        term.read_until(PROMPT)
        term.type("any fever?")
        # Ctrl-D at an empty line: end of input. readline switches the terminal out of line mode when
        # it starts reading, and a Ctrl-D that arrives during the switch can be dropped by the tty
        # layer: press it again if nothing happens (as a person would).
        os.write(term.master, b"\x04")
        try:
            out = term.read_until("feedback.html", timeout=5.0)
        except AssertionError:
            os.write(term.master, b"\x04")
            out = term.read_until("feedback.html")
    finally:
        code = term.close()
    assert code == 0 and "Consultation ended; saved to" in out and "not scored" in out
    data = json.loads((save / "session.json").read_text(encoding="utf-8"))
    assert data["inputs"] == ["any fever?"] and data["record"]["end_reason"] == "quit"
    assert (save / "feedback.md").is_file() and (save / "feedback.html").is_file()
