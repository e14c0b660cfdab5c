"""`python -m accounts`: bootstrap API keys from a shell on the server.

The HTTP API cannot issue the very first key (every call needs one), so operators create an
organization with its owner key, or an operator key, here. Raw keys are printed once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from accounts import keys
from accounts.models import Role
from config.settings import get_settings
from store.engine import get_engine
from store.migrate import upgrade

app = typer.Typer(help="Create organizations and API keys.", no_args_is_help=True)


def _engine():
    url = get_settings().database_url
    upgrade(url)
    return get_engine(url)


@app.command("create-organization")
def create_organization(name: str) -> None:
    """A new organization and its owner key."""
    org, raw = keys.create_organization_with_owner(_engine(), name)
    typer.echo(f"organization {org.id} ({org.name})\nowner key    {raw}")


@app.command("create-key")
def create_key(
    organization: str,
    role: Annotated[str, typer.Option(help="owner | billing_admin | member")] = "member",
    name: str | None = None,
) -> None:
    """Another key for an existing organization."""
    if role not in (Role.OWNER, Role.BILLING_ADMIN, Role.MEMBER):
        raise typer.BadParameter("role must be owner, billing_admin or member")
    try:
        key, raw = keys.create_api_key(_engine(), organization, Role(role), name)
    except LookupError as err:
        typer.secho(str(err), fg="red", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"{role} key {key.id} for {organization}\n{raw}")


@app.command("create-operator-key")
def create_operator_key(name: str | None = None) -> None:
    """A key that acts on every organization."""
    key, raw = keys.create_operator_key(_engine(), name)
    typer.echo(f"operator key {key.id}\n{raw}")


if __name__ == "__main__":
    app()
