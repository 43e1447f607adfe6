"""Migration scripts, one per schema revision, oldest first (a package so the wheel carries them)."""
