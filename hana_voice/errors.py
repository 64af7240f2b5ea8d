"""The one error hierarchy of Hana Voice.

Library errors (vosk's bare ``Exception``, ctypes failures, torch errors, sqlite3, httpx) are
translated into these at the adapter boundary, so the rest of the service catches only what
is drawn here::

    HanaError
    ├── SettingsError            bad environment value; start-up exits with status 2
    ├── TemplateError            a questionnaire file is invalid; start-up exits with status 2
    ├── ProtocolError            a client frame cannot be understood (carries a close code)
    │   └── AuthError            missing, wrong or expired credentials (close 1008)
    ├── AudioError               audio that cannot be decoded, wrong rate, odd byte count
    ├── EngineError              an engine failed
    │   ├── ModelMissingError    a model directory is absent or incomplete
    │   ├── EngineUnavailable    the engine is not loaded (skipped, loading, failed)
    │   └── EngineTimeout        an engine call ran past PROCESSING_TIMEOUT
    ├── DownloadError            a model download failed (size, checksum, HTTP)
    ├── ProviderError            a telephony provider's REST API failed (Twilio hang-up, transfer)
    ├── StoreError               the results database could not be written or read
    └── Undeliverable            a hand-over the front end would refuse for good (also a
                                 ValueError); the outbox fails it at once with the reason

``trio.Cancelled`` is never caught by any of these handlers: it is a ``BaseException``.
"""

from __future__ import annotations


class HanaError(Exception):
    """Base of every error this service raises on purpose."""

    #: A short machine-readable code, sent to clients in ``error`` messages.
    code = "internal_error"


class SettingsError(HanaError):
    """An environment variable holds a value that cannot be used."""

    code = "settings_error"

    def __init__(self, variable: str, problem: str, accepted: str) -> None:
        self.variable = variable
        self.problem = problem
        self.accepted = accepted
        super().__init__(f"{variable}: {problem}; accepted: {accepted}")


class TemplateError(HanaError):
    """A questionnaire template file is invalid."""

    code = "template_error"

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        super().__init__(f"{file}: {field}: {problem}")


class ProtocolError(HanaError):
    """A client sent something the protocol does not allow.

    ``close_code`` is the WebSocket close code to use when the error ends the connection;
    ``fatal`` says whether it must end it (otherwise an error message is sent and the call
    goes on).
    """

    code = "protocol_error"

    def __init__(
        self,
        message: str,
        *,
        code: str = "bad_message",
        close_code: int = 1008,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.close_code = close_code
        self.fatal = fatal


class AuthError(ProtocolError):
    """Credentials were missing, wrong, malformed or expired."""

    def __init__(self, message: str, *, close_code: int = 1008) -> None:
        super().__init__(message, code="unauthorized", close_code=close_code, fatal=True)


class AudioError(HanaError):
    """Audio that cannot be decoded or does not match its declared format."""

    code = "bad_audio"


class EngineError(HanaError):
    """A speech engine failed."""

    code = "engine_error"


class ModelMissingError(EngineError):
    """A model directory is absent or lacks required parts."""

    code = "model_missing"


class EngineUnavailable(EngineError):
    """The engine is not loaded (skipped, still loading, or failed)."""

    code = "engine_unavailable"


class EngineTimeout(EngineError):
    """An engine call ran past PROCESSING_TIMEOUT."""

    code = "engine_timeout"


class DownloadError(HanaError):
    """A model download failed."""

    code = "download_error"


class StoreError(HanaError):
    """The results store could not be written or read."""

    code = "store_error"


class ProviderError(HanaError):
    """A telephony provider's API refused or failed a request (hang-up, transfer)."""

    code = "provider_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Undeliverable(HanaError, ValueError):
    """A finished call's delivery that the front end would refuse whatever the retries
    (no hospital id, ids that are not uuids...). The message is the reason kept with the
    record; it names fields, never patient data."""

    code = "undeliverable"
