"""Turning a vignette's third-person sentences into the patient's first-person answers.

``"The patient reports double vision that worsens in the evening."`` ->
``"Double vision that worsens in the evening."``; ``"She smokes 10 cigarettes a day."`` ->
``"I smoke 10 cigarettes a day."``. Rule-based and conservative: a sentence it cannot rewrite is
kept as written.
"""

from __future__ import annotations

import re

__all__ = ["first_person", "own_pronouns"]

_SUBJECT = r"(?:the patient|patient|pt|she|he|the (?:man|woman|boy|girl|child|infant|mother|father))"
_REPORT = re.compile(rf"^{_SUBJECT}\s+(?:reports|describes|notes|mentions|states|says|endorses|complains of|"
                     r"admits to|has noticed|noticed|is experiencing|experiences|presents with|"
                     r"has been experiencing|has been having)\s+(?:that\s+)?", re.IGNORECASE)
_DENIES = re.compile(rf"^{_SUBJECT}\s+(?:denies|denied|reports no|has no|does not have|doesn't have)\s+", re.IGNORECASE)
_START = re.compile(rf"^{_SUBJECT}\b(?:'s)?", re.IGNORECASE)
_VERBS = {
    "has": "have", "is": "am", "does": "do", "was": "was", "works": "work", "drinks": "drink", "smokes": "smoke",
    "lives": "live", "takes": "take", "uses": "use", "feels": "feel", "walks": "walk", "eats": "eat",
    "sleeps": "sleep", "exercises": "exercise", "travels": "travel", "quit": "quit", "stopped": "stopped",
    "had": "had", "underwent": "underwent", "recently": "recently", "notices": "notice", "describes": "describe",
    "reports": "report", "gets": "get", "goes": "go", "needs": "need", "wakes": "wake", "coughs": "cough",
    "breathes": "breathe", "vomits": "vomit", "complains": "complain", "denies": "deny", "admits": "admit",
    "says": "say", "sees": "see", "hears": "hear", "finds": "find", "wants": "want", "tries": "try",
    "becomes": "become", "enjoys": "enjoy", "plays": "play", "runs": "run", "cannot": "cannot", "knows": "know",
}


def _pronouns(text: str) -> str:
    text = re.sub(r"\b(?:She|He)\b", "I", text)
    text = re.sub(r"\b(?:she|he)\b", "I", text)
    text = re.sub(r"\b(?:herself|himself)\b", "myself", text)
    text = re.sub(r"\bhis\b|\bher\b(?=\s+[a-z])", "my", text)
    text = re.sub(r"\bHis\b|\bHer\b(?=\s+[a-z])", "My", text)
    text = re.sub(r"\bhim\b|\bher\b", "me", text)
    return text


def own_pronouns(text: str) -> str:
    """Third-person pronouns of a phrase made the speaker's (``his toe`` -> ``my toe``)."""
    return _agree(_pronouns(text))


#: Words ending in "s" after "I" that are not third-person verbs ("I always", "I sometimes").
_NOT_VERBS = {"always", "sometimes", "perhaps", "this", "thus", "less", "unless", "across", "towards", "afterwards"}


def _base_form(word: str) -> str:
    """A third-person present verb's base form (``keeps`` -> ``keep``, ``watches`` -> ``watch``,
    ``worries`` -> ``worry``); other words unchanged."""
    low = word.lower()
    if low in _VERBS:
        return _VERBS[low]
    if low in _NOT_VERBS or len(low) < 4 or not low.endswith("s") or low.endswith(("ss", "us", "is", "ous")):
        return word
    if low.endswith("ies"):
        return word[:-3] + "y"
    if low.endswith(("ches", "shes", "xes", "sses", "zes", "oes")):
        return word[:-2]
    return word[:-1]


def _agree(text: str) -> str:
    text = re.sub(r"\bI (\w+)\b", lambda m: f"I {_base_form(m.group(1))}", text)
    if text.startswith("I ") or " I " in text:
        # "I work ... and lives ..." -> "and live"
        text = re.sub(r"\b(and|but) (\w+)\b", lambda m: f"{m.group(1)} {_VERBS.get(m.group(2), m.group(2))}", text)
    return text


def first_person(sentence: str) -> str:
    """The sentence in the patient's own voice."""
    s = sentence.strip()
    if not s:
        return s
    m = _REPORT.match(s)
    if m:
        rest = s[m.end():]
        return _agree(_pronouns(rest[:1].upper() + rest[1:]))
    m = _DENIES.match(s)
    if m:
        return "No, I haven't had " + _pronouns(s[m.end():].rstrip("."))[:1].lower() + _pronouns(s[m.end():].rstrip("."))[1:] + "."
    m = _START.match(s)
    if m:
        possessive = s[m.end() - 2 : m.end()] == "'s"
        s = ("My" if possessive else "I") + s[m.end():]
    return _agree(_pronouns(s))
