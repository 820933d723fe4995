"""Use cases: each public function is one transaction over the store, deciding through
the core engine and rules; the CLI calls exactly one of them per command."""
