"""What the case's own words license: a compound ("flu jab") never licenses the bare name, and
words about other people ("my neighbour had flu") never license the patient naming it."""

from __future__ import annotations

import pytest

from clinic_env.generate.generator import generate_case
from clinic_env.patients.leak_guard import LeakGuard
from clinic_env.schema.loading import load_catalogue


@pytest.fixture(scope="module")
def flu() -> tuple[LeakGuard, set[str]]:
    case = generate_case("influenza", seed=0)
    about = {h for h, f in case.history.items() if "flu" in f.text.lower()}
    assert {"hx.sick_contacts", "pmh.vaccinations"} <= about  # the case talks of flu twice, never of the patient's
    return LeakGuard(case, load_catalogue()), about


@pytest.mark.parametrize("text", ["I've got the flu.", "It feels like flu to me.", "Doctor, this is influenza, isn't it?"])
def test_the_bare_name_is_blocked_even_after_the_items_that_use_it(flu: tuple[LeakGuard, set[str]], text: str) -> None:
    guard, asked = flu
    assert guard.check(text, asked).leaked


@pytest.mark.parametrize("text", ["No, I didn't have the flu jab this year.", "I never get the flu vaccine, I'm afraid.",
                                  "My neighbour had flu last week; I'd popped round to see her."])
def test_the_cases_own_compounds_and_answers_pass_once_asked(flu: tuple[LeakGuard, set[str]], text: str) -> None:
    guard, asked = flu
    assert not guard.check(text, asked).leaked
    assert guard.check("I had the flu jab.", set()).leaked  # not asked yet: still a name of the diagnosis
