"""The RL-library consumer tests skip when their library is absent (plain ``make test``); under
``CLINIC_ENV_REQUIRE_RL=1`` (``make test-rl``, which installs them) a skip fails the run instead."""

from __future__ import annotations

import os

import pytest


def _skipped(config: pytest.Config) -> int:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return len(reporter.stats.get("skipped", [])) if reporter is not None else 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CLINIC_ENV_REQUIRE_RL") and _skipped(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if os.environ.get("CLINIC_ENV_REQUIRE_RL") and _skipped(config):
        terminalreporter.write_line(f"CLINIC_ENV_REQUIRE_RL=1 and {_skipped(config)} test(s) skipped: failing the run",
                                    red=True)
