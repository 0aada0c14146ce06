"""One settings object for every command and the service.

Embedded defaults need no configuration file: everything lives under the data directory
(``TRADECREDIT_DATA_DIR``, default ``./var``). Point ``TRADECREDIT_DATABASE_URL`` at
PostgreSQL and ``MLFLOW_TRACKING_URI`` at a tracking server when one machine is no longer
enough. Nothing is created at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration, read from ``TRADECREDIT_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TRADECREDIT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./var"), description="Directory holding every embedded store."
    )
    database_url: str | None = Field(
        default=None,
        description="Service database (audit log, API keys, online features). "
        "Default: SQLite file service.db in the data directory.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "TRADECREDIT_MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI. Default: SQLite store mlflow.db in the data directory.",
    )
    registry_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="How long the service waits for the model registry (lookup and download) "
        "before it serves the cached champion instead. MLflow's own client would retry an "
        "unreachable server for about 4 minutes.",
    )
    # --- scoring service (`credit serve`) ---
    api_host: str = Field(default="127.0.0.1", description="Address `credit serve` binds.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port `credit serve` binds.")
    api_workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    api_rate_limit: float = Field(
        default=50.0, ge=0, description="Requests per second per API key (0 disables)."
    )
    api_rate_burst: int = Field(default=100, ge=1, description="Token-bucket burst per API key.")
    api_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    api_log_level: str = Field(default="INFO", description="Service log level.")
    api_reload_poll_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How often each worker checks for a `POST /v1/admin/reload` made through "
        "another worker or replica, and follows it (0: never).",
    )
    # --- financing offers and seller links ---
    policy_dir: Path | None = Field(
        default=None,
        description="Folder of lending policies, one <tenant>.yaml per lender or platform "
        "(default: the policy shipped with the package for everyone).",
    )
    link_secret: SecretStr | None = Field(
        default=None,
        description="Secret that signs seller links (at least 32 characters). Default: a "
        "random secret kept in link_secret in the data directory, created on first use.",
    )
    seller_link_ttl_seconds: int = Field(
        default=900, ge=30, le=7 * 24 * 3600, description="How long a seller link stays valid."
    )
    public_url: str | None = Field(
        default=None,
        description="The service's public address, e.g. https://credit.example.com: seller "
        "links are built from it, never from a request's Host header. Default: "
        "http://{api_host}:{api_port}.",
    )
    seller_page_rate_per_minute: float = Field(
        default=30.0,
        ge=0,
        description="Seller-page views per minute per link (burst: a third of it; 0 disables).",
    )
    seller_page_client_rate_per_minute: float = Field(
        default=120.0,
        ge=0,
        description="Seller-page requests per minute per client address (burst: a third of "
        "it; 0 disables).",
    )
    # --- webhooks (credit.webhooks) ---
    webhooks_dispatch: bool = Field(
        default=True,
        description="Run the webhook dispatcher inside `credit serve` (false: run `credit "
        "events dispatch` as its own process).",
    )
    webhooks_allow_loopback: bool = Field(
        default=False,
        description="Allow http:// endpoint URLs on loopback addresses (127.0.0.1, ::1, "
        "localhost), for development. Otherwise endpoints must be https.",
    )
    webhooks_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Time limit of one delivery attempt."
    )
    webhooks_max_attempts: int = Field(
        default=10,
        ge=1,
        le=50,
        description="Attempts per delivery before it is marked failed (kept for redelivery).",
    )
    webhooks_retry_base_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Delay before the second attempt; doubles each time, with jitter.",
    )
    webhooks_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest delay between two attempts."
    )
    webhooks_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often a dispatcher looks for due deliveries (an in-process "
        "dispatcher also wakes when this process writes an event).",
    )
    webhooks_concurrency: int = Field(
        default=32, ge=1, le=512, description="Deliveries a dispatcher sends at once."
    )
    # --- portfolio monitoring (credit.portfolio) ---
    portfolio_interval_minutes: float = Field(
        default=0.0,
        ge=0,
        description="Re-score every watched firm inside `credit serve` this often (0: never; "
        "run `credit monitor portfolio` from a scheduler instead).",
    )
    # --- reverse proxies ---
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto headers `credit serve` honours. Empty (the "
        "default): the headers are ignored and the client is the connecting address.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        u = urlsplit(value.strip())
        if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment:
            raise ValueError(
                f"public_url must be an http(s) URL with a host and no query, got {value!r}"
            )
        return value.strip().rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for item in _split(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or network (CIDR)"
                ) from None
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The addresses and networks of :attr:`trusted_proxies` (empty: trust none)."""
        return _split(self.trusted_proxies)

    @property
    def public_base_url(self) -> str:
        """Where seller links point: :attr:`public_url`, else the bound host and port."""
        host = f"[{self.api_host}]" if ":" in self.api_host else self.api_host
        return self.public_url or f"http://{host}:{self.api_port}"

    @property
    def seller_page_link_burst(self) -> int:
        return max(1, round(self.seller_page_rate_per_minute / 3))

    @property
    def seller_page_client_burst(self) -> int:
        return max(1, round(self.seller_page_client_rate_per_minute / 3))

    @property
    def store_path(self) -> Path:
        """The DuckDB record store."""
        return self.data_dir / "records.duckdb"

    @property
    def service_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'service.db').resolve()}"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        """Where the embedded MLflow store keeps artifacts."""
        return (self.data_dir / "mlartifacts").resolve()

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir


def _split(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache with ``get_settings.cache_clear()``)."""
    return Settings()
