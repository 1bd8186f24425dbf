"""Who may see which record: the one place the host's record permission lives."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, true

from examples.host_ats.models import Candidate


def visible_candidates(user_id: int, is_admin: bool) -> ColumnElement[bool]:
    """Filter for the candidates a user may see.

    Administrators see everyone; recruiters see every candidate except the
    confidential ones that somebody else owns.
    """
    if is_admin:
        return true()
    return or_(Candidate.confidential.is_(False), Candidate.owner_id == user_id)


def may_view_candidate(candidate: Candidate, user_id: int, is_admin: bool) -> bool:
    return is_admin or not candidate.confidential or candidate.owner_id == user_id
