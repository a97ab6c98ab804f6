from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import clue_body, make_district, token


def test_rider_reports_and_dispatcher_sees_it(client: TestClient, db: Session) -> None:
    make_district(db)
    rider = token(client, "rider")
    res = client.post("/api/v1/clues", json=clue_body(), headers={**rider, "Idempotency-Key": "k1"})
    assert res.status_code == 201, res.text
    clue_id = res.json()["id"]
    assert res.json()["status"] == "submitted"
    disp = token(client, "dispatcher")
    res = client.get(f"/api/v1/clues/{clue_id}", headers=disp)
    assert res.status_code == 200
    body = res.json()
    assert body["grid"] == "金鼎西网格"
    assert body["reporter"]["username"] == "rider"
    assert [e["action"] for e in body["timeline"]] == ["submit"]
