"""Every ``IE_*`` setting of the add-on, with its default and one line of meaning.

Hosts set these in ``app.config`` before ``init_app``; ``apply_defaults`` fills
the rest with ``setdefault`` so a host's value always wins.  Settings an admin
changes at run time (fetch interval, sharing options, ...) live in the database
instead: see ``plugin.models.settings``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

#: name -> (default, meaning).  The single place where settings are documented.
SETTINGS: dict[str, tuple[Any, str]] = {
    "IE_DATABASE_URL": (None, "SQLAlchemy URL of the add-on's tables; default: the host's "
                        "SQLALCHEMY_DATABASE_URI, else a SQLite file in the instance folder"),
    "IE_ENGINE_OPTIONS": ({}, "create_engine options for the add-on's engine, over the host's "
                          "SQLALCHEMY_ENGINE_OPTIONS (used when the database is the host's)"),
    "IE_SQLITE_WAL": (None, "switch a SQLite database to WAL: None = only the add-on's own "
                      "file, never one it shares with the host; True/False: always/never"),
    "IE_CSP_INLINE_SCRIPTS": ("nonce", "inline scripts of the host layout on the mail pages: "
                              "'nonce' (those carrying ie_csp_nonce()), 'none', "
                              "'unsafe-inline' (any: weaker)"),
    "IE_URL_PREFIX": ("/integrated-email", "where the blueprint is mounted"),
    "IE_SECRET_KEYS": (None, "comma-separated Fernet keys; the first encrypts, all decrypt"),
    "IE_SECRET_KEY_FILE": (None, "file holding a generated key when IE_SECRET_KEYS is unset "
                           "(the demo: instance/integrated_email.key, mode 0600)"),
    "IE_GENERATE_SECRET_KEY": (False, "create IE_SECRET_KEY_FILE when missing (demo only)"),
    "IE_BLOB_DIR": (None, "directory of raw message bytes; default instance/ie_blobs"),
    "IE_ALLOWED_MAIL_HOSTS": ("", "comma-separated hosts, IPs or CIDRs allowed even when not "
                              "public (see plugin.mail.networks); connections go to mail ports "
                              "only (25, 110, 143, 465, 587, 993, 995, 2525) unless an entry "
                              "adds one: HOST:PORT or HOST:LOW-HIGH, IPv6 as [ADDR]:PORT. A "
                              "host name entry allows the name, not the private addresses it "
                              "resolves to: list those too (the tests and demo allow "
                              "127.0.0.1:1024-65535,localhost:1024-65535)"),
    "IE_CA_FILE": (None, "extra CA bundle trusted for mail servers, on top of the system store"),
    "IE_MAIL_TIMEOUT": (15.0, "seconds before a mail server that does not answer is given up"),
    "IE_SCHEDULER": ("embedded", "'embedded': run jobs in this process from its first request "
                     "on (addon.start_scheduler()/stop_scheduler() by hand); 'off': a worker "
                     "does"),
    "IE_DISPATCH_SECONDS": (15, "how often the dispatcher looks for due mailboxes"),
    "IE_WORKER_THREADS": (8, "mailboxes synced at once per process"),
    "IE_LEASE_SECONDS": (120, "a fetch lease lasts this long unless renewed; a dead worker's "
                         "mailboxes are taken over after it"),
    "IE_TEST_CONNECTION_PER_MINUTE": (6, "Test connection clicks allowed per user per minute"),
    "IE_MAX_ATTACHMENT_MB": (20, "largest total attachment size on a composed message"),
    "IE_SEND_PER_MINUTE_DEFAULT": (30, "messages a minute one mailbox may send through a server "
                                   "not in the provider table (admins change it on the "
                                   "Sending limits page); 0: no limit"),
    "IE_SEND_PER_DAY_DEFAULT": (2000, "messages in 24 hours one mailbox may send through a "
                                "server not in the provider table; 0: no limit"),
    "IE_PUBLIC_URL": (None, "https://... address recipients reach the ATS at, for one-click "
                      "unsubscribe links in bulk mail; default: the request's host over https"),
    "IE_SEND_SECONDS": (15, "how often the send job retries queued mail, settles crashed "
                        "sends and resumes bulk jobs"),
    "IE_BLOB_FSYNC": (False, "fsync each raw-message blob before its row commits (slower; "
                      "for filesystems that lose renamed files on power loss)"),
    "IE_DISCOVERY_NAMESERVERS": ("", "comma-separated DNS servers that settings discovery "
                                 "asks; empty: the machine's resolver configuration"),
    "IE_DISCOVERY_DNS_PORT": (53, "port of IE_DISCOVERY_NAMESERVERS (the tests use their own)"),
    "IE_DISCOVERY_HTTPS_PORT": (443, "port of the autoconfig web servers discovery fetches from"),
    "IE_DISCOVERY_BUDGET": (4.0, "seconds settings discovery may take for one address"),
    "IE_DISCOVERY_CACHE_SECONDS": (3600, "how long a domain's discovered settings are reused"),
    "IE_DISCOVERY_MISS_CACHE_SECONDS": (300, "how long a domain where nothing was found is "
                                        "not looked up again"),
    "IE_DISCOVERY_PER_MINUTE": (20, "settings lookups of addresses not yet cached allowed per "
                                "user per minute"),
    "IE_DISCOVERY_GUESS_PORTS": ("", "protocol:security:port list the last guess tries, like "
                                 "imap:ssl:993,smtp:ssl:465; empty: the usual mail ports (the "
                                 "test lab and the demo listen on others)"),
    "IE_HTMX_URL": (None, "URL of htmx.min.js when the host supplies it; default: the copy "
                    "installed from npm into the add-on's static folder"),
    "IE_LOCALE": ("en", "the add-on's language when the host has no Flask-Babel (with "
                  "Flask-Babel: the host's locale selector decides)"),
    "IE_TRANSLATIONS_DIRS": ((), "a host's folders of <locale>/LC_MESSAGES/"
                             "integrated_email.po catalogues, asked before the add-on's own"),
    "IE_SHOW_FLASHES": (True, "the add-on's pages show flashed messages themselves unless the "
                        "host layout showed them already above the content; False: the "
                        "host layout shows them (e.g. below the content)"),
    "IE_HOST_LOADS_HTMX": (False, "True: the host layout loads htmx on every page and the "
                           "add-on never does; False: the add-on loads it once a page, only "
                           "when the page has no htmx yet (window.htmx)"),
    "IE_BLOB_STORE": (None, "'database' (raw bytes in ie_blob, seen by every machine) or "
                      "'directory' (IE_BLOB_DIR, one machine); default: database on "
                      "PostgreSQL, directory otherwise"),
    "IE_BLOB_DATABASE_URL": (None, "set by init_app, not by hand: the add-on's database URL, "
                             "which the database blob store finds its engine by"),
    "IE_RAW_RETENTION_DAYS": (None, "drop raw bytes of messages older than this many days "
                              "(parsed text and attachments stay); None keeps them for ever"),
    "IE_OAUTH_GOOGLE_CLIENT_ID": (None, "Google sign-in for mailboxes, set by the deployment "
                                  "(with the secret it turns Google on and the admin page "
                                  "shows it as set here); else the admin page's value"),
    "IE_OAUTH_GOOGLE_CLIENT_SECRET": (None, "the Google client's secret (see "
                                      "IE_OAUTH_GOOGLE_CLIENT_ID)"),
    "IE_OAUTH_MICROSOFT_CLIENT_ID": (None, "Microsoft sign-in for mailboxes, set by the "
                                     "deployment (as IE_OAUTH_GOOGLE_CLIENT_ID)"),
    "IE_OAUTH_MICROSOFT_CLIENT_SECRET": (None, "the Microsoft client's secret"),
    "IE_OAUTH_MICROSOFT_TENANT": (None, "common (default), organizations, consumers, or your "
                                  "tenant's id or domain"),
    "IE_OAUTH_REDIRECT_URI": (None, "the sign-in callback URL to register with Google and "
                              "Microsoft when the app is behind a proxy that changes its "
                              "URL; default: the callback's URL as this app sees it"),
    "IE_OAUTH_ENDPOINTS": ({}, "per provider ('google', 'microsoft'), a dict moving its "
                           "endpoints (authorize_url, token_url, revoke_url, userinfo_url; "
                           "Microsoft's may hold {tenant}), its mail servers (imap, pop3, "
                           "smtp as 'host:port:ssl|starttls') and adding address domains "
                           "hosted there ('domains'); the test lab and demo use it"),
    "IE_OAUTH_TIMEOUT": (10.0, "seconds before the sign-in service is given up"),
}

#: Environment variables (not app config) the add-on reads, for completeness.
ENVIRONMENT: dict[str, str] = {
    "IE_TEST_CLOCK": "test hook: 'offset_seconds,speed' shifts and speeds up the sending "
                     "clock (provider limits per minute and per day)",
    "IE_CRASHPOINT": "fault-test hook: SIGKILL the process at the named sync step "
                     "(after_fetch, after_store, before_commit, after_commit, before_delete), or "
                     "the send step (bulk_before_smtp, bulk_after_smtp, bulk_after_sent, "
                     "single_before_smtp, single_after_smtp)",
}


def apply_defaults(app: Flask) -> None:
    """Fill every unset ``IE_*`` key with its default."""
    for key, (default, _meaning) in SETTINGS.items():
        app.config.setdefault(key, default)


def allowed_hosts(app: Flask) -> list[str]:
    """The IE_ALLOWED_MAIL_HOSTS entries of config, as a set."""
    raw = app.config.get("IE_ALLOWED_MAIL_HOSTS") or ""
    if isinstance(raw, (list, tuple, set, frozenset)):
        return [str(h).strip() for h in raw if str(h).strip()]
    return [h.strip() for h in str(raw).split(",") if h.strip()]
