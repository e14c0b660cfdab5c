"""Process configuration, read once from the environment (prefix ``SUBS_``, nested with ``__``).

Every part of the system (worker, API, CLI, tests) reads the same Settings, so a single
environment file describes a deployment. Defaults are the embedded local stack: SQLite,
the Temporal dev server on localhost and localstripe.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PLANS_FILE = Path(__file__).resolve().parent / "plans.yaml"
DEVELOPMENT_WEBHOOK_SECRET = "whsec_local_development_secret"


class TemporalTLSSettings(BaseModel):
    """TLS to the Temporal frontend (README "Deployment security"). Off unless ``enabled`` or a
    file is set; a client certificate and key (mTLS) go together; no CA means the system's."""

    enabled: bool = False
    client_cert_path: Path | None = None
    client_key_path: Path | None = None
    server_ca_path: Path | None = None
    # The name the server certificate must carry when it differs from the address's host.
    server_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TemporalTLSSettings:
        if (self.client_cert_path is None) != (self.client_key_path is None):
            raise ValueError("set both SUBS_TEMPORAL__TLS__CLIENT_CERT_PATH and "
                             "SUBS_TEMPORAL__TLS__CLIENT_KEY_PATH for mTLS, or neither")
        return self

    @property
    def on(self) -> bool:
        return self.enabled or any(p is not None for p in (
            self.client_cert_path, self.client_key_path, self.server_ca_path, self.server_name))


class TemporalSettings(BaseModel):
    address: str = "localhost:7233"
    namespace: str = "default"
    tls: TemporalTLSSettings = TemporalTLSSettings()
    # Sent as "Authorization: Bearer ..." on every call (Temporal Cloud API keys); implies TLS.
    api_key: SecretStr | None = None
    task_queue: str = "subscriptions"
    # The API's deadline for each Temporal operation (start, update, query...): past it the
    # caller gets a 504 with Retry-After instead of waiting on a stuck workflow or server.
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    # Worker Versioning, off unless both are set: the worker then polls as version
    # `<deployment_name>.<build_id>` of a Worker Deployment and each workflow run stays pinned
    # to the version it started on (README "Worker Versioning": rollout and what it needs).
    deployment_name: str | None = Field(default=None, min_length=1, pattern=r"^[^.]+$")
    build_id: str | None = Field(default=None, min_length=1)
    # Running workflows a worker keeps in memory (the SDK's default, 1,000). One evicted has
    # its whole run's history sent by the server and replayed at its next task: a worker that
    # holds more subscriptions than this pays that on every renewal (about 0.25 MB each).
    max_cached_workflows: int = Field(default=1000, ge=0)

    @model_validator(mode="after")
    def _versioning_both_or_neither(self) -> TemporalSettings:
        if (self.deployment_name is None) != (self.build_id is None):
            raise ValueError("set both SUBS_TEMPORAL__DEPLOYMENT_NAME and SUBS_TEMPORAL__BUILD_ID "
                             "for Worker Versioning, or neither")
        return self


class StripeSettings(BaseModel):
    api_key: str = "sk_test_local"
    # None means the real Stripe API; the local stack points this at localstripe.
    api_base: str | None = "http://localhost:8420"
    # Stripe allows 25 ops/s in test mode and 100 ops/s live; stay under it so a burst never 429s.
    max_requests_per_second: float = 20.0
    # Who shares that budget. "deployment": every worker and API process draws from one bucket
    # in the database (payments.shared_rate_limit), so N processes still send at most the rate.
    # "process": a bucket per process (tests, single-process tools): N processes send N x rate.
    rate_limit_scope: Literal["deployment", "process"] = "deployment"
    # Real Stripe needs off_session=true on confirm for merchant-initiated renewals;
    # localstripe rejects the parameter, so the local stack turns it off.
    confirm_off_session: bool = False
    # The development default: a deployment in production mode refuses to start with it
    # (Settings._production_needs_secrets), as anyone can forge events signed with it.
    webhook_secret: str = DEVELOPMENT_WEBHOOK_SECRET
    webhook_tolerance_seconds: int = 300
    # How long a delivery holds an event while its handler runs; a handler that dies keeps it
    # that long, then Stripe's next delivery takes it over. Longer than a handler can take.
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    request_timeout_seconds: float = 20.0

    @property
    def live_mode(self) -> bool:
        """A live key moves real money: raw card numbers are refused, secrets are required."""
        return self.api_key.startswith(("sk_live_", "rk_live_"))


class RetentionSettings(BaseModel):
    """D14: the offer shown before a cancellation is confirmed (0 percent: no offer)."""

    percent_off: int = Field(default=20, ge=0, le=100)
    periods: int = Field(default=3, ge=1, le=36)


class DunningSettings(BaseModel):
    """D9: how a failed renewal is retried and what happens after the last failure."""

    # Delays after the first failed attempt; len + 1 = total attempts (default 4 in total).
    retry_delays: list[timedelta] = Field(
        default_factory=lambda: [timedelta(days=3), timedelta(days=5), timedelta(days=7)]
    )
    grace_period: timedelta = timedelta(days=5)
    final_action: Literal["cancel", "unpaid"] = "cancel"
    # A Stripe or database call that keeps failing (retryably) this long holds the
    # subscription for an operator's retry (README "Held subscriptions").
    call_alarm_after: timedelta = timedelta(hours=1)


class CreditSettings(BaseModel):
    """D15-D19 policies."""

    topup_policy: Literal["lock", "keep"] = "lock"
    free_daily_allowance: int = 100
    auto_recharge_threshold: int = 0
    auto_recharge_amount: int = 0
    # How long POST .../credits/topups waits for its purchase workflow before answering 503
    # with Retry-After (the purchase goes on; a retry with the same key joins it).
    topup_wait_seconds: float = 15.0


class ReconcileSettings(BaseModel):
    """The payments reconciliation job (payments/reconcile.py) and its Temporal Schedule."""

    # How often the schedule runs it (the worker creates the schedule); 0 creates none.
    interval: timedelta = timedelta(minutes=15)
    # Younger than this, a pending charge, an uncredited purchase or an intent unknown to the
    # database is in flight, not lost: the job leaves it alone.
    settle_after: timedelta = timedelta(minutes=15)
    # How far back PaymentIntents are listed at Stripe.
    lookback: timedelta = timedelta(days=3)
    # Ask Stripe for the lookback window only (created[gte]); localstripe rejects the
    # parameter, so the local stack lists every intent and filters here. True for real Stripe.
    stripe_created_filter: bool = False


class NotificationSettings(BaseModel):
    """D14 emails over SMTP and outbound webhooks (defaults: the local stack's debug server)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_timeout_seconds: float = 10.0
    # "starttls" (port 587) upgrades before anything else is said and refuses a server that
    # does not offer it; "tls" (port 465) is TLS from the first byte; "none": the local stack.
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # A private CA for the SMTP server's certificate; None: the system's trust store.
    smtp_ca_file: Path | None = None
    from_address: str = "Subscriptions <billing@localhost>"
    # The subscription-ending notice is sent this long before a scheduled cancel takes effect.
    ending_notice: timedelta = timedelta(days=3)
    webhook_timeout_seconds: float = 10.0
    # Failed deliveries are retried after backoff_initial * 2**(attempt-1), capped at backoff_max.
    backoff_initial: timedelta = timedelta(seconds=10)
    backoff_max: timedelta = timedelta(hours=6)
    max_attempts: int = 20
    poll_interval_seconds: float = 1.0
    batch_size: int = 20
    # A webhook replay request queues this many events per dispatcher round.
    replay_batch_size: int = Field(default=500, ge=1)
    # D9 (rule version 3): where a customer adds a new payment method or confirms a payment
    # (3-D Secure), written into the emails that ask them to; ``{subscription}`` and
    # ``{customer}`` are filled in. None: the emails give the instructions without a link.
    payment_link: str | None = None

    # Outbound webhook targets (notifications/targets.py): addresses that are not public
    # (loopback, private, link-local, CGNAT, metadata, multicast, reserved) are refused at
    # registration and at every delivery. Development and tests whose receivers run locally
    # allow them all; a deployment with an internal receiver allows just its networks.
    webhook_allow_private_targets: bool = False
    webhook_allowed_networks: list[IPv4Network | IPv6Network] = Field(
        default_factory=list, examples=[["10.20.0.0/16"]])

    @field_validator("smtp_username", "smtp_password", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value  # compose passes an unset ${VAR:-} as ""

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> NotificationSettings:
        if self.smtp_username is not None and self.smtp_security == "none":
            raise ValueError("SUBS_NOTIFICATIONS__SMTP_USERNAME needs SMTP_SECURITY starttls or "
                             "tls: the password would cross the network in clear")
        return self


class EventSettings(BaseModel):
    """D8 events: how long they are kept (GET /v1/events, replays) and the pruning job."""

    # Stripe keeps events for 30 days; older ones (and finished outbox rows) are deleted.
    retention: timedelta = Field(default=timedelta(days=30), gt=timedelta(0))
    # How often the ``prune-events`` schedule runs (the worker creates it); 0 creates none.
    prune_interval: timedelta = timedelta(hours=1)
    # Rows deleted per transaction: short transactions beside the writes of every decision.
    prune_batch_size: int = Field(default=1000, ge=1)


class TracingSettings(BaseModel):
    """OpenTelemetry traces of the API and the worker (README "Tracing"); off by default."""

    enabled: bool = False
    # "otlp": OTLP over HTTP (protobuf) to otlp_endpoint, batched; "console": one JSON
    # document per span on stdout (a quick look without a collector).
    exporter: Literal["otlp", "console"] = "otlp"
    otlp_endpoint: str = "http://localhost:4318/v1/traces"
    # service.name of the spans; empty: subscription-engine-api / subscription-engine-worker.
    service_name: str | None = Field(default=None, min_length=1)


class CodecSettings(BaseModel):
    """AES-GCM encryption of Temporal payloads (workflows/codec.py); off without keys.

    ``keys`` maps a key id to a base64 AES key (16, 24 or 32 bytes), e.g. in the environment
    ``SUBS_CODEC__KEYS='{"2026-01": "..."}'``. New payloads use ``current_key_id``; any listed
    key decodes, so a rotation adds a key and moves ``current_key_id``, and keeps the old one.
    """

    keys: dict[str, SecretStr] = Field(default_factory=dict)
    current_key_id: str | None = None
    # Bearer token the codec endpoint (POST /codec/encode, /codec/decode) requires; without
    # it the endpoint is not served.
    endpoint_token: SecretStr | None = None
    # Origins allowed to call the endpoint from a browser (the Temporal Web UI).
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _aes_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, value in keys.items():
            try:
                raw = base64.b64decode(value.get_secret_value(), validate=True)
            except ValueError:
                raise ValueError(f"codec key {key_id!r} is not base64") from None
            if len(raw) not in (16, 24, 32):
                raise ValueError(f"codec key {key_id!r} must be 16, 24 or 32 bytes, "
                                 f"not {len(raw)}")
        return keys

    @model_validator(mode="after")
    def _current_is_listed(self) -> CodecSettings:
        if self.keys and self.current_key_id not in self.keys:
            raise ValueError("SUBS_CODEC__CURRENT_KEY_ID must name one of SUBS_CODEC__KEYS")
        if self.current_key_id is not None and not self.keys:
            raise ValueError("SUBS_CODEC__CURRENT_KEY_ID is set but SUBS_CODEC__KEYS is empty")
        return self

    @property
    def on(self) -> bool:
        return bool(self.keys)


class PortalSettings(BaseModel):
    """The customer portal (docs/portal.md): how long its links and sessions live."""

    # A link from POST /v1/portal_sessions works once, within this time.
    link_ttl_seconds: int = Field(default=300, gt=0, le=86_400)
    # The session the link opens (a cookie scoped to that customer) lasts this long.
    session_ttl_seconds: int = Field(default=3600, gt=0, le=86_400)
    # Offer pause and resume on the portal page.
    allow_pause: bool = False
    # The portal's public origin for the links (e.g. https://billing.example.com); unset:
    # the origin the API was called on.
    public_url: str | None = None


class ApiSettings(BaseModel):
    """Input limits of the HTTP API (api/limits.py)."""

    # Bodies above these are refused with 413 before they are read in full.
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    max_webhook_body_bytes: int = Field(default=512 * 1024, gt=0)
    # Requests per API key: a token bucket of `rate_limit_burst` tokens refilled at
    # `rate_limit_per_second`, kept in each API process (N processes: N x the rate).
    # 0 turns the limit off.
    rate_limit_per_second: float = Field(default=20.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUBS_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    # "production" requires real secrets (no development defaults) and https webhook targets,
    # and refuses raw card numbers; a live Stripe key (sk_live_) means production whatever
    # this says.
    environment: Literal["development", "production"] = "development"
    database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'subscriptions.db'}"
    plans_file: Path = DEFAULT_PLANS_FILE
    temporal: TemporalSettings = TemporalSettings()
    stripe: StripeSettings = StripeSettings()
    dunning: DunningSettings = DunningSettings()
    retention: RetentionSettings = RetentionSettings()
    credits: CreditSettings = CreditSettings()
    notifications: NotificationSettings = NotificationSettings()
    codec: CodecSettings = CodecSettings()
    # GET /metrics of the API answers only with "Authorization: Bearer <token>" when set
    # (README "Deployment security"); unset, it is open (the local stack).
    metrics_token: SecretStr | None = None
    portal: PortalSettings = PortalSettings()
    # The worker and the API bring the database to the newest schema at start-up (under the
    # migration lock: store/migrate.py). Deployments turn it off and run the migrate job once
    # per deploy (docker-compose.yml), so a schema change never happens under running code.
    migrate_on_start: bool = True
    reconcile: ReconcileSettings = ReconcileSettings()
    events: EventSettings = EventSettings()
    tracing: TracingSettings = TracingSettings()
    api: ApiSettings = ApiSettings()
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    log_level: str = "INFO"
    # Worker logs: one JSON object a line (subscription id, period...) or plain text.
    log_format: Literal["json", "text"] = "json"
    # Temporal SDK runtime metrics of the worker, Prometheus text at http://<address>/metrics;
    # empty turns them off.
    worker_metrics_address: str = "127.0.0.1:9464"
    # Run workflow code in the SDK's sandbox. Off by default: the sandbox re-imports the
    # workflow module for every run, and with a run per renewal that was ~40 % of the
    # worker's CPU (README "Benchmarks"). Determinism is kept by the design (a pure core
    # passed through the sandbox anyway) and checked in CI: the recorded histories replay
    # in the sandbox (tests/replay), which refuses I/O, clocks and randomness.
    workflow_sandbox: bool = False

    @property
    def production(self) -> bool:
        return self.environment == "production" or self.stripe.live_mode

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.production and self.stripe.webhook_secret == DEVELOPMENT_WEBHOOK_SECRET:
            raise ValueError("production (SUBS_ENVIRONMENT=production or a live Stripe key) "
                             "needs SUBS_STRIPE__WEBHOOK_SECRET: the development default lets "
                             "anyone forge Stripe events")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
