"""tre: a job runner for trusted research environments."""
