"""Who may see which record: the one place the host's record permission lives."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import object_session

from examples.host_ats.models import Candidate, User


def visible_candidates(user_id: int, is_admin: bool) -> ColumnElement[bool]:
    """Filter for the candidates a user may see.

    Administrators see everyone.  Recruiters see every candidate except the
    confidential ones that somebody else owns, and except those given to a team
    they are not in (the per-team ACL).
    """
    if is_admin:
        return true()
    own_team = select(User.team).where(User.id == user_id).scalar_subquery()
    return and_(or_(Candidate.confidential.is_(False), Candidate.owner_id == user_id),
                or_(Candidate.team.is_(None), Candidate.team == own_team))


def may_view_candidate(candidate: Candidate, user_id: int, is_admin: bool) -> bool:
    """The same rule for one loaded candidate."""
    if is_admin:
        return True
    if candidate.confidential and candidate.owner_id != user_id:
        return False
    if candidate.team is None:
        return True
    session = object_session(candidate)
    user = session.get(User, user_id) if session is not None else None
    return user is not None and user.team == candidate.team
