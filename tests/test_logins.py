"""Failed logins are limited per account and per address; a locked-out attempt never reaches the password hasher."""

from __future__ import annotations

import pytest
from django.test import Client

from calls import logins
from calls.logins import client_address, lockout_message
from tests.conftest import PASSWORD

WINDOW = 900
START = 1_800_000_000.0  # a multiple of the window: tests start at the beginning of one


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.LOGIN_FAILURES_PER_ADDRESS = 8
    settings.LOGIN_FAILURE_WINDOW_SECONDS = WINDOW
    settings.LOGIN_LOCKOUT_SECONDS = 900


@pytest.fixture
def clock(monkeypatch):
    now = [START]
    monkeypatch.setattr(logins, "clock", lambda: now[0])
    return now


@pytest.fixture
def no_hashing(monkeypatch):
    """Fail the test if a password would be checked."""

    def refuse(*args, **kwargs):
        raise AssertionError("the password was checked")

    monkeypatch.setattr("django.contrib.auth.forms.authenticate", refuse)


def log_in(username: str, password: str, address: str = "203.0.113.7", path: str = "/login/"):
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_right_password_logs_in(agent_user, clock):
    response = log_in("alex", PASSWORD)
    assert response.status_code == 302


def test_after_five_wrong_passwords_the_account_is_paused_and_told_for_how_long(agent_user, clock):
    for _ in range(4):
        response = log_in("alex", "wrong")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
    response = log_in("alex", "wrong")
    assert response.status_code == 429
    assert "logging in is paused for 15 minutes" in response.content.decode()


def test_a_pause_is_logged_without_the_username(agent_user, clock, caplog):
    for _ in range(5):
        log_in("alex", "wrong", address="198.51.100.4")
    [line] = [r.getMessage() for r in caplog.records if r.name == "calls.logins"]
    assert line == "logins paused for 900 s: 5 failed logins for one account (from 198.51.100.4)"
    assert "alex" not in caplog.text


def test_a_paused_account_is_refused_even_the_right_password_without_checking_it(agent_user, clock, no_hashing):
    with pytest.raises(AssertionError):
        log_in("alex", "wrong")  # proves the spy works
    for _ in range(5):
        logins.record_failure("alex", "198.51.100.1")
    clock[0] += 60
    response = log_in("alex", PASSWORD, address="192.0.2.99")  # from anywhere
    assert response.status_code == 429
    assert "paused for 14 minutes" in response.content.decode()


def test_the_pause_ends(agent_user, clock):
    for _ in range(5):
        log_in("alex", "wrong")
    clock[0] += 899
    assert log_in("alex", PASSWORD).status_code == 429
    clock[0] += 1
    assert log_in("alex", PASSWORD).status_code == 302


def test_an_address_guessing_at_many_accounts_is_paused_for_every_account(agent_user, clock):
    for n in range(8):
        log_in(f"nobody{n}", "wrong", address="203.0.113.7")
    assert log_in("alex", PASSWORD, address="203.0.113.7").status_code == 429
    assert log_in("alex", PASSWORD, address="203.0.113.8").status_code == 302  # others are not held up


def test_ipv6_addresses_are_counted_by_their_64(agent_user, clock):
    for n in range(8):
        log_in(f"nobody{n}", "wrong", address=f"2001:db8:1:2::{n + 1:x}")
    assert log_in("alex", PASSWORD, address="2001:db8:1:2:ffff::1").status_code == 429
    assert log_in("alex", PASSWORD, address="2001:db8:1:3::1").status_code == 302


def test_a_success_forgets_the_accounts_failures(agent_user, clock):
    for _ in range(4):
        log_in("alex", "wrong", address="198.51.100.1")
    assert log_in("alex", PASSWORD, address="198.51.100.1").status_code == 302
    for _ in range(4):
        log_in("alex", "wrong", address="198.51.100.2")
    assert log_in("alex", PASSWORD, address="198.51.100.3").status_code == 302


def test_failures_in_an_earlier_window_do_not_count(agent_user, clock):
    for _ in range(4):
        log_in("alex", "wrong")
    clock[0] += WINDOW
    for _ in range(4):
        log_in("alex", "wrong")
    assert log_in("alex", PASSWORD).status_code == 302


def test_usernames_are_counted_whatever_their_case(agent_user, clock):
    for name in ["alex", "ALEX", "Alex", "aLex", "alex "]:
        log_in(name, "wrong")
    assert log_in("alex", PASSWORD).status_code == 429


def test_the_admin_login_is_limited_too(admin_role_user, clock):
    for _ in range(5):
        log_in("ada", "wrong", path="/admin/login/")
    response = log_in("ada", PASSWORD, path="/admin/login/")
    assert response.status_code == 200
    assert "logging in is paused for 15 minutes" in response.content.decode()


def test_a_locked_out_page_holds_no_password(agent_user, clock):
    for _ in range(5):
        log_in("alex", "hunter2-secret")
    page = log_in("alex", "hunter2-secret").content.decode()
    assert "hunter2-secret" not in page


@pytest.mark.parametrize(
    ("seconds", "wait"),
    [(1, "1 second"), (45, "45 seconds"), (60, "1 minute"), (61, "2 minutes"), (900, "15 minutes")],
)
def test_it_says_how_long_in_plain_words(seconds, wait):
    assert f"paused for {wait}:" in lockout_message(seconds)


@pytest.mark.parametrize(
    ("remote", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::5", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", "unknown"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_client_address(rf, remote, address):
    request = rf.get("/", REMOTE_ADDR=remote)
    assert client_address(request) == address


class _Turnstile:
    """The real semaphore of calls.logins, noting each arrival at it."""

    def __init__(self, inner) -> None:
        import threading

        self.inner, self.arrived = inner, threading.Semaphore(0)

    def acquire(self, *args, **kwargs):
        self.arrived.release()
        return self.inner.acquire(*args, **kwargs)

    def release(self) -> None:
        self.inner.release()


def test_passwords_are_checked_one_at_a_time_while_the_others_wait(monkeypatch):
    """A flood of guesses must not check 20 passwords at once on 2 cores: each waits its turn (calls/logins.py)."""
    import threading

    from django.contrib.auth.forms import AuthenticationForm

    checking, started, release = [], threading.Event(), threading.Event()

    def slow_check(self):
        checking.append(threading.get_ident())
        started.set()
        release.wait(10)
        return self.cleaned_data

    turnstile = _Turnstile(logins._checking)
    monkeypatch.setattr(AuthenticationForm, "clean", slow_check)
    monkeypatch.setattr(logins, "_checking", turnstile)
    monkeypatch.setattr(logins, "locked_for", lambda *a: 0)
    monkeypatch.setattr(logins, "record_success", lambda *a: None)

    def log_in() -> None:
        logins.LimitedAuthenticationForm(data={"username": "alex", "password": "guess"}).is_valid()

    threads = [threading.Thread(target=log_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert turnstile.arrived.acquire(timeout=10) and turnstile.arrived.acquire(timeout=10)  # both at the turnstile
    assert started.wait(10)
    assert turnstile.inner._value == 0  # one holds the only turn: the other is waiting for it
    assert len(checking) == 1
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(checking) == 2


def test_a_login_that_waits_too_long_for_its_turn_is_told_to_try_again_uncounted(client, agent_user, settings):
    settings.LOGIN_CHECK_WAIT_SECONDS = 0.01  # the one turn is held below for the whole test
    assert logins._checking.acquire(timeout=1)
    try:
        response = client.post("/login/", {"username": "alex", "password": PASSWORD})
    finally:
        logins._checking.release()
    assert response.status_code == 429
    assert "Many logins are being checked right now: try again in a moment." in response.content.decode()
    assert logins.locked_for("alex", "127.0.0.1") == 0
    assert client.post("/login/", {"username": "alex", "password": PASSWORD}).status_code == 302
