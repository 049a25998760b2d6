"""Emails are stored only as a keyed hash: HMAC-SHA-256 of the trimmed, lower-cased address, with a secret key.

A plain SHA-256 of an email is no protection: anyone with a list of candidate addresses (a customer list, a leak)
hashes them and matches every one. With a key, the hashes can be matched only by whoever holds the key, yet they
stay stable from night to night, so a customer's hash still joins across tables, nights and exports.

The key comes from ``LOYALTY_HASH_KEY`` (at least 32 characters) or, when that is unset, from a key file
(``LOYALTY_HASH_KEY_FILE``, default ``~/.config/loyalty-warehouse/email-hash.key``, honouring
``XDG_CONFIG_HOME``), created on first use with a random key, readable by its owner only. It lives outside the
warehouse folder on purpose: whoever can read the published warehouse must not hold the key. Keep it (back it up
with the machine's other secrets): a new key changes every ``email_hash``, so the next night is a full rebuild
(the key's id is part of the build fingerprint) and hashes exported earlier no longer match.

dbt computes the hash in SQL (macro ``hash_email``) from two 64-byte pads derived from the key, which the dbt-duckdb
plugin ``loyalty.email_key_plugin`` sets as DuckDB variables on each of dbt's connections: the key never appears in
SQL text, compiled models, dbt's logs or docs. ``hash_email`` below is the Python twin the tests compare with.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from loyalty.errors import LoyaltyError

KEY_ENV = "LOYALTY_HASH_KEY"
KEY_FILE_ENV = "LOYALTY_HASH_KEY_FILE"
MIN_KEY_CHARS = 32
BLOCK_BYTES = 64  # SHA-256's block size: HMAC pads the key to it
# the DuckDB variables the plugin sets and the macro reads
INNER_PAD_VARIABLE = "loyalty_email_hash_inner_pad"
OUTER_PAD_VARIABLE = "loyalty_email_hash_outer_pad"


def default_key_file() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(config_home) if config_home else Path.home() / ".config"
    return base / "loyalty-warehouse" / "email-hash.key"


def key_file() -> Path:
    chosen = os.environ.get(KEY_FILE_ENV, "").strip()
    return Path(chosen).expanduser() if chosen else default_key_file()


def _create_key_file(path: Path) -> None:
    """A new random key, written whole or not at all (a concurrent first night keeps whichever landed first)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    except OSError as exc:
        raise LoyaltyError(f"{KEY_FILE_ENV}: cannot create the email hash key file {path} ({exc.strerror})") from None


def load_key() -> bytes:
    """The email hash key (see the module docstring); creates the key file on first use."""
    text = os.environ.get(KEY_ENV, "").strip()
    source = KEY_ENV
    if not text:
        path = key_file()
        if not path.exists():
            _create_key_file(path)
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise LoyaltyError(f"{KEY_FILE_ENV}: cannot read the email hash key file {path} ({exc})") from None
        source = f"{KEY_FILE_ENV} ({path})"
    if len(text) < MIN_KEY_CHARS:
        raise LoyaltyError(f"{source}: the email hash key must have at least {MIN_KEY_CHARS} characters")
    return text.encode()


def key_id(key: bytes) -> str:
    """A short public name of the key (it reveals nothing of it): in the build fingerprint."""
    return hmac.new(key, b"loyalty-warehouse email hash key id", hashlib.sha256).hexdigest()[:12]


def pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer pads (RFC 2104): the key, zero-padded to the block size, XOR 0x36 and XOR 0x5c.
    HMAC(key, m) = SHA-256(outer || SHA-256(inner || m)), which the macro ``hash_email`` computes in SQL."""
    block = (hashlib.sha256(key).digest() if len(key) > BLOCK_BYTES else key).ljust(BLOCK_BYTES, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def hash_email(email: str, key: bytes) -> str:
    """The Python twin of the SQL macro: HMAC-SHA-256 of the trimmed, lower-cased email, as hex."""
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()
