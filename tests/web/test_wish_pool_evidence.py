"""Evidence on the wish-pool board: the coordinator uploads photos or files when fulfilling a pooled wish (the task
page's upload, web/evidence.py), a refused file stores nothing, files survive a form error as ticked boxes, and
the fulfilled wish's page and the youth's wish page list them for those who may open them.  SQLite and PostgreSQL.
"""
from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.models import HumanTask, ProcessInstance
from web.extensions import db
from workflows.evidence import EvidenceFile

from .wish_journeys import (
    POOL_FORM,
    assert_accessible_forms,
    photo_bytes,
    send,
    staff_client,
    wish_pooler,
    youth_client,
)

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200


@pytest.fixture
def claimed(app, clock, league):
    """A wish in 市南区团委's pool, claimed by its coordinator: (pool task id, the coordinator's client)."""
    task_id = wish_pooler(app, clock)()
    coordinator = staff_client(app, "S_coord")
    assert send(coordinator, f"/wish-pool/{task_id}/claim").status_code == 302
    return task_id, coordinator


@pytest.fixture
def ming(app, clock, claimed):
    """小明, who posted the wish, signed in on his phone (a new code a minute after the pooler's)."""
    clock.advance(timedelta(minutes=2))
    return youth_client(app, "xiaoming")


def fulfil(client, task_id: int, files=(), **changes):
    """Post the pool form as a browser does (multipart), with ``files`` as (name, bytes)."""
    data = {**POOL_FORM, **changes}
    uploads = [(io.BytesIO(content), name) for name, content in files]
    if uploads:  # beside the refs of the files already carried (the ticked boxes), if any
        data["evidence"] = [*([data["evidence"]] if "evidence" in data else []), *uploads]
    return send(client, f"/wish-pool/{task_id}/fulfil", data)


def evidence_rows(app) -> list[EvidenceFile]:
    with app.app_context():
        found = list(db.session.scalars(select(EvidenceFile).order_by(EvidenceFile.id)))
        db.session.expunge_all()
        return found


def stored_files(app) -> list[str]:
    """The names of the files under the evidence directory."""
    root = Path(app.config["EVIDENCE_DIR"])
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def task_state(app, task_id: int) -> str:
    with app.app_context():
        return db.session.get(HumanTask, task_id).state


def wish_key(app, task_id: int) -> str:
    with app.app_context():
        instance_id = db.session.get(HumanTask, task_id).instance_id
        return db.session.get(ProcessInstance, instance_id).business_key


def field_error(page: str) -> str:
    match = re.search(r'<span class="field-error" id="e-evidence">(.*?)</span>', page, re.DOTALL)
    return match.group(1) if match else ""


def test_the_fulfil_form_uploads_files_with_the_limits_shown(app, claimed):
    task_id, coordinator = claimed
    form = coordinator.get(f"/wish-pool/{task_id}").text
    assert_accessible_forms(form)
    assert re.search(r'<form method="post" action="/wish-pool/\d+/fulfil"[^>]*enctype="multipart/form-data"', form)
    match = re.search(r'<input id="f-evidence" name="evidence" type="file" multiple accept="([^"]+)"', form)
    assert match and {"image/jpeg", "application/pdf", ".jpg"} <= set(match.group(1).split(","))
    assert "每个文件不超过 8 MB，最多 20 个，合计不超过 40 MB" in form
    assert '<textarea id="f-evidence"' not in form  # no more typed file names


def test_the_coordinator_fulfils_with_photos_and_both_pages_list_them(app, claimed, ming):
    task_id, coordinator = claimed
    photo = photo_bytes()
    response = fulfil(coordinator, task_id, [("签收单.jpg", photo), ("捐赠协议.pdf", PDF)])
    assert response.status_code == 302, field_error(response.text)
    assert task_state(app, task_id) == "completed"
    receipt, agreement = evidence_rows(app)
    assert (receipt.original_name, receipt.content_type) == ("签收单.jpg", "image/jpeg")
    assert (agreement.original_name, agreement.content_type) == ("捐赠协议.pdf", "application/pdf")
    with app.app_context():
        instance_id = db.session.get(HumanTask, task_id).instance_id
    assert receipt.instance_id == agreement.instance_id == instance_id  # linked by the completion

    done = coordinator.get(f"/wish-pool/{task_id}").text
    assert "佐证材料" in done and "签收单.jpg" in done and "捐赠协议.pdf" in done
    assert f"/evidence/{receipt.stored_name}" in done and f"/evidence/{agreement.stored_name}" in done

    own = ming.get(f"/youth/wishes/{wish_key(app, task_id)}").text  # 小明 sees how his wish was fulfilled
    assert "心愿实现的照片和材料" in own and "签收单.jpg" in own and f"/evidence/{receipt.stored_name}" in own
    served = ming.get(f"/evidence/{receipt.stored_name}")
    assert served.status_code == 200 and served.data == photo and served.headers["Content-Type"] == "image/jpeg"


def test_a_mistyped_file_is_refused_beside_the_field_and_stores_nothing(app, claimed):
    task_id, coordinator = claimed
    response = fulfil(coordinator, task_id, [("签收单.jpg", EXE)])  # an executable named .jpg
    assert response.status_code == 422
    assert "按文件内容判断" in field_error(response.text) and "「签收单.jpg」" in field_error(response.text)
    assert "新华书店" in response.text  # what was typed stays
    assert evidence_rows(app) == [] and stored_files(app) == []
    assert task_state(app, task_id) == "claimed"
    with_good = fulfil(coordinator, task_id, [("合影.jpg", photo_bytes()), ("签收单.jpg", EXE)])
    assert with_good.status_code == 422 and evidence_rows(app) == [] and stored_files(app) == []  # all or none


def test_files_survive_a_form_error_as_removable_ticked_boxes(app, claimed):
    task_id, coordinator = claimed
    response = fulfil(coordinator, task_id, [("签收单.jpg", photo_bytes())], fulfilment="送到了")  # too short
    assert response.status_code == 422 and 'id="e-fulfilment"' in response.text
    [staged] = evidence_rows(app)
    assert staged.instance_id is None and len(stored_files(app)) == 1
    page = response.text
    assert re.search(rf'<input type="checkbox" name="evidence" value="{staged.stored_name}" checked>\s*签收单.jpg',
                     page)
    assert_accessible_forms(page)
    assert staged.stored_name not in coordinator.get(f"/wish-pool/{task_id}").text.split("<form")[0]  # not yet shown

    # Unticked (nothing carried, nothing new): the evidence is missing, the upload rule says what to do.
    unticked = fulfil(coordinator, task_id)
    assert unticked.status_code == 422 and "请上传佐证材料" in field_error(unticked.text)
    assert staged.stored_name not in unticked.text

    # Ticked, with a second file and the text fixed: both go with the fulfilment, nothing uploaded twice.
    again = fulfil(coordinator, task_id, [("合影.jpg", photo_bytes((10, 120, 60)))], evidence=staged.stored_name)
    assert again.status_code == 302, field_error(again.text)
    first, second = evidence_rows(app)
    assert first.id == staged.id and first.instance_id is not None and second.instance_id == first.instance_id
    assert len(stored_files(app)) == 2


def test_who_may_download_the_evidence_of_a_wish(app, claimed, ming):
    task_id, coordinator = claimed
    fulfil(coordinator, task_id, [("签收单.jpg", photo_bytes())], fulfilment="送到了")
    [staged] = evidence_rows(app)
    path = f"/evidence/{staged.stored_name}"
    assert coordinator.get(path).status_code == 200
    assert ming.get(path).status_code == 403  # staged: its uploader's only, until the wish is fulfilled with it
    assert fulfil(coordinator, task_id, evidence=staged.stored_name).status_code == 302

    assert ming.get(path).status_code == 200                                  # the youth who posted the wish
    assert staff_client(app, "zhang").get(path).status_code == 200            # the cadre who passed it to the pool
    assert youth_client(app, "xiaohong").get(path).status_code == 403         # another youth
    assert staff_client(app, "J_coord").get(path).status_code == 403          # a coordinator elsewhere
    province = staff_client(app, "P_coord")  # sees the wish on the subtree board, not its data
    assert province.get(path).status_code == 403
    assert staged.stored_name not in province.get(f"/wish-pool/{task_id}").text
    assert app.test_client().get(path).status_code == 302                     # sign in first


def test_no_file_is_stored_for_a_wish_one_may_not_fulfil(app, claimed):
    task_id, coordinator = claimed
    for outsider in ("J_coord", "P_coord"):
        response = fulfil(staff_client(app, outsider), task_id, [("签收单.jpg", photo_bytes())])
        assert response.status_code == 403
    assert fulfil(coordinator, task_id, [("签收单.jpg", photo_bytes())]).status_code == 302
    assert len(evidence_rows(app)) == 1
    late = fulfil(coordinator, task_id, [("again.jpg", photo_bytes())])  # a second tab, after it was fulfilled
    assert late.status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EvidenceFile)) == 1
    assert len(stored_files(app)) == 1
