"""The consultation engine shared by the AEC, Parallel and single-agent envs."""
