"""JSON schemas of text-mode replies, sent as ``response_format`` where servers support
structured outputs (vLLM, OpenAI, SGLang) and used to document the expected reply shape."""

from __future__ import annotations

from typing import Any

__all__ = ["DOCTOR_ACTIONS", "DOCTOR_SCHEMA", "EXAMINER_BATCH_SCHEMA", "EXAMINER_SCHEMA", "PATIENT_SCHEMA", "doctor_schema",
           "legal_doctor_schema", "schema_regex"]

#: The doctor's action verbs in replies (``item`` names the catalogue id or ICD-10 code).
DOCTOR_ACTIONS = ("ask", "order", "dx", "end_segment", "commit_differential")

_SEGMENT_ACTIONS = {
    "history": ("ask", "end_segment"),
    "differential": ("dx", "commit_differential"),
    "tests": ("order", "end_segment"),
    "diagnosis": ("dx",),
}


def doctor_schema(segment: str | None = None, items: list[str] | None = None) -> dict[str, Any]:
    """The doctor's reply schema ``{"action", "item", "text"}``.

    Args:
        segment: Restrict ``action`` to the verbs of this segment (all verbs when None).
        items: Restrict ``item`` to these ids (plus ``""``), e.g. the legal ones; free text when None.
    """
    actions = list(_SEGMENT_ACTIONS[segment] if segment else DOCTOR_ACTIONS)
    item: dict[str, Any] = {"type": "string", "maxLength": 200}
    if items is not None:
        item = {"type": "string", "enum": ["", *items]}
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": actions},
            "item": item,
            "text": {"type": "string", "maxLength": 600},
        },
        "required": ["action", "item", "text"],
        "additionalProperties": False,
    }


DOCTOR_SCHEMA: dict[str, Any] = {
    "name": "doctor_action",
    "schema": doctor_schema(),
    "example": '{"action": "ask", "item": "hx.onset", "text": "When did the pain start?"}',
}
PATIENT_SCHEMA: dict[str, Any] = {
    "name": "patient_reply",
    "schema": {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["truthful", "vague", "withhold", "deny", "contradict"]},
            "text": {"type": "string", "maxLength": 600},
        },
        "required": ["mode", "text"],
        "additionalProperties": False,
    },
    "example": '{"mode": "truthful", "text": "..."}',
}
EXAMINER_SCHEMA: dict[str, Any] = {
    "name": "rubric_grade",
    "schema": {
        "type": "object",
        "properties": {"explanation": {"type": "string", "maxLength": 1000}, "criteria_met": {"type": "boolean"}},
        "required": ["explanation", "criteria_met"],
        "additionalProperties": False,
    },
    "example": '{"explanation": "...", "criteria_met": true}',
}


#: The batch grader's reply: a verdict for every numbered rubric item of the prompt.
EXAMINER_BATCH_SCHEMA: dict[str, Any] = {
    "name": "rubric_grades",
    "schema": {
        "type": "object",
        "properties": {
            "grades": {
                "type": "array",
                "maxItems": 256,
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "string", "maxLength": 8},
                                   "verdict": {"type": "string", "enum": ["met", "not_met", "abstain"]}},
                    "required": ["id", "verdict"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["grades"],
        "additionalProperties": False,
    },
    "example": '{"grades": [{"id": "1", "verdict": "met"}, {"id": "2", "verdict": "not_met"}]}',
}


def legal_doctor_schema(table: Any, mask: Any) -> dict[str, Any]:
    """The doctor's schema restricted to what ``mask`` allows now: ``action`` to the legal verbs and
    ``item`` to the legal ids (plus ``""`` for the control verbs). With grammar-constrained decoding
    (vLLM, SGLang) every reply is then a legal action.

    Args:
        table: The env's :class:`~clinic_env.core.actions.ActionTable`.
        mask: The doctor's action mask.
    """
    verbs: list[str] = []
    items: list[str] = []
    for verb, start, ids in (("ask", table.ask0, table.history_ids), ("order", table.order0, table.test_ids),
                             ("dx", table.dx0, table.diagnosis_codes)):
        legal = [x for i, x in enumerate(ids) if mask[start + i]]
        if legal:
            verbs.append(verb)
            items.extend(legal)
    if mask[1]:
        verbs.append("end_segment")
    if mask[2]:
        verbs.append("commit_differential")
    schema = doctor_schema(None, items)
    schema["properties"]["action"]["enum"] = verbs or list(DOCTOR_ACTIONS)
    return schema


def schema_regex(schema: dict[str, Any], max_text: int = 200) -> str | None:
    """A regular expression for the compact JSON of a flat object schema (enum strings, bounded
    strings, booleans; properties in order), or None when the schema is not that simple.

    Grammar-constrained decoding with a JSON schema lets a weak model fill its token budget with
    whitespace (some vLLM backends ignore ``disable_any_whitespace``); the regex leaves none.
    """
    import re

    parts = []
    for name, prop in schema.get("properties", {}).items():
        if "enum" in prop and all(isinstance(v, str) for v in prop["enum"]):
            body = "(" + "|".join(re.escape(v) for v in prop["enum"]) + ")"
            value = f'"{body}"'
        elif prop.get("type") == "string":
            n = min(int(prop.get("maxLength", max_text)), max_text)
            value = '"[^"\\\\\\n]{0,' + str(n) + '}"'
        elif prop.get("type") == "boolean":
            value = "(true|false)"
        else:
            return None
        parts.append(f'"{re.escape(name)}":{value}')
    return "\\{" + ",".join(parts) + "\\}" if parts else None
