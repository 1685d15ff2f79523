"""The project's own files: code, ignore rules, stat fingerprints, weights."""
