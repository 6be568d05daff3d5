"""Handover: a clearinghouse for mobile phone numbers that change hands."""

__version__ = "0.1.0"
