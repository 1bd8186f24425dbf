"""pytest plugin exposing the real-server lab (loaded via pytest_plugins).

Why session scope: Dovecot/SMTP/PG start once per run (~0.2 s) and each test gets its
own fresh mailbox user instead, so tests stay isolated without restarting servers.
Missing binaries fail loudly: a skipped lab would hide that nothing was tested.
"""
from __future__ import annotations

import itertools
import os
import secrets

import pytest

from .authority import LabAuthority
from .autoconfig_web import AutoconfigWeb
from .ca import LabCerts
from .discovery_lab import BUDGET, LAB_CERT_NAMES, ConnectionLog
from .dovecot import DOVECOT, Dovecot, MailUser
from .nameserver import LabDns
from .oauth import OAuthLab
from .postgres import create_database
from .servers import HOST, LAB_ALLOWED, SilentServer
from .smtp import SmtpLab

CHROMIUM = "/usr/bin/chromium"
_user_counter = itertools.count(1)

@pytest.fixture(scope="session")
def lab_authority(tmp_path_factory) -> LabAuthority:
    """The lab CA, kept so that it can mint certificates for test host names."""
    return LabAuthority(tmp_path_factory.mktemp("lab-certs"))


@pytest.fixture(scope="session")
def lab_certs(lab_authority) -> LabCerts:
    # The server certificate also covers the guessed names of GUESS_DOMAIN and the mail
    # hosts the discovery tests publish, so that discovery's TLS handshakes and Test
    # connection against the lab Dovecot and SMTP verify as in real life.
    return lab_authority.lab_certs(extra_names=LAB_CERT_NAMES)


@pytest.fixture(scope="session")
def lab_dns():
    """A DNS server on loopback; tests add records for domains of their own."""
    with LabDns() as server:
        yield server


@pytest.fixture(scope="session")
def autoconfig_web(lab_authority):
    """The HTTPS server (lab CA) serving autoconfig documents; tests add routes."""
    with AutoconfigWeb(lab_authority) as server:
        yield server


@pytest.fixture
def connection_log(monkeypatch) -> ConnectionLog:
    """Records every TCP connect this test makes (to prove none went to a refused address)."""
    return ConnectionLog().install(monkeypatch)


@pytest.fixture
def discovery_policy(lab_certs):
    """The host policy of the tests: only the lab's loopback address is allowed, by address
    (as IE_ALLOWED_MAIL_HOSTS does for mail hosts) on the high ports the lab takes, and
    the lab CA is trusted."""
    from plugin.mail.connect import ConnectionPolicy

    return ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=str(lab_certs.ca_cert),
                            timeout=3)


@pytest.fixture
def discovery_settings(lab_dns, autoconfig_web):
    """Discovery pointed at the lab DNS and the lab HTTPS server's port."""
    from plugin.setup.discovery import DiscoverySettings

    return DiscoverySettings(nameservers=(HOST,), dns_port=lab_dns.port,
                             https_port=autoconfig_web.port, budget=BUDGET)


@pytest.fixture(scope="session")
def oauth_server(lab_certs):
    """The lab's OAuth2/OIDC provider (Authlib on loopback TLS), one per run."""
    server = OAuthLab(lab_certs).start()
    yield server
    server.stop()


@pytest.fixture
def oauth_lab(oauth_server) -> OAuthLab:
    """The provider with its switches (lifetimes, rotation, down/slow) back at their defaults
    before and after each test, and its request records emptied."""
    oauth_server.reset()
    yield oauth_server
    oauth_server.reset()


@pytest.fixture(scope="session")
def dovecot(lab_certs, oauth_server):
    if not os.access(DOVECOT, os.X_OK):
        pytest.fail(f"{DOVECOT} not installed: run `make test` (it installs the lab)",
                    pytrace=False)
    # Own mkdtemp, not tmp_path_factory: pytest's root is 0700 and Dovecot's unprivileged
    # processes must traverse the path.
    server = Dovecot(lab_certs, oauth=oauth_server).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def smtp_lab(dovecot):
    lab = SmtpLab(dovecot).start()
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def pg_url():
    db = create_database()
    yield db.url
    db.drop()


@pytest.fixture
def mail_user(dovecot) -> MailUser:
    """A fresh Dovecot user per test: u<counter><random> so parallel runs never collide."""
    login = f"u{next(_user_counter)}{secrets.token_hex(3)}"
    return dovecot.add_user(login, f"pw-{secrets.token_urlsafe(9)}")


def mint_access_token(oauth: OAuthLab, user: MailUser, lifetime: int | None = None) -> str:
    """A valid access token for a lab mail user, straight from the provider."""
    return oauth.mint_token(user.email, lifetime=lifetime).access_token


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers (timeout tests)."""
    with SilentServer() as srv:
        yield srv


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _with_debian_chromium(launch_args: dict) -> dict:
    """Idempotently point Playwright at Debian's Chromium (never a downloaded browser)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not installed: run `make test` (it apt-installs chromium)",
                    pytrace=False)
    launch_args["executable_path"] = CHROMIUM
    args = list(launch_args.get("args") or [])
    launch_args["args"] = args + [a for a in CHROMIUM_ARGS if a not in args]
    return launch_args


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright override (wins when this module is loaded from a conftest)."""
    return _with_debian_chromium(dict(browser_type_launch_args))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Why also a hook: with `-p tests.lab.fixtures` this module registers before the
    pytest-playwright entry point, whose fixture then shadows ours. Patching the value
    in place makes the override hold whatever the plugin order."""
    result = yield
    if fixturedef.argname == "browser_type_launch_args" and isinstance(result, dict):
        _with_debian_chromium(result)
    return result
