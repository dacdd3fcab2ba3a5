"""``flask token``: create, list and revoke API tokens from a shell (for admins and scripts)."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from engine.errors import EngineError
from workflows.api_tokens import (
    DEFAULT_DAYS,
    MAX_DAYS,
    SCOPES,
    ApiToken,
    create_token,
    revoke_token,
    user_tokens,
)
from workflows.models import User

from ..extensions import db
from ..runtime import current_engine

token_cli = AppGroup("token", help="API bearer tokens: create, list, revoke.")


def _fail(error: EngineError) -> None:
    db.session.rollback()
    click.echo(f"错误 / error: {error.message}", err=True)
    raise SystemExit(1)


def _user(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.BadParameter(f"no account {username!r}", param_hint="--user")
    return user


@token_cli.command("create")
@click.option("--user", "username", required=True, help="Whose token.")
@click.option("--name", required=True, help="What the token is for, e.g. 'mobile'.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help=f"Repeat, or give several separated by spaces. One of: {' '.join(SCOPES)}")
@click.option("--days", default=DEFAULT_DAYS, show_default=True, type=click.IntRange(1, MAX_DAYS),
              help="Days until it expires.")
def create_command(username: str, name: str, scopes: tuple[str, ...], days: int) -> None:
    """Create a token and print it (the only time it is shown)."""
    try:
        issued = create_token(db.session, _user(username), name, list(scopes), current_engine().clock.now(), days)
    except EngineError as error:
        _fail(error)
    db.session.commit()
    token = issued.token
    click.echo(issued.secret)
    click.echo(f"token {token.id} for {username}: {' '.join(token.scope_list)}; expires "
               f"{token.expires_at:%Y-%m-%d}", err=True)


@token_cli.command("list")
@click.option("--user", "username", required=True, help="Whose tokens.")
def list_command(username: str) -> None:
    """List a user's tokens (id, prefix, state, expiry, name, scopes); never their secrets."""
    now = current_engine().clock.now()
    for token in user_tokens(db.session, _user(username).id, limit=1000):
        click.echo(f"{token.id}\tlq_{token.prefix}_…\t{token.state(now)}\t{token.expires_at:%Y-%m-%d}\t{token.name}\t"
                   f"{' '.join(token.scope_list)}")


@token_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_command(token_id: int) -> None:
    """Revoke token TOKEN_ID (see `flask token list`)."""
    try:
        token: ApiToken = revoke_token(db.session, token_id, current_engine().clock.now())
    except EngineError as error:
        _fail(error)
    db.session.commit()
    click.echo(f"revoked token {token.id} ({token.name})")


def init_app(app: Flask) -> None:
    """Register ``flask token``."""
    app.cli.add_command(token_cli)
