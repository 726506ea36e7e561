"""`bastion users`: create, list, show, disable, set-password, reset-mfa against a data directory (issue 3)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PASSWORD = "a long and unusual passphrase"


def bastion(tmp_path, *args, stdin=""):
    (tmp_path / "data").mkdir(exist_ok=True)  # commands other than serve refuse a missing data dir
    env = {"PATH": "/usr/bin:/bin", "BASTION_PASSWORD_HASHING": "testing"}
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args, "--data-dir", str(tmp_path / "data")],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_create_list_show_disable(tmp_path):
    """A user is created with a stable sub, listed, shown by name or sub, and disabled."""
    created = bastion(
        tmp_path,
        "users",
        "create",
        "--username",
        "dave",
        "--email",
        "dave@example.com",
        "--role",
        "editor",
        "--password-stdin",
        "--json",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)
    assert user == {
        "sub": user["sub"],
        "username": "dave",
        "email": "dave@example.com",
        "email_verified": False,
        "display_name": "dave",
        "roles": ["editor"],
        "enabled": True,
        "mfa": "none",
        "require_mfa": False,
    }
    listed = json.loads(bastion(tmp_path, "users", "list", "--json").stdout)
    by_sub = json.loads(bastion(tmp_path, "users", "show", user["sub"], "--json").stdout)
    disabled = json.loads(bastion(tmp_path, "users", "disable", "dave", "--json").stdout)

    assert [u["username"] for u in listed] == ["dave"]
    assert by_sub["username"] == "dave"
    assert disabled["enabled"] is False


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        pytest.param(("--username", "erin"), "short\n", "the password must be at least 10 characters", id="short"),
        pytest.param(
            ("--username", "erin"), "password123\n", "this password is too common; choose another", id="common"
        ),
        pytest.param(("--username", "bad name"), PASSWORD + "\n", "--username must be", id="bad-username"),
        pytest.param(("--username", "erin", "--email", "nope"), PASSWORD + "\n", "--email nope is not", id="bad-email"),
    ],
)
def test_create_refuses_with_clear_message(tmp_path, args, stdin, message):
    """Weak passwords and malformed names exit 2 with a message saying why."""
    result = bastion(tmp_path, "users", "create", *args, "--password-stdin", stdin=stdin)

    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


def test_duplicate_username_is_refused(tmp_path):
    """Usernames are unique."""
    for expected in (0, 2):
        result = bastion(tmp_path, "users", "create", "--username", "frank", "--password-stdin", stdin=PASSWORD + "\n")
        assert result.returncode == expected
    assert "username frank is taken" in result.stderr


def test_set_password_and_reset_mfa(tmp_path):
    """set-password checks the policy; reset-mfa leaves the user without a second factor."""
    bastion(tmp_path, "users", "create", "--username", "gina", "--password-stdin", stdin=PASSWORD + "\n")

    weak = bastion(tmp_path, "users", "set-password", "gina", "--password-stdin", stdin="qwertyuiop\n")
    strong = bastion(
        tmp_path, "users", "set-password", "gina", "--password-stdin", "--json", stdin="another long passphrase\n"
    )
    reset = bastion(tmp_path, "users", "reset-mfa", "gina", "--json")
    unknown = bastion(tmp_path, "users", "show", "nobody")

    assert weak.returncode == 2
    assert strong.returncode == 0
    assert json.loads(reset.stdout)["mfa"] == "none"
    assert unknown.returncode == 2
    assert "no user nobody" in unknown.stderr
