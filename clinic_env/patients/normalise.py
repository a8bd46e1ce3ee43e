"""Text normalisation for matching medical terms in free text, robust to obfuscation.

A leaky patient (or an adversarial doctor) can hide a word from a naive substring check by
spelling it letter by letter, using look-alike letters from other scripts, leetspeak, zero-width
characters, accents, reversing it or encoding it. :func:`views` turns a text into several
normalised *views* that a term matcher searches in turn; each view undoes one family of tricks.
Pure functions, no state.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import itertools
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from clinic_env.patients.encodings import acrostics, confusables, decoded_payloads, letter_runs, unescape

__all__ = ["STOPWORDS", "TextViews", "collapse_doubles", "content_tokens", "fold", "stem", "tokens", "views", "word_set"]

# Cyrillic and Greek letters that render like Latin ones (the common homoglyph substitutions).
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ɡ": "g", "ӏ": "l",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ℓ": "l", "ı": "i", "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d",
})
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\ufe00-\ufe0f\ufeff\U000e0000-\U000e007f\U000e0100-\U000e01ef]")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e"})
_WORD = re.compile(r"[a-z]+")
_LEET_WORD = re.compile(r"[a-z0-9@$!|+€]*[a-z][a-z0-9@$!|+€]*|[0-9@$!|+€]*[a-z][a-z0-9@$!|+€]*")
# Runs of at least three single characters separated by spaces or punctuation: "a-p-p-e-n-d-i-x".
_SPACED = re.compile(r"(?<![a-z0-9'’])(?:[a-z0-9@$](?:[\s\-_.·*,/|]{1,3})){2,}[a-z0-9@$](?![a-z0-9])")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{8,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){6,}\b")

def word_set(words: str) -> frozenset[str]:
    """The whitespace-separated words of ``words`` as a set (for word lists written as prose)."""
    return frozenset(words.split())


#: Words that carry no meaning for matching (dropped from phrases before matching).
STOPWORDS = word_set(
    "a an the of in on at to for and or with without by from my your his her their our its it is are was "
    "were be been being this that these those i you he she we they me him them us do does did have has had "
    "some any very so too just really bit"
)


def fold(text: str) -> str:
    """Case-fold ``text`` and undo Unicode tricks: compatibility forms, invisible characters,
    look-alike letters and accents (``"Аppendicité"`` -> ``"appendicite"``)."""
    text = unicodedata.normalize("NFKC", unescape(text))
    text = _INVISIBLE.sub("", text).translate(confusables()).casefold().translate(_HOMOGLYPHS)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(word: str) -> str:
    """A light stemmer: plural and possessive endings (``embolisms`` -> ``embolism``)."""
    if len(word) > 4 and word.endswith("'s"):
        word = word[:-2]
    if len(word) > 5 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Stemmed letter tokens of already-folded text."""
    return [stem(w) for w in _WORD.findall(text)]


def content_tokens(text: str) -> list[str]:
    """Tokens of raw text without stopwords and contraction fragments (``'m``, ``'ve``)."""
    return [t for t in tokens(fold(text)) if t not in STOPWORDS and len(t) > 2]


@lru_cache(maxsize=65536)
def collapse_doubles(word: str) -> str:
    """``appendicitis`` -> ``apendicitis``: spelling variants across languages often differ only
    in doubled letters."""
    return re.sub(r"(.)\1+", r"\1", word)


def _decode_hidden(raw: str) -> list[str]:
    """Plain text hidden in base64 or hex runs of ``raw`` (a leaky reply may encode the answer),
    and in the other encodings of :func:`~clinic_env.patients.encodings.decoded_payloads`."""
    out: list[str] = list(decoded_payloads(unescape(raw)))
    for blob in _B64.findall(raw):
        try:
            decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        # Only decodings that read as words (ordinary long words decode to noise).
        if decoded.isprintable() and sum(ch.isalpha() or ch == " " for ch in decoded) >= 0.8 * len(decoded):
            out.append(decoded)
    for blob in _HEX.findall(raw):
        try:
            decoded = bytes.fromhex(re.sub(r"[\s:]", "", blob)).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if decoded.isprintable():
            out.append(decoded)
    return out


@dataclass(frozen=True)
class TextViews:
    """The normalised views of one text.

    Attributes:
        folded: Case-folded text with Unicode tricks undone (used for ICD codes and CJK terms).
        token_lists: Token sequences to search for words and phrases: plain, leetspeak undone,
            spaced-out letters joined, and any base64/hex-decoded text.
        compact: Letters only, all separators removed, forwards, reversed and ROT13-decoded (for
            long terms split by spaces or punctuation, written backwards or rotated).
        cjk: Runs of CJK characters (terms in Chinese, Japanese or Korean).
        token_sets: The token lists as sets; ``prefixes``/``all_tokens``: for quick candidate tests.
        spelled: Letter-by-letter spellings found in the text, joined (spaced letters, letter
            names, phonetic alphabets, hinted letters, first letters of sentences).
        initials: The first letters of the text's words (an acrostic hidden in word initials).
        runs: ``spelled`` as a set (a spelled abbreviation must be a whole run).
    """

    folded: str
    token_lists: tuple[tuple[str, ...], ...]
    compact: tuple[str, ...]
    cjk: str
    token_sets: tuple[frozenset[str], ...] = ()
    prefixes: frozenset[str] = frozenset()
    all_tokens: frozenset[str] = frozenset()
    spelled: tuple[str, ...] = ()
    initials: str = ""
    runs: frozenset[str] = frozenset()


def _join_spaced(text: str) -> str:
    return _SPACED.sub(lambda m: re.sub(r"[\s\-_.·*,/|]", "", m.group(0)), text)


def _spelled_runs(text: str) -> tuple[str, ...]:
    """Letter-by-letter spellings in ``text``, joined (``"a z-o-s-t-e-r"`` -> ``"azoster"``); a
    term found inside one was spelled out."""
    return tuple(re.sub(r"[^a-z]", "", m.group(0).translate(_LEET)) for m in _SPACED.finditer(text))


@lru_cache(maxsize=4096)
def views(text: str) -> TextViews:
    """All normalised views of ``text`` (cached: patients repeat themselves)."""
    folded = fold(text)
    leet = _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET), folded)
    joined = _join_spaced(folded)
    joined_leet = _join_spaced(leet).translate(_LEET)
    lists = [tuple(tokens(folded)), tuple(tokens(leet)), tuple(tokens(joined)), tuple(tokens(joined_leet))]
    # Words split by a hyphen or a space ("zos-ter", "appen dicitis"): joined in pairs.
    plain = _WORD.findall(re.sub(r"(?<=[a-z])[-_·/.*]+(?=[a-z])", "", leet.translate(_LEET)))
    lists.append(tuple(stem(w) for w in plain))
    # Not with a one-letter word after it: "got a" is not "gota".
    lists.append(tuple(stem(a + b) for a, b in itertools.pairwise(plain) if len(b) > 1))
    # Words written backwards ("retsoz"), in reverse order so phrases read the right way round.
    # Words of three letters or fewer are not reversed: "dag" (Dutch "day") is not "gad".
    lists.append(tuple(stem(w[::-1] if len(w) > 3 else w) for w in reversed(_WORD.findall(leet.translate(_LEET)))))
    for hidden in _decode_hidden(unicodedata.normalize("NFKC", text)):
        lists.append(tuple(tokens(fold(hidden))))
    unique = tuple(dict.fromkeys(lists))
    compact = re.sub(r"[^a-z]", "", leet.translate(_LEET))
    rot = codecs.decode(compact, "rot13")
    sets = tuple(frozenset(seq) for seq in unique)
    # Five-letter prefixes (doubled letters collapsed) of the longer words: fuzzy candidates.
    prefixes = frozenset(collapse_doubles(w)[:5] for seq in unique for w in seq if len(w) >= 6)
    firsts, initials = acrostics(text)
    spelled = tuple(dict.fromkeys((*_spelled_runs(folded), *letter_runs(text), *([firsts] if len(firsts) >= 3 else []))))
    return TextViews(folded, unique, (compact, compact[::-1], rot), "".join(_CJK.findall(folded)), sets, prefixes,
                     frozenset().union(*sets), spelled, initials if len(initials) >= 5 else "", frozenset(spelled))
