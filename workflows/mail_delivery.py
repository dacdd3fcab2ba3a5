"""E-mail over SMTP (the standard library's ``smtplib``): the outbox's "email" sender.

Settings come from the environment (:func:`smtp_settings_from`); without ``LIANQING_SMTP_HOST``
there is no e-mail and notifications stay in-app only.  One connection serves a whole delivery
run.  Each message is plain UTF-8 text (subject as RFC 2047 words, body base64 or
quoted-printable, so any server takes it) with a ``Message-ID`` derived from the notification:
a copy sent again after a crash is recognisably the same message (see ``outbox_delivery``).
Answers are sorted the SMTP way: 4xx and lost connections are transient, 5xx permanent — except
refusals that would hit every message (sign-in, sender address, 421 "closing"), which mark the
channel down for this run instead of failing the message.
"""
from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from .notifications import DISPLAY_ZONE
from .outbox_delivery import DeliveryFailure, OutgoingMessage, PermanentFailure, TransientFailure

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# 7bit: bodies are base64 or quoted-printable, never raw 8-bit bytes a server may not accept.
MAIL_POLICY = SMTP_POLICY.clone(cte_type="7bit")
FOOTER = "\n\n——\n此邮件由联青系统自动发送，请登录系统查看和办理，请勿直接回复。\n" \
         "Sent automatically by lianqing; please sign in to act on it, and do not reply to this e-mail.\n"


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand e-mail over: server, security, account and the From address."""

    host: str
    from_address: str
    port: int = 587
    security: str = "starttls"
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @property
    def envelope_sender(self) -> str:
        """The bare address of ``from_address`` (``联青 <noreply@x.cn>`` → ``noreply@x.cn``)."""
        return parseaddr(self.from_address)[1]

    @property
    def domain(self) -> str:
        """The domain of the From address, used in Message-IDs."""
        return self.envelope_sender.rpartition("@")[2]


def smtp_settings_from(environ: Mapping[str, str]) -> SmtpSettings | None:
    """The SMTP settings of ``environ``, or ``None`` when ``LIANQING_SMTP_HOST`` is unset (no e-mail).

    ``LIANQING_SMTP_PORT`` (default 587, 465 with ssl, 25 with none), ``LIANQING_SMTP_SECURITY``
    (``starttls`` default, ``ssl``, ``none``), ``LIANQING_SMTP_USER`` and ``LIANQING_SMTP_PASSWORD``
    (sign in only if a user is given), ``LIANQING_SMTP_FROM`` (required), ``LIANQING_SMTP_TIMEOUT``
    (seconds, default 30).
    """
    host = (environ.get("LIANQING_SMTP_HOST") or "").strip()
    if not host:
        return None
    security = (environ.get("LIANQING_SMTP_SECURITY") or "starttls").strip().lower()
    if security not in SECURITY_MODES:
        raise ValueError(f"LIANQING_SMTP_SECURITY 只能是 {'、'.join(SECURITY_MODES)} / "
                         f"LIANQING_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {security!r}")
    from_address = (environ.get("LIANQING_SMTP_FROM") or "").strip()
    if "@" not in parseaddr(from_address)[1]:
        raise ValueError("设置了 LIANQING_SMTP_HOST 时须设置发件地址 LIANQING_SMTP_FROM（如 noreply@example.cn）/ "
                         "LIANQING_SMTP_HOST needs LIANQING_SMTP_FROM, the From address (e.g. noreply@example.cn)")
    try:
        port = int(environ.get("LIANQING_SMTP_PORT") or DEFAULT_PORTS[security])
        timeout = float(environ.get("LIANQING_SMTP_TIMEOUT") or 30)
    except ValueError as exc:
        raise ValueError(f"LIANQING_SMTP_PORT / LIANQING_SMTP_TIMEOUT 须为数字 / must be numbers: {exc}") from None
    return SmtpSettings(host=host, from_address=from_address, port=port, security=security,
                        user=environ.get("LIANQING_SMTP_USER") or None,
                        password=environ.get("LIANQING_SMTP_PASSWORD") or None, timeout=timeout)


def message_id(message: OutgoingMessage, domain: str) -> str:
    """The Message-ID of a notification's e-mail: the same for every copy, distinct across databases."""
    return f"<notification-{message.notification_id}.{message.created_at:%Y%m%d%H%M%S}@{domain}>"


def checked_address(address: str) -> str:
    """``address`` if it is one plain mailbox (``a@b.cn``); :class:`PermanentFailure` otherwise."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if (not at or not local or not domain or parseaddr(address)[1] != address
            or any(c.isspace() or c in ",;<>\"" or ord(c) < 32 for c in address)):
        raise PermanentFailure(f"邮箱地址格式不对 / not a valid e-mail address: {address!r}")
    return address


def compose_email(message: OutgoingMessage, settings: SmtpSettings) -> EmailMessage:
    """The e-mail for one notification: plain UTF-8 text, headers safe for any SMTP server."""
    email = EmailMessage(policy=MAIL_POLICY)
    email["From"] = settings.from_address
    email["To"] = checked_address(message.address)
    email["Subject"] = " ".join(message.subject.split())  # no line breaks smuggled into headers
    email["Date"] = format_datetime(message.created_at.astimezone(DISPLAY_ZONE))
    email["Message-ID"] = message_id(message, settings.domain)
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a robot
    email["X-Lianqing-Notification"] = str(message.notification_id)
    email.set_content(message.body + FOOTER, charset="utf-8")
    return email


def _answer(code: int, text: bytes | str, during: str) -> DeliveryFailure:
    """The failure an SMTP reply code means for the message being sent."""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    reason = f"SMTP {code} ({during}): {text}"
    if code == 421 or not 400 <= code < 600:
        return TransientFailure(reason, channel_down=True)
    return TransientFailure(reason) if code < 500 else PermanentFailure(reason)


class SmtpSender:
    """The "email" sender: hands messages to one SMTP server over a connection kept between messages."""

    channel = "email"

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        context = ssl.create_default_context()
        if settings.security == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                                        context=context)
        else:
            connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            if settings.security == "starttls":
                connection.starttls(context=context)
            if settings.user:
                connection.login(settings.user, settings.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _connected(self) -> smtplib.SMTP:
        if self._connection is None:
            try:
                self._connection = self._connect()
            except smtplib.SMTPResponseException as exc:
                raise TransientFailure(f"SMTP {exc.smtp_code} ({self.settings.host}:{self.settings.port}): "
                                       f"{exc.smtp_error!r}", channel_down=True) from exc
            except (smtplib.SMTPException, OSError) as exc:
                raise TransientFailure(f"无法连接邮件服务器 / cannot reach the SMTP server "
                                       f"{self.settings.host}:{self.settings.port}: {exc!r}",
                                       channel_down=True) from exc
        return self._connection

    def send(self, message: OutgoingMessage) -> None:
        """Hand one message to the server; raise :class:`TransientFailure` or :class:`PermanentFailure`."""
        email = compose_email(message, self.settings)
        connection = self._connected()
        try:
            connection.send_message(email, from_addr=self.settings.envelope_sender, to_addrs=[email["To"]])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _answer(code, text, "RCPT TO") from exc
        except smtplib.SMTPSenderRefused as exc:  # the From address: every message would be refused alike
            raise TransientFailure(f"SMTP {exc.smtp_code} (MAIL FROM {exc.sender}): {exc.smtp_error!r}",
                                   channel_down=True) from exc
        except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address and no SMTPUTF8
            raise PermanentFailure(f"邮件服务器不支持此地址 / the server cannot take this address: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            failure = _answer(exc.smtp_code, exc.smtp_error, "DATA")
            if failure.channel_down:
                self.close()
            raise failure from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TransientFailure(f"与邮件服务器的连接中断 / lost the SMTP connection: {exc!r}",
                                   channel_down=True) from exc

    def close(self) -> None:
        """Say goodbye to the server (quietly if the connection is already gone)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()
