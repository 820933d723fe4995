"""Files in and out: YAML program files, CSV sources, the rejects file."""
