"""Who may reach the chat: loopback by default; any other address needs a login unless the
operator says `--insecure`."""

from __future__ import annotations

import ipaddress

from qa.config import Settings
from qa.errors import BadInput


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str) -> tuple[str, str]:
    """(user, password) from "USER:PASSWORD", checked as `Settings` checks QA_AUTH."""
    try:
        login = Settings(auth=auth).login()
    except BadInput:
        raise BadInput("authentication must be given as USER:PASSWORD (both non-empty)") from None
    assert login is not None
    return login


def check_exposure(
    host: str, auth: str | None, insecure: bool = False, settings: Settings | None = None
) -> tuple[str, str] | None:
    """The (user, password) the app must ask for (`auth`, else the settings' QA_AUTH), or
    None. Serving on a non-loopback address without a password is refused unless
    `insecure`."""
    credentials = parse_auth(auth) if auth else (settings or Settings.load()).login()
    if credentials is None and not insecure and not is_loopback(host):
        raise BadInput(
            f"serving on {host} would expose your documents to the network: set a password "
            "with --auth USER:PASSWORD (or QA_AUTH=USER:PASSWORD), or pass --insecure"
        )
    return credentials
