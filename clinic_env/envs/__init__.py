"""PettingZoo and Gymnasium environments built on :class:`clinic_env.core.engine.Consultation`."""
