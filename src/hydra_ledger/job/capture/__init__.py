"""Pure functions that capture a job's context as plain dicts (no Hydra state is changed)."""
