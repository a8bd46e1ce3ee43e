"""Text mode: chat-message rendering per role and segment, reply schemas, the tolerant parser.

- :mod:`clinic_env.text.render`: an agent's view as ``system`` + ``user`` messages;
- :mod:`clinic_env.text.schema`: the JSON schemas sent as ``response_format``;
- :mod:`clinic_env.text.parse`: replies -> legal structured actions (never raises);
- :mod:`clinic_env.text.jsonscan`: the first JSON value of a reply, in linear time;
- :mod:`clinic_env.text.match`: free text -> catalogue items;
- :mod:`clinic_env.text.sense`: is a sentence a clinical question to the patient (refuse to guess);
- :mod:`clinic_env.text.retrieve`: the few items a lean doctor prompt suggests;
- :mod:`clinic_env.text.verdicts`: the examiner's replies, one item or a batch;
- :mod:`clinic_env.text.turns`: re-ask once, then a penalised no-op; queued doctor actions.
"""

from __future__ import annotations

from clinic_env.text.match import CatalogueMatcher
from clinic_env.text.parse import DoctorParser, ParsedAction, ParseResult, parse_patient_reply, parse_verdict
from clinic_env.text.render import messages_for, response_format
from clinic_env.text.schema import (
    DOCTOR_SCHEMA,
    EXAMINER_BATCH_SCHEMA,
    EXAMINER_SCHEMA,
    PATIENT_SCHEMA,
    doctor_schema,
)
from clinic_env.text.sense import THRESHOLD, QuestionMatch, match_question
from clinic_env.text.turns import Resolution, TextTurns
from clinic_env.text.verdicts import parse_grades

__all__ = [
    "DOCTOR_SCHEMA", "EXAMINER_BATCH_SCHEMA", "EXAMINER_SCHEMA", "PATIENT_SCHEMA", "THRESHOLD", "CatalogueMatcher",
    "DoctorParser", "ParseResult", "ParsedAction", "QuestionMatch", "Resolution", "TextTurns", "doctor_schema",
    "match_question", "messages_for", "parse_grades", "parse_patient_reply", "parse_verdict", "response_format",
]
