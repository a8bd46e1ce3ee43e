"""Synthetic patients for teachers: a disease knowledge base, a seeded case generator, coherence
checks and printable standardised-patient scripts.

    from clinic_env.generate import CaseGenerator, export_script
    gc = CaseGenerator().generate("appendicitis", seed=1, difficulty=2, sex="F", persona="low-literacy")
    print(export_script(gc.case, "md"))
"""

from __future__ import annotations

from clinic_env.generate.coherence import check_coherence, check_rules
from clinic_env.generate.generator import CaseGenerator, GeneratedCase, GenerationError, generate_case
from clinic_env.generate.io import case_to_dict, write_cases
from clinic_env.generate.knowledge import Condition, KnowledgeBase, load_knowledge
from clinic_env.generate.profile import unlisted_result
from clinic_env.generate.rules import load_rules
from clinic_env.generate.script import export_script

__all__ = [
    "CaseGenerator", "Condition", "GeneratedCase", "GenerationError", "KnowledgeBase", "case_to_dict",
    "check_coherence", "check_rules", "export_script", "generate_case", "load_knowledge", "load_rules", "unlisted_result", "write_cases",
]
