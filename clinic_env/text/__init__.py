"""Text mode: chat-message rendering per role and segment, reply schemas, the tolerant parser.

- :mod:`clinic_env.text.render`: an agent's view as ``system`` + ``user`` messages;
- :mod:`clinic_env.text.schema`: the JSON schemas sent as ``response_format``;
- :mod:`clinic_env.text.parse`: replies -> legal structured actions (never raises);
- :mod:`clinic_env.text.match`: free text -> catalogue items;
- :mod:`clinic_env.text.turns`: re-ask once, then a penalised no-op; queued doctor actions.
"""

from __future__ import annotations

from clinic_env.text.match import CatalogueMatcher
from clinic_env.text.parse import DoctorParser, ParsedAction, ParseResult, parse_patient_reply, parse_verdict
from clinic_env.text.render import messages_for, response_format
from clinic_env.text.schema import DOCTOR_SCHEMA, EXAMINER_SCHEMA, PATIENT_SCHEMA, doctor_schema
from clinic_env.text.turns import Resolution, TextTurns

__all__ = [
    "DOCTOR_SCHEMA", "EXAMINER_SCHEMA", "PATIENT_SCHEMA", "CatalogueMatcher", "DoctorParser", "ParseResult",
    "ParsedAction", "Resolution", "TextTurns", "doctor_schema", "messages_for", "parse_patient_reply",
    "parse_verdict", "response_format",
]
