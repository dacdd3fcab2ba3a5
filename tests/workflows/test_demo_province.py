"""The generated demo province (small size), on SQLite and PostgreSQL."""
from __future__ import annotations

import shutil
from collections import Counter

import pytest
from sqlalchemy import func, select

from engine.database import make_session_factory, make_sql_engine
from workflows.demo_province import DEMO_PASSWORD, ProvinceNotEmpty, generate_province
from workflows.models import LEADING_ORGAN_KINDS, Cadre, Contact, Organisation, RoleGrant, User, Youth
from workflows.organisations import ALLOWED_PARENTS, by_code, create_organisation
from workflows.people import check_password, normalise_phone
from workflows.roles import holders, nearest_holding_organisation

STAFF_ROLES_PER_ORGAN = ("organiser", "coordinator", "inspector")


@pytest.fixture
def province(sessions, clock):
    """The small demo province, committed; returns its summary."""
    with sessions() as session:
        summary = generate_province(session, "small", now=clock.now())
        session.commit()
    return summary


def test_counts_are_those_of_the_small_size(sessions, province):
    with sessions() as session:
        kinds = Counter(session.scalars(select(Organisation.kind)))
        assert kinds["province"] == 1 and kinds["city"] == 16 and kinds["county"] == 32
        assert kinds["enterprise"] == kinds["university"] == kinds["agency"] == 1
        assert kinds["grassroots"] + kinds["general_branch"] >= 32 and kinds["branch"] >= 64
        assert 150 <= sum(kinds.values()) <= 400
        assert session.scalar(select(func.count()).select_from(Cadre)) == 300
        assert session.scalar(select(func.count()).select_from(Youth)) == 3_000
        contacts = session.scalar(select(func.count()).select_from(Contact))
        assert 3_000 < contacts < 6_000
        assert (province.organisations, province.cadres, province.youth, province.contacts) == \
            (sum(kinds.values()), 300, 3_000, contacts)
        assert province.users == session.scalar(select(func.count()).select_from(User))


def test_every_youth_has_one_or_two_cadres_and_no_cadre_more_than_100(sessions, province):
    with sessions() as session:
        per_youth = Counter(session.scalars(select(Contact.youth_id)))
        assert len(per_youth) == 3_000 and set(per_youth.values()) == {1, 2}
        per_cadre = Counter(session.scalars(select(Contact.cadre_id)))
        assert max(per_cadre.values()) == 100  # the demo cadre's full "1+100"


def test_cadres_of_every_kind_each_with_an_account_mostly_in_leading_organs(sessions, province):
    with sessions() as session:
        rows = session.execute(select(Cadre.kind, Cadre.code, User.username, Organisation.kind)
                               .join(User, Cadre.user_id == User.id)
                               .join(Organisation, Cadre.organisation_id == Organisation.id)).all()
        assert {kind for kind, *_ in rows} == {"full_time", "seconded", "part_time"}
        assert all(code == username for _kind, code, username, _org_kind in rows)
        at_leading_organs = sum(org_kind in LEADING_ORGAN_KINDS for *_, org_kind in rows)
        assert 0.7 * len(rows) <= at_leading_organs < len(rows)  # and some at grassroots
        names = list(session.scalars(select(Cadre.name)))
        assert all(2 <= len(name) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in name) for name in names)


def test_every_path_extends_its_parents_and_every_kind_may_sit_under_its_parent(sessions, province):
    with sessions() as session:
        orgs = {org.id: org for org in session.scalars(select(Organisation))}
        for org in orgs.values():
            if org.parent_id is None:
                assert (org.kind, org.code, org.path, org.depth) == ("province", "prov", f"/{org.id}/", 0)
                continue
            parent = orgs[org.parent_id]
            assert org.path == f"{parent.path}{org.id}/"
            assert org.depth == parent.depth + 1
            assert parent.kind in ALLOWED_PARENTS[org.kind], (org.code, org.kind, parent.kind)


def test_phones_are_unique_valid_mobile_numbers(sessions, province):
    with sessions() as session:
        phones = list(session.scalars(select(Youth.phone)))
    assert len(set(phones)) == len(phones) == 3_000
    assert all(normalise_phone(phone) == phone for phone in phones)


def test_some_youth_have_incomplete_tags_and_some_bound_the_mobile_client(sessions, province):
    with sessions() as session:
        youth = list(session.scalars(select(Youth)))
    incomplete = sum(not y.tags_complete for y in youth)
    assert 0.05 * len(youth) < incomplete < 0.15 * len(youth)
    bound = sum(y.bound_at is not None for y in youth)
    assert 0.3 * len(youth) < bound < 0.6 * len(youth)


def test_staff_at_the_province_every_city_and_every_county(sessions, province):
    with sessions() as session:
        staffed_kinds = ("province", "city", "county")
        organs = list(session.scalars(select(Organisation).where(Organisation.kind.in_(staffed_kinds))))
        for org in organs:
            for role in STAFF_ROLES_PER_ORGAN:
                [holder] = holders(session, role, org)
                assert holder.username == f"{org.code}-{role}" and holder.organisation_id == org.id
        admins = session.execute(select(RoleGrant.role, Organisation.code)
                                 .join(Organisation, RoleGrant.organisation_id == Organisation.id)
                                 .where(RoleGrant.role == "admin")).all()
        assert admins == [("admin", "prov")]
        branch = by_code(session, "qd-01-g1-b1")
        assert nearest_holding_organisation(session, "coordinator", branch).code == "qd-01"


def test_demo_accounts_exist_share_the_demo_password_and_hold_their_roles(sessions, province):
    claimed_roles = {"prov-admin": ("admin", "prov"), "prov-organiser": ("organiser", "prov"),
                     "qd-organiser": ("organiser", "qd"), "qd-01-coordinator": ("coordinator", "qd-01"),
                     "qd-01-inspector": ("inspector", "qd-01")}
    accounts = {account.username: account for account in province.accounts}
    assert len(DEMO_PASSWORD) >= 8
    with sessions() as session:
        for username, (role, org_code) in claimed_roles.items():
            assert accounts[username].password == DEMO_PASSWORD
            user = session.scalar(select(User).where(User.username == username))
            assert check_password(user, DEMO_PASSWORD)
            assert user in holders(session, role, by_code(session, org_code))
        assert [c.kind for c in province.demo_cadres] == ["full_time", "part_time", "seconded"]
        for cadre in province.demo_cadres:
            row = session.scalar(select(Cadre).where(Cadre.code == cadre.username))
            assert (row.name, row.kind, row.organisation.code) == (cadre.name, cadre.kind, cadre.organisation_code)
            assert check_password(row.user, DEMO_PASSWORD)
            assert accounts[cadre.username].name == cadre.name
            assert session.scalar(select(func.count()).select_from(Contact).where(Contact.cadre_id == row.id)) > 0
        [youth_account] = [a for a in province.accounts if a.role.startswith("青年")]
        youth = session.scalar(select(Youth).where(Youth.phone == youth_account.username))
        assert youth.tags_complete and youth.name == youth_account.name
        first_cadre = session.scalar(select(Cadre).where(Cadre.code == province.demo_cadres[0].username))
        assert session.scalar(select(Contact).where(Contact.cadre_id == first_cadre.id,
                                                    Contact.youth_id == youth.id)) is not None
        # Nobody else got a password: one argon2 hash, shared by the printed accounts only.
        with_password = set(session.scalars(select(User.username).where(User.password_hash.is_not(None))))
        assert with_password == set(claimed_roles) | {c.username for c in province.demo_cadres}


def _identity(session) -> tuple[list, list, list]:
    return (session.execute(select(Organisation.code, Organisation.name).order_by(Organisation.code)).all(),
            session.execute(select(Cadre.code, Cadre.name, Cadre.kind).order_by(Cadre.code)).all(),
            session.execute(select(Youth.phone, Youth.name).order_by(Youth.phone)).all())


def test_the_same_seed_gives_the_same_province_in_another_database(sessions, province, clock, tmp_path,
                                                                   sqlite_template):
    other_path = tmp_path / "other.db"
    shutil.copy(sqlite_template, other_path)
    other_engine = make_sql_engine(f"sqlite:///{other_path}")
    try:
        other_sessions = make_session_factory(other_engine)
        with other_sessions() as other:
            again = generate_province(other, "small", now=clock.now())
            other.commit()
            with sessions() as session:
                assert _identity(other) == _identity(session)
        assert [a.username for a in again.accounts] == [a.username for a in province.accounts]
        assert again.demo_cadres == province.demo_cadres

        different_path = tmp_path / "different.db"
        shutil.copy(sqlite_template, different_path)
        different_engine = make_sql_engine(f"sqlite:///{different_path}")
        with make_session_factory(different_engine)() as different:
            generate_province(different, "small", seed=7, now=clock.now())
            with sessions() as session:
                assert _identity(different)[1] != _identity(session)[1]
        different_engine.dispose()
    finally:
        other_engine.dispose()


def test_refuses_a_database_that_already_has_organisations(sessions, province, clock):
    with sessions() as session, pytest.raises(ProvinceNotEmpty):
        generate_province(session, "small", now=clock.now())


def test_refuses_an_unknown_size(sessions, clock):
    with sessions() as session, pytest.raises(ValueError, match="small, province"):
        generate_province(session, "huge", now=clock.now())


def test_rows_added_after_the_generation_get_fresh_ids(sessions, province, clock):
    # Ids were assigned by the generator; on PostgreSQL the sequences must have been moved past them.
    with sessions() as session:
        highest = session.scalar(select(func.max(Organisation.id)))
        committee = create_organisation(session, "qd-01-new", "新建街道团工委", "grassroots", by_code(session, "qd-01"))
        youth = Youth(name="新青年", phone="13900000000", occupation="学生", industry="教育")
        session.add(youth)
        session.flush()
        assert committee.id > highest and youth.id > 3_000
        session.commit()
