"""The year-end evaluation a page at a time: the same counts and failed cadres, in the same order, as the whole."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from tests.workflows.test_bulletins import build_month
from workflows import bulletins, rankings
from workflows.organisations import by_code


@pytest.fixture
def year_end(sessions, clock):
    """May 2026 of test_bulletins, and a 31 December snapshot in which 王芳 reaches 80 points but 赵磊's 70 are
    not enough (a record of his was found false)."""
    month = build_month(sessions, clock)
    c = month.league.cadres
    points = {c["zhang"].id: Decimal("60"), c["zhao"].id: Decimal("70"), c["sun"].id: Decimal("59.99"),
              c["li"].id: Decimal("0"), c["wang"].id: Decimal("80")}
    with sessions() as session:
        rankings.compute_rankings(session, date(2026, 12, 31), datetime(2027, 1, 1, tzinfo=timezone.utc),
                                  rankings.RankingSources(points_by_cadre=lambda _s, _y: points))
        session.commit()
    return month


@pytest.mark.parametrize("code", ["prov", "qd", "qd-sn-gw"])
def test_every_page_size_gives_the_failed_cadres_of_the_whole_evaluation(sessions, year_end, code):
    with sessions() as session:
        org = by_code(session, code)
        whole = bulletins.year_end_evaluation(session, org, 2026)
        failed = [(v.standing.cadre_id, v.revoked, v.reason) for v in whole.verdicts if not v.passed]
        for size in (1, 2, 3, 50):
            pages, offset = [], 0
            while True:
                part = bulletins.year_end_page(session, org, 2026, offset=offset, limit=size)
                assert (part.total, part.passed, part.failed_total) == (len(whole.verdicts), whole.passed, len(failed))
                if not part.failed:
                    break
                pages += [(v.standing.cadre_id, v.revoked, v.reason) for v in part.failed]
                offset += size
            assert pages == failed, (code, size)


def test_the_first_page_names_the_cadre_who_had_the_points_but_a_record_revoked(sessions, year_end):
    with sessions() as session:
        part = bulletins.year_end_page(session, by_code(session, "prov"), 2026, limit=2)
        assert [(v.standing.name, v.standing.rank, v.standing.points) for v in part.failed] == \
            [("赵磊", 2, Decimal("70.00")), ("孙悦", 4, Decimal("59.99"))]
        assert (part.total, part.passed, part.failed_total) == (5, 2, 3)
        assert "不属实" in part.failed[0].reason and part.title.endswith("2026年“1+100”工作年终考核")
