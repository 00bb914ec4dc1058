"""What a reconcile may use: the event recorder, the client and the log."""

from __future__ import annotations

from .client import Client, ObjectClient
from .log import Logger, LogSink
from .recorder import EventSink, Recorder

__all__ = ["Context"]


class Context:
    """The capabilities the host gives one reconcile: :attr:`recorder`, :attr:`client` and
    :attr:`log`.

    In a plugin the SDK builds it from the host's imports. Behind each capability is a small
    protocol (:class:`~wasm_reconciler_sdk.recorder.EventSink`,
    :class:`~wasm_reconciler_sdk.client.ObjectClient`,
    :class:`~wasm_reconciler_sdk.log.LogSink`), so the same reconciler runs natively against
    the fakes of the test kit, or against your own.
    """

    __slots__ = ("_client", "_log", "_recorder")

    def __init__(self, events: EventSink, client: ObjectClient, log: LogSink) -> None:
        self._recorder = Recorder(events)
        self._client = Client(client)
        self._log = Logger(log)

    @property
    def recorder(self) -> Recorder:
        """Records Events about the reconciled object."""
        return self._recorder

    @property
    def client(self) -> Client:
        """Reads and writes the objects the plugin declared."""
        return self._client

    @property
    def log(self) -> Logger:
        """Writes to the host's log."""
        return self._log
