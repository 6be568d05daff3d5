"""Shared Signals (SSF): the transmitter (streams, verification, poll) and push delivery."""
