"""Points for contacts (联系人数) and for contacted youth binding the mobile client (绑定手机端), in bulk.

Both facts come from the ``contact`` table, so they are awarded with one ``INSERT … SELECT`` per
chunk of youth, idempotent through the ledger's de-duplication key ("youth:<id>"):

- **contacts** — a contact scores once its youth has complete tags (occupation and industry,
  Annex 2: 须“职业”标签齐全, for both rule sets), at the moment the contact is made or the tags become
  complete, whichever is later;
- **mobile_binding** — a contact scores for the cadre once its youth has bound the mobile client
  (``Youth.bound_at``), when the youth binds or when the contact is made with a youth already bound.

Called by the roster import (contacts are only ever made by an import) and on sign-in binding; a
later year's call awards again for that year (points restart every 1 January).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import String, and_, case, cast, literal, select
from sqlalchemy.orm import Session

from .models import Cadre, Contact, Youth
from .points import (RULE_SET_OF_KIND, PointEntry, Points, add_to_tally, dialect_insert, league_year,
                     rebuild_tallies, rules_for, tally_deltas)

CHUNK = 2000  # youth per statement when youth are named


def _points_by_kind(year: int, category: str):
    rules = rules_for(year)
    return case(*[(Cadre.kind == kind, literal(rules.points_for(category, kind), Points()))
                  for kind in RULE_SET_OF_KIND], else_=literal(0, Points()))


def _facts(year: int, now: datetime, category: str, condition, source_kind: str, source_id):
    return (select(Contact.cadre_id, literal(year), literal(category),
                   literal("youth:") + cast(Contact.youth_id, String), _points_by_kind(year, category),
                   literal(now, PointEntry.__table__.c.occurred_at.type), literal(source_kind), source_id)
            .join(Youth, Youth.id == Contact.youth_id).join(Cadre, Cadre.id == Contact.cadre_id)
            .where(condition))


def _insert_facts(session: Session, facts, count_only: bool = False) -> int:
    table = PointEntry.__table__
    columns = ["cadre_id", "year", "category", "dedup_key", "points", "occurred_at", "source_kind", "source_id"]
    statement = (dialect_insert(session, table).from_select(columns, facts)
                 .on_conflict_do_nothing(index_elements=[table.c.cadre_id, table.c.year, table.c.category,
                                                         table.c.dedup_key]))
    if count_only:  # the caller rebuilds the tally set-based
        return session.connection().execute(statement.execution_options(preserve_rowcount=True)).rowcount
    rows = session.execute(statement.returning(table.c.cadre_id, table.c.year, table.c.category,
                                               table.c.points)).all()
    add_to_tally(session, tally_deltas(rows))
    return len(rows)


def _award_for(session: Session, now: datetime, youth_filter, count_only: bool = False) -> int:
    year = league_year(now)
    tagged = and_(youth_filter, Youth.occupation.is_not(None), Youth.occupation != "", Youth.industry.is_not(None),
                  Youth.industry != "")
    bound = and_(youth_filter, Youth.bound_at.is_not(None))
    awarded = _insert_facts(session, _facts(year, now, "contacts", tagged, "contact", cast(Contact.id, String)),
                            count_only)
    return awarded + _insert_facts(session, _facts(year, now, "mobile_binding", bound, "binding",
                                                   cast(Contact.youth_id, String)), count_only)


def award_contact_points(session: Session, now: datetime, youth_ids: Iterable[int] | None = None) -> int:
    """Award the contact and binding points due for the contacts of ``youth_ids`` (every contact if None).

    Idempotent: what was awarded this year is not awarded again.  Returns the number of new entries.
    Given youth are done in chunks, each updating the tally by what it added; every contact (a
    backfill, e.g. after loading a province) is one statement per category and a set-based
    rebuild of those two categories' tally for the year.
    """
    session.flush()
    if youth_ids is None:
        awarded = _award_for(session, now, literal(True), count_only=True)
        if awarded:
            rebuild_tallies(session, league_year(now), ("contacts", "mobile_binding"))
        return awarded
    awarded, ids = 0, sorted(set(youth_ids))
    for start in range(0, len(ids), CHUNK):
        awarded += _award_for(session, now, Contact.youth_id.in_(ids[start:start + CHUNK]))
    return awarded


def award_binding(session: Session, youth: Youth, now: datetime) -> int:
    """A youth has bound the mobile client: every cadre contacting them scores (and any contact now due)."""
    return award_contact_points(session, now, [youth.id])
