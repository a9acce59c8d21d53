"""Failed logins are limited per account and per address in a sliding window; a locked-out attempt never reaches the
password hasher; lock-outs live in the database, admins see and lift them, and a new password lifts the account's."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from calls import logins
from calls.logins import client_address, lockout_message
from calls.models import LockOut, LoginFailure
from tests.conftest import PASSWORD

WINDOW = 900
START = datetime(2027, 1, 15, 13, 30, tzinfo=UTC).timestamp()  # winter: London is on UTC (GMT)


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
    assert "logging in is paused for 15 minutes, until 13:45 GMT: try again then." in response.content.decode()


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
    assert "paused for 14 minutes, until 13:45 GMT" in response.content.decode()


def test_a_login_that_waited_its_turn_while_others_locked_the_account_is_refused_unchecked(
    agent_user, clock, no_hashing, monkeypatch
):
    real_turn = logins.password_check_turn

    @contextlib.contextmanager
    def turn_after_five_guesses():
        # While this login waited for its turn, five guesses queued before it were checked, and locked the account.
        for _ in range(5):
            logins.record_failure("alex", "198.51.100.9")
        with real_turn():
            yield

    monkeypatch.setattr(logins, "password_check_turn", turn_after_five_guesses)
    response = log_in("alex", PASSWORD)
    assert response.status_code == 429
    assert "paused for 15 minutes, until 13:45 GMT" in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def test_the_guess_that_locks_the_account_is_counted_before_the_next_guess_gets_its_turn(
    agent_user, clock, monkeypatch
):
    """The guess queued behind the fifth wrong one takes the turn as it is given back: by then the fifth must be
    counted and the account locked, or that guess is checked, and a right password logs in."""
    for _ in range(4):
        logins.record_failure("alex", "198.51.100.9")
    locked_as_the_turn_went: list[bool] = []
    real = logins._checking

    class Turn:
        def acquire(self, timeout: float | None = None) -> bool:
            return real.acquire(timeout=timeout)

        def release(self) -> None:
            locked_as_the_turn_went.append(bool(logins.locked_until("alex", "198.51.100.9")))
            real.release()

    monkeypatch.setattr(logins, "_checking", Turn())
    assert log_in("alex", "wrong").status_code == 429  # the fifth: locked out
    assert locked_as_the_turn_went == [True]


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


def test_failures_older_than_the_window_do_not_count(agent_user, clock):
    for _ in range(4):
        log_in("alex", "wrong")
    clock[0] += WINDOW
    for _ in range(4):
        log_in("alex", "wrong")
    assert log_in("alex", PASSWORD).status_code == 302


def at(hour: int, minute: int, second: int) -> float:
    return datetime(2027, 1, 15, hour, minute, second, tzinfo=UTC).timestamp()


def test_the_window_slides_across_the_quarter_hour_for_an_account(agent_user, clock, settings):
    """The probe's finding: 4 + 4 guesses either side of 13:45:00 were counted in two blocks, and never locked."""
    settings.LOGIN_FAILURES_PER_ACCOUNT = 8
    clock[0] = at(13, 44, 50)
    for n in range(4):
        assert log_in("alex", "wrong", address=f"198.51.100.{n}").status_code == 200
    clock[0] = at(13, 45, 10)
    for n in range(3):
        assert log_in("alex", "wrong", address=f"198.51.100.{10 + n}").status_code == 200
    response = log_in("alex", "wrong", address="198.51.100.20")
    assert response.status_code == 429
    assert "paused for 15 minutes, until 14:01 GMT" in response.content.decode()  # 14:00:10, rounded up


def test_the_window_slides_across_the_quarter_hour_for_an_address(agent_user, clock):
    clock[0] = at(13, 44, 50)
    for n in range(4):
        log_in(f"nobody{n}", "wrong", address="203.0.113.7")
    clock[0] = at(13, 45, 10)
    for n in range(4, 8):
        log_in(f"nobody{n}", "wrong", address="203.0.113.7")
    assert log_in("alex", PASSWORD, address="203.0.113.7").status_code == 429


def test_failures_leave_the_window_one_by_one(agent_user, clock):
    for n in range(4):
        clock[0] = START + n * 100  # at 0, 100, 200 and 300 s
        log_in("alex", "wrong", address=f"198.51.100.{n}")
    clock[0] = START + WINDOW + 50  # the first has left the window; three remain
    assert log_in("alex", "wrong", address="198.51.100.9").status_code == 200
    assert log_in("alex", "wrong", address="198.51.100.9").status_code == 429  # the fifth within 900 s


def test_the_time_is_told_in_the_sites_time_zone(agent_user, clock, settings):
    settings.TIME_ZONE = "Europe/London"
    clock[0] = datetime(2027, 7, 15, 13, 30, tzinfo=UTC).timestamp()  # summer: London is an hour ahead
    for _ in range(5):
        response = log_in("alex", "wrong")
    assert "until 14:45 BST" in response.content.decode()


def test_lock_outs_are_kept_in_the_database_not_the_cache(agent_user, clock, redis_cache):
    for _ in range(5):
        log_in("alex", "wrong")
    redis_cache.clear()  # as a Redis restart would
    assert log_in("alex", PASSWORD).status_code == 429
    [lock_out] = LockOut.objects.all()
    assert (lock_out.kind, lock_out.name, lock_out.failures) == ("account", "alex", 5)


def test_once_found_a_lock_out_is_read_from_the_cache_without_a_query(agent_user, clock, django_assert_num_queries):
    for _ in range(5):
        log_in("alex", "wrong")
    with django_assert_num_queries(1):
        assert logins.locked_until("alex", "192.0.2.1") is not None
    with django_assert_num_queries(0):  # the flood's refused guesses
        assert logins.locked_until("alex", "192.0.2.1") is not None


def test_the_failures_table_holds_no_username(agent_user, clock):
    for _ in range(3):
        log_in("alex", "wrong")
    subjects = set(LoginFailure.objects.values_list("subject", flat=True))
    assert len(subjects) == 2 and not any("alex" in subject for subject in subjects)


def test_old_failures_and_ended_lock_outs_are_deleted_as_new_failures_come(agent_user, clock):
    for _ in range(5):
        log_in("alex", "wrong")
    log_in("bob", "wrong", address="192.0.2.1")
    clock[0] += WINDOW + 1
    log_in("bob", "wrong", address="192.0.2.1")
    assert LockOut.objects.count() == 0
    assert LoginFailure.objects.count() == 2  # the last failure: one row for the account, one for the address


def test_usernames_are_counted_whatever_their_case(agent_user, clock):
    for name in ["alex", "ALEX", "Alex", "aLex", "alex "]:
        log_in(name, "wrong")
    assert log_in("alex", PASSWORD).status_code == 429


def test_the_admin_login_is_limited_too(admin_role_user, clock):
    for _ in range(5):
        log_in("ada", "wrong", path="/admin/login/")
    response = log_in("ada", PASSWORD, path="/admin/login/")
    assert response.status_code == 200
    assert "logging in is paused for 15 minutes, until 13:45 GMT" in response.content.decode()


def test_a_locked_out_page_holds_no_password(agent_user, clock):
    for _ in range(5):
        log_in("alex", "hunter2-secret")
    page = log_in("alex", "hunter2-secret").content.decode()
    assert "hunter2-secret" not in page


@pytest.mark.parametrize(
    ("seconds", "wait", "until"),
    [
        (1, "1 second", "13:31"),
        (45, "45 seconds", "13:31"),
        (60, "1 minute", "13:31"),
        (61, "2 minutes", "13:32"),
        (900, "15 minutes", "13:45"),
    ],
)
def test_it_says_how_long_and_until_when_in_plain_words(settings, seconds, wait, until):
    settings.TIME_ZONE = "UTC"
    start = datetime.fromtimestamp(START, UTC)
    message = lockout_message(start + timedelta(seconds=seconds), start)
    assert f"paused for {wait}, until {until} UTC:" in message


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
    monkeypatch.setattr(logins, "locked_until", lambda *a: None)
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


def test_admins_see_the_current_lock_outs_of_accounts_and_addresses(agent_user, admin_role_client, clock):
    for _ in range(5):
        log_in("alex", "wrong", address="198.51.100.1")
    for n in range(8):
        log_in(f"nobody{n}", "wrong", address="2001:db8:1:2::1")
    page = admin_role_client.get("/admin/calls/lockout/").content.decode()
    assert "alex" in page and "2001:db8:1:2::/64" in page
    assert "15 Jan 2027, 1:30 p.m." in page and "15 Jan 2027, 1:45 p.m." in page  # since, until
    clock[0] += 900
    page = admin_role_client.get("/admin/calls/lockout/").content.decode()
    assert "alex" not in page  # ended: no longer shown


def test_an_admin_lifts_a_lock_out(agent_user, admin_role_client, clock, caplog):
    for _ in range(5):
        log_in("alex", "wrong")
    assert log_in("alex", PASSWORD).status_code == 429  # noted in the cache too
    lock_out = LockOut.objects.get(name="alex")
    response = admin_role_client.post(
        "/admin/calls/lockout/", {"action": "lift", "_selected_action": [lock_out.pk]}, follow=True
    )
    assert "Lifted 1 lock-out." in response.content.decode()
    assert not LockOut.objects.exists()
    assert "lock-out lifted by ada: an account" in caplog.text
    assert log_in("alex", PASSWORD).status_code == 302


def test_lifting_forgets_the_failures_too(agent_user, admin_role_client, clock):
    for n in range(8):
        log_in(f"nobody{n}", "wrong", address="203.0.113.7")
    logins.lift(LockOut.objects.all(), by="test")
    assert log_in("nobody9", "wrong", address="203.0.113.7").status_code == 200  # counting starts again


def test_lock_outs_are_not_added_or_edited_by_hand(admin_role_client):
    assert admin_role_client.get("/admin/calls/lockout/add/").status_code == 403


def test_an_agent_does_not_see_lock_outs(agent_client):
    assert agent_client.get("/admin/calls/lockout/").status_code == 302  # to the admin's login


def test_an_admins_password_reset_lifts_the_accounts_lock_out(agent_user, admin_role_client, clock):
    for _ in range(5):
        log_in("alex", "wrong")
    new = "a brand new passphrase 42"
    response = admin_role_client.post(
        f"/admin/auth/user/{agent_user.pk}/password/",
        {"password1": new, "password2": new, "usable_password": "true"},
    )
    assert response.status_code == 302
    assert log_in("alex", new).status_code == 302


def test_a_new_password_set_in_code_lifts_it_too(agent_user, clock):
    for _ in range(5):
        log_in("alex", "wrong")
    assert log_in("alex", PASSWORD).status_code == 429
    agent_user.set_password("another passphrase 43")
    agent_user.save()
    assert log_in("alex", "another passphrase 43").status_code == 302


def test_other_saves_of_the_user_leave_the_lock_out(agent_user, clock):
    for _ in range(5):
        log_in("alex", "wrong")
    agent_user.first_name = "Alexandra"
    agent_user.save()
    assert log_in("alex", PASSWORD).status_code == 429


def test_the_last_try_before_a_lock_out_is_warned_of(agent_user, clock):
    for _ in range(3):
        assert "One more wrong password" not in log_in("alex", "wrong").content.decode()
    page = log_in("alex", "wrong").content.decode()  # the fourth of five
    assert "didn't match" in page
    assert "One more wrong password locks this account for 15 minutes (until 13:45 GMT if it were now)" in page
    page = log_in("alex", "wrong").content.decode()
    assert "logging in is paused" in page and "One more wrong password" not in page


def test_the_warning_on_the_admin_login_too(admin_role_user, clock):
    for _ in range(3):
        log_in(admin_role_user.username, "wrong", path="/admin/login/")
    page = log_in(admin_role_user.username, "wrong", path="/admin/login/").content.decode()
    assert "One more wrong password locks this account" in page


def test_a_right_password_after_the_warning_logs_in_and_starts_the_count_afresh(agent_user, clock):
    for _ in range(4):
        log_in("alex", "wrong")
    assert log_in("alex", PASSWORD).status_code == 302
    assert "One more wrong password" not in log_in("alex", "wrong").content.decode()
