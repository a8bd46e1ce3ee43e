"""Test helpers that ship with the package: a loopback OpenAI-compatible server, scripted replies,
tiny random-weight checkpoints for vLLM tests."""
