"""The organisation tree: paths, subtree and ancestor queries, the kinds that may nest."""
from __future__ import annotations

import pytest

from workflows.organisations import (InvalidOrganisation, ancestors, by_code, county_of, create_organisation,
                                     subtree)
from tests.league import build_league


def codes(orgs):
    return [o.code for o in orgs]


def test_paths_follow_the_parents(sessions, clock):
    with sessions() as session:
        league = build_league(session, clock.now())
        for org in league.orgs.values():
            parent = session.get(type(org), org.parent_id) if org.parent_id else None
            assert org.path == (parent.path if parent else "/") + f"{org.id}/"
            assert org.depth == (parent.depth + 1 if parent else 0)


def test_subtree_is_exactly_the_organisations_below(sessions, clock):
    with sessions() as session:
        build_league(session, clock.now())
        session.commit()
        assert codes(subtree(session, by_code(session, "qd"))) == ["qd", "qd-sn", "qd-sn-gw", "qd-sn-gw-1"]
        assert codes(subtree(session, by_code(session, "jn"))) == ["jn", "jn-lx"]
        assert len(subtree(session, by_code(session, "prov"))) == 7
        assert codes(subtree(session, by_code(session, "prov"), kinds=("county",))) == ["qd-sn", "jn-lx"]


def test_subtree_does_not_leak_into_siblings_with_a_common_id_prefix(sessions, clock):
    """Organisation 1 must not see organisation 10's subtree as its own ("/1/" vs "/10/")."""
    with sessions() as session:
        prov = create_organisation(session, "p", "省", "province", None)
        cities = [create_organisation(session, f"c{i}", f"市{i}", "city", prov) for i in range(25)]
        first = cities[0]
        tenth = next(c for c in cities if str(c.id).startswith(str(first.id)) and c.id != first.id)
        create_organisation(session, "under-tenth", "县", "county", tenth)
        assert codes(subtree(session, first)) == [first.code]


def test_ancestors_and_county(sessions, clock):
    with sessions() as session:
        league = build_league(session, clock.now())
        branch = league.orgs["qd-sn-gw-1"]
        assert codes(ancestors(session, branch)) == ["prov", "qd", "qd-sn", "qd-sn-gw", "qd-sn-gw-1"]
        assert county_of(session, branch).code == "qd-sn"
        assert county_of(session, league.orgs["qd"]) is None


@pytest.mark.parametrize("kind,parent", [("county", "prov"), ("city", "qd-sn"), ("branch", None),
                                          ("province", "prov"), ("galaxy", "prov")])
def test_kinds_must_fit_under_their_parent(sessions, clock, kind, parent):
    with sessions() as session:
        league = build_league(session, clock.now())
        with pytest.raises(InvalidOrganisation):
            create_organisation(session, "x", "x", kind, league.orgs.get(parent))
