"""The pure domain: numbers, the lifecycle state machine, tenures and carrier reports.

Nothing in this package performs I/O or imports a framework; every rule of the number
lifecycle lives here so it can be read and tested on its own.
"""
