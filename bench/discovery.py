"""Discovery for 500 distinct domains with 10 ms added to every DNS and HTTP answer.

Each domain's time to a result is compared with the slowest single step the result had
to wait for (the winning step and every step before it in the order, or all steps when
nothing was found), measured in the same run: 1.0 means the steps really ran side by
side; run one after another they would add up (about 2-4 here). The domains rotate
through every path: autoconfig host, well-known, SRV, MX to a hosted provider, MX to the
MX domain's autoconfig, a guess confirmed by TLS against the lab Dovecot and SMTP, and
nothing at all. Last line: ``discovery ratio: p50 A, p95 B (p95 ms C)``.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plugin.mail.connect import ConnectionPolicy  # noqa: E402 - after the sys.path line
from plugin.setup.discovery import DiscoverySettings, discover  # noqa: E402
from tests.lab.authority import LabAuthority  # noqa: E402
from tests.lab.autoconfig_web import AutoconfigWeb, client_config, document  # noqa: E402
from tests.lab.discovery_lab import publish  # noqa: E402
from tests.lab.dovecot import Dovecot  # noqa: E402
from tests.lab.nameserver import LabDns  # noqa: E402
from tests.lab.servers import HOST, LAB_ALLOWED  # noqa: E402
from tests.lab.smtp import SmtpLab  # noqa: E402

PATHS = ("autoconfig", "well-known", "srv", "mx-provider", "mx-autoconfig", "guess", "none")
ORDER = ("autoconfig", "well-known", "srv", "mx", "guess")


def domain_for(i: int) -> tuple[str, str]:
    return f"d{i}.bench.test", PATHS[i % len(PATHS)]


def populate(dns: LabDns, web: AutoconfigWeb, domain: str, path: str) -> None:
    """Publish what ``path`` needs for ``domain`` (and nothing for the earlier steps)."""
    zone = dns.zone
    if path == "autoconfig":
        publish(dns, web, domain)
    elif path == "well-known":
        zone.add_a(domain, HOST)
        zone.add_a(f"mail.{domain}", HOST)
        web.well_known(domain, document(client_config(imap=(f"mail.{domain}", 993, "SSL"),
                                                      smtp=(f"mail.{domain}", 465, "SSL"))))
    elif path == "srv":
        zone.add_srv(f"_imaps._tcp.{domain}", f"mail.{domain}.", 993)
        zone.add_srv(f"_submissions._tcp.{domain}", f"mail.{domain}.", 465)
        zone.add_a(f"mail.{domain}", HOST)
    elif path == "mx-provider":
        zone.add_mx(domain, "aspmx.l.google.com.")
    elif path == "mx-autoconfig":
        mx_domain = "mx-" + domain.replace(".", "-") + ".test"  # a base domain of its own
        zone.add_mx(domain, f"mx1.{mx_domain}.")
        publish(dns, web, mx_domain)
    elif path == "guess":
        for name in ("imap", "smtp", "mail"):
            zone.add_a(f"{name}.{domain}", HOST)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def serve_lab(domains: list[tuple[str, str]], latency: float, conn) -> None:
    """The lab servers, in a process of their own: a remote server's CPU is not ours."""
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # aborted STARTTLS probes
    authority = LabAuthority(tempfile.mkdtemp(prefix="bench-discovery-certs-"))
    certs = authority.lab_certs(extra_names=tuple(f"*.{d}" for d, p in domains if p == "guess"))
    dovecot = Dovecot(certs).start()
    smtp = SmtpLab(dovecot, with_plain=False).start()
    dns, web = LabDns().start(), AutoconfigWeb(authority).start()
    try:
        for domain, path in domains:
            populate(dns, web, domain, path)
        dns.zone.latency = web.latency = latency
        conn.send({"ca_file": str(certs.ca_cert), "dns": dns.port, "https": web.port,
                   "guess_ports": (("imap", "ssl", dovecot.imaps),
                                   ("imap", "starttls", dovecot.imap),
                                   ("pop3", "ssl", dovecot.pop3s), ("smtp", "ssl", smtp.tls_port),
                                   ("smtp", "starttls", smtp.starttls_port))})
        conn.recv()  # until the measuring process is done
    finally:
        web.stop()
        dns.stop()
        smtp.stop()
        dovecot.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=500)
    ap.add_argument("--latency-ms", type=float, default=10.0)
    ap.add_argument("--budget", type=float, default=4.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    domains = [domain_for(i) for i in range(args.domains + 1)]  # d0 warms up
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    lab = multiprocessing.get_context("fork").Process(
        target=serve_lab, args=(domains, args.latency_ms / 1000, theirs), daemon=True)
    lab.start()
    try:
        info = ours.recv()
        # The lab servers take high ports: allowed for loopback as IE_ALLOWED_MAIL_HOSTS would.
        policy = ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=info["ca_file"])
        settings = DiscoverySettings(nameservers=(HOST,), dns_port=info["dns"],
                                     https_port=info["https"], budget=args.budget,
                                     guess_ports=info["guess_ports"])
        discover("warm@d0.bench.test", policy=policy, settings=settings)  # imports, contexts
        ratios: list[float] = []
        elapsed: list[float] = []
        by_path: dict[str, list[float]] = {p: [] for p in PATHS}
        cpu_before = time.process_time()
        for domain, path in domains[1:]:
            found = discover(f"jane@{domain}", policy=policy, settings=settings)
            got = found.source or "none"
            if got != path:
                raise SystemExit(f"{domain}: expected {path}, got {got}: {found.sentence}")
            last = ORDER.index("mx" if got.startswith("mx") else got) if found.found else 4
            waited = [s.seconds for s in found.steps if ORDER.index(s.name) <= last]
            ratios.append(found.elapsed / max(waited))
            elapsed.append(found.elapsed)
            by_path[path].append(found.elapsed * 1000)
        cpu_ms = (time.process_time() - cpu_before) * 1000 / (len(domains) - 1)
    finally:
        ours.send("stop")
        lab.join(30)
    for path, times in by_path.items():
        print(f"{path:>14}: median {statistics.median(times):6.1f} ms, "
              f"p95 {percentile(times, 0.95):6.1f} ms ({len(times)} domains)")
    print(f"time to a result: median {statistics.median(elapsed) * 1000:.1f} ms, "
          f"p95 {percentile(elapsed, 0.95) * 1000:.1f} ms; "
          f"{args.latency_ms:g} ms added to each DNS and HTTP answer; "
          f"{cpu_ms:.1f} ms of CPU per discovery")
    print(f"discovery ratio: p50 {statistics.median(ratios):.2f}, "
          f"p95 {percentile(ratios, 0.95):.2f} (p95 ms {percentile(elapsed, 0.95) * 1000:.1f})")


if __name__ == "__main__":
    main()
