"""Passwords, one-time codes to a phone, rate limits and sign-out everywhere."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.league import PASSWORD
from workflows import accounts
from workflows.models import Notification, OneTimeCode, User, Youth
from workflows.people import InvalidPhone, check_password, mask_phone, normalise_phone

SECRET = "test-secret"


def test_password_sign_in(sessions, league, clock):
    with sessions() as session:
        user = accounts.sign_in_with_password(session, "zhang", PASSWORD, "10.0.0.1", clock.now())
        assert user.username == "zhang"
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
        for username, password in [("zhang", "wrong-password"), ("nobody", PASSWORD), ("zhang", "")]:
            with pytest.raises(accounts.SignInRefused) as refused:
                accounts.sign_in_with_password(session, username, password, "10.0.0.1", clock.now())
            assert refused.value.message == "账号或密码不正确 / wrong user name or password"  # never says which


def test_failures_lock_the_account_for_a_while(sessions, league, clock):
    with sessions() as session:
        for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT):
            with pytest.raises(accounts.SignInRefused):
                accounts.sign_in_with_password(session, "zhang", "guess", "10.0.0.1", clock.now())
        session.commit()
        with pytest.raises(accounts.TooManyAttempts):  # even the right password, from another address
            accounts.sign_in_with_password(session, "zhang", PASSWORD, "10.0.0.2", clock.now())
        assert accounts.sign_in_with_password(session, "li", PASSWORD, "10.0.0.1", clock.now()).username == "li"
        clock.advance(accounts.ATTEMPT_WINDOW + timedelta(seconds=1))
        assert accounts.sign_in_with_password(session, "zhang", PASSWORD, "10.0.0.2", clock.now())


def test_failures_from_one_address_are_limited_across_accounts(sessions, league, clock):
    with sessions() as session:
        for i in range(accounts.MAX_FAILURES_PER_ADDRESS):
            with pytest.raises(accounts.SignInRefused):
                accounts.sign_in_with_password(session, f"guess{i}", "x", "10.9.9.9", clock.now())
        with pytest.raises(accounts.TooManyAttempts):
            accounts.sign_in_with_password(session, "zhang", PASSWORD, "10.9.9.9", clock.now())


def test_one_time_code_flow_binds_the_mobile_client(sessions, league, clock):
    with sessions() as session:
        sent = accounts.send_code(session, "+86 138-0000-0001", "10.0.0.1", clock.now(), SECRET)
        assert sent.masked_phone == "138****0001" and len(sent.code) == 6
        stored = session.scalar(select(OneTimeCode))
        assert sent.code not in stored.code_hash and stored.phone == "13800000001"
        sms = session.scalar(select(Notification).where(Notification.channel == "sms"))
        assert sent.code in sms.body and sms.address == "13800000001"
        user = accounts.sign_in_with_code(session, "13800000001", sent.code, "10.0.0.1", clock.now(), SECRET)
        youth = session.scalar(select(Youth).where(Youth.phone == "13800000001"))
        assert youth.user_id == user.id and youth.bound_at == clock.now() and user.password_hash is None
        with pytest.raises(accounts.SignInRefused):  # a code works once
            accounts.sign_in_with_code(session, "13800000001", sent.code, "10.0.0.1", clock.now(), SECRET)


def test_codes_expire_and_wrong_codes_are_counted(sessions, league, clock):
    with sessions() as session:
        sent = accounts.send_code(session, "13800000001", "10.0.0.1", clock.now(), SECRET)
        wrong = "000000" if sent.code != "000000" else "111111"
        for _ in range(accounts.MAX_CODE_ATTEMPTS):
            with pytest.raises(accounts.SignInRefused):
                accounts.sign_in_with_code(session, "13800000001", wrong, "10.0.0.1", clock.now(), SECRET)
        with pytest.raises(accounts.SignInRefused):  # the right code no longer helps
            accounts.sign_in_with_code(session, "13800000001", sent.code, "10.0.0.1", clock.now(), SECRET)
        clock.advance(timedelta(minutes=2))
        fresh = accounts.send_code(session, "13800000001", "10.0.0.1", clock.now(), SECRET)
        clock.advance(accounts.CODE_LIFETIME + timedelta(seconds=1))
        with pytest.raises(accounts.SignInRefused):
            accounts.sign_in_with_code(session, "13800000001", fresh.code, "10.0.0.1", clock.now(), SECRET)


def test_codes_cannot_be_requested_too_often(sessions, league, clock):
    with sessions() as session:
        accounts.send_code(session, "13800000002", "10.0.0.1", clock.now(), SECRET)
        with pytest.raises(accounts.TooManyAttempts, match="秒"):
            accounts.send_code(session, "13800000002", "10.0.0.1", clock.now() + timedelta(seconds=10), SECRET)
        for _ in range(accounts.MAX_CODES_PER_HOUR - 1):
            clock.advance(accounts.CODE_RESEND_AFTER + timedelta(seconds=1))
            accounts.send_code(session, "13800000002", "10.0.0.1", clock.now(), SECRET)
        clock.advance(accounts.CODE_RESEND_AFTER + timedelta(seconds=1))
        with pytest.raises(accounts.TooManyAttempts):
            accounts.send_code(session, "13800000002", "10.0.0.1", clock.now(), SECRET)


def test_unknown_and_malformed_phones(sessions, league, clock):
    with sessions() as session:
        with pytest.raises(accounts.SignInRefused, match="未登记"):
            accounts.send_code(session, "13900000000", "10.0.0.1", clock.now(), SECRET)
        with pytest.raises(InvalidPhone):
            accounts.send_code(session, "12345", "10.0.0.1", clock.now(), SECRET)


def test_sign_out_everywhere_bumps_the_session_version(sessions, league):
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "zhang"))
        before = user.session_version
        accounts.sign_out_everywhere(session, user)
        assert user.session_version == before + 1


def test_phone_numbers_are_never_logged_in_full(sessions, league, clock, caplog):
    with sessions() as session, caplog.at_level("DEBUG"):
        accounts.send_code(session, "13800000001", "10.0.0.1", clock.now(), SECRET)
    assert "13800000001" not in caplog.text and "138****0001" in caplog.text


@pytest.mark.parametrize("raw,normal", [("13812345678", "13812345678"), ("+86 138 1234 5678", "13812345678"),
                                        ("0086-138-1234-5678", "13812345678"), ("（138）12345678", "13812345678")])
def test_phone_normalisation(raw, normal):
    assert normalise_phone(raw) == normal and mask_phone(normal) == "138****5678"


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "138123456789", "abc", ""])
def test_invalid_phones(raw):
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


def test_check_password_rejects_accounts_without_one(sessions, league):
    with sessions() as session:
        user = session.scalar(select(User).where(User.username == "zhang"))
        user.password_hash = None
        assert not check_password(user, PASSWORD)
