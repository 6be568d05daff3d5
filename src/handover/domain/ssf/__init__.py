"""Shared Signals (SSF): which lifecycle events become which signal, and the rules of a
stream that carries them to a platform."""
