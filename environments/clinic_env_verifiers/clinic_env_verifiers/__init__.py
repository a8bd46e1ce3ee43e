"""clinic-env as a verifiers taskset: ``clinic-env-verifiers`` (see taskset.py)."""

from clinic_env_verifiers.taskset import (
    ClinicConfig,
    ClinicData,
    ClinicEnv,
    ClinicEnvConfig,
    ClinicTask,
    ClinicTaskset,
)

__all__ = ["ClinicConfig", "ClinicData", "ClinicEnv", "ClinicEnvConfig", "ClinicTask", "ClinicTaskset"]
