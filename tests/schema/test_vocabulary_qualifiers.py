"""Forms WHO ICD-10 does not code apart (``qualifier_words`` in data/icd10/synonyms.yaml) are set
aside only when the rest of the name maps as it stands; words that do change the code stay."""

from __future__ import annotations

import pytest

from clinic_env.schema.vocabulary import map_diagnosis


@pytest.mark.parametrize(("text", "code"), [
    ("Monomorphic ventricular tachycardia", "I47.2"),
    ("Polymorphic ventricular tachycardia", "I47.2"),
    ("Non-sustained ventricular tachycardia", "I47.2"),
    ("Non-exertional heat stroke", "T67.0"),
])
def test_a_form_not_coded_apart_is_set_aside(text: str, code: str) -> None:
    found = map_diagnosis(text)
    assert found.code == code
    assert "not coded apart" in found.evidence


@pytest.mark.parametrize("text", [
    "classic migraine",  # classical migraine is migraine with aura (G43.1), not migraine NOS
    "Monomorphic gibberish",  # the rest must itself be a name
    "polymorphic light eruption",  # "light eruption" names nothing as it stands
])
def test_no_guess_when_the_rest_is_not_a_name_or_the_word_matters(text: str) -> None:
    found = map_diagnosis(text)
    assert found.code != "G43.9"
    assert "not coded apart" not in found.evidence
