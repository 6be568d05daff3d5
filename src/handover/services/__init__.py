"""Use cases: one function per user intention, each run inside a unit of work."""
