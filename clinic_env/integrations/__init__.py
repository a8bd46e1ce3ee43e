"""Adapters that hand clinic-env episodes to LLM-RL trainers.

- :mod:`~clinic_env.integrations.handoff`: group rollouts -> one JSONL line per doctor step with
  token data and SPAR / GRPO / no-std advantages (any trainer that reads JSONL);
- :mod:`~clinic_env.integrations.trl`: TRL's ``GRPOTrainer`` (``environment_factory`` tools,
  single-turn reward functions, a dataset from a split); needs ``clinic-env[trl]``;
- :mod:`~clinic_env.integrations.verifiers`: a ``verifiers`` environment
  (``vf.load_environment("clinic-env")``); needs ``clinic-env[verifiers]``;
- :mod:`~clinic_env.integrations.verl`: an async agent loop (``reset``/``step``) shaped like verl's
  ``AgentLoopBase`` and OpenRLHF's agent function; no extra dependency.

See docs/TRAINERS.md. Nothing here is imported by ``clinic_env`` itself, so the optional
trainer packages are only needed by the module that uses them.
"""
