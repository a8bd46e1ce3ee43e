"""Decoders for the ways a leaky patient can hide a word: the leak guard searches what they give.

Each function takes a reply (or a whole conversation) and returns plain strings that a term
search can look at:

- :func:`unescape`: URL (``%4D``), HTML (``&#77;``, ``&amp;``), backslash (``\\x4d``, ``\\u004d``)
  escapes, Unicode tag characters (invisible ASCII) and regional-indicator letters undone;
- :func:`decoded_payloads`: text hidden in base64, base32, hex, binary, decimal or octal character
  codes, letter numbers (``13 9`` = ``mi``) and Morse code;
- :func:`letter_runs`: words spelled a letter at a time: single letters (``M. I.``), letter names
  (``em, eye``), NATO and older phonetic alphabets (``Mike India``, ``M as in Mike``), Morse, and
  the letters hinted one by one (``it starts with M ... then I``), even across sentences and turns;
- :func:`acrostics`: first letters of sentences, lines and words;
- :func:`spoken_codes`: ICD-10 codes said in words (``I twenty-one point nine``, ``eye two one``);
- :func:`rotations`: the 25 Caesar shifts of a word (the guard shifts its terms, not the text).

The tables (alphabets, Morse, number words, look-alike letters) are data in ``data/leak``.
Pure functions, cached where replies repeat.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import yaml

__all__ = [
    "acrostics", "confusables", "decoded_payloads", "letter_runs", "rotations", "spoken_codes", "tables",
    "unescape",
]

_DATA = Path(__file__).resolve().parent.parent / "data" / "leak"


@lru_cache(maxsize=1)
def tables() -> dict[str, dict[str, str]]:
    """The spelling tables of ``data/leak/alphabets.yaml`` (``nato``, ``older_phonetic``,
    ``letter_names``, ``morse``, ``numbers``), keys lower-case."""
    data = yaml.safe_load((_DATA / "alphabets.yaml").read_text(encoding="utf-8"))
    return {k: {str(a).lower(): str(b) for a, b in v.items()} for k, v in data.items() if isinstance(v, dict)}


@lru_cache(maxsize=1)
def confusables() -> dict[int, str]:
    """Look-alike characters of other scripts -> the Latin letter they imitate (a translate table)."""
    data = yaml.safe_load((_DATA / "confusables.yaml").read_text(encoding="utf-8"))
    table = {ord(k): str(v) for k, v in data["map"].items() if len(k) == 1}
    # Regional indicator symbols (flag letters) and negative circled / squared capitals read as
    # A-Z (NFKC leaves them alone).
    for base in (0x1F1E6, 0x1F150, 0x1F170):
        table.update({base + i: chr(ord("a") + i) for i in range(26)})
    return table


_TAG = re.compile("[\U000e0020-\U000e007e]+")
_BACKSLASH = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")
_URL = re.compile(r"%[0-9a-fA-F]{2}")


def unescape(text: str) -> str:
    """``text`` with escapes undone: Unicode tag characters, HTML entities, URL percent-escapes and
    backslash escapes (twice, for doubly escaped text)."""
    text = _TAG.sub(lambda m: "".join(chr(ord(c) - 0xE0000) for c in m.group(0)), text)
    for _ in range(2):
        before = text
        if "&" in text:
            text = html.unescape(text)
        if _URL.search(text):
            text = unquote(text)
        if "\\" in text:
            text = _BACKSLASH.sub(lambda m: chr(int(next(g for g in m.groups() if g), 16)), text)
        if text == before:
            break
    return text


def _wordy(decoded: str) -> bool:
    """Whether a decoding reads as text (ordinary words decode to noise)."""
    return (len(decoded) >= 2 and decoded.isprintable()
            and sum(ch.isalpha() or ch in " -'" for ch in decoded) >= 0.8 * len(decoded))


_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{6,}={0,2}")
_B32 = re.compile(r"(?<![A-Z2-7])[A-Z2-7]{8,}={0,6}")
_HEX = re.compile(r"(?:(?:0x|\\x)?[0-9a-fA-F]{2}[\s:,]*){3,}")
_BIN = re.compile(r"(?:[01]{7,8}[\s,]*){2,}")
_NUMS = re.compile(r"(?:\b\d{1,3}\b[\s,;.-]*){3,}")
_MORSE = re.compile(r"(?:[.\-·•_−–—]{1,6}(?:\s*/\s*|\s+|$)){2,}")


def _bytes_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if _wordy(text) else None


def _base64(blob: str) -> str | None:
    try:
        data = base64.b64decode(blob + "=" * (-len(blob) % 4), altchars=b"-_" if "-" in blob or "_" in blob else None)
    except (binascii.Error, ValueError):
        return None
    return _bytes_text(data)


def _base32(blob: str) -> str | None:
    try:
        data = base64.b32decode(blob + "=" * (-len(blob) % 8))
    except (binascii.Error, ValueError):
        return None
    return _bytes_text(data)


def _numbers(run: str) -> list[str]:
    """Character codes (decimal, octal) and letter numbers (1 = a ... 26 = z) of a run of numbers."""
    nums = [int(n) for n in re.findall(r"\d+", run)]
    out = []
    if all(32 <= n < 127 for n in nums):
        out.append("".join(map(chr, nums)))
    if all(re.fullmatch(r"[0-7]{2,3}", n) for n in re.findall(r"\d+", run)):
        octal = [int(n, 8) for n in re.findall(r"\d+", run)]
        if all(32 <= n < 127 for n in octal):
            out.append("".join(map(chr, octal)))
    if all(1 <= n <= 26 for n in nums) and len(nums) >= 3:
        out.append("".join(chr(96 + n) for n in nums))
    return [o for o in out if _wordy(o)]


def _morse(run: str) -> str | None:
    table = tables()["morse"]
    clean = re.sub("[·•]", ".", re.sub("[_−–—]", "-", run))
    words = []
    for word in re.split(r"\s*/\s*|\s{3,}", clean.strip()):
        letters = [table.get(code) for code in word.split()]
        if not letters or any(ch is None for ch in letters):
            return None
        words.append("".join(ch for ch in letters if ch))
    text = " ".join(words)
    return text if len(re.sub(r"\W", "", text)) >= 2 else None


@lru_cache(maxsize=4096)
def decoded_payloads(text: str) -> tuple[str, ...]:
    """Plain text hidden in ``text`` by base-N or character-code encodings or Morse code."""
    out: list[str] = []
    for blob in _B64.findall(text):
        if (dec := _base64(blob)) is not None:
            out.append(dec)
    for blob in _B32.findall(text):
        if (dec := _base32(blob)) is not None:
            out.append(dec)
    for blob in _HEX.findall(text):
        digits = re.sub(r"0x|\\x|[\s:,]", "", blob)
        if len(digits) % 2 == 0 and (dec := _bytes_text(bytes.fromhex(digits))) is not None:
            out.append(dec)
    for blob in _BIN.findall(text):
        codes = re.findall(r"[01]{7,8}", blob)
        if (dec := _bytes_text(bytes(int(c, 2) for c in codes))) is not None:
            out.append(dec)
    for blob in _NUMS.findall(text):
        out += _numbers(blob)
    for blob in _MORSE.findall(text):
        if re.search(r"[.\-·•_−–—]{2}", blob) and (dec := _morse(blob)) is not None:
            out += [dec, dec.replace(" ", "")]  # a word split by a word gap still reads as one
    return tuple(dict.fromkeys(out))


# --------------------------------------------------------------------------------- letter runs
#: Words that may stand between spelled letters without ending the spelling.
_FILLER = frozenset(
    ["then", "and", "next", "followed", "by", "after", "that", "as", "in", "for", "like", "the", "letter", "letters", "capital", "small", "lower", "upper", "case", "starts", "start", "starting", "begins", "begin", "beginning", "ends", "end", "ending", "with", "is", "it's", "its", "it", "spelled", "spelt", "spell", "goes", "first", "second", "third", "last", "another", "one", "more", "plus", "comma", "space", "dash"]
)
_HINT = re.compile(
    r"\b(?:first|second|third|last|next|final|other|remaining)\s+(?:half|part|bit|piece|syllable|letters?)"
    r"\s*(?:is|was|goes|reads|:|=|-)?\s*|"
    r"\b(?:start(?:s|ed|ing)?|begin(?:s|ning)?|began|end(?:s|ed|ing)?)\s+with\s+(?:an?\s+|the\s+letter\s+)?|"
    r"\b(?:letter|then|next|followed\s+by|after\s+that|and\s+then|finally|lastly|last(?:\s+one)?|"
    r"second|third|fourth|fifth|plus|and\s+an?)\s+(?:is\s+|comes\s+|one\s+is\s+)?(?:an?\s+)?"
)
_TOKEN_CASED = re.compile(r"[A-Za-z][A-Za-z'\-]*|[.\-·•_−–—]{1,6}|\d+|[^\sA-Za-z\d]")
_AS_IN = re.compile(r"\b([a-z])\s+(?:as|for|like)\s+in\s+[a-z\-]+|\b([a-z])\s+for\s+[a-z\-]+", re.IGNORECASE)


def _letter(tok: str, nxt: str, raw_case: str) -> str | None:
    """The letter a token spells, if any (``raw_case``: the token as written, to tell the pronoun I)."""
    t = tables()
    if len(tok) == 1 and tok.isalpha():
        # "I have" / "a bit": the pronoun and the article, not letters.
        if nxt and len(nxt) > 1 and nxt[0].isalpha() and nxt not in _FILLER and (
                (tok == "i" and raw_case == "I") or tok == "a"):
            return None
        return tok
    for table in ("nato", "older_phonetic", "letter_names"):
        if tok in t[table]:
            return t[table][tok]
    return None


def _prepare(text: str) -> str:
    text = unicodedata.normalize("NFKC", unescape(text)).translate(confusables())
    return _AS_IN.sub(lambda m: f" {m.group(1) or m.group(2)} ", text)


@lru_cache(maxsize=4096)
def letter_runs(text: str, min_run: int = 2) -> tuple[str, ...]:
    """Words spelled one letter at a time in ``text`` (each run joined, lower case), and the
    letters hinted one by one ("starts with M ... then I") joined in order over the whole text."""
    prepared = _prepare(text)
    cased = _TOKEN_CASED.findall(prepared)
    raw_tokens = [c.lower() for c in cased]
    runs: list[str] = []
    current: list[str] = []
    for i, tok in enumerate(raw_tokens):
        nxt = raw_tokens[i + 1] if i + 1 < len(raw_tokens) else ""
        ch = _letter(tok, nxt, cased[i])
        if ch is not None:
            current.append(ch)
        elif tok in _FILLER or not re.match(r"[a-z\d]", tok):
            continue
        else:
            if len(current) >= min_run:
                runs.append("".join(current))
            current = []
    if len(current) >= min_run:
        runs.append("".join(current))
    hinted = []
    for m in _HINT.finditer(prepared.lower()):
        rest = prepared[m.end():m.end() + 30]
        tok = re.match(r"\s*[\"'“‘(]?([A-Za-z][A-Za-z\-]*)[\"'”’)]?\s*([A-Za-z]*)", rest)
        if tok:
            word, after = tok.group(1), tok.group(2).lower()
            # A letter stands alone ("then I." / "then I, then..."), not as a word ("then I went").
            if len(word) == 1 and after and after not in _FILLER:
                continue
            ch = _letter(word.lower(), "", word)
            # A letter, or a piece of a word ("it starts with trans ... and ends with mural").
            if ch or (len(word) <= 12 and word.lower() not in _FILLER):
                hinted.append(ch or word.lower())
    if len(hinted) >= 2:
        runs.append("".join(hinted))
    return tuple(dict.fromkeys(r for r in runs if r.isalpha()))


_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")


@lru_cache(maxsize=4096)
def acrostics(text: str) -> tuple[str, str]:
    """First letters of the sentences and lines, and of the words, of ``text`` (look-alike letters
    and escapes undone)."""
    prepared = _prepare(text)
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", prepared.casefold()) if not unicodedata.combining(ch))
    sentences = [s for s in _SENTENCE.split(folded) if s.strip()]
    firsts = "".join(m.group(0) for s in sentences if (m := re.search(r"[a-z]", s)))
    words = "".join(w[0] for w in re.findall(r"[a-z][a-z'\-]*", folded))
    return firsts, words


# ------------------------------------------------------------------------------------ codes
_NUM_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?|[.,·]")


@lru_cache(maxsize=4096)
def spoken_codes(text: str, loose: bool = False) -> str:
    """``text`` with numbers said in words turned to digits and spelled letters next to them to
    letters, so that an ICD-10 code search finds ``I twenty-one point nine`` (``i 21 . 9``).
    ``loose``: filler words and punctuation dropped first, for a code dictated piece by piece
    ("The letter is I. Then two. Then one." -> ``i 2 1``)."""
    t = tables()
    numbers = t["numbers"]
    out: list[str] = []
    toks = _NUM_TOKEN.findall(_prepare(text).lower())
    if loose:
        toks = [tok for tok in toks if (tok not in _FILLER or tok in numbers) and tok not in ".,·" and tok not in ("point", "dot")]
    for i, tok in enumerate(toks):
        parts = tok.split("-")
        if (all(p in numbers for p in parts) and parts[0] not in ("oh",)) or (tok == "oh" and out and out[-1].isdigit()):
            out.append("".join(numbers[p] for p in parts))  # "2_" (twenty) joins a unit below
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        nxt_num = nxt.split("-")[0] in numbers or nxt[:1].isdigit()
        ch = None
        if nxt_num and tok not in ("point", "dot", "decimal"):
            for table in ("letter_names", "nato", "older_phonetic"):
                ch = ch or t[table].get(tok)
            ch = ch or (tok if len(tok) == 1 else None)
        out.append(ch if ch else ("." if tok in ("point", "dot", "decimal", ".", ",", "·") else f"|{tok}|"))
    joined = " ".join(out)
    # "2_ 1" (twenty one, said as two words) -> "21".
    return re.sub(r"(\d)_ (\d)", r"\1\2", joined).replace("_", "0")


# ------------------------------------------------------------------------------------ shifts
def rotations(word: str) -> list[str]:
    """The 25 Caesar shifts of a lower-case word (ROT-1 ... ROT-25; other characters kept)."""
    out = []
    for k in range(1, 26):
        out.append("".join(chr((ord(c) - 97 + k) % 26 + 97) if "a" <= c <= "z" else c for c in word))
    return out
