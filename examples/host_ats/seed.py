"""Demo data: three users, fifty candidates and ten client contacts.

Everything is made up and deterministic, so screenshots and tests see the same
records on every machine.  Addresses use the reserved ``.test`` top-level domain.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from examples.host_ats.models import Candidate, Contact, HostSetting, Note, User

#: (email, password, role, name) of every demo account.
DEMO_USERS: list[tuple[str, str, str, str]] = [
    ("admin@acme.test", "admin123", "admin", "Ada Admin"),
    ("rita@acme.test", "rita123", "recruiter", "Rita Recruiter"),
    ("rob@acme.test", "rob123", "recruiter", "Rob Recruiter"),
]

#: The recruiters' teams (a candidate given a team is for that team; none is by default).
_TEAMS = {"rita@acme.test": "north", "rob@acme.test": "south"}

CANDIDATE_DOMAIN = "candidates.test"
CLIENT_DOMAIN = "clients.test"

# fmt: off
_FIRST_NAMES = [
    "Amara", "Bastian", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiroshi",
    "Ines", "Jonas", "Kalani", "Lukas", "Maya", "Nikhil", "Olivia", "Pavel",
    "Quinn", "Rosa", "Santiago", "Tamsin", "Uma", "Viktor", "Wren", "Xavier",
    "Yara", "Zoltan", "Aisha", "Bruno", "Camille", "Declan", "Esme", "Felix",
    "Gabriela", "Hamza", "Isla", "Joaquin", "Keiko", "Leon", "Mireille", "Nadia",
    "Oskar", "Priya", "Rafael", "Sofia", "Tobias", "Valentina", "Wei", "Yusuf",
    "Zara", "Anton",
]
_LAST_NAMES = [
    "Okafor", "Lindqvist", "Moretti", "Petrov", "Garcia", "Haddad", "Vogel", "Tanaka",
    "Ferreira", "Becker", "Kahale", "Novak", "Iyer", "Sharma", "Bennett", "Horvath",
    "Delacroix", "Marquez", "Alvarez", "Whitlock", "Raman", "Sorensen", "Ashby", "Dumont",
    "Nasser", "Kovacs", "Mensah", "Costa", "Laurent", "Byrne", "Fairweather", "Brandt",
    "Silva", "Qureshi", "Mackenzie", "Ortega", "Nakamura", "Fischer", "Girard", "Rahimi",
    "Lund", "Menon", "Duarte", "Romano", "Keller", "Castillo", "Zhang", "Demir",
    "Osei", "Varga",
]
_TITLES = [
    "Backend Engineer", "Frontend Developer", "Data Analyst", "Product Designer",
    "DevOps Engineer", "Engineering Manager", "QA Engineer", "Data Scientist",
    "Technical Writer", "Site Reliability Engineer", "Product Manager", "Mobile Developer",
    "Security Engineer", "Solutions Architect", "UX Researcher",
]
# fmt: on
#: Candidates (by position) who have not given an email address.
_WITHOUT_EMAIL = {6, 23, 41}
#: Candidates (by position) marked confidential and owned by Rita.
_CONFIDENTIAL = {11, 34}

_CONTACTS = [
    ("Harriet", "Sloane", "Northwind Traders", "Head of Talent"),
    ("Marcus", "Oyelaran", "Northwind Traders", "CTO"),
    ("Lena", "Hartmann", "Contoso Ltd", "HR Business Partner"),
    ("Diego", "Fuentes", "Fabrikam Inc", "VP Engineering"),
    ("Priyanka", "Rao", "Tailspin Toys", "Talent Acquisition Lead"),
    ("Callum", "Reid", "Wide World Importers", "Operations Director"),
    ("Ingrid", "Holm", "Adventure Works", "People Manager"),
    ("Tomasz", "Nowicki", "Litware Inc", "Hiring Manager"),
    ("Adaeze", "Nwosu", "Woodgrove Bank", "Head of Data"),
    ("Felicity", "Crane", "Alpine Ski House", "Founder"),
]


def _address(first: str, last: str, domain: str) -> str:
    local = f"{first}.{last}".lower().encode("ascii", "ignore").decode()
    return f"{local}@{domain}"


def seed_demo(session: Session) -> bool:
    """Create the demo data unless any user exists; return whether it did."""
    if session.scalar(select(func.count()).select_from(User)):
        return False

    users = []
    for email, password, role, name in DEMO_USERS:
        user = User(email=email, name=name, role=role, team=_TEAMS.get(email))
        user.set_password(password)
        users.append(user)
    session.add_all(users)
    session.flush()
    admin, rita, rob = users

    start = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    owners = [rita, rob, rita, rob, admin]
    candidates = []
    for i, first in enumerate(_FIRST_NAMES):
        last = _LAST_NAMES[(i * 17) % len(_LAST_NAMES)]  # 17 is coprime with 50
        candidates.append(
            Candidate(
                first_name=first,
                last_name=last,
                email=None if i in _WITHOUT_EMAIL else _address(first, last, CANDIDATE_DOMAIN),
                phone=f"+1 555 01{i:02d}",
                title=_TITLES[i % len(_TITLES)],
                owner_id=rita.id if i in _CONFIDENTIAL else owners[i % len(owners)].id,
                confidential=i in _CONFIDENTIAL,
                created_at=start + timedelta(hours=7 * i),
            )
        )
    session.add_all(candidates)

    contacts = [
        Contact(
            first_name=first,
            last_name=last,
            email=_address(first, last, CLIENT_DOMAIN),
            phone=f"+1 555 02{i:02d}",
            company=company,
            position=position,
            created_at=start + timedelta(days=i),
        )
        for i, (first, last, company, position) in enumerate(_CONTACTS)
    ]
    session.add_all(contacts)
    session.flush()

    session.add_all(
        [
            Note(
                record_kind="candidate",
                record_id=candidates[0].id,
                author_id=rita.id,
                text="Phone screen went well. Strong on distributed systems; wants a hybrid role.",
                created_at=start + timedelta(days=3),
            ),
            Note(
                record_kind="contact",
                record_id=contacts[0].id,
                author_id=rob.id,
                text="Northwind are hiring two backend engineers this quarter.",
                created_at=start + timedelta(days=4),
            ),
        ]
    )
    session.merge(HostSetting(key="company_name", value="Acme Recruit"))
    session.commit()
    return True
