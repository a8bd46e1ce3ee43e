"""The words of diagnosis names, for :mod:`clinic_env.schema.vocabulary`: normalisation (case,
accents, possessives, UK/US spelling, compound prefixes), content words (stop words and plurals
dropped, an organ's adjective as its noun from ``data/icd10/synonyms.yaml``), and the title tests
of the ``within`` stage (a title's affirmed part; a phrase plus qualifying words, never a second
entity)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import yaml

__all__ = ["HARMLESS", "affirmed_part", "content_words", "normalise_text", "qualifies", "stem", "strong", "tokens"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "icd10" / "synonyms.yaml"

# UK -> US spelling: applied to both sides, so either spelling matches either.
_SPELLING = (("oesophag", "esophag"), ("haem", "hem"), ("aemia", "emia"), ("ischaem", "ischem"), ("rrhoe", "rrhe"),
             ("oedem", "edem"), ("paed", "ped"), ("coeliac", "celiac"), ("faec", "fec"), ("goitre", "goiter"),
             ("tumour", "tumor"), ("caec", "cec"), ("gynaec", "gynec"), ("anaes", "anes"), ("oestr", "estr"),
             ("foet", "fet"), ("dyspnoea", "dyspnea"), ("apnoea", "apnea"), ("leukaem", "leukem"), ("fibre", "fiber"),
             ("centre", "center"), ("behaviour", "behavior"), ("orthopaed", "orthoped"), ("aesthe", "esthe"))
_STOP = frozenset({"of", "the", "a", "an", "and", "or", "in", "on", "at", "to", "by", "for", "as", "its", "nos",
                   "unspecified", "elsewhere", "classified"})
#: Words that never tell two entities apart (set aside from stage 4 on).
HARMLESS = frozenset({"disease", "disorder", "syndrome", "condition", "infection", "type"})


def normalise_text(text: str) -> str:
    """Lower case, accents folded, possessives and punctuation dropped, US spelling
    (``Hirschsprung’s disease`` -> ``hirschsprung disease``, ``leukaemia`` -> ``leukemia``)."""
    # Possessives first: "Kaposi’s" must not become "kaposis" when the curly apostrophe is folded away.
    text = re.sub(r"['’`]s\b", "", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    for uk, us in _SPELLING:
        text = text.replace(uk, us)
    # "post-traumatic", "post traumatic" and "posttraumatic" are one word; so is "heat stroke".
    text = re.sub(r"\b(post|pre|non|anti|peri|para|intra|extra|retro|heat|sun)\s+(?=[a-z]{4,})", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def stem(word: str) -> str:
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "is", "us", "sis", "ies")):
        return word[:-1]
    return word


@lru_cache(maxsize=1)
def _equivalents() -> dict[str, str]:
    """Word -> the first word of its group in ``equivalent_words`` (``pulmonary`` -> ``lung``)."""
    raw = yaml.safe_load(_DATA.read_text(encoding="utf-8")) or {}
    out: dict[str, str] = {}
    for group in raw.get("equivalent_words") or ():
        words = [stem(normalise_text(str(w))) for w in group]
        for w in words:
            out.setdefault(w, words[0])
    return out


def content_words(text: str) -> frozenset[str]:
    """The content words of a (normalised) text: stop words dropped, plurals singular, an organ's
    adjective written as its noun (``pulmonary`` -> ``lung``, data: ``equivalent_words``)."""
    eq = _equivalents()
    words = (stem(w) for w in normalise_text(text).split() if w not in _STOP)
    return frozenset(eq.get(w, w) for w in words)


def strong(words: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in words if w not in HARMLESS)



#: Words that join a second entity to a title ("... with polymyalgia rheumatica", "... due to ...").
_LINKS = frozenset({"with", "due", "associated", "following", "complicating", "secondary", "caused", "anemia",
                    "without"})


def qualifies(phrase: list[str], title: list[str]) -> bool:
    """Whether a title is the phrase plus at most two qualifying words ("lichen sclerosus" + "et
    atrophicus"), never plus a second entity ("giant cell arteritis" + "with polymyalgia
    rheumatica", "vitamin B12 deficiency" + "anaemia due to ...")."""
    rest = title[len(phrase):]
    return title[:len(phrase)] == phrase and len(rest) <= 2 and not (rest and rest[0] in _LINKS)


def tokens(text: str) -> list[str]:
    """The text's content words in order (for a title's beginning)."""
    eq = _equivalents()
    return [eq.get(w, w) for w in (stem(w) for w in normalise_text(re.sub(r"\([^)]*\)", " ", text)).split()
                                   if w not in _STOP and w not in HARMLESS)]


def affirmed_part(label: str) -> str:
    """A title without its negated parts ("without mention of rupture", "except ...", "other than ...")."""
    return re.sub(r"\b(?:without|except|other than|excluding|not)\b[^,;\[\]()]*", " ", label, flags=re.IGNORECASE)
