"""Find a mailbox's settings from the email address alone (Thunderbird's order).

1. the add-on's presets; 2. the domain's autoconfig documents (``autoconfig.<domain>``,
then ``<domain>/.well-known``); 3. DNS SRV records (RFC 6186 / RFC 8314); 4. the MX
hosts: a hosted provider's preset (and its OAuth key), else the MX domain's autoconfig;
5. common names (``imap.``, ``mail.``, ``smtp.``) confirmed by a real TLS handshake.

Steps 2-5 run side by side within one budget; the answer is the first step in that order
that found something, given as soon as every step before it came back empty. Results
are cached per domain. No Flask and no database here: the caller passes the host
policy, the settings and the cache.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import quote

from plugin.mail.autoconfig import (
    MAX_DOCUMENT_BYTES,
    AutoconfigError,
    ServerEntry,
    expand,
    parse_client_config,
)
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.presets import Preset, preset_for
from plugin.setup.discovery_cache import DiscoveryCache
from plugin.setup.discovery_net import (
    Deadline,
    Lookup,
    StepFailed,
    checked_addresses,
    confirm_tls,
    fetch,
    first_success,
    parallel,
)
from plugin.setup.hosted import base_domain, hosted_by
from plugin.words import N_, said

log = logging.getLogger("plugin.integrated_email.discovery")

PRESET = "preset"
AUTOCONFIG = "autoconfig"
WELL_KNOWN = "well-known"
SRV = "srv"
MX_PROVIDER = "mx-provider"
MX_AUTOCONFIG = "mx-autoconfig"
GUESS = "guess"

#: (protocol, security, port) tried for guessed names, best first
DEFAULT_GUESS_PORTS: tuple[tuple[str, str, int], ...] = (
    ("imap", "ssl", 993), ("imap", "starttls", 143), ("pop3", "ssl", 995),
    ("pop3", "starttls", 110), ("smtp", "ssl", 465), ("smtp", "starttls", 587),
)

_SRV_INCOMING = (("_imaps._tcp", "imap", "ssl"), ("_imap._tcp", "imap", "starttls"),
                 ("_pop3s._tcp", "pop3", "ssl"), ("_pop3._tcp", "pop3", "starttls"))
_SRV_OUTGOING = (("_submissions._tcp", "smtp", "ssl"), ("_submission._tcp", "smtp", "starttls"))

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                     r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL = re.compile(r"^[^\s\x00-\x1f\x7f@]{1,64}$")
_MANUAL = N_("Type your mail server's settings below, or ask your administrator for them.")


@dataclass(frozen=True)
class DiscoverySettings:
    """Where discovery looks and how long it may take (see plugin/config.py)."""

    #: DNS servers to ask; empty: the machine's resolver configuration
    nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    #: port of every autoconfig web server (443; the tests point it at their lab server)
    https_port: int = 443
    #: seconds for the whole discovery
    budget: float = 4.0
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    guess_ports: tuple[tuple[str, str, int], ...] = DEFAULT_GUESS_PORTS


@dataclass(frozen=True)
class DiscoveredServer:
    """One server for the set-up form, the username already filled in."""

    protocol: str
    host: str
    port: int
    security: str
    username: str
    authentication: tuple[str, ...] = ("password-cleartext",)


@dataclass(frozen=True)
class StepTime:
    """How long one step took and what it found ("found", "nothing" or "unfinished")."""

    name: str
    seconds: float
    outcome: str


@dataclass(frozen=True)
class Discovery:
    """What discovery found for an address, and a sentence saying where it came from."""

    address: str
    domain: str
    #: one of the source names above; "" when nothing was found
    source: str
    sentence: str
    incoming: DiscoveredServer | None = None
    outgoing: DiscoveredServer | None = None
    #: e.g. "Google Workspace"
    provider: str = ""
    #: key of the OAuth provider table ("google", "microsoft"), or None
    oauth: str | None = None
    notes: tuple[str, ...] = ()
    elapsed: float = 0.0
    steps: tuple[StepTime, ...] = ()
    cached: bool = False

    @property
    def found(self) -> bool:
        """True when there are settings to fill in."""
        return self.incoming is not None


@dataclass(frozen=True)
class _Finding:
    """A step's result for the whole domain (usernames still templates)."""

    source: str
    incoming: ServerEntry
    outgoing: ServerEntry | None
    provider: str = ""
    oauth: str | None = None
    notes: tuple[str, ...] = ()
    #: the MX domain (mx-autoconfig) or the host that answered (guess)
    via: str = ""


@dataclass(frozen=True)
class _Outcome:
    finding: _Finding | None
    timed_out: bool
    steps: tuple[StepTime, ...]


@dataclass
class _Run:
    domain: str
    address: str
    policy: ConnectionPolicy
    settings: DiscoverySettings
    lookup: Lookup
    deadline: Deadline


def domain_of(address: str) -> str | None:
    """The lower-case ASCII domain of a plausible address, or None."""
    local, at, domain = (address or "").strip().rpartition("@")
    if not at or not _LOCAL.match(local):
        return None
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return domain if _DOMAIN.match(domain) else None


def discover(address: str, *, policy: ConnectionPolicy,
             settings: DiscoverySettings = DiscoverySettings(),
             cache: DiscoveryCache | None = None) -> Discovery:
    """Find the incoming and outgoing servers for ``address`` within ``settings.budget``."""
    started = time.monotonic()
    address = (address or "").strip()
    domain = domain_of(address)
    if domain is None:
        return Discovery(address, "", "", "Type your full email address (like "
                         "jane@acme-corp.example) to look up its settings.")
    preset = preset_for(address)
    if preset is not None:
        finding = _preset_finding(preset, PRESET, preset.name)
        return _result(address, domain, _Outcome(finding, False, ()), False, started)
    if cache is None:
        return _result(address, domain, _search(domain, address, policy, settings), False,
                       started)
    outcome, cached = cache.get_or_compute(
        domain, lambda: _search(domain, address, policy, settings),
        positive=lambda o: o.finding is not None, wait=settings.budget)
    return _result(address, domain, outcome, cached, started)


def _search(domain: str, address: str, policy: ConnectionPolicy,
            settings: DiscoverySettings) -> _Outcome:
    deadline = Deadline(settings.budget)
    run = _Run(domain, address, policy, settings,
               Lookup(settings.nameservers, settings.dns_port, deadline), deadline)
    steps = ((AUTOCONFIG, _autoconfig_host), (WELL_KNOWN, _well_known), (SRV, _srv),
             ("mx", _mx), (GUESS, _guess))
    times: dict[str, StepTime] = {}
    lock = threading.Lock()

    def timed(name: str, step: Callable[[_Run], _Finding]) -> Callable[[], _Finding | None]:
        def call() -> _Finding | None:
            begun, outcome = time.monotonic(), "nothing"
            try:
                finding = step(run)
                outcome = "found" if finding else outcome
                return finding
            finally:
                with lock:
                    times[name] = StepTime(name, time.monotonic() - begun, outcome)
        return call

    winner = first_success([timed(name, step) for name, step in steps], deadline)
    deadline.stopped.set()  # the steps still running stop at their next network operation
    spent = time.monotonic() - (deadline.end - settings.budget)
    with lock:
        finished = dict(times)
    record = tuple(finished.get(name, StepTime(name, spent, "unfinished")) for name, _s in steps)
    # A step that gave up because the budget ran out finished too, but out of time.
    timed_out = winner is None and (len(finished) < len(steps) or spent >= settings.budget)
    if winner is None:
        log.info("discovery for %s found nothing%s", domain, " in time" if timed_out else "")
    return _Outcome(winner[1] if winner else None, timed_out, record)


def _preset_finding(preset: Preset, source: str, provider: str, oauth: str | None = None,
                    ) -> _Finding:
    endpoint = preset.imap or preset.pop3
    assert endpoint is not None
    protocol = "imap" if preset.imap else "pop3"
    incoming = ServerEntry(protocol, endpoint.host, endpoint.port, endpoint.security,  # type: ignore[arg-type]
                           ("password-cleartext",), "%EMAILADDRESS%")
    smtp = preset.smtp[0] if preset.smtp else None
    outgoing = (ServerEntry("smtp", smtp.host, smtp.port, smtp.security, ("password-cleartext",),
                            "%EMAILADDRESS%") if smtp else None)
    return _Finding(source, incoming, outgoing, provider, oauth, preset.notes)


# ------------------------------------------------------------------------------- steps
def _first_allowed(run: _Run, entries: list[ServerEntry]) -> ServerEntry | None:
    for entry in entries:
        try:
            checked_addresses(run.lookup, entry.hostname, entry.port, run.policy)
            return entry
        except StepFailed as exc:
            log.debug("discovery for %s skips a server: %s", run.domain, exc)
    return None


def _allowed(run: _Run, source: str, incoming: list[ServerEntry],
             outgoing: list[ServerEntry], **extra) -> _Finding:
    """The best incoming and outgoing servers whose hosts the host policy allows."""
    got_in, got_out = parallel([lambda: _first_allowed(run, incoming),
                                lambda: _first_allowed(run, outgoing)], run.deadline)
    if not isinstance(got_in, ServerEntry):
        raise StepFailed(f"{source}: no allowed incoming server")
    return _Finding(source, got_in, got_out if isinstance(got_out, ServerEntry) else None,
                    **extra)


def _from_document(run: _Run, url: str, domain: str, source: str, via: str = "") -> _Finding:
    body = fetch(url, lookup=run.lookup, policy=run.policy, https_port=run.settings.https_port,
                 domain=domain, max_bytes=run.settings.max_document_bytes)
    try:
        config = parse_client_config(body, run.settings.max_document_bytes)
    except AutoconfigError as exc:
        raise StepFailed(f"{source}: {exc}") from None

    def expanded(entries: tuple[ServerEntry, ...]) -> list[ServerEntry]:
        return [replace(e, hostname=expand(e.hostname, run.address).lower()) for e in entries]

    return _allowed(run, source, expanded(config.incoming), expanded(config.outgoing), via=via)


def _query_string(run: _Run) -> str:
    return "emailaddress=" + quote(run.address, safe="@")


def _autoconfig_host(run: _Run) -> _Finding:
    url = f"https://autoconfig.{run.domain}/mail/config-v1.1.xml?{_query_string(run)}"
    return _from_document(run, url, run.domain, AUTOCONFIG)


def _well_known(run: _Run) -> _Finding:
    url = (f"https://{run.domain}/.well-known/autoconfig/mail/config-v1.1.xml?"
           f"{_query_string(run)}")
    return _from_document(run, url, run.domain, WELL_KNOWN)


def _srv(run: _Run) -> _Finding:
    services = _SRV_INCOMING + _SRV_OUTGOING
    answers = parallel([lambda label=label: run.lookup.query(f"{label}.{run.domain}", "SRV")
                        for label, _p, _s in services], run.deadline)
    entries: dict[str, list[ServerEntry]] = {"in": [], "out": []}
    for (_label, protocol, security), answer in zip(services, answers, strict=True):
        if isinstance(answer, BaseException):
            continue
        for record in sorted(answer, key=lambda r: (r.priority, -r.weight)):
            target = str(record.target).rstrip(".").lower()
            if not target or not record.port:  # "." or port 0: service not offered (RFC 6186)
                continue
            side = "out" if protocol == "smtp" else "in"
            entries[side].append(ServerEntry(protocol, target, record.port, security,  # type: ignore[arg-type]
                                             ("password-cleartext",), "%EMAILADDRESS%"))
    if not entries["in"]:
        raise StepFailed("no SRV records for incoming mail")
    return _allowed(run, SRV, entries["in"], entries["out"])


def _mx(run: _Run) -> _Finding:
    records = sorted(run.lookup.query(run.domain, "MX"), key=lambda r: r.preference)
    hosts = [h for h in (str(r.exchange).rstrip(".").lower() for r in records) if h]
    if not hosts:
        raise StepFailed("no MX records")  # none, or a null MX (RFC 7505)
    for host in hosts:
        provider = hosted_by(host)
        if provider is not None and provider.preset is not None:
            return _preset_finding(provider.preset, MX_PROVIDER, provider.name, provider.oauth)
    base = base_domain(hosts[0])
    if base == run.domain:
        raise StepFailed("the MX is in the domain itself: its autoconfig was already asked")
    url = f"https://autoconfig.{base}/mail/config-v1.1.xml?{_query_string(run)}"
    return _from_document(run, url, base, MX_AUTOCONFIG, via=base)


def _guess(run: _Run) -> _Finding:
    d = run.domain
    names = {"imap": (f"imap.{d}", f"mail.{d}"), "pop3": (f"pop.{d}", f"mail.{d}"),
             "smtp": (f"smtp.{d}", f"mail.{d}")}
    ports = run.settings.guess_ports

    def candidates(protocols: tuple[str, ...]) -> list[ServerEntry]:
        return [ServerEntry(protocol, host, port, security,  # type: ignore[arg-type]
                            ("password-cleartext",), "%EMAILADDRESS%")
                for protocol in protocols for host in names[protocol]
                for p, security, port in ports if p == protocol]

    def confirmed(entries: list[ServerEntry]) -> ServerEntry | None:
        calls = [lambda e=e: e if confirm_tls(run.lookup, run.policy, e.protocol, e.hostname,
                                              e.port, e.security) else None for e in entries]
        winner = first_success(calls, run.deadline)
        return winner[1] if winner else None

    got_in, got_out = parallel([lambda: confirmed(candidates(("imap", "pop3"))),
                                lambda: confirmed(candidates(("smtp",)))], run.deadline)
    if not isinstance(got_in, ServerEntry):
        raise StepFailed("no guessed name answered securely")
    return _Finding(GUESS, got_in, got_out if isinstance(got_out, ServerEntry) else None,
                    via=got_in.hostname)


# ------------------------------------------------------------------------------ result
def _sentence(domain: str, outcome: _Outcome) -> str:
    f = outcome.finding
    if f is None:
        if outcome.timed_out:
            return N_("Looking up settings for %(domain)s took too long. %(manual)s",
                      domain=domain, manual=said(_MANUAL))
        return N_("No settings could be found for %(domain)s. %(manual)s",
                  domain=domain, manual=said(_MANUAL))
    published = N_("Settings from %(domain)s's published configuration.", domain=domain)
    return {
        PRESET: N_("Settings for %(provider)s, which the add-on knows.", provider=f.provider),
        AUTOCONFIG: published,
        WELL_KNOWN: published,
        SRV: N_("Settings from %(domain)s's DNS service records.", domain=domain),
        MX_PROVIDER: N_("%(domain)s's mail is hosted by %(provider)s: settings for "
                        "%(provider)s.", domain=domain, provider=f.provider),
        MX_AUTOCONFIG: N_("Settings published by %(via)s, which receives %(domain)s's mail.",
                          via=f.via, domain=domain),
        GUESS: N_("Settings guessed from common server names (%(via)s answered securely); "
                  "check them before saving.", via=f.via),
    }[f.source]


def _server(entry: ServerEntry | None, address: str) -> DiscoveredServer | None:
    if entry is None:
        return None
    return DiscoveredServer(entry.protocol, entry.hostname, entry.port, entry.security,
                            expand(entry.username, address), entry.authentication)


def _result(address: str, domain: str, outcome: _Outcome, cached: bool,
            started: float) -> Discovery:
    f = outcome.finding
    return Discovery(
        address, domain, f.source if f else "", _sentence(domain, outcome),
        _server(f.incoming if f else None, address), _server(f.outgoing if f else None, address),
        provider=f.provider if f else "", oauth=f.oauth if f else None,
        notes=f.notes if f else (), elapsed=time.monotonic() - started, steps=outcome.steps,
        cached=cached)
