"""Signing people in through the real sign-in pages, as they would on their phone or computer."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.league import PASSWORD
from workflows.models import Notification

from .conftest import LiveServer


def sign_in(page: Page, username: str, display_name: str) -> None:
    """Sign in with user name and password; the header then shows the person."""
    page.goto("/login")
    page.get_by_label("账号").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("header .who")).to_contain_text(display_name)


def sign_in_youth(page: Page, server: LiveServer, phone: str) -> None:
    """Sign in as a young person with phone and the six-digit code of the text message (read from the outbox)."""
    page.goto("/login/youth")
    page.get_by_label("手机号").fill(phone)
    page.get_by_role("button", name="获取验证码").click()
    expect(page.get_by_text("验证码已发送至")).to_be_visible()

    def latest_code(session, _engine) -> str:
        sms = session.scalar(select(Notification).where(Notification.channel == "sms", Notification.address == phone)
                             .order_by(Notification.id.desc()).limit(1))
        return re.search(r"\d{6}", sms.body).group(0)

    page.get_by_label("验证码").fill(server.run(latest_code))
    page.get_by_role("button", name="登录").click()
    expect(page.locator("header .who")).to_be_visible()
