"""The two transports: SMTP (smtplib) for emails, HTTP POST for outbound webhooks.

Each raises on failure, so the dispatcher backs off and retries, or ``PermanentFailure`` when
retrying cannot help (the SMTP login refused, no STARTTLS where TLS is required, an untrusted
certificate): the message fails at once with that code instead of retrying for days. Each makes
duplicates recognisable: a Message-ID derived from the outbox dedupe key, and the event id in
the webhook body and headers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from datetime import datetime
from email.utils import format_datetime

from config.settings import NotificationSettings
from notifications import signing, targets
from notifications.models import OutboxMessage, WebhookEndpoint


def message_id(dedupe_key: str, domain: str = "subscriptions.local") -> str:
    """Stable per message: a resent copy has the same Message-ID, so mail clients drop it."""
    return f"<{hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]}@{domain}>"


def build_email(message: OutboxMessage, settings: NotificationSettings, now: datetime,
                attachments: tuple[tuple[str, bytes], ...] = ()) -> EmailMessage:
    """``attachments``: (file name, PDF bytes), e.g. the invoice of a payment receipt."""
    email = EmailMessage()
    email["From"] = settings.from_address
    email["To"] = message.recipient
    email["Subject"] = message.payload["subject"]
    email["Message-ID"] = message_id(message.dedupe_key)
    email["Date"] = format_datetime(now)  # sent now, even if queued weeks ago
    email["X-Subscription-Id"] = message.subscription_id
    email["X-Notification-Kind"] = message.kind
    email.set_content(message.payload["text"])
    for filename, content in attachments:
        email.add_attachment(content, maintype="application", subtype="pdf",
                             filename=filename)
    return email


class PermanentFailure(Exception):
    """A delivery that fails the same way on every attempt until an operator changes a
    setting; ``code`` names which."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


def _tls_context(settings: NotificationSettings) -> ssl.SSLContext:
    ca = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    return ssl.create_default_context(cafile=ca)  # verifies the certificate and the host name


@functools.cache
def local_hostname() -> str:
    """The name this host gives in EHLO, looked up once per process: without it smtplib calls
    ``socket.getfqdn()`` (a DNS lookup, slow when DNS is) for every connection."""
    return socket.getfqdn()


def _open_smtp(settings: NotificationSettings) -> smtplib.SMTP:
    """Connected, upgraded to TLS as configured and logged in; never says the password or
    the message in clear when TLS is configured."""
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds
    try:
        if settings.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, local_hostname=local_hostname(),
                                                  timeout=timeout,
                                                  context=_tls_context(settings))
        else:
            smtp = smtplib.SMTP(host, port, local_hostname=local_hostname(), timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        raise PermanentFailure("tls_certificate_rejected", exc.verify_message) from None
    try:
        if settings.smtp_security == "starttls":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise PermanentFailure("starttls_unavailable", f"{host}:{port} does not offer "
                                       "STARTTLS; refusing to send in clear")
            try:
                smtp.starttls(context=_tls_context(settings))
            except ssl.SSLCertVerificationError as exc:
                raise PermanentFailure("tls_certificate_rejected", exc.verify_message) from None
            smtp.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            try:
                smtp.login(settings.smtp_username, password)
            except smtplib.SMTPAuthenticationError as exc:
                raise PermanentFailure("smtp_auth_rejected", f"{host} refused the login of "
                                       f"{settings.smtp_username!r} ({exc.smtp_code})") from None
            except smtplib.SMTPNotSupportedError:
                raise PermanentFailure("smtp_auth_unavailable",
                                       f"{host} offers no login (AUTH) here") from None
    except BaseException:
        smtp.close()
        raise
    return smtp


class Mailer:
    """One SMTP connection for the emails of a dispatcher round, opened at the first send:
    connecting, EHLO, STARTTLS and the login cost more than a mail. Blocking: the dispatcher
    runs a round in one thread.

    A mail refused on its own (a recipient, a 4xx/5xx for its DATA) fails alone: smtplib resets
    the transaction and the connection goes on. A connection the server closed since the last
    mail (an idle timeout, a per-connection limit, a 421) is reopened once and the mail sent
    again on it (had the first copy arrived after all, its Message-ID marks the second a
    duplicate); a timeout is not resent (the server stopped answering, it did not hang up).
    A connection that cannot be opened fails the round's later mails alike without another
    try: they need the same server and settings, and each would have failed the same alone.
    """

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._unopenable: Exception | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc_info) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the mails are sent; only the goodbye is lost
        finally:
            smtp.close()

    def send(self, email: EmailMessage) -> None:
        reused = self._smtp is not None
        try:
            self._send_once(email)
        except Exception as exc:
            if not (reused and self._smtp is None and _hung_up(exc)):
                raise
            self._send_once(email)

    def _send_once(self, email: EmailMessage) -> None:
        smtp = self._connection()
        try:
            smtp.send_message(email)
        except smtplib.SMTPException:
            if smtp.sock is None:  # smtplib closed it: disconnected, or a 421
                self._smtp = None
            raise
        except Exception:  # a socket error, or a mail half sent: nothing more on this one
            self._smtp = None
            smtp.close()
            raise

    def _connection(self) -> smtplib.SMTP:
        if self._unopenable is not None:
            raise self._unopenable
        if self._smtp is None:
            try:
                self._smtp = _open_smtp(self.settings)
            except Exception as exc:
                self._unopenable = exc
                raise
        return self._smtp


def _hung_up(exc: Exception) -> bool:
    """The server closed the connection (smtplib wraps a socket timeout in
    SMTPServerDisconnected too: that one is not a hang-up)."""
    timeout = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
    return isinstance(exc, (smtplib.SMTPException, OSError)) and not timeout


def webhook_body(message: OutboxMessage) -> bytes:
    return json.dumps(message.payload["event"], sort_keys=True,
                      separators=(",", ":")).encode()


async def post_webhook(message: OutboxMessage, endpoint: WebhookEndpoint,
                       settings: NotificationSettings, *, https_only: bool,
                       resolver: targets.Resolver = targets.system_resolver,
                       tls: ssl.SSLContext | None = None) -> None:
    """Raises TargetRefused for a target that is not allowed (notifications/targets.py)."""
    target = await targets.pin(endpoint.url, settings, https_only=https_only,
                               resolver=resolver)
    body = webhook_body(message)
    response = await targets.post(target, body, {
        "Content-Type": "application/json",
        signing.HEADER: signing.header(endpoint.secret, int(time.time()), body),
        signing.EVENT_ID_HEADER: message.event_id,
    }, settings.webhook_timeout_seconds, tls)
    if 300 <= response.status_code < 400:
        raise RuntimeError(f"webhook answered HTTP {response.status_code} (redirects are not "
                           "followed)")
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook answered HTTP {response.status_code}")
