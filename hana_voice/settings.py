"""One typed, frozen settings object, read from the environment once.

Every variable of the deployment guide is here with the guide's default, plus the service's
own. ``Settings.from_env`` validates each value and raises :class:`SettingsError` naming the
variable, the problem and what is accepted; the entry points turn that into one line on
stderr and exit status 2. Secret values are never echoed in any message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hana_voice.errors import SettingsError
from hana_voice.questionnaire.callback_time import timezone_named

#: The example secret printed in the deployment guide; anybody can read it, so it is refused.
GUIDE_EXAMPLE_SECRET = "hana_voice_shared_secret_2024_secure_key"
MIN_SECRET_LENGTH = 32
#: Provider and metrics tokens: shorter than the signing secrets, still not guessable.
MIN_TOKEN_LENGTH = 16
GENERATE_HINT = "generate one with: openssl rand -base64 32"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
AUDIO_FORMATS = ("wav", "pcm_s16le", "mulaw")
TTS_ENGINES = ("auto", "espeak", "xtts")
TTS_DEVICES = ("auto", "cpu", "cuda")
MODELS_AUTO_DOWNLOAD = ("none", "stt", "tts", "all")

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_QUESTIONNAIRE_DIR = PACKAGE_DIR / "questionnaires"
DEFAULT_VOSK_MODEL = "vosk-model-ar-0.22-linto-1.1.0"
DEFAULT_TTS_MODEL = "tts_models/multilingual/multi-dataset/xtts_v2"
# Twilio (issue 12)
DEFAULT_TWILIO_API_URL = "https://api.twilio.com"
TWILIO_SID_PATTERN = re.compile(r"AC[0-9a-fA-F]{32}")
TRANSFER_TO_PATTERN = re.compile(r"\+[1-9][0-9]{6,14}|sips?:[^\s<>&\"']{3,200}")

T = TypeVar("T")


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL (what a browser sends as Origin)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("not a boolean")


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build with :meth:`from_env` (or ``Settings()`` in tests)."""

    # --- the deployment guide's variables ---
    voice_service_secret: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    max_concurrent_sessions: int = 10
    rate_limit_per_minute: int = 60
    vosk_model_path: Path = Path("models") / DEFAULT_VOSK_MODEL
    tts_model_name: str = DEFAULT_TTS_MODEL
    sample_rate: int = 16000
    audio_format: str = "wav"
    processing_timeout: float = 30.0
    skip_model_loading: bool = False
    maqsam_token: str | None = field(default=None, repr=False)
    # --- where the service runs and keeps its state ---
    host: str = "0.0.0.0"
    port: int = 8000
    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    # --- speech engines ---
    tts_engine: str = "auto"
    tts_fallback: bool = True
    tts_device: str = "auto"
    tts_speaker_wav: Path | None = None
    tts_speaker: str | None = None
    espeak_voice: str = "ar"
    warm_prompt_cache: bool = True
    # --- questionnaires and results ---
    questionnaire_dir: Path = DEFAULT_QUESTIONNAIRE_DIR
    default_questionnaire: str = "post_discharge_followup"
    nextjs_api_url: str | None = None
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_expiry_minutes: int = 5
    outbox_give_up_seconds: float = 86400.0
    # --- admission, auth and limits ---
    trust_forwarded_for: bool = False
    allowed_origins: tuple[str, ...] = ()
    require_auth: bool = False
    telephony_token: str | None = field(default=None, repr=False)
    idle_timeout: float = 30.0
    max_call_seconds: float = 1200.0
    shutdown_grace: float = 20.0
    #: A peer that cannot take one frame in this long (it stopped reading) is taken as gone.
    send_timeout: float = 10.0
    max_message_bytes: int = 4 * 1024 * 1024
    max_tts_chars: int = 1000
    # --- issue 11, security: bounded audio, pending connections, handshakes ---
    #: Caller audio may arrive faster than real time by at most this many seconds (a burst).
    audio_burst_seconds: float = 5.0
    #: The largest frame a streaming call accepts (legacy whole recordings: max_message_bytes).
    max_frame_bytes: int = 256 * 1024
    #: Seconds a connection may take to authenticate (Maqsam session.setup, Twilio start).
    setup_timeout: float = 5.0
    #: Credential-less connections per client address still to authenticate (0: no limit).
    max_pending_per_address: int = 8
    #: Seconds a client may take to complete its HTTP/WebSocket handshake.
    handshake_timeout: float = 5.0
    #: Connections per address still in their handshake (0: no limit; off behind a proxy).
    max_handshakes_per_address: int = 16
    #: NEXTJS_API_URL may use plain http to a public address (default: https or private only).
    allow_insecure_nextjs: bool = False
    # --- observability ---
    metrics_enabled: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    # --- model auto-download and hot engine switch (issue 15, hana_voice/models/auto.py) ---
    #: none, stt, tts or all: which missing models the service downloads at start.
    models_auto_download: str = "none"
    #: Base URL of a mirror holding the models' files under their usual names.
    models_mirror_url: str | None = None
    #: Seconds between looks at MODELS_DIR for models installed by hand (0: no polling).
    models_watch_seconds: float = 10.0
    #: The longest wait between two download attempts (the back-off doubles up to it).
    models_retry_max_seconds: float = 300.0
    # --- call outcomes and call-backs (issue 14) ---
    #: The hospital's clock: call-back times ("tomorrow evening") are resolved in this zone.
    callback_timezone: str = "Asia/Riyadh"
    # --- Twilio signatures, REST hang-up and transfer; Maqsam transfer (issue 12) ---
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_api_url: str = DEFAULT_TWILIO_API_URL
    #: One REST request's deadline; a few attempts are made on 5xx and timeouts.
    twilio_api_timeout: float = 5.0
    #: Where an escalated call is dialled: an E.164 number or a sip: URI (not patient data).
    twilio_transfer_to: str | None = field(default=None, repr=False)
    #: The scheme and host (and path prefix) callers use, when a proxy hides them.
    public_url: str | None = None
    #: How long to wait for Maqsam to close the socket after call.redirect.
    maqsam_redirect_wait: float = 10.0
    # --- results on PostgreSQL, shared by replicas (issue 13; docs/results.md) ---
    #: None: SQLite under DATA_DIR. A postgresql:// URL: results and outbox live there.
    database_url: str | None = field(default=None, repr=False)
    database_schema: str = "hana_voice"
    database_pool_min: int = 1
    database_pool_size: int = 4
    #: Seconds to wait for a database connection before a write is kept in memory.
    database_timeout: float = 3.0
    #: How long a replica holds an outbox row it is delivering, and how long a replica may
    #: stay silent before its calls in progress are taken as orphaned.
    outbox_lease_seconds: float = 60.0
    #: This replica's name in the shared database (default: RAILWAY_REPLICA_ID, else
    #: host name and process id).
    replica_id: str | None = None
    # --- billing status posts to the front end (issue 10, i10r) ---
    #: Post /api/telephony/call-status after each call whose context names call_session_id.
    billing_status_enabled: bool = True
    # --- the front end (issue 10): templates from its database, CORS, keep-alive, greeting ---
    #: postgresql:// URL of the front end's database (template_versions); None: local only.
    templates_database_url: str | None = field(default=None, repr=False)
    templates_refresh_seconds: float = 60.0
    templates_pool_size: int = 2
    templates_timeout: float = 5.0
    templates_greeting: str | None = None
    templates_closing: str | None = None
    templates_prompts_file: Path | None = None
    #: None: the origin of NEXTJS_API_URL (see ``cors_origins``).
    cors_allowed_origins: tuple[str, ...] | None = None
    #: Seconds between WebSocket pings on /ws/echo and /ws/tts (0: off, IDLE_TIMEOUT applies).
    ws_ping_interval: float = 20.0
    #: How long a browser questionnaire waits for ``start`` before greeting with the defaults.
    start_grace_seconds: float = 0.5

    @property
    def cors_origins(self) -> tuple[str, ...]:
        """Origins whose browser pages may call the HTTP endpoints."""
        if self.cors_allowed_origins is not None:
            return self.cors_allowed_origins
        return (_origin(self.nextjs_api_url),) if self.nextjs_api_url else ()

    # --- media plane (issue 16): worker processes sharing the port ---
    #: Processes serving the app on the one port, sharing the one session cap.
    workers: int = 1
    #: Set by the supervisor (not from the environment) in each worker process: which worker
    #: this is. None: the only process. Workers leave start-up recovery to the supervisor.
    worker_index: int | None = None

    @property
    def database_path(self) -> Path:
        return self.data_dir / "hana_voice.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def auth_configured(self) -> bool:
        return self.voice_service_secret is not None

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and the CLI use it)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable; raise SettingsError on the first bad one."""
        env = os.environ if env is None else env
        r = _Reader(env)
        volume = env.get("RAILWAY_VOLUME_MOUNT_PATH")
        data_dir = r.path("DATA_DIR", Path(volume) if volume else Path("data"))
        models_dir = r.path("MODELS_DIR", Path(volume) / "models" if volume else Path("models"))
        allow_insecure = r.boolean("ALLOW_INSECURE_NEXTJS", False)  # issue 11, security
        settings = cls(
            voice_service_secret=r.secret("VOICE_SERVICE_SECRET", strict=True),
            log_level=r.choice("LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            max_concurrent_sessions=r.integer("MAX_CONCURRENT_SESSIONS", 10, 1, 10000),
            rate_limit_per_minute=r.integer("RATE_LIMIT_PER_MINUTE", 60, 0, 1_000_000),
            vosk_model_path=r.model_dir("VOSK_MODEL_PATH", models_dir / DEFAULT_VOSK_MODEL),
            tts_model_name=r.text("TTS_MODEL_NAME", DEFAULT_TTS_MODEL),
            sample_rate=r.integer_choice("SAMPLE_RATE", 16000, SAMPLE_RATES),
            audio_format=r.choice("AUDIO_FORMAT", "wav", AUDIO_FORMATS),
            processing_timeout=r.number("PROCESSING_TIMEOUT", 30.0, 0.1, 3600.0),
            skip_model_loading=r.boolean("SKIP_MODEL_LOADING", False),
            maqsam_token=r.secret("MAQSAM_TOKEN", min_len=MIN_TOKEN_LENGTH),
            host=r.text("HOST", "0.0.0.0"),
            port=r.integer("PORT", 8000, 0, 65535),
            data_dir=data_dir,
            models_dir=models_dir,
            tts_engine=r.choice("TTS_ENGINE", "auto", TTS_ENGINES),
            tts_fallback=r.boolean("TTS_FALLBACK", True),
            tts_device=r.choice("TTS_DEVICE", "auto", TTS_DEVICES),
            tts_speaker_wav=r.optional_file("TTS_SPEAKER_WAV"),
            tts_speaker=r.optional_text("TTS_SPEAKER"),
            espeak_voice=r.text("ESPEAK_VOICE", "ar"),
            warm_prompt_cache=r.boolean("WARM_PROMPT_CACHE", True),
            questionnaire_dir=r.model_dir("QUESTIONNAIRE_DIR", DEFAULT_QUESTIONNAIRE_DIR),
            default_questionnaire=r.text("DEFAULT_QUESTIONNAIRE", "post_discharge_followup"),
            nextjs_api_url=r.url("NEXTJS_API_URL", allow_insecure),
            jwt_secret=r.secret("JWT_SECRET", min_len=MIN_SECRET_LENGTH),
            jwt_expiry_minutes=r.integer("JWT_EXPIRY_MINUTES", 5, 1, 60),
            outbox_give_up_seconds=r.number("OUTBOX_GIVE_UP_SECONDS", 86400.0, 1.0, 30 * 86400.0),
            trust_forwarded_for=r.boolean("TRUST_FORWARDED_FOR", False),
            allowed_origins=r.csv("ALLOWED_ORIGINS"),
            require_auth=r.boolean("REQUIRE_AUTH", False),
            telephony_token=r.secret("TELEPHONY_TOKEN", min_len=MIN_TOKEN_LENGTH),
            idle_timeout=r.number("IDLE_TIMEOUT", 30.0, 1.0, 3600.0),
            max_call_seconds=r.number("MAX_CALL_SECONDS", 1200.0, 10.0, 86400.0),
            shutdown_grace=r.number("SHUTDOWN_GRACE", 20.0, 0.0, 3600.0),
            send_timeout=r.number("SEND_TIMEOUT", 10.0, 0.5, 600.0),
            max_message_bytes=r.integer("MAX_MESSAGE_BYTES", 4 * 1024 * 1024, 1024, 64 * 1024**2),
            max_tts_chars=r.integer("MAX_TTS_CHARS", 1000, 10, 20000),
            # issue 11, security
            audio_burst_seconds=r.number("AUDIO_BURST_SECONDS", 5.0, 0.2, 120.0),
            max_frame_bytes=r.integer("MAX_FRAME_BYTES", 256 * 1024, 1024, 64 * 1024**2),
            setup_timeout=r.number("SETUP_TIMEOUT", 5.0, 0.5, 120.0),
            max_pending_per_address=r.integer("MAX_PENDING_PER_ADDRESS", 8, 0, 10000),
            handshake_timeout=r.number("HANDSHAKE_TIMEOUT", 5.0, 0.5, 120.0),
            max_handshakes_per_address=r.integer("MAX_HANDSHAKES_PER_ADDRESS", 16, 0, 100_000),
            allow_insecure_nextjs=allow_insecure,
            metrics_enabled=r.boolean("METRICS_ENABLED", True),
            metrics_token=r.secret("METRICS_TOKEN", min_len=MIN_TOKEN_LENGTH),
            # model auto-download and hot engine switch (issue 15)
            models_auto_download=r.choice("MODELS_AUTO_DOWNLOAD", "none", MODELS_AUTO_DOWNLOAD),
            models_mirror_url=r.url("MODELS_MIRROR_URL"),
            models_watch_seconds=r.number("MODELS_WATCH_SECONDS", 10.0, 0.0, 86400.0),
            models_retry_max_seconds=r.number("MODELS_RETRY_MAX_SECONDS", 300.0, 1.0, 86400.0),
            # call outcomes and call-backs (issue 14)
            callback_timezone=r.timezone("CALLBACK_TIMEZONE", "Asia/Riyadh"),
            # Twilio signatures, REST hang-up and transfer; Maqsam transfer (issue 12)
            twilio_account_sid=r.pattern(
                "TWILIO_ACCOUNT_SID", TWILIO_SID_PATTERN, "AC followed by 32 hex digits"
            ),
            twilio_auth_token=r.secret("TWILIO_AUTH_TOKEN", min_len=32),
            twilio_api_url=r.url("TWILIO_API_URL") or DEFAULT_TWILIO_API_URL,
            twilio_api_timeout=r.number("TWILIO_API_TIMEOUT", 5.0, 0.1, 60.0),
            twilio_transfer_to=r.pattern(
                "TWILIO_TRANSFER_TO",
                TRANSFER_TO_PATTERN,
                "an E.164 number (+9665...) or a SIP URI (sip:desk@example.com)",
                secret=True,
            ),
            public_url=r.public_url("PUBLIC_URL"),
            maqsam_redirect_wait=r.number("MAQSAM_REDIRECT_WAIT", 10.0, 0.0, 120.0),
            # results on PostgreSQL (issue 13)
            database_url=r.database_url("DATABASE_URL"),
            database_schema=r.identifier("DATABASE_SCHEMA", "hana_voice"),
            database_pool_min=r.integer("DATABASE_POOL_MIN", 1, 0, 100),
            database_pool_size=r.integer("DATABASE_POOL_SIZE", 4, 1, 100),
            database_timeout=r.number("DATABASE_TIMEOUT", 3.0, 0.1, 60.0),
            outbox_lease_seconds=r.number("OUTBOX_LEASE_SECONDS", 60.0, 1.0, 3600.0),
            replica_id=r.optional_text("REPLICA_ID") or r.optional_text("RAILWAY_REPLICA_ID"),
            # billing status posts (issue 10)
            billing_status_enabled=r.boolean("BILLING_STATUS_ENABLED", True),
            # the front end (issue 10)
            templates_database_url=r.postgres_url("TEMPLATES_DATABASE_URL"),
            templates_refresh_seconds=r.number("TEMPLATES_REFRESH_SECONDS", 60.0, 1.0, 86400.0),
            templates_pool_size=r.integer("TEMPLATES_POOL_SIZE", 2, 1, 50),
            templates_timeout=r.number("TEMPLATES_TIMEOUT", 5.0, 0.5, 120.0),
            templates_greeting=r.optional_text("TEMPLATES_GREETING"),
            templates_closing=r.optional_text("TEMPLATES_CLOSING"),
            templates_prompts_file=r.optional_json_file("TEMPLATES_PROMPTS_FILE"),
            cors_allowed_origins=r.origins("CORS_ALLOWED_ORIGINS"),
            ws_ping_interval=r.number("WS_PING_INTERVAL", 20.0, 0.0, 3600.0),
            start_grace_seconds=r.number("START_GRACE_SECONDS", 0.5, 0.0, 30.0),
            # media plane (issue 16)
            workers=r.integer("WORKERS", 1, 1, 64),
        )
        if settings.database_pool_min > settings.database_pool_size:
            raise SettingsError(
                "DATABASE_POOL_MIN",
                f"{settings.database_pool_min} is above DATABASE_POOL_SIZE"
                f" ({settings.database_pool_size})",
                "a whole number from 0 to DATABASE_POOL_SIZE",
            )
        if settings.workers > settings.max_concurrent_sessions:
            raise SettingsError(
                "WORKERS",
                f"{settings.workers} exceeds MAX_CONCURRENT_SESSIONS "
                f"({settings.max_concurrent_sessions}); a worker with no session to hold is idle",
                f"a whole number from 1 to {min(64, settings.max_concurrent_sessions)}",
            )
        return settings


class _Reader:
    """Parses one variable at a time, raising SettingsError with the accepted values."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _get(self, name: str) -> str | None:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return None
        return raw.strip()

    def _parse(self, name: str, default: T, accepted: str, conv: Callable[[str], T]) -> T:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            return conv(raw)
        except ValueError as exc:
            raise SettingsError(name, f"{raw!r} is {exc}", accepted) from None

    def text(self, name: str, default: str) -> str:
        return self._get(name) or default

    def timezone(self, name: str, default: str) -> str:
        """An IANA time zone name the system knows (issue 14: call-back times)."""

        def conv(raw: str) -> str:
            try:
                timezone_named(raw)
            except ValueError:
                raise ValueError("not a time zone this system knows") from None
            return raw

        return self._parse(name, default, "an IANA time zone name, e.g. Asia/Riyadh", conv)

    def optional_text(self, name: str) -> str | None:
        return self._get(name)

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        accepted = f"a whole number from {lo} to {hi}"

        def conv(raw: str) -> int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError("not a whole number") from None
            if not lo <= value <= hi:
                raise ValueError("out of range")
            return value

        return self._parse(name, default, accepted, conv)

    def integer_choice(self, name: str, default: int, choices: tuple[int, ...]) -> int:
        accepted = "one of " + ", ".join(str(c) for c in choices)

        def conv(raw: str) -> int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError("not a whole number") from None
            if value not in choices:
                raise ValueError("not a supported value")
            return value

        return self._parse(name, default, accepted, conv)

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        accepted = f"a number of seconds from {lo:g} to {hi:g}"

        def conv(raw: str) -> float:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError("not a number") from None
            if not lo <= value <= hi:
                raise ValueError("out of range")
            return value

        return self._parse(name, default, accepted, conv)

    def boolean(self, name: str, default: bool) -> bool:
        return self._parse(name, default, "true/false, 1/0, yes/no, on/off", _parse_bool)

    def choice(self, name: str, default: str, choices: tuple[str, ...], upper: bool = False) -> str:
        def conv(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in choices:
                raise ValueError("not a known value")
            return value

        return self._parse(name, default, "one of " + ", ".join(choices), conv)

    def path(self, name: str, default: Path) -> Path:
        return Path(self._get(name) or default)

    def model_dir(self, name: str, default: Path) -> Path:
        """A directory path. An absent path is allowed (health reports it); a file is not."""
        path = self.path(name, default)
        if path.exists() and not path.is_dir():
            raise SettingsError(name, f"{str(path)!r} is not a directory", "a directory path")
        return path

    def optional_file(self, name: str) -> Path | None:
        raw = self._get(name)
        if raw is None:
            return None
        path = Path(raw)
        if not path.is_file():
            raise SettingsError(name, f"{raw!r} is not a readable file", "a path to a WAV file")
        return path

    def url(self, name: str, allow_insecure: bool = False) -> str | None:
        """An http(s) URL; plain http only to a loopback or private host unless allowed
        (results travel to it with a signed token: on the open internet they need TLS)."""
        raw = self._get(name)
        if raw is None:
            return None
        if not raw.startswith(("http://", "https://")):
            raise SettingsError(name, f"{raw!r} is not an http(s) URL", "http://... or https://...")
        host = urlsplit(raw).hostname or ""
        if raw.startswith("http://") and not allow_insecure and not is_private_host(host):
            raise SettingsError(
                name,
                f"uses plain http to {host!r}, which is not a loopback or private address",
                "https://..., http:// to a loopback/private host, or ALLOW_INSECURE_NEXTJS=true",
            )
        return raw.rstrip("/")

    def pattern(
        self, name: str, regex: re.Pattern[str], accepted: str, secret: bool = False
    ) -> str | None:
        """A value that must match ``regex`` whole; ``secret`` keeps it out of the message."""
        raw = self._get(name)
        if raw is None:
            return None
        if not regex.fullmatch(raw):
            shown = "value" if secret else repr(raw)
            raise SettingsError(name, f"{shown} is not in the accepted form", accepted)
        return raw

    def public_url(self, name: str) -> str | None:
        """The service's public base URL: scheme and host, optionally a path prefix."""
        raw = self._get(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        accepted = "https://host[:port][/prefix] (or wss://, http://, ws://), no query"
        if parts.scheme not in ("https", "wss", "http", "ws") or not parts.netloc:
            raise SettingsError(name, f"{raw!r} is not an absolute http(s)/ws(s) URL", accepted)
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise SettingsError(name, f"{raw!r} has a query, fragment or user part", accepted)
        return raw.rstrip("/")

    def database_url(self, name: str) -> str | None:
        """A PostgreSQL URL. Its value (it may hold a password) never appears in a message."""
        raw = self._get(name)
        if raw is None:
            return None
        if not raw.startswith(("postgresql://", "postgres://")):
            scheme = raw.split(":", 1)[0] if ":" in raw else "no scheme"
            raise SettingsError(
                name, f"has scheme {scheme!r}", "a postgresql://user:password@host:port/db URL"
            )
        return raw

    def identifier(self, name: str, default: str) -> str:
        def conv(raw: str) -> str:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", raw):
                raise ValueError("not a lower-case SQL name")
            return raw

        return self._parse(name, default, "letters a-z, digits and _, at most 63", conv)

    def csv(self, name: str) -> tuple[str, ...]:
        raw = self._get(name)
        if raw is None:
            return ()
        return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())

    def postgres_url(self, name: str) -> str | None:
        """A PostgreSQL connection URL; its password never appears in a message."""
        raw = self._get(name)
        if raw is None:
            return None
        if not raw.startswith(("postgresql://", "postgres://")):
            scheme = raw.split(":", 1)[0][:20] if ":" in raw else "no scheme"
            raise SettingsError(
                name, f"has scheme {scheme!r}", "a postgresql://user:password@host:port/db URL"
            )
        return raw

    def optional_json_file(self, name: str) -> Path | None:
        raw = self._get(name)
        if raw is None:
            return None
        if not Path(raw).is_file():
            raise SettingsError(name, f"{raw!r} is not a readable file", "a path to a JSON file")
        return Path(raw)

    def origins(self, name: str) -> tuple[str, ...] | None:
        """A comma list of origins (scheme://host[:port]) or ``*``; None when unset."""
        raw = self._get(name)
        if raw is None:
            return None
        found = self.csv(name)
        for origin in found:
            if origin != "*" and (
                not origin.startswith(("http://", "https://")) or _origin(origin) != origin
            ):
                raise SettingsError(
                    name,
                    f"{origin!r} is not an origin",
                    "comma-separated origins like https://app.example.com (no path), or *",
                )
        return found

    def secret(self, name: str, strict: bool = False, min_len: int = 0) -> str | None:
        """A secret. Its value never appears in an error message.

        ``strict`` secrets (the shared service secret) must be at least 32 characters and not
        the example printed in the deployment guide; others at least ``min_len``.
        """
        raw = self._get(name)
        if raw is None:
            return None
        if strict and raw == GUIDE_EXAMPLE_SECRET:
            raise SettingsError(
                name,
                "is the example value printed in the deployment guide, which anybody can read",
                f"a random secret of at least {MIN_SECRET_LENGTH} characters; {GENERATE_HINT}",
            )
        least = MIN_SECRET_LENGTH if strict else min_len
        if len(raw) < least:
            raise SettingsError(
                name,
                f"is too short ({len(raw)} characters)",
                f"a random secret of at least {least} characters; {GENERATE_HINT}",
            )
        return raw


#: Host names that only resolve inside a private network (Railway, Docker, mDNS).
_PRIVATE_SUFFIXES = (".internal", ".local", ".localhost", ".lan", ".home.arpa")


def is_private_host(host: str) -> bool:
    """Whether ``host`` is a loopback/private/link-local address or a private-network name."""
    host = host.strip("[]").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # A single-label name (a Docker Compose service) or a private-network suffix.
        return host == "localhost" or "." not in host or host.endswith(_PRIVATE_SUFFIXES)
    return address.is_loopback or address.is_private or address.is_link_local
