"""The knowledge-base profiles agree with the bundled cases, and unlisted tests follow the profile."""

from __future__ import annotations

import clinic_env
from clinic_env.generate.knowledge import load_knowledge
from clinic_env.generate.profile import case_profile, case_side, unlisted_result
from clinic_env.schema.case import Case, Finding


def _ordered(case: Case, test_id: str) -> Finding:
    """What the doctor sees when ordering ``test_id``: the listed result, else the unlisted one."""
    return case.result(test_id) or unlisted_result(case, test_id)


def test_every_likely_abnormal_profile_result_is_abnormal_in_the_bundled_cases() -> None:
    # Vital signs are flagged by their numbers, not by the profile's likelihood.
    kb = load_knowledge()
    problems = []
    checked = 0
    for case in clinic_env.load_cases():
        cond = case_profile(case, kb)
        if cond is None:
            continue
        age, sex = case.demographics.age, case.demographics.sex
        for tid, entry in {**cond.exam, **cond.tests}.items():
            if tid == "exam.vitals" or entry.p < 0.8 or not entry.applies(age, sex):
                continue
            checked += 1
            if not _ordered(case, tid).abnormal:
                problems.append(f"{case.id}: {tid} (p={entry.p}) is normal: {_ordered(case, tid).text[:90]}")
    assert checked > 150
    assert not problems, "\n".join(problems)


def test_every_bundled_gold_has_a_profile() -> None:
    missing = [c.id for c in clinic_env.load_cases() if case_profile(c) is None]
    assert not missing


def _case(case_id: str) -> Case:
    return next(c for c in clinic_env.load_cases() if c.id == case_id)


def test_unlisted_mri_brain_in_subarachnoid_haemorrhage_shows_the_blood() -> None:
    case = _case("neuro-sah")
    assert case.result("img.mri_brain") is None
    found = unlisted_result(case, "img.mri_brain")
    assert found.abnormal and found.grade == "marked"
    assert "subarachnoid haemorrhage" in found.text


def test_unlisted_ct_abdomen_in_aortic_dissection_shows_the_flap() -> None:
    case = _case("card-aortic-dissection")
    found = unlisted_result(case, "img.ct_abdomen_pelvis")
    assert found.abnormal and "flap" in found.text


def test_unlisted_result_is_deterministic_and_cached() -> None:
    case = _case("card-stemi-anterior")
    first = unlisted_result(case, "lab.lipids")
    assert unlisted_result(case, "lab.lipids") is first
    fresh = case.model_copy()
    assert unlisted_result(fresh, "lab.lipids") == first


def test_a_test_the_profile_lacks_returns_the_catalogue_normal(catalogue: clinic_env.Catalogue) -> None:
    case = _case("neuro-sah")
    assert "lab.tryptase" not in {**case_profile(case).exam, **case_profile(case).tests}  # type: ignore[union-attr]
    found = unlisted_result(case, "lab.tryptase")
    assert not found.abnormal and found.grade is None
    assert found.text == catalogue.tests["lab.tryptase"].normal_result


def test_a_likely_normal_entry_gives_the_profile_normal_text() -> None:
    case = _case("card-stemi-anterior")  # lab.coagulation: p 0 in the STEMI profile
    found = unlisted_result(case, "lab.coagulation")
    assert not found.abnormal and found.text.startswith("PT ")


def test_grade_comes_from_the_profile_entry() -> None:
    case = _case("pulm-acute-asthma")  # J46: lab.vbg is listed; bedside.spirometry is not (marked)
    assert unlisted_result(case, "bedside.spirometry").grade == "marked"
    tia = _case("neuro-tia")
    assert unlisted_result(tia, "lab.crp").grade is None


def test_laterality_follows_the_case() -> None:
    stroke = _case("neuro-ischaemic-stroke")
    side = case_side(stroke)
    assert side in ("left", "right")
    other = "right" if side == "left" else "left"
    for tid in ("img.mri_brain", "img.ct_head", "img.cta_head_neck"):
        found = stroke.result(tid) or unlisted_result(stroke, tid)
        assert f" {side} middle cerebral" not in found.text.lower(), (tid, found.text)
    mri = stroke.result("img.mri_brain") or unlisted_result(stroke, "img.mri_brain")
    assert other in mri.text.lower() or stroke.result("img.mri_brain") is not None


def test_no_side_named_gives_side_neutral_text() -> None:
    case = _case("neuro-ischaemic-stroke").model_copy(update={
        "id": "neutral-stroke", "chief_complaint": "Sudden weakness", "opening_statement": "I went weak suddenly.",
        "history": {}, "exam": {}, "tests": {}})
    assert case_side(case) is None
    text = unlisted_result(case, "img.mri_brain").text.lower()
    assert "left" not in text and "right" not in text


def test_profile_for_a_more_specific_gold_code() -> None:
    case = _case("neuro-sah")
    for code in ("I60.9", "I60.2"):
        other = case.model_copy(update={"gold_diagnosis": code, "id": f"sah-{code.replace('.', '')}".lower()})
        cond = case_profile(other)
        assert cond is not None and cond.id == "subarachnoid-haemorrhage"
