"""Mail hosting providers recognised from a domain's MX hosts.

A company domain (``acme-corp.example``) on Google Workspace or Microsoft 365 keeps its
own name but receives mail at the provider's MX hosts, so the MX host's domain tells
which provider serves it, and then the provider's preset and OAuth sign-in apply.
Adding a provider means adding one ``HostedProvider(...)`` entry below.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugin.mail.presets import Preset, preset_for


@dataclass(frozen=True)
class HostedProvider:
    #: what users call the service, shown in the form's source line
    name: str
    #: an MX host equal to or below one of these is this provider's
    mx_suffixes: tuple[str, ...]
    #: a consumer domain of the provider whose preset has the same servers
    preset_domain: str
    #: key of plugin/setup/oauth_providers.py, or None when the provider has no OAuth sign-in
    oauth: str | None = None

    @property
    def preset(self) -> Preset | None:
        """The preset whose servers the provider's hosted domains use."""
        return preset_for("x@" + self.preset_domain)


HOSTED: tuple[HostedProvider, ...] = (
    HostedProvider("Google Workspace", ("google.com", "googlemail.com"), "gmail.com", "google"),
    # *.mail.protection.outlook.com is Microsoft 365 (Exchange Online Protection).
    HostedProvider("Microsoft 365", ("mail.protection.outlook.com", "outlook.com"),
                   "outlook.com", "microsoft"),
    # Only zoho.com's MX: Zoho's EU and India data centres have servers of their own.
    HostedProvider("Zoho Mail", ("zoho.com",), "zoho.com"),
    HostedProvider("Fastmail", ("messagingengine.com", "fastmail.com"), "fastmail.com"),
    HostedProvider("iCloud Mail", ("mail.icloud.com",), "icloud.com"),
    HostedProvider("Yahoo Mail", ("yahoodns.net",), "yahoo.com"),
)

# Two-label public suffixes common enough to matter for "the MX host's base domain";
# a full public-suffix list would be more exact, at the cost of another dependency.
_TWO_LABEL_SUFFIXES = frozenset({
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.nz", "co.jp",
    "ne.jp", "or.jp", "com.br", "com.cn", "com.mx", "co.za", "co.in", "co.kr", "com.tr",
    "com.sg", "com.hk", "com.tw", "com.ar", "co.il",
})


def hosted_by(mx_host: str) -> HostedProvider | None:
    """The provider whose MX host this is (``aspmx.l.google.com`` -> Google Workspace)."""
    host = mx_host.lower().rstrip(".")
    for provider in HOSTED:
        if any(host == s or host.endswith("." + s) for s in provider.mx_suffixes):
            return provider
    return None


def base_domain(host: str) -> str:
    """The registrable domain of a host (``mx1.mail.example.co.uk`` -> ``example.co.uk``)."""
    labels = host.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])
