"""Receiving Handover's Security Event Tokens: the kit a platform runs.

Verify SETs (`SetVerifier`, keys from `JwksCache`), drop retransmissions (`JtiStore`), take
them by push (`PushReceiver`, RFC 8935) or by poll (`Poller`, RFC 8936), and manage the
stream (`Transmitter.discover`, `ClientCredentials`, `StreamClient`, SSF 1.0).

This package imports only the standard library, httpx, joserfc and cryptography, so a
platform can copy it into its own code base.
"""

from handover.receiver.dedupe import JtiStore, MemoryJtiStore, SqliteJtiStore
from handover.receiver.events import SecurityEvent
from handover.receiver.jwks import JwksCache, KeySource, KeysUnavailable, StaticKeys, UnknownKey
from handover.receiver.poll import Poller, PollResult
from handover.receiver.push import PushAsgiApp, PushReceiver
from handover.receiver.streams import (
    POLL,
    PUSH,
    ClientCredentials,
    StaticToken,
    StreamClient,
    TokenSource,
    Transmitter,
    TransmitterError,
)
from handover.receiver.verify import InvalidSet, SetVerifier

__all__ = [
    "POLL",
    "PUSH",
    "ClientCredentials",
    "InvalidSet",
    "JtiStore",
    "JwksCache",
    "KeySource",
    "KeysUnavailable",
    "MemoryJtiStore",
    "PollResult",
    "Poller",
    "PushAsgiApp",
    "PushReceiver",
    "SecurityEvent",
    "SetVerifier",
    "SqliteJtiStore",
    "StaticKeys",
    "StaticToken",
    "StreamClient",
    "TokenSource",
    "Transmitter",
    "TransmitterError",
    "UnknownKey",
]
