"""``clinic-env run --mode open``: all-LLM runs over imported AgentClinic cases against the loopback
server (every role played from the request's system prompt), the agentclinic preset, per-role
servers, bad biases, unreachable servers, peer case files, and the accuracy summary."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic_env.cli_open import detect_format, redact, usage_summary
from clinic_env.competition.stats import wilson
from clinic_env.competition.summary import diagnostic_accuracy
from clinic_env.open.protocols import ROLES, ProtocolError, resolve
from clinic_env.testing.open_roles import make_open_script
from clinic_env.testing.openai_server import OpenAITestServer

ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"}
FIXTURES = Path(__file__).parent / "fixtures"
OSCE = FIXTURES / "agentclinic_osce.jsonl"
MODEL = "llm:hosted_vllm/test-model"
ALL_ROLES = [arg for role in ROLES for arg in (f"--{role}", MODEL)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clinic_env", *args], capture_output=True, text=True, timeout=300,
                          env=ENV)


def _role(request: dict[str, Any]) -> str:
    """Which open-mode role a request addresses (from its system message)."""
    msgs = request.get("messages") or []
    system = next((str(m.get("content")) for m in msgs if m.get("role") == "system"), "")
    user = str(msgs[-1].get("content")) if msgs else ""
    if "DIAGNOSIS READY" in system:
        return "doctor"
    if "What you know about yourself" in system:
        return "patient"
    if "RESULTS:" in system:
        return "measurement"
    if "Same disease?" in user:
        return "moderator"
    return "examiner"


def _read(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return summary, records


def _check_accuracy(acc: dict[str, Any], n: int) -> None:
    assert acc["n"] == n
    ci = wilson(acc["correct"], n)
    assert acc["rate"] == pytest.approx(ci.estimate) and acc["ci_low"] == pytest.approx(ci.low, abs=1e-6)
    assert acc["ci_high"] == pytest.approx(ci.high, abs=1e-6)
    assert 0.0 <= acc["ci_low"] <= acc["rate"] <= acc["ci_high"] <= 1.0 and acc["ci_high"] > acc["ci_low"]


def test_all_four_llm_roles_over_imported_agentclinic_cases(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with OpenAITestServer(make_open_script(questions=3, tests=2)) as srv:
        done = _cli("run", "--mode", "open", "--cases", str(OSCE), "--doctor", MODEL, *ALL_ROLES,
                    "--api-base", srv.base_url, "--out", str(out), "--concurrency", "4", "--timeout", "20")
        seen = {_role(r) for r in srv.requests}
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "5 case(s) imported" in done.stderr
    assert "accuracy" in done.stdout and "95% CI" in done.stdout
    summary, records = _read(out)
    assert len(records) == 5 and {r["case_id"] for r in records} == set(summary["case_ids"])
    assert all(r["mode"] == "open" and r["end_reason"] in ("diagnosis", "turn_limit") for r in records)
    correct = sum(bool(r["diagnosis_correct"]) for r in records)
    acc = summary["diagnostic_accuracy"][MODEL]
    _check_accuracy(acc, 5)
    assert acc["correct"] == correct and acc["failed"] == 0
    assert summary["roles"] == dict.fromkeys(ROLES, MODEL) and summary["max_doctor_turns"] == 20
    assert {"doctor", "patient", "measurement"} <= seen  # every role the episodes needed went to the server
    use = summary["usage"][MODEL]
    assert use["calls_per_episode"] > 0 and use["by_role"]["doctor"]["prompt_tokens"] > 0
    assert summary["failures"] == {} and summary["counts"]["failed"] == 0


def test_unmapped_diagnosis_goes_to_the_llm_moderator(tmp_path: Path) -> None:
    out = tmp_path / "mod"
    script = make_open_script(questions=1, tests=0, diagnosis="a condition I cannot put a name to")
    with OpenAITestServer(script) as srv:
        done = _cli("run", "--mode", "open", "--cases", str(OSCE), "--doctor", MODEL, "--moderator", MODEL,
                    "--api-base", srv.base_url, "--out", str(out), "--timeout", "20")
        moderated = [r for r in srv.requests if _role(r) == "moderator"]
    assert done.returncode == 0, done.stderr[-2000:]
    summary, records = _read(out)
    assert len(moderated) == 5 and all(r["verdict"]["method"] == "moderator" for r in records)
    assert all(r["diagnosis_correct"] is False for r in records)  # the script's moderator says No
    assert summary["diagnostic_accuracy"][MODEL]["rate"] == 0.0 and summary["usage"][MODEL]["by_role"]["moderator"]


def test_protocol_agentclinic_preset(tmp_path: Path) -> None:
    out = tmp_path / "ac"
    with OpenAITestServer(make_open_script(questions=2, tests=1)) as srv:
        done = _cli("run", "--protocol", "agentclinic", "--cases", str(OSCE), "--doctor", MODEL,
                    "--api-base", srv.base_url, "--out", str(out), "--timeout", "20")
        requests = list(srv.requests)
    assert done.returncode == 0, done.stderr[-2000:]
    summary, records = _read(out)
    assert summary["protocol"] == "agentclinic" and summary["prompt_style"] == "agentclinic"
    assert summary["roles"] == dict.fromkeys(ROLES, MODEL) and summary["max_doctor_turns"] == 20
    assert summary["doctor_bias"] is None and summary["patient_bias"] is None
    _check_accuracy(summary["diagnostic_accuracy"][MODEL], 5)
    assert all(r["protocol"] == "agentclinic" for r in records)
    doctor = [r for r in requests if _role(r) == "doctor"]
    assert doctor and "at most 20 turns" in str(doctor[0]["messages"][0]["content"])
    assert any(_role(r) == "patient" for r in requests)


def test_role_specific_api_bases(tmp_path: Path) -> None:
    out = tmp_path / "split"
    with OpenAITestServer(make_open_script()) as doc, OpenAITestServer(make_open_script()) as rest:
        done = _cli("run", "--mode", "open", "--cases", str(OSCE), "--format", "agentclinic", "--doctor", MODEL,
                    "--doctor", "open-oracle", "--patient", MODEL, "--measurement", MODEL,
                    "--doctor-api-base", doc.base_url, "--api-base", rest.base_url, "--out", str(out), "--timeout", "20")
        doctor_roles = {_role(r) for r in doc.requests}
        other_roles = {_role(r) for r in rest.requests}
    assert done.returncode == 0, done.stderr[-2000:]
    assert doctor_roles == {"doctor"} and "doctor" not in other_roles and "patient" in other_roles
    summary, _ = _read(out)
    assert summary["api_base"] == {"default": rest.base_url, "doctor": doc.base_url}
    assert summary["roles"]["moderator"] == "icd10" and summary["roles"]["examiner"] == "rubric"
    assert summary["doctors"] == [MODEL, "open-oracle"]
    for doctor in summary["doctors"]:  # one accuracy row per doctor, each over the five cases
        _check_accuracy(summary["diagnostic_accuracy"][doctor], 5)


def test_scripted_open_run_over_cases_imported_first(tmp_path: Path) -> None:
    imported = tmp_path / "ac.yaml"
    assert _cli("cases", "import", str(OSCE), str(imported)).returncode == 0
    done = _cli("run", "--mode", "open", "--cases", str(imported), "--out", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported" not in done.stderr  # a clinic-env case file: read as it is, not imported again
    summary, records = _read(tmp_path / "s")
    # With no --doctor, the two scripted bounds play: chance level and the oracle.
    assert summary["doctors"] == ["open-random", "open-oracle"] and len(records) == 10
    for name in ("open-random", "open-oracle"):
        _check_accuracy(summary["diagnostic_accuracy"][name], 5)
        assert summary["usage"][name]["calls_per_episode"] == 0  # no LLM anywhere
    accuracy = summary["diagnostic_accuracy"]
    assert accuracy["open-oracle"]["rate"] > accuracy["open-random"]["rate"]


def test_sigterm_keeps_finished_episodes(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    with OpenAITestServer(make_open_script(), latency=0.25) as srv:
        proc = subprocess.Popen([sys.executable, "-m", "clinic_env", "run", "--mode", "open", "--cases", str(OSCE),
                                 "--doctor", MODEL, "--api-base", srv.base_url, "--out", str(out),
                                 "--concurrency", "1", "--timeout", "20"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        results = out / "results.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (results.exists() and results.read_text().count("\n") >= 1):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err and "interrupted" in err
    summary, records = _read(out)
    assert summary["status"] == "interrupted" and 1 <= len(records) < 5 and summary["episodes"] == len(records)


@pytest.mark.parametrize(("flag", "bias", "listed"), [
    ("--doctor-bias", "no-such-bias", "recency"),
    ("--patient-bias", "definitely_not", "self_diagnosis"),
    ("--doctor-bias", "self_diagnosis", "confirmation"),  # a patient-only bias
])
def test_bad_bias_exits_2_listing_the_known_ids(tmp_path: Path, flag: str, bias: str, listed: str) -> None:
    done = _cli("run", "--mode", "open", "--cases", str(OSCE), flag, bias, "--out", str(tmp_path / "b"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert bias in done.stderr and listed in done.stderr
    assert not (tmp_path / "b" / "results.jsonl").exists()


def test_unreachable_server_exits_1_with_the_reason(tmp_path: Path) -> None:
    out = tmp_path / "down"
    done = _cli("run", "--mode", "open", "--cases", str(OSCE), "--doctor", "llm:x", "--api-base",
                "http://user:hunter2secret@127.0.0.1:9/v1", "--out", str(out), "--timeout", "2")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "5 of 5 episode(s) failed" in done.stderr and "--allow-failures" in done.stderr
    summary, records = _read(out)
    assert len(records) == 5 and all(r["end_reason"] == "llm_error" and r["errors"] for r in records)
    acc = summary["diagnostic_accuracy"]["llm:x"]
    assert acc["n"] == 0 and acc["rate"] is None and acc["failed"] == 5
    everything = done.stdout + done.stderr + (out / "summary.json").read_text() + (out / "results.jsonl").read_text()
    assert "hunter2secret" not in everything


@pytest.mark.slow
def test_allow_failures_exits_0_and_still_reports(tmp_path: Path) -> None:
    done = _cli("run", "--mode", "open", "--cases", str(OSCE), "--doctor", "llm:x", "--api-base",
                "http://127.0.0.1:9/v1", "--out", str(tmp_path / "allowed"), "--timeout", "2", "--allow-failures")
    assert done.returncode == 0 and "5 of 5 episode(s) failed" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [
    ["--patient", "llm:x"],                                     # open-mode option without --mode open
    ["--mode", "open", "--protocol", "nonesuch"],
    ["--mode", "open", "--patient", "oracle"],                  # not a patient spec
    ["--mode", "open", "--doctor", "thorough"],                 # a structured doctor in open mode
    ["--mode", "open", "--protocol", "agentclinic"],            # preset roles need an llm doctor
    ["--mode", "chat"],
    ["--mode", "open", "--format", "mediq"],                    # --format without --cases
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    done = _cli("run", *args, "--out", str(tmp_path / "u"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_peer_formats_are_detected() -> None:
    assert detect_format(OSCE) == "agentclinic"
    assert detect_format(FIXTURES / "agentclinic_nejm.jsonl") == "agentclinic"
    assert detect_format(FIXTURES / "mediq.jsonl") == "mediq"
    assert detect_format(FIXTURES / "craftmd.csv") == "craftmd"
    assert detect_format(FIXTURES) == "clinic"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".jsonl", ".json", ".csv", ".yaml"]))
def test_detect_format_never_raises(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"cases{suffix}"
    path.write_bytes(data)
    assert detect_format(path) in ("clinic", "agentclinic", "mediq", "craftmd")


def test_protocol_resolution() -> None:
    preset = resolve("agentclinic", ["open-oracle", MODEL], {"patient": "case"})
    assert preset.roles == {"patient": "case", "examiner": MODEL, "measurement": MODEL, "moderator": MODEL}
    assert preset.max_doctor_turns == 20 and preset.prompt_style == "agentclinic"
    assert resolve("agentclinic", [MODEL], {}, max_doctor_turns=7, doctor_bias="recency").max_doctor_turns == 7
    plain = resolve(None, ["open-oracle"], {})
    assert plain.roles == {"patient": "case", "examiner": "rubric", "measurement": "case", "moderator": "icd10"}
    with pytest.raises(ProtocolError, match="llm:MODEL"):
        resolve("agentclinic", ["open-oracle"], {})
    with pytest.raises(ProtocolError, match="known: agentclinic, clinic"):
        resolve("medqa", [MODEL], {})


def test_diagnostic_accuracy_counts_failures_apart() -> None:
    def rec(doctor: str, correct: bool | None, **kw: Any) -> dict[str, Any]:
        return {"doctor": doctor, "diagnosis_correct": correct, "errors": [], **kw}

    records = [rec("a", True), rec("a", False, end_reason="turn_limit"), rec("a", True),
               rec("a", None, end_reason="llm_error", errors=["doctor: refused"]),
               rec("b", None, end_reason="llm_error", errors=["x"]),
               {"doctor": "c", "final_diagnosis": "J18", "gold_diagnosis": "J18", "errors": []}]
    acc = diagnostic_accuracy(records)
    assert (acc["a"]["n"], acc["a"]["correct"], acc["a"]["failed"]) == (3, 2, 1)
    assert acc["a"]["rate"] == pytest.approx(2 / 3) and acc["a"]["ci_low"] == pytest.approx(wilson(2, 3).low, abs=1e-6)
    assert acc["b"] == {"rate": None, "ci_low": None, "ci_high": None, "n": 0, "correct": 0, "failed": 1}
    assert acc["c"]["rate"] == 1.0 and acc["c"]["ci_low"] < 1.0


def test_usage_summary_and_redaction() -> None:
    usage = {"calls": 4, "by_agent": {"doctor": {"calls": 3, "prompt_tokens": 300, "completion_tokens": 30},
                                      "patient": {"calls": 1, "prompt_tokens": 50, "completion_tokens": 5}}}
    rows = usage_summary([{"doctor": "d", "usage": usage}, {"doctor": "d", "usage": usage}])
    assert rows["d"]["calls_per_episode"] == 4 and rows["d"]["by_role"]["doctor"]["prompt_tokens_per_call"] == 100
    assert rows["d"]["by_role"]["patient"]["calls_per_episode"] == 1
    assert "s3cr3t" not in redact("http://me:s3cr3t@host/v1?api_key=s3cr3t") and "host/v1" in redact("http://me:x@host/v1")
