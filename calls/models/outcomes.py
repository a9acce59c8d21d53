"""How an ended call went, read from VCC's result: Call.record_end's words for it (calls/models/calls.py)."""

from __future__ import annotations


def outcome_of(code: str, party: str, reason: str, *, connected: bool) -> str:
    """How an ended call went, from VCC's result (code, party, reason); VCC documents few values, so be lenient."""
    from calls.models.calls import Call  # Call imports this module

    code_, party_, reason_ = code.lower(), party.lower(), reason.lower()
    if code_ == "success" or (not code_ and connected):
        return Call.Outcome.ANSWERED
    if not code_ and not reason_:
        return Call.Outcome.UNKNOWN
    if "busy" in reason_:
        return Call.Outcome.BUSY
    if "noanswer" in reason_.replace(" ", "").replace("_", ""):
        return Call.Outcome.AGENT_NO_ANSWER if party_ == "originator" else Call.Outcome.NO_ANSWER
    if not code_ or code_.startswith("fail") or code_ == "error":  # "Failure" is documented; "Failed", "Error" read so
        return Call.Outcome.FAILED
    # A code VCC does not document (only "Failure" is known, vcc-api.md §6.1): no failure we know of. Answered
    # if the call connected; else unknown, which still asks for a wrap-up and is not counted as failed.
    return Call.Outcome.ANSWERED if connected else Call.Outcome.UNKNOWN
