"""Me, organisations and people over the API: only within one's own subtree."""
from __future__ import annotations

from .conftest import assert_problem


def test_me_for_staff_cadre_and_youth(api, youth_account):
    staff = api("S_org").get("/api/v1/me").get_json()
    assert (staff["organisation"], staff["roles"], staff["cadre_id"]) == ("qd-sn", ["organiser"], None)
    cadre = api("zhang").get("/api/v1/me").get_json()
    assert cadre["roles"] == ["cadre"] and cadre["cadre_id"] and cadre["grants"] == []
    youth = api(youth_account()).get("/api/v1/me").get_json()
    assert youth["roles"] == ["youth"] and youth["organisation"] is None and youth["youth_id"]


def test_organisations_of_my_subtree_in_tree_order(api, league):
    qd = api("Q_org", ["people:read"])
    first = qd.get("/api/v1/organisations?limit=2").get_json()
    rest = qd.get(f"/api/v1/organisations?limit=2&cursor={first['next_cursor']}").get_json()
    codes = [o["code"] for o in first["items"] + rest["items"]]
    assert codes == ["qd", "qd-sn", "qd-sn-gw", "qd-sn-gw-1"] and rest["next_cursor"] is None
    assert first["items"][1]["parent"] == "qd" and first["items"][0]["parent"] == "prov"
    counties = qd.get("/api/v1/organisations?kind=county").get_json()["items"]
    assert [o["code"] for o in counties] == ["qd-sn"]
    assert [o["code"] for o in qd.get("/api/v1/organisations?root=qd-sn-gw").get_json()["items"]] == \
        ["qd-sn-gw", "qd-sn-gw-1"]
    assert_problem(qd.get("/api/v1/organisations?root=jn"), 403)
    assert_problem(qd.get("/api/v1/organisations?root=nowhere"), 404)
    # A cadre without a staff role: their own organisation and those above it.
    assert [o["code"] for o in api("li").get("/api/v1/organisations").get_json()["items"]] == \
        ["prov", "qd", "qd-sn", "qd-sn-gw"]


def test_one_organisation(api, league):
    assert api("Q_org").get("/api/v1/organisations/qd-sn-gw-1").get_json()["kind"] == "branch"
    assert api("li").get("/api/v1/organisations/qd").status_code == 200          # above li's own
    assert_problem(api("li").get("/api/v1/organisations/qd-sn-gw-1"), 403)       # below li's, no role there
    assert_problem(api("Q_org").get("/api/v1/organisations/jn"), 403)
    assert_problem(api("Q_org").get("/api/v1/organisations/none"), 404)
    assert_problem(api("Q_org", ["tasks:read"]).get("/api/v1/organisations/qd"), 403, "ScopeMissing")


def test_cadres_and_their_contacts_within_the_subtree(api, league):
    qd = api("Q_org")
    cadres = qd.get("/api/v1/cadres?organisation=qd&limit=1").get_json()
    more = qd.get(f"/api/v1/cadres?organisation=qd&limit=1&cursor={cadres['next_cursor']}").get_json()
    assert [c["username"] for c in cadres["items"] + more["items"]] == ["zhang", "li"]
    assert_problem(qd.get("/api/v1/cadres?organisation=jn"), 403)
    assert_problem(qd.get("/api/v1/cadres"), 422)
    zhang_id = cadres["items"][0]["id"]
    detail = qd.get(f"/api/v1/cadres/{zhang_id}").get_json()
    assert (detail["name"], detail["contacts"], detail["kind"]) == ("张伟", 2, "full_time")
    youth = qd.get(f"/api/v1/cadres/{zhang_id}/youth").get_json()["items"]
    assert [(y["name"], y["phone"], y["tags_complete"]) for y in youth] == [("小明", "138****0001", True),
                                                                            ("小红", "138****0002", False)]
    assert api("zhang").get(f"/api/v1/cadres/{zhang_id}/youth").status_code == 200  # their own contacts
    assert_problem(api("li").get(f"/api/v1/cadres/{zhang_id}"), 403)
    assert_problem(api("J_org").get(f"/api/v1/cadres/{zhang_id}/youth"), 403)
    assert_problem(qd.get("/api/v1/cadres/424242"), 404)
