"""Command groups of the `handover` CLI that live outside `cli.py`."""
