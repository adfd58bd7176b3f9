"""Control API, the do-not-contact list: add, read, list, remove, load a file; scoped to the key."""

from __future__ import annotations

from tests.integration.api_support import Api


def test_add_read_list_and_remove(api: Api) -> None:
    client = api.as_new_account()
    answer = client.http.post(
        "/suppressions",
        json=[
            {"phone": "+12125550100", "source": "national_dnc", "listed_on": "2026-11-01"},
            {"phone": "+12125550101", "reason": "asked on the phone"},
            {"phone": "+12125550100"},
        ],
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"added": 2, "already_listed": 1}

    one = client.http.get("/suppressions/+12125550100")
    assert one.status_code == 200
    assert one.json() == {
        "phone": "+12125550100",
        "source": "national_dnc",
        "reason": None,
        "listed_on": "2026-11-01",
    }
    page = client.http.get("/suppressions", params={"limit": 1})
    assert [row["phone"] for row in page.json()["data"]] == ["+12125550100"]
    after = page.json()["next_after"]
    rest = client.http.get("/suppressions", params={"limit": 1, "after": after}).json()
    assert [row["source"] for row in rest["data"]] == ["manual"]

    # Another account sees none of it.
    other = api.as_new_account()
    assert other.http.get("/suppressions/+12125550100").status_code == 404
    assert other.http.get("/suppressions").json()["data"] == []

    assert client.http.delete("/suppressions/+12125550100").status_code == 204
    assert client.http.delete("/suppressions/+12125550100").status_code == 404


def test_bad_numbers_and_sources_are_refused_naming_the_field(api: Api) -> None:
    client = api.as_new_account()
    answer = client.http.post("/suppressions", json=[{"phone": "2125550100"}])
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][-1] == "phone"
    answer = client.http.post("/suppressions", json=[{"phone": "+12125550100", "source": "DNC!"}])
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][-1] == "source"
    assert client.http.get("/suppressions/12345").status_code == 422


def test_reading_and_writing_need_the_customers_scopes(api: Api) -> None:
    reader = api.as_new_account(scopes=["customers:read"])
    assert reader.http.get("/suppressions").status_code == 200
    answer = reader.http.post("/suppressions", json=[{"phone": "+12125550100"}])
    assert answer.status_code == 403
    assert api.client().get("/suppressions").status_code == 401


def test_a_file_loads_and_reports_its_bad_lines(api: Api) -> None:
    client = api.as_new_account()
    body = "phone\n+12125550100\n2125550101\nnonsense\n+12125550100\n"
    answer = client.http.post(
        "/suppressions/csv",
        params={"source": "state_fl", "default_region": "US"},
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert {k: report[k] for k in ("read", "added", "already_listed", "rejected")} == {
        "read": 4,
        "added": 2,
        "already_listed": 1,
        "rejected": 1,
    }
    assert [line["line"] for line in report["rejected_lines"]] == [4]
    missing_source = client.http.post(
        "/suppressions/csv", content=b"+12125550100\n", headers={"Content-Type": "text/csv"}
    )
    assert missing_source.status_code == 422
