"""The field API without a server: validation before writing, the dispute pre-check."""

from __future__ import annotations

import pytest

from client_sdk import (
    AuthError,
    IllegalTransition,
    NetworkError,
    RecordNotFound,
    ValidationError,
)

from .conftest import GRID_1, id_number

BAD = [
    ("resident", {"name": "赵六", "id_number": id_number()[:-1] + "0"}, "id_number"),
    ("resident", {"name": "赵六", "phone": "12345"}, "phone"),
    ("resident", {"name": " "}, "name"),
    ("resident", {"name": "赵六", "gender": "Q"}, "gender"),
    ("resident", {"name": "赵六", "tags": ["no_such_tag"]}, "tags"),
    ("resident", {"name": "赵六", "favourite_colour": "red"}, "favourite_colour"),
    ("household", {"address": "a", "review_status": "approved"}, "review_status"),
    ("dispute", {"title": "噪音", "category": "01", "status": "closed"}, "status"),
    ("dispute", {"title": "噪音", "category": "99"}, "category"),
    ("visit", {"visited_at": "yesterday"}, "visited_at"),
]


@pytest.mark.parametrize(("record_type", "fields", "bad_field"), BAD)
def test_invalid_input_is_refused_before_anything_is_written(
    offline_device, record_type, fields, bad_field
):
    device = offline_device()
    create = {
        "household": device.create_household,
        "resident": device.create_resident,
        "dispute": device.screen_dispute,
        "visit": lambda **f: device.record_visit(**f),
    }[record_type]
    if record_type == "household":
        fields = {"address": "a", **fields}
    with pytest.raises(ValidationError) as err:
        create(grid_code=GRID_1, **fields)
    assert bad_field in err.value.errors
    assert device.pending_count() == 0
    assert device.store.count("records") == 0


def test_missing_required_and_bad_grid_are_reported_per_field(offline_device):
    device = offline_device()
    with pytest.raises(ValidationError) as err:
        device.screen_dispute(grid_code="123", title="", category="01")
    assert set(err.value.errors) == {"grid_code", "title"}


def test_valid_resident_with_sensitive_fields(offline_device):
    device = offline_device()
    person = device.create_resident(
        grid_code=GRID_1,
        name="钱七",
        id_number=id_number(),
        phone="17012345678",
        tags=["elderly_alone"],
        gender="F",
    )
    assert person["fields"]["id_number"] == id_number()


def test_updates_are_validated_too(offline_device):
    device = offline_device()
    person = device.create_resident(grid_code=GRID_1, name="孙八")
    with pytest.raises(ValidationError) as err:
        device.update(person["id"], phone="not a phone")
    assert err.value.errors == {"phone": "not a valid phone number"}
    with pytest.raises(ValidationError):
        device.update(person["id"])
    assert device.pending_count() == 1


def test_notes_need_text(offline_device):
    device = offline_device()
    visit = device.record_visit(grid_code=GRID_1, findings="正常", notes=["一切安好"])
    assert [n["text"] for n in visit["collections"]["notes"]] == ["一切安好"]
    with pytest.raises(ValidationError):
        device.add_note(visit["id"], "   ")
    with pytest.raises(ValidationError):
        device.record_visit(grid_code=GRID_1, notes=[""])


def test_unknown_records(offline_device):
    device = offline_device()
    with pytest.raises(RecordNotFound):
        device.update("0b7b4d2e-0000-4000-8000-000000000001", address="x")
    with pytest.raises(RecordNotFound):
        device.get("0b7b4d2e-0000-4000-8000-000000000001")


def test_dispute_workflow_is_prechecked_with_local_steps(offline_device):
    device = offline_device()
    case = device.screen_dispute(grid_code=GRID_1, title="楼上漏水", category="0201")
    # No user signed in: the device assumes a grid worker, who may not accept a case.
    assert device.allowed_actions(case["id"]) == []
    with pytest.raises(IllegalTransition) as err:
        device.advance(case["id"], "accept")
    assert err.value.details["reason_code"] == "role_not_allowed"
    device.store.set(user={"username": "head1", "role": "community_head"})
    assert "accept" in device.allowed_actions(case["id"])
    device.advance(case["id"], "accept", opinion="受理")
    # The unsynced accept counts: the case may now be assigned, not accepted again.
    assert "assign" in device.allowed_actions(case["id"])
    with pytest.raises(IllegalTransition):
        device.advance(case["id"], "accept")
    with pytest.raises(IllegalTransition) as err:
        device.advance(case["id"], "assign", responsible_unit="调委会")
    assert err.value.details["reason_code"] == "missing_param"
    view = device.advance(case["id"], "assign", responsible_unit="调委会", responsible_person="李")
    steps = view["collections"]["steps"]
    assert [s["action"] for s in steps] == ["accept", "assign"]
    assert steps[0]["opinion"] == "受理"


def test_offline_unlock_needs_a_prior_login_and_sync_needs_a_server(offline_device):
    device = offline_device()
    with pytest.raises(AuthError):
        device.unlock("anything")
    with pytest.raises((NetworkError, AuthError)):
        device.sync()


def test_resolve_needs_a_reason_and_a_valid_value(offline_device):
    device = offline_device()
    home = device.create_household(grid_code=GRID_1, address="a")
    with pytest.raises(ValidationError):
        device.resolve(home["id"], "address", "b", reason=" ")
    with pytest.raises(ValidationError):
        device.resolve(home["id"], "phone", "nope", reason="核实")
    with pytest.raises(ValidationError):
        device.resolve(home["id"], "_deleted", "yes", reason="核实")
