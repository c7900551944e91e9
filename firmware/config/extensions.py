"""Rules for extension numbers and SIP secrets, shared by the CLI and the web admin."""

from __future__ import annotations

import re
import secrets
import string

NUMBER = re.compile(r"^[0-9]{2,10}$")
MIN_SECRET = 10
# A few of the passwords SIP scanners try first; anything this guessable is refused outright.
COMMON = {"password", "1234567890", "0123456789", "qwertyuiop", "abcdefghij", "letmein123", "password1",
          "password12", "password123", "secret1234", "linebox123", "admin12345", "changeme12"}


class ExtensionError(ValueError):
    """A bad extension number or secret; the message says how to fix it."""


def check_number(number: str) -> str:
    if not NUMBER.match(number):
        raise ExtensionError(f"extension number must be 2 to 10 digits (got {number!r}), e.g. 1001")
    return number


def check_secret(number: str, secret: str) -> str:
    if not secret:
        raise ExtensionError("the secret is empty; give --secret with at least "
                             f"{MIN_SECRET} characters, or leave --secret out to have one generated")
    hint = f"use at least {MIN_SECRET} characters mixing letters and digits, or leave --secret out to have one generated"
    if len(secret) < MIN_SECRET:
        raise ExtensionError(f"the secret is too short ({len(secret)} characters); {hint}")
    if number in secret or secret.lower() in COMMON or len(set(secret)) < 5:
        raise ExtensionError(f"the secret is too easy to guess; {hint}")
    classes = sum(any(c in cls for c in secret) for cls in (string.ascii_lowercase, string.ascii_uppercase,
                                                             string.digits, string.punctuation))
    if classes < 2:
        raise ExtensionError(f"the secret uses only one kind of character; {hint}")
    if any(c in secret for c in '"\\\r\n\t ') or not secret.isprintable():
        raise ExtensionError("the secret may not contain spaces, quotes, backslashes or control characters")
    return secret


def generate_secret(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        s = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isdigit() for c in s) and any(c.isalpha() for c in s):
            return s
