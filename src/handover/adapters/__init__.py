"""Adapters: the implementations of the services' interfaces (storage, sorting, tokens)."""
