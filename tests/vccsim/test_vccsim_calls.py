"""vccsim: placing calls, every documented message, and a call's life on a manual clock."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from tests.vccsim.conftest import log_in
from vccsim import Clock, Simulator

CALLS = "/v0/sandbox01/calls/"


def place(vcc: httpx.Client, body: object, version: int | None = 6) -> httpx.Response:
    headers = {"Accept": f"application/json;version={version}"} if version else {}
    return vcc.post(CALLS, json=body, headers=headers)


def agent_call(number: str = "02072068888", agent_id: str = "1001", **extra: object) -> dict[str, object]:
    return {"from": {"agentId": agent_id}, "to": {"telephoneNumber": number}, **extra}


def message(response: httpx.Response) -> str:
    return response.json()["message"]


def test_it_places_an_agent_call_with_location_and_the_v6_body(vcc: httpx.Client, sim: Simulator):
    response = place(vcc, agent_call(regarding={"reference": "0012400000ATTUQ"}, application="vccweb"))

    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == f"http://vccsim.test/v0/sandbox01/calls/{body['id']}"
    assert body["links"] == [{"href": f"http://vccsim.test/V0/sandbox01/Calls/{body['id']}", "rel": "_self"}]
    assert body["from"] == {"agentId": "1001", "presentedClid": "+442079460100"}
    assert body["to"] == {"telephoneNumber": "02072068888"}
    assert body["regarding"] == {"reference": "0012400000ATTUQ"}
    assert body["status"] == "Active"
    assert body["recordingStatus"] == "Stopped"
    assert body["application"] == "vccweb"
    assert body["dispositionCode"] is None
    assert sim.calls_placed == 1


def test_it_counts_only_calls_it_placed(vcc: httpx.Client, sim: Simulator):
    place(vcc, agent_call(agent_id="1001"))
    place(vcc, agent_call(agent_id="1006"))
    place(vcc, agent_call(agent_id="1002", number="12345"))

    assert sim.calls_placed == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (agent_call(number="0" * 31), "Telephone number exceeds 30 characters"),
        (agent_call(agent_id="123456789012"), "Agent Id exceeds 11 digits"),
        (agent_call(agent_id="12a4"), "Agent Id must contain digits only"),
        (agent_call(agent_id=" 1001"), "Agent Id must contain digits only"),
        ({"from": {"agentId": "1001"}, "to": {"agentId": "1002 "}}, "Agent Id must contain digits only"),
        ({"from": {"agentId": "1001"}, "to": {"agentId": "10x"}}, "Agent Id must contain digits only"),
        (
            {"from": {"agentId": "1001", "telephoneNumber": "02072068888"}, "to": {"telephoneNumber": "02072068888"}},
            "Telephone number not supported in this context",
        ),
        ({"from": {}, "to": {"telephoneNumber": "02072068888"}}, "Agent Id must be specified"),
        ({"to": {"telephoneNumber": "02072068888"}}, "Agent Id must be specified"),
        ({"from": {"groups": []}, "to": {"telephoneNumber": "02072068888"}}, "Agent Id must be specified"),
        ({"from": {"agentId": "1001"}, "to": {}}, "Either telephone number or agent id required"),
        (
            {"from": {"agentId": "1001"}, "to": {"telephoneNumber": "02072068888", "agentId": "1002"}},
            "Either telephone number or agent id required, not both",
        ),
        (
            {"from": {"agentId": "1001", "groups": ["030"]}, "to": {"telephoneNumber": "02072068888"}},
            "Either agent id or groups required, not both",
        ),
        (agent_call(regarding={"reference": "a" * 2001}), "Reference exceeded 2000 characters"),
        (agent_call(regarding={"reference": "not a url!"}), "Reference contained invalid characters"),
        (agent_call(application="a" * 33), "Application exceeded 32 characters"),
        (agent_call(application="my-app"), "Application contains non-alphanumeric characters"),
        (agent_call(application="vccweb "), "Application contains non-alphanumeric characters"),
        (agent_call(regarding={"reference": " https://crm.example.com/c/1"}), "Reference contained invalid characters"),
        (
            {"from": {"agentId": "1001", "consent": "OneParty "}, "to": {"telephoneNumber": "02072068888"}},
            "Consent must be one of Unknown, OneParty, TwoParty",
        ),
        (
            {"from": {"agentId": "1001", "consent": "Maybe"}, "to": {"telephoneNumber": "02072068888"}},
            "Consent must be one of Unknown, OneParty, TwoParty",
        ),
        (agent_call(agent_id="9999"), "Unable to place call - Agent Id is unknown"),
        (agent_call(agent_id="1006"), "Unable to place call - Agent number busy"),
        ({"from": {"agentId": "1001"}, "to": {"agentId": "9999"}}, "Unable to place call - invalid Agent Id"),
        (
            {"from": {"agentId": "1001"}, "to": {"agentId": "1005"}},
            "Unable to place call - dialed Agent is not currently available",
        ),
        (
            {"from": {"agentId": "1001"}, "to": {"agentId": "1001"}},
            "Unable to place call - dialed Agent is not currently available",
        ),
        (
            {"from": {"groups": ["400"]}, "to": {"telephoneNumber": "02072068888"}},
            "Unable to place call to Agent. Please try again",
        ),
        (
            {"from": {"groups": ["999"]}, "to": {"telephoneNumber": "02072068888"}},
            "Unable to place call to Agent. Please try again",
        ),
        (agent_call(number="12345"), "Unable to place call - number is invalid"),
        (
            {"from": {"agentId": "1001", "presentedCLID": "08008888888"}, "to": {"telephoneNumber": "02072068888"}},
            "Unable to place call - presented CLID is not a configured callback number",
        ),
        (
            {"from": {"agentId": "1001", "presentedCLID": "+441614960200"}, "to": {"telephoneNumber": "02072068888"}},
            "Unable to place call - presented CLID is not available to this agent",
        ),
        ([], "The request is invalid."),
        ({"from": "1001", "to": {"telephoneNumber": "02072068888"}}, "The request is invalid."),
    ],
)
def test_it_refuses_bad_calls_with_the_documented_message(vcc: httpx.Client, sim: Simulator, body, expected):
    response = place(vcc, body)

    assert response.status_code == 400
    assert message(response) == expected
    assert sim.calls_placed == 0


@pytest.mark.parametrize("content", [b'{"from": ', b""])
def test_it_refuses_malformed_or_missing_json(vcc: httpx.Client, content):
    response = vcc.post(CALLS, content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert message(response) == "The request is invalid."


def test_it_refuses_any_content_type_but_json_with_415(vcc: httpx.Client):
    multipart = vcc.post(CALLS, files={"from": b"1001"})
    missing = vcc.post(CALLS, content=b"{}")

    assert multipart.status_code == 415
    assert message(multipart) == "The requested resource does not support content type 'multipart/form-data'."
    assert message(missing) == "The requested resource does not support content type 'application/octet-stream'."


def test_it_refuses_a_disabled_ccxml_account(sim: Simulator, vcc: httpx.Client):
    sim.account = replace(sim.account, ccxml_enabled=False)

    response = place(vcc, agent_call())

    assert response.status_code == 400
    assert message(response) == "Ccxml must be enabled for this account"


def test_it_checks_lengths_before_the_account_and_agents(sim: Simulator, vcc: httpx.Client):
    sim.account = replace(sim.account, ccxml_enabled=False)

    assert message(place(vcc, agent_call(agent_id="9999", number="0" * 31))) == "Telephone number exceeds 30 characters"


@pytest.mark.parametrize(
    ("extra", "version", "expected"),
    [
        ({"regarding": {"reference": "0012400000ATTUQ"}}, 3, "Reference is supported from version 4 of the API"),
        ({"application": "vccweb"}, 3, "Application is supported from version 4 of the API"),
        ({"regarding": {"reference": "0012400000ATTUQ"}}, None, "Reference is supported from version 4 of the API"),
    ],
)
def test_it_refuses_fields_newer_than_the_requested_version(vcc: httpx.Client, extra, version, expected):
    response = place(vcc, agent_call(**extra), version=version)

    assert response.status_code == 400
    assert message(response) == expected


def test_consent_needs_version_6(vcc: httpx.Client):
    body = {"from": {"agentId": "1001", "consent": "OneParty"}, "to": {"telephoneNumber": "02072068888"}}

    refused = place(vcc, body, version=5)
    accepted = place(vcc, body, version=6)

    assert message(refused) == "Consent is supported from version 6 of the API"
    assert accepted.status_code == 201
    assert accepted.json()["from"]["consent"] == "OneParty"


def test_reference_and_application_are_accepted_from_version_4(vcc: httpx.Client):
    response = place(vcc, agent_call(regarding={"reference": "https://crm.example/c/1?x=y"}, application="A1"), 4)

    assert response.status_code == 201


def test_it_reads_the_version_from_content_type_when_accept_has_none(vcc: httpx.Client):
    response = vcc.post(
        CALLS,
        json=agent_call(application="vccweb"),
        headers={"Content-Type": "application/json; version=6", "Accept": "application/json"},
    )

    assert response.status_code == 201


def test_it_places_a_documented_example_without_any_version(vcc: httpx.Client):
    assert place(vcc, agent_call(), version=None).status_code == 201


def test_property_names_are_case_insensitive_and_clids_may_be_national(vcc: httpx.Client):
    body = {"From": {"AgentId": "1002", "presentedClid": "0161 496 0200"}, "TO": {"TelephoneNumber": "02072068888"}}

    response = place(vcc, body)

    assert response.status_code == 201
    assert response.json()["from"]["presentedClid"] == "01614960200"  # as the account lists it


@pytest.mark.parametrize("presented", ["01614960200", "+441614960200", "+44 161 496 0200"])
def test_a_callback_number_held_in_national_format_may_be_presented_in_either_form(
    vcc: httpx.Client, sim: Simulator, presented: str
):
    """The account holds Manchester support as 01614960200 (VCC's docs show national and E.164 forms); whether VCC
    compares presentedCLID as a string is not documented, so the simulator compares the numbers."""
    assert [n.clid for n in sim.account.callback_numbers if n.name == "Manchester support"] == ["01614960200"]
    body = {"from": {"agentId": "1002", "presentedCLID": presented}, "to": {"telephoneNumber": "02072068888"}}

    response = place(vcc, body)

    assert response.status_code == 201, response.text
    assert response.json()["from"]["presentedClid"] == "01614960200"


def test_a_group_call_goes_to_the_first_ready_member_named_once_they_answer(vcc: httpx.Client, sim: Simulator):
    response = place(vcc, {"from": {"groups": ["400", "030"]}, "to": {"telephoneNumber": "+447970303957"}})

    assert response.status_code == 201
    # VCC names the agent who took a group call (from.agentId) only once that agent answers.
    assert response.json()["from"] == {"groups": ["400", "030"], "presentedClid": "+442079460100"}
    url = f"{CALLS}{response.json()['id']}"
    sim.clock.advance(3)  # the agent's phone rings for 3 s
    assert vcc.get(url).json()["from"] == {
        "groups": ["400", "030"],
        "agentId": "1001",
        "presentedClid": "+442079460100",
    }


def test_a_group_call_nobody_answers_never_names_an_agent(vcc: httpx.Client, sim: Simulator):
    response = place(vcc, {"from": {"groups": ["030"]}, "to": {"telephoneNumber": "+447970303991"}})  # 91: no answer

    assert response.status_code == 201
    sim.clock.advance(60)  # past the 30 s the agent's phone rings unanswered: the call has ended
    assert "agentId" not in vcc.get(f"{CALLS}{response.json()['id']}").json()["from"]


def test_a_group_call_picks_a_member_allowed_to_present_the_clid(vcc: httpx.Client, sim: Simulator):
    body = {
        "from": {"groups": ["030", "200"], "presentedCLID": "+441614960200"},
        "to": {"telephoneNumber": "02072068888"},
    }

    response = place(vcc, body)

    sim.clock.advance(3)
    assert vcc.get(f"{CALLS}{response.json()['id']}").json()["from"]["agentId"] == "1002"


def test_a_group_call_fails_when_its_ready_members_are_on_calls(vcc: httpx.Client):
    for _ in range(3):
        assert place(vcc, {"from": {"groups": ["030"]}, "to": {"telephoneNumber": "02072068888"}}).status_code == 201

    response = place(vcc, {"from": {"groups": ["030"]}, "to": {"telephoneNumber": "02072068888"}})

    assert message(response) == "Unable to place call to Agent. Please try again"


def test_an_away_agent_may_still_place_their_own_call(vcc: httpx.Client):
    assert place(vcc, agent_call(agent_id="1005")).status_code == 201


def test_the_calling_agent_is_busy_until_the_call_ends(vcc: httpx.Client, clock: Clock):
    assert place(vcc, agent_call()).status_code == 201

    busy = place(vcc, agent_call())
    clock.advance(3 + 5 + 60)
    again = place(vcc, agent_call())

    assert message(busy) == "Unable to place call - Agent number busy"
    assert again.status_code == 201


def test_an_agent_to_agent_call_makes_both_busy(vcc: httpx.Client):
    response = place(vcc, {"from": {"agentId": "1001"}, "to": {"agentId": "1002"}})

    assert response.status_code == 201
    assert response.json()["to"] == {"agentId": "1002"}
    assert message(place(vcc, agent_call(agent_id="1002"))) == "Unable to place call - Agent number busy"
    assert message(place(vcc, {"from": {"agentId": "1003"}, "to": {"agentId": "1002"}})) == (
        "Unable to place call - dialed Agent is not currently available"
    )


def get_call(vcc: httpx.Client, call_id: str) -> httpx.Response:
    return vcc.get(f"/v0/sandbox01/calls/{call_id}", headers={"Accept": "application/json;version=3"})


def test_an_answered_call_rings_the_agent_then_the_destination_then_connects_and_ends(vcc: httpx.Client, clock: Clock):
    call_id = place(vcc, agent_call()).json()["id"]
    seen = []
    for step in (0, 3, 5, 59, 1, 24 * 3600 - 1):
        clock.advance(step)
        log_in(vcc)
        body = get_call(vcc, call_id).json()
        seen.append((body["simulator"]["phase"], body["status"], body["recordingStatus"], body["result"]))

    assert seen == [
        ("ringingAgent", "Active", "Stopped", None),
        ("ringingDestination", "Active", "Stopped", None),
        ("connected", "Active", "Started", None),
        ("connected", "Active", "Started", None),
        ("ended", None, None, {"code": "Success", "party": "Destination", "reason": "Answered"}),
        ("ended", None, None, {"code": "Success", "party": "Destination", "reason": "Answered"}),
    ]
    assert body["simulator"]["durationSeconds"] == 60


def test_a_call_disappears_24_hours_after_it_ends(vcc: httpx.Client, clock: Clock):
    call_id = place(vcc, agent_call()).json()["id"]
    clock.advance(3 + 5 + 60 + 24 * 3600)
    log_in(vcc)

    response = get_call(vcc, call_id)

    assert response.status_code == 404
    assert message(response) == "The requested resource was not found."


@pytest.mark.parametrize(
    ("number", "seconds", "result"),
    [
        ("02072068891", 30, {"code": "Failure", "party": "Originator", "reason": "NoAnswer"}),
        ("02072068892", 33, {"code": "Failure", "party": "Destination", "reason": "NoAnswer"}),
        ("02072068893", 5, {"code": "Failure", "party": "Destination", "reason": "Busy"}),
        ("02072068894", 4, {"code": "Failure", "party": "Destination", "reason": "Failed"}),
    ],
)
def test_the_last_two_digits_choose_a_failed_outcome(vcc: httpx.Client, clock: Clock, number, seconds, result):
    call_id = place(vcc, agent_call(number=number)).json()["id"]
    clock.advance(seconds - 0.5)
    live = get_call(vcc, call_id).json()
    clock.advance(0.5)
    ended = get_call(vcc, call_id).json()

    assert live["status"] == "Active"
    assert ended["status"] is None
    assert ended["result"] == result
    assert ended["simulator"]["durationSeconds"] == 0
    assert ended["simulator"]["answeredAt"] is None


def test_a_forced_outcome_applies_to_the_next_call_only(vcc: httpx.Client, sim: Simulator, clock: Clock):
    sim.force_next_outcome("answered", talk_seconds=5)
    sim.force_next_outcome("busy")
    first = place(vcc, agent_call(agent_id="1001")).json()["id"]
    second = place(vcc, agent_call(agent_id="1002")).json()["id"]
    third = place(vcc, agent_call(agent_id="1003")).json()["id"]
    clock.advance(3 + 5 + 5)

    assert get_call(vcc, first).json()["result"]["code"] == "Success"
    assert get_call(vcc, second).json()["result"]["reason"] == "Busy"
    assert get_call(vcc, third).json()["status"] == "Active"


def recording(vcc: httpx.Client, call_id: str, status: str) -> httpx.Response:
    return vcc.post(f"/v0/sandbox01/calls/{call_id}", json={"recordingStatus": status})


def test_recording_changes_are_accepted_then_applied_asynchronously(vcc: httpx.Client, clock: Clock):
    call_id = place(vcc, agent_call()).json()["id"]
    clock.advance(10)

    paused = recording(vcc, call_id, "Paused")
    just_after = get_call(vcc, call_id).json()["recordingStatus"]
    clock.advance(1)
    later = get_call(vcc, call_id).json()["recordingStatus"]
    recording(vcc, call_id, "Started")
    clock.advance(1)

    assert paused.status_code == 202
    assert paused.json() == {"recordingStatus": "Paused"}
    assert (just_after, later) == ("Started", "Paused")
    assert get_call(vcc, call_id).json()["recordingStatus"] == "Started"


def test_recording_control_refuses_ended_calls_bad_values_and_unknown_calls(vcc: httpx.Client, clock: Clock):
    call_id = place(vcc, agent_call()).json()["id"]

    bad = recording(vcc, call_id, "Stopped")
    padded = recording(vcc, call_id, " Paused")
    clock.advance(600)
    ended = recording(vcc, call_id, "Paused")
    unknown = recording(vcc, "94e5928c-7f7e-4645-ad72-61010f906449", "Paused")

    assert (bad.status_code, message(bad)) == (400, "Recording status must be Paused or Started")
    assert (padded.status_code, message(padded)) == (400, "Recording status must be Paused or Started")
    assert (ended.status_code, message(ended)) == (400, "Unable to control recording - call is not active")
    assert (unknown.status_code, message(unknown)) == (404, "The requested resource was not found.")


def disposition(vcc: httpx.Client, call_id: str, code: object) -> httpx.Response:
    return vcc.post(f"/v0/sandbox01/calls/{call_id}/dispositionCode", json={"dispositionCode": code, "agentId": "1001"})


def test_it_sets_a_disposition_code_during_and_after_the_call(vcc: httpx.Client, clock: Clock):
    call_id = place(vcc, agent_call()).json()["id"]

    during = disposition(vcc, call_id, "Wrong Number")
    clock.advance(600)
    after = disposition(vcc, call_id, "Sale")

    assert (during.status_code, during.json()) == (200, {"dispositionCode": "Wrong Number"})
    assert after.status_code == 200
    assert get_call(vcc, call_id).json()["dispositionCode"] == "Sale"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (None, 400, "Disposition code field was expected. "),
        ("  ", 400, "Disposition code field was expected. "),
        ("x" * 256, 400, "Disposition code excceeds 255 characters."),
    ],
)
def test_it_refuses_bad_disposition_codes(vcc: httpx.Client, code, status, expected):
    call_id = place(vcc, agent_call()).json()["id"]

    response = disposition(vcc, call_id, code)

    assert (response.status_code, message(response)) == (status, expected)


def test_it_does_not_find_a_disposition_for_an_unknown_call(vcc: httpx.Client):
    response = disposition(vcc, "94e5928c-7f7e-4645-ad72-61010f906449", "Sale")

    assert (response.status_code, message(response)) == (404, "The requested resource was not found.")
