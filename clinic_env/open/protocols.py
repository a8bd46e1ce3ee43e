"""Named open-mode protocols: one option (``--protocol NAME``) that sets who plays each role, the
doctor's turn budget and the prompt style, so that a run lines up with a peer benchmark's.

``agentclinic`` follows AgentClinic (Schmidgall et al. 2024, arXiv:2405.07960; its
``agentclinic.py``): every agent is a language model (the original runs a doctor, a patient, a
measurement reader and a moderator that compares the final diagnosis with the correct one), the
doctor has at most 20 inferences (``--total_inferences`` defaults to 20 there), the doctor marks
test requests and its diagnosis with fixed phrases, and no bias is injected unless asked. Here the
non-doctor roles default to the doctor's own model, as they do when AgentClinic is run with one
backend for every agent; any role given explicitly on the command line wins.

``clinic`` is clinic-env's own open protocol with the scripted stand-ins (patient and
measurement answer from the case, ICD-10 grading, rule-based rubric) unless roles are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["LLM_PREFIXES", "PROTOCOLS", "ROLES", "SCRIPTED_ROLES", "OpenProtocol", "OpenSettings", "ProtocolError",
           "is_llm", "resolve"]

#: The roles besides the doctor, in the order the CLI lists them.
ROLES: tuple[str, ...] = ("patient", "examiner", "measurement", "moderator")
#: The scripted stand-in of each role (no language model needed).
SCRIPTED_ROLES: Mapping[str, str] = {"patient": "case", "examiner": "rubric", "measurement": "case",
                                     "moderator": "icd10"}
#: Role specs that name a served language model.
LLM_PREFIXES: tuple[str, ...] = ("llm:", "vllm:")


class ProtocolError(ValueError):
    """An unknown protocol, or a preset that cannot be filled in (one line, for the CLI)."""


def is_llm(spec: str) -> bool:
    """Whether a role spec names a language model (``llm:MODEL`` or ``vllm:NAME``)."""
    return spec.startswith(LLM_PREFIXES)


@dataclass(frozen=True)
class OpenProtocol:
    """A preset for open mode.

    Attributes:
        name: What ``--protocol`` takes.
        description: One line for ``--help`` and the summary.
        llm_roles: Roles played by the doctor's model unless given on the command line.
        max_doctor_turns: The doctor's turn budget.
        prompt_style: The env's ``protocol`` argument (prompt wording and markers).
        doctor_bias: Bias id injected into the doctor's prompt by default (None: none).
        patient_bias: Bias id injected into the patient's prompt by default (None: none).
    """

    name: str
    description: str
    llm_roles: tuple[str, ...] = ()
    max_doctor_turns: int = 20
    prompt_style: str = "clinic"
    doctor_bias: str | None = None
    patient_bias: str | None = None


PROTOCOLS: Mapping[str, OpenProtocol] = {
    "clinic": OpenProtocol("clinic", "clinic-env's open consultation; scripted roles unless given"),
    "agentclinic": OpenProtocol(
        "agentclinic",
        "AgentClinic: every role an LLM (the doctor's model unless given), 20 doctor turns, AgentClinic's markers",
        llm_roles=ROLES, max_doctor_turns=20, prompt_style="agentclinic"),
}


@dataclass(frozen=True)
class OpenSettings:
    """Everything a preset and the command line decide for an open-mode run.

    Attributes:
        protocol: The preset's name.
        prompt_style: The env's ``protocol`` argument.
        roles: Role -> spec for patient, examiner, measurement and moderator.
        max_doctor_turns: The doctor's turn budget.
        doctor_bias: Bias id for the doctor, or None.
        patient_bias: Bias id for the patient, or None.
    """

    protocol: str
    prompt_style: str
    roles: dict[str, str] = field(default_factory=dict)
    max_doctor_turns: int = 20
    doctor_bias: str | None = None
    patient_bias: str | None = None


def resolve(protocol: str | None, doctors: list[str], roles: Mapping[str, str | None], *,
            max_doctor_turns: int | None = None, doctor_bias: str | None = None,
            patient_bias: str | None = None) -> OpenSettings:
    """The settings of a run: the preset's, overridden by whatever the command line gave.

    Args:
        protocol: A key of :data:`PROTOCOLS` (None: ``clinic``).
        doctors: The doctor specs; the first LLM one lends its model to the preset's LLM roles, so
            that every doctor of the run meets the same patient, reader and moderator.
        roles: Role -> spec given on the command line (None: not given).
        max_doctor_turns: Given turn budget, or None for the preset's.
        doctor_bias: Given doctor bias id, or None for the preset's.
        patient_bias: Given patient bias id, or None for the preset's.

    Raises:
        ProtocolError: Unknown protocol, unknown role, or a preset LLM role with no model to use.
    """
    name = protocol or "clinic"
    preset = PROTOCOLS.get(name)
    if preset is None:
        raise ProtocolError(f"unknown --protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ProtocolError(f"unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}")
    model = next((d for d in doctors if is_llm(d)), None)
    chosen: dict[str, str] = {}
    for role in ROLES:
        given = roles.get(role)
        if given:
            chosen[role] = given
        elif role in preset.llm_roles:
            if model is None:
                raise ProtocolError(f"--protocol {name} plays the {role} with the doctor's model, but no doctor is "
                                    f"llm:MODEL or vllm:NAME; give --{role} llm:MODEL")
            chosen[role] = model
        else:
            chosen[role] = SCRIPTED_ROLES[role]
    turns = preset.max_doctor_turns if max_doctor_turns is None else max_doctor_turns
    if turns < 1:
        raise ProtocolError(f"--max-doctor-turns must be >= 1, got {turns}")
    return OpenSettings(protocol=name, prompt_style=preset.prompt_style, roles=chosen, max_doctor_turns=turns,
                        doctor_bias=doctor_bias if doctor_bias is not None else preset.doctor_bias,
                        patient_bias=patient_bias if patient_bias is not None else preset.patient_bias)
