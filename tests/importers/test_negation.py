"""ConText-style negation (rules as data) and abnormal/normal reading of results."""

from __future__ import annotations

import pytest

from clinic_env.importers.negation import assertion, is_negated, load_rules
from clinic_env.importers.results import analyte_abnormal, result_abnormal


@pytest.mark.parametrize(("sentence", "target"), [
    ("Non-smoker, drinks wine occasionally.", "smoker"), ("Nonsmoker.", "smoking"), ("He is a lifetime nonsmoker", "smoke"),
    ("Denies fever, cough, or recent travel.", "cough"), ("No history of asthma.", "asthma"), ("Negative for HIV.", "HIV"),
    ("Pneumonia was ruled out.", "pneumonia"), ("Presents without fever.", "fever"), ("She has never smoked", "smoked"),
    ("He has not had any weight loss", "weight loss"), ("Fever: absent", "fever"), ("No free air", "free air"),
    ("The patient denies any chest pain, palpitations, shortness of breath, or recent infections.", "infections"),
])
def test_negated(sentence: str, target: str) -> None:
    assert is_negated(sentence, target)
    assert assertion(sentence, target) == "negated"


@pytest.mark.parametrize(("sentence", "target"), [
    ("Positive Dix-Hallpike test", "Dix-Hallpike"), ("CT shows free mediastinal air", "mediastinal air"),
    ("Nonspecific abdominal pain", "pain"), ("Denies fever but reports cough", "cough"), ("Cannot rule out pneumonia", "pneumonia"),
    ("Positive gonorrhoea test", "gonorrhoea"), ("Normal sinus rhythm with nonspecific changes", "changes"),
])
def test_affirmed(sentence: str, target: str) -> None:
    assert not is_negated(sentence, target)


def test_family_experiencer() -> None:
    assert assertion("Her mother has thyroid disease", "thyroid") == "family"


def test_rules_are_data_and_cite_the_method() -> None:
    rules = load_rules()
    assert ("no", "history", "of") in rules.pre and ("free", "mediastinal", "air") in rules.pseudo
    from clinic_env.importers import negation

    text = (negation._RULES).read_text(encoding="utf-8")
    assert "Chapman" in text and "Harkema" in text


@pytest.mark.parametrize(("text", "abnormal"), [
    ("Positive Dix-Hallpike test", True), ("CT chest: free mediastinal air", True), ("Positive gonorrhoea test", True),
    ("Normal, no thymoma or other masses detected.", False), ("Regular heart rate, no murmurs", False),
    ("Mild flank tenderness, no rebound or guarding", True), ("Physiologic reflexes present and symmetrical.", False),
    ("Right upper limb strength: 4/5", True), ("Rubella IgM: Positive; Others: Negative", True), ("Bacterial culture: Negative", False),
    ("Lactate dehydrogenase level: 35664 U per liter", True), ("Within normal limits", False),
    ("No fracture, dislocation, or appreciable joint effusion.", False), ("Normal bowel sounds", False),
    ("Clear to auscultation bilaterally, no wheezes, rales, or rhonchi.", False), ("Tests for HIV: Negative", False),
    ("IgG-monoclonal gammopathy detected", True), ("No abnormalities.", False), ("Nonspecific ST changes", False),
    ("HR 72/min, BP 125/80 mmHg, RR 16/min, T 36.6 °C", False), ("HR 130/min, BP 80/50 mmHg", True),
])
def test_result_abnormal(text: str, abnormal: bool) -> None:
    assert result_abnormal(text) is abnormal


def test_analyte_ranges() -> None:
    assert analyte_abnormal("WBC 15,000/mm3") is True
    assert analyte_abnormal("Sodium 140 mEq/L") is False
    assert analyte_abnormal("no numbers here") is None


def test_a_fused_negation_covers_its_own_word_only() -> None:
    sentence = "Non-smoker, drinks alcohol socially, retired school teacher."
    assert is_negated(sentence, "non-smoker") and is_negated(sentence, "smoking")
    assert not is_negated(sentence, "alcohol") and not is_negated(sentence, "teacher")


def test_patient_sex_is_read_from_the_patient_never_from_relatives() -> None:
    from clinic_env.importers.build import parse_demographics, parse_sex

    # A boy brought by his mother is a boy (the mother's noun and pronouns are not the patient's).
    assert parse_demographics("A 5-year-old boy is brought to the clinic by his mother.")[1] == "M"
    assert parse_demographics("A 7-year-old girl is brought in by her father.")[1] == "F"
    assert parse_demographics("70-year-old man accompanied by his wife")[1] == "M"
    # A history that speaks only of the mother does not give a newborn a sex.
    assert parse_sex("The newborn was born at term. The mother had no prenatal care.", narrative=True) is None
    assert parse_sex("He mentions being sexually active with 2 female partners. He has a cough.", narrative=True) == "M"
    assert parse_demographics("3-year-old child")[1] is None
