"""The organisation tree: creating organisations and asking what lies under or above one.

Each organisation keeps a materialised path of ids ("/1/7/42/").  A subtree is one range of an
indexed column, so subtree queries cost the same at 2,000 organs as at 20, with no recursion.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from engine.errors import NotFound

from .models import ORG_KINDS, Organisation

# Which kinds may sit under which (the notice's tree); a province has no parent.
ALLOWED_PARENTS = {
    "province": (),
    "city": ("province",), "enterprise": ("province",), "university": ("province",), "agency": ("province",),
    "county": ("city", "enterprise", "university", "agency"),
    "grassroots": ("county", "city", "enterprise", "university", "agency"),
    "general_branch": ("county", "grassroots", "city", "enterprise", "university", "agency"),
    "branch": ("grassroots", "general_branch", "county", "university", "enterprise", "agency", "city"),
}

KIND_NAMES_ZH = {"province": "团省委", "city": "团市委", "enterprise": "企业团委", "university": "高校团委",
                 "agency": "省直机关团工委", "county": "县级团委", "grassroots": "基层团委",
                 "general_branch": "团总支", "branch": "团支部"}


class InvalidOrganisation(ValueError):
    """An organisation that cannot stand where it was put."""


def subtree_upper_bound(path: str) -> str:
    """The first path after every path that starts with ``path`` ("/1/7/" → "/1/70")."""
    return path[:-1] + chr(ord("/") + 1)


def in_subtree(path_column, root_path: str) -> ColumnElement[bool]:
    """SQL condition: the row's path lies in the subtree of ``root_path`` (root included)."""
    return and_(path_column >= root_path, path_column < subtree_upper_bound(root_path))


def is_within(path: str, root_path: str) -> bool:
    """Whether ``path`` is ``root_path`` or under it."""
    return path.startswith(root_path)


def ancestor_ids(path: str) -> list[int]:
    """Ids of an organisation and all above it, root first."""
    return [int(part) for part in path.strip("/").split("/") if part]


def create_organisation(session: Session, code: str, name: str, kind: str,
                        parent: Organisation | None) -> Organisation:
    """Add an organisation under ``parent``; the kind must fit under the parent's kind."""
    if kind not in ORG_KINDS:
        raise InvalidOrganisation(f"未知的组织类型 {kind!r} / unknown kind; one of {', '.join(ORG_KINDS)}")
    allowed = ALLOWED_PARENTS[kind]
    if parent is None and allowed:
        raise InvalidOrganisation(f"{KIND_NAMES_ZH[kind]}必须有上级组织 / a {kind} needs a parent")
    if parent is not None and parent.kind not in allowed:
        raise InvalidOrganisation(f"{KIND_NAMES_ZH[kind]}不能隶属于{KIND_NAMES_ZH[parent.kind]} / "
                                  f"a {kind} cannot sit under a {parent.kind}")
    org = Organisation(code=code, name=name, kind=kind, parent_id=parent.id if parent else None,
                       path="", depth=(parent.depth + 1) if parent else 0)
    session.add(org)
    session.flush()
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    return org


def by_code(session: Session, code: str) -> Organisation:
    """The organisation with ``code``, or :class:`NotFound`."""
    org = session.scalar(select(Organisation).where(Organisation.code == code))
    if org is None:
        raise NotFound(f"组织 {code} 不存在 / no organisation with code {code!r}")
    return org


def subtree(session: Session, root: Organisation, kinds: tuple[str, ...] | None = None,
            limit: int | None = None) -> list[Organisation]:
    """The organisations in ``root``'s subtree (root included), in tree order."""
    query = select(Organisation).where(in_subtree(Organisation.path, root.path)).order_by(Organisation.path)
    if kinds:
        query = query.where(Organisation.kind.in_(kinds))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def ancestors(session: Session, org: Organisation) -> list[Organisation]:
    """``org`` and every organisation above it, root first."""
    ids = ancestor_ids(org.path)
    found = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def county_of(session: Session, org: Organisation) -> Organisation | None:
    """The nearest county-level committee at or above ``org`` (where wish pools and 英雄帖 live)."""
    for candidate in reversed(ancestors(session, org)):
        if candidate.kind == "county":
            return candidate
    return None
