"""htpasswd files: bcrypt entries only, every other scheme refused where it is written, and the
dummy hash unknown users are checked against."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest

from gateway.errors import ConfigError
from gateway.security.htpasswd import DEFAULT_COST, parse_htpasswd, read_htpasswd


def bcrypt_hash(password: str, prefix: bytes = b"2b", rounds: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds, prefix)).decode()


def test_bcrypt_entries_in_each_prefix_are_read() -> None:
    y = bcrypt_hash("pw-a", rounds=4).replace("$2b$", "$2y$", 1)  # htpasswd -B writes $2y$
    text = f"""# users
alice:{y}

bob:{bcrypt_hash("pw-b", b"2a", 5)}
carol:{bcrypt_hash("pw-c", b"2b", 4)}
"""
    htpasswd = parse_htpasswd(text, "htpasswd")
    assert set(htpasswd.users) == {"alice", "bob", "carol"}
    hashed, known = htpasswd.hash_of("alice")
    assert known and bcrypt.checkpw(b"pw-a", hashed)
    assert bcrypt.checkpw(b"pw-b", htpasswd.hash_of("bob")[0])


def test_an_unknown_user_gets_a_dummy_hash_of_the_files_cost_that_nothing_matches() -> None:
    text = f"a:{bcrypt_hash('x', rounds=4)}\nb:{bcrypt_hash('y', rounds=6)}\n"
    htpasswd = parse_htpasswd(text, "htpasswd")
    hashed, known = htpasswd.hash_of("mallory")
    assert not known
    assert hashed == htpasswd.dummy
    assert hashed.startswith(b"$2b$06$")  # the file's highest cost: never cheaper than a user
    assert len(hashed) == 60
    for guess in (b"", b"x", b"y", b"password"):
        assert not bcrypt.checkpw(guess, hashed)
    empty = parse_htpasswd("# nobody yet\n", "htpasswd")
    assert empty.dummy.startswith(b"$2b$%02d$" % DEFAULT_COST)


@pytest.mark.parametrize(
    ("entry", "scheme"),
    [
        ("bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "Apache MD5 ($apr1$)"),
        ("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1 ({SHA})"),
        ("bob:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "MD5-crypt ($1$)"),
        ("bob:$5$saltsalt$Gcm6FsVtF/Qa77ZKD.iwsJlCVPY0XSMgLJL0Hnww/c1", "SHA-256-crypt ($5$)"),
        ("bob:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq", "($6$)"),
        ("bob:rqXexS6ZhobKA", "DES crypt"),
        ("bob:secret", "plain text"),
        ("bob:$2x$10$" + "a" * 53, "not a well-formed bcrypt hash"),
        ("bob:$2b$10$tooshort", "not a well-formed bcrypt hash"),
        ("bob:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "'argon2id' scheme"),
    ],
)
def test_every_other_scheme_is_refused_naming_file_line_and_scheme(entry: str, scheme: str) -> None:
    text = f"alice:{bcrypt_hash('pw')}\n# next\n{entry}\n"
    with pytest.raises(ConfigError) as caught:
        parse_htpasswd(text, "/etc/htpasswd")
    assert caught.value.location == "/etc/htpasswd:3"
    assert "user 'bob': only bcrypt entries ($2y$, $2b$, $2a$) are accepted" in caught.value.reason
    assert scheme in caught.value.reason
    assert "htpasswd -B" in caught.value.reason


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("no-colon", "expected user:bcrypt-hash"),
        (":$2b$04$" + "a" * 53, "expected user:bcrypt-hash"),
        ("bob:$2b$04$" + "a" * 53 + ":x", "expected user:bcrypt-hash"),
        ("bob:$2b$03$" + "a" * 53, "cost 3 is outside 4-31"),
        ("alice:$2b$04$" + "a" * 53, "user 'alice' is already on line 1"),
    ],
)
def test_malformed_entries_are_errors(entry: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_htpasswd(f"alice:{bcrypt_hash('pw')}\n{entry}\n", "htpasswd")
    assert caught.value.location == "htpasswd:2"
    assert reason in caught.value.reason


def test_reading_a_file(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{bcrypt_hash('pw')}\n")
    assert set(read_htpasswd(path).users) == {"alice"}
    with pytest.raises(ConfigError, match="cannot read it"):
        read_htpasswd(tmp_path / "missing")
