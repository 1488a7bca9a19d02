"""ws_tracker.warehouse.credentials: Fernet at rest, key rotation, 401 bookkeeping, no leaks."""

from __future__ import annotations

import logging
import pickle
import traceback
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from ws_tracker.warehouse import credentials as cr

PASSWORD = "Hunter2-s3cr3t!pw"
USERNAME = "ASPLUNDH\\jdoe"
EMAIL = "jdoe@example.com"
AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def _key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def key(monkeypatch) -> str:
    k = _key()
    monkeypatch.setenv(cr.ENV_VAR, k)
    return k


def add_user(engine, email: str = EMAIL, name: str = "J Doe") -> int:
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                "INSERT INTO users (name, email, password) VALUES (:n, :e, :p) RETURNING id"
            ),
            {"n": name, "e": email, "p": "$2y$12$notarealbcrypthashatall"},
        ).scalar_one()


def cred_row(engine, user_id: int):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM user_ws_credentials WHERE user_id = :u"), {"u": user_id}
        ).one()


def user_row(engine, user_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM users WHERE id = :u"), {"u": user_id}).one()


def store(engine, email=EMAIL, username=USERNAME, password=PASSWORD) -> int:
    with engine.begin() as conn:
        return cr.set_user_credentials(conn, email, username, password)


def load(engine, email=EMAIL) -> cr.UserCredentials:
    with engine.connect() as conn:
        return cr.load_user_credentials(conn, email)


def assert_no_leak(obj, *secrets: str) -> None:
    texts = [repr(obj), str(obj), f"{obj}"]
    if isinstance(obj, BaseException):
        texts += [repr(obj.args), "".join(traceback.format_exception(obj))]
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in {text!r}"


# ---------------------------------------------------------------------------- keys & crypto

def test_new_key_is_a_usable_fresh_fernet_key():
    a, b = cr.new_key(), cr.new_key()
    assert isinstance(a, str) and a != b
    assert Fernet(a).decrypt(Fernet(a).encrypt(b"x")) == b"x"


def test_encrypt_decrypt_round_trip_and_key_read_at_call_time(monkeypatch):
    monkeypatch.setenv(cr.ENV_VAR, _key())
    token = cr.encrypt(PASSWORD)
    assert PASSWORD not in token
    assert cr.decrypt(token) == PASSWORD
    monkeypatch.setenv(cr.ENV_VAR, _key())  # changed after the first calls: must be re-read
    with pytest.raises(cr.CredentialsDecryptError):
        cr.decrypt(token)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_key_is_a_clear_error_never_plaintext(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(cr.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(cr.ENV_VAR, value)
    for call in (cr.load_keys, lambda: cr.encrypt(PASSWORD), lambda: cr.decrypt("gAAAA")):
        with pytest.raises(cr.CredentialsKeyError) as info:
            call()
        assert cr.ENV_VAR in str(info.value)
        assert "ws-tracker credentials new-key" in str(info.value)
        assert_no_leak(info.value, PASSWORD)


@pytest.mark.parametrize(
    "bad, position",
    [
        ("not-a-key-but-secret-material", "key 1 of 1"),
        ("{good},ZZZZ-leaky-bad-key-value", "key 2 of 2"),
        ("{good},,{good}", "key 2 of 3"),
        ("{good}," + "A" * 43, "key 2 of 2"),  # right length, not valid base64 padding
    ],
)
def test_malformed_key_names_position_and_never_echoes_it(monkeypatch, bad, position):
    good = _key()
    value = bad.format(good=good)
    monkeypatch.setenv(cr.ENV_VAR, value)
    with pytest.raises(cr.CredentialsKeyError) as info:
        cr.load_keys()
    message = str(info.value)
    assert cr.ENV_VAR in message and position in message
    leaked = [p for p in value.split(",") if p]
    assert_no_leak(info.value, *leaked)
    # The library's own error (which saw the value) is not chained into ours.
    err = info.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


def test_multiple_keys_first_encrypts_others_decrypt(monkeypatch):
    a, b = _key(), _key()
    monkeypatch.setenv(cr.ENV_VAR, a)
    old_token = cr.encrypt("x")
    monkeypatch.setenv(cr.ENV_VAR, f" {b} , {a} ")  # whitespace around keys is tolerated
    assert cr.decrypt(old_token) == "x"
    new_token = cr.encrypt("y")
    assert Fernet(b).decrypt(new_token.encode()) == b"y"


def test_secret_hides_its_value():
    s = cr.Secret(PASSWORD)
    assert s.reveal() == PASSWORD
    assert repr(s) == str(s) == f"{s}" == f"{s!r}" == "***"
    assert s == cr.Secret(PASSWORD) and s != cr.Secret("other")
    assert pickle.loads(pickle.dumps(s)).reveal() == PASSWORD
    with pytest.raises(AttributeError):
        s._value = "changed"


def test_user_credentials_repr_hides_password():
    uc = cr.UserCredentials(user_id=1, email=EMAIL, username=USERNAME, password=cr.Secret(PASSWORD))
    assert_no_leak(uc, PASSWORD)
    assert "***" in repr(uc) and EMAIL in repr(uc)
    assert uc.password.reveal() == PASSWORD
    with pytest.raises(AttributeError):
        uc.password = cr.Secret("x")  # frozen


# ---------------------------------------------------------------------------- database

def test_round_trip_through_database(engine, key):
    uid = add_user(engine)
    add_user(engine, "other@example.com", "Other")
    assert store(engine, email="JDoe@Example.COM") == uid  # email is case-insensitive
    got = load(engine, email=EMAIL.upper())
    assert got.user_id == uid
    assert got.email == EMAIL  # the stored spelling
    assert got.username == USERNAME
    assert isinstance(got.password, cr.Secret)
    assert got.password.reveal() == PASSWORD
    assert_no_leak(got, PASSWORD)


def test_ciphertext_at_rest_holds_neither_password_nor_username(engine, key):
    uid = add_user(engine)
    store(engine)
    row = cred_row(engine, uid)
    for column in (row.encrypted_username, row.encrypted_password):
        assert PASSWORD not in column and USERNAME not in column and "jdoe" not in column
    assert Fernet(key).decrypt(row.encrypted_password.encode()).decode() == PASSWORD
    assert Fernet(key).decrypt(row.encrypted_username.encode()).decode() == USERNAME
    assert row.is_valid is True and row.fail_count == 0 and row.validated_at is None
    assert row.updated_at is not None


def test_set_again_replaces_and_revalidates(engine, key):
    uid = add_user(engine)
    store(engine)
    cr.record_auth_failure(engine, uid, at=AT)
    store(engine, username="ASPLUNDH\\jdoe2", password="new-pass")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM user_ws_credentials")).scalar() == 1
    row = cred_row(engine, uid)
    assert row.is_valid is True and row.fail_count == 0 and row.validated_at is None
    got = load(engine)
    assert got.username == "ASPLUNDH\\jdoe2" and got.password.reveal() == "new-pass"
    user = user_row(engine, uid)
    assert user.ws_username is None  # users is left alone by set_user_credentials
    assert user.ws_credentials_fail_count == 1  # lifetime count survives


def test_missing_key_writes_nothing(engine, monkeypatch):
    add_user(engine)
    monkeypatch.delenv(cr.ENV_VAR, raising=False)
    with pytest.raises(cr.CredentialsKeyError):
        store(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM user_ws_credentials")).scalar() == 0


def test_different_key_cannot_decrypt(engine, monkeypatch, key):
    add_user(engine)
    store(engine)
    other = _key()
    monkeypatch.setenv(cr.ENV_VAR, other)
    with pytest.raises(cr.CredentialsDecryptError) as info:
        load(engine)
    message = str(info.value)
    assert "cannot be decrypted" in message and cr.ENV_VAR in message
    with engine.connect() as conn:
        tokens = conn.execute(
            sa.text("SELECT encrypted_username, encrypted_password FROM user_ws_credentials")
        ).one()
    assert_no_leak(info.value, PASSWORD, USERNAME, key, other, *tokens)


def test_key_rotation(engine, monkeypatch):
    a, b = _key(), _key()
    monkeypatch.setenv(cr.ENV_VAR, a)
    u1 = add_user(engine)
    u2 = add_user(engine, "two@example.com", "Two")
    store(engine)
    store(engine, email="two@example.com", username="ASPLUNDH\\two", password="pw-two")
    before = cred_row(engine, u1)

    monkeypatch.setenv(cr.ENV_VAR, f"{b},{a}")
    assert load(engine).password.reveal() == PASSWORD  # old key still accepted
    with engine.begin() as conn:
        assert cr.rotate_keys(conn) == 2

    after = cred_row(engine, u1)
    assert after.encrypted_password != before.encrypted_password
    assert after.is_valid is True and after.updated_at == before.updated_at

    monkeypatch.setenv(cr.ENV_VAR, b)
    assert load(engine).password.reveal() == PASSWORD
    two = load(engine, "two@example.com")
    assert (two.user_id, two.username, two.password.reveal()) == (u2, "ASPLUNDH\\two", "pw-two")

    monkeypatch.setenv(cr.ENV_VAR, a)  # the old key alone no longer works
    with pytest.raises(cr.CredentialsDecryptError):
        load(engine)


def test_rotation_is_all_or_nothing(engine, monkeypatch):
    a, b, c = _key(), _key(), _key()
    monkeypatch.setenv(cr.ENV_VAR, a)
    add_user(engine)
    u2 = add_user(engine, "two@example.com", "Two")
    store(engine)
    monkeypatch.setenv(cr.ENV_VAR, c)  # u2 stored under a key that will not be configured
    store(engine, email="two@example.com", password="pw-two")
    with engine.connect() as conn:
        before = conn.execute(
            sa.text("SELECT id, encrypted_password FROM user_ws_credentials ORDER BY id")
        ).all()

    monkeypatch.setenv(cr.ENV_VAR, f"{b},{a}")
    with pytest.raises(cr.CredentialsDecryptError) as info:
        with engine.begin() as conn:
            cr.rotate_keys(conn)
    assert f"user ids {u2}" in str(info.value)
    assert_no_leak(info.value, PASSWORD, "pw-two", a, b, c)
    with engine.connect() as conn:
        after = conn.execute(
            sa.text("SELECT id, encrypted_password FROM user_ws_credentials ORDER BY id")
        ).all()
    assert after == before


def test_rotate_with_no_rows(engine, key):
    with engine.begin() as conn:
        assert cr.rotate_keys(conn) == 0


def test_unknown_user(engine, key):
    add_user(engine)
    with pytest.raises(cr.UnknownUserError) as info:
        store(engine, email="nobody@example.com")
    assert "nobody@example.com" in str(info.value) and info.value.email == "nobody@example.com"
    assert_no_leak(info.value, PASSWORD, USERNAME)
    with pytest.raises(cr.UnknownUserError):
        load(engine, "nobody@example.com")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM user_ws_credentials")).scalar() == 0


def test_case_variants_of_one_email(engine, key):
    exact = add_user(engine, "Case@Example.com", "A")
    add_user(engine, "case@example.com", "B")
    assert store(engine, email="Case@Example.com") == exact  # exact spelling wins
    with pytest.raises(cr.AmbiguousUserError):
        store(engine, email="CASE@EXAMPLE.COM")


def test_no_credentials(engine, key):
    add_user(engine)
    with pytest.raises(cr.NoCredentialsError) as info:
        load(engine)
    assert EMAIL in str(info.value)


def test_auth_failure_marks_invalid_and_counts_on_both_tables(engine, key):
    uid = add_user(engine)
    store(engine)
    cr.record_auth_failure(engine, uid, at=AT)
    cr.record_auth_failure(engine, uid, at=AT + timedelta(hours=1))

    row = cred_row(engine, uid)
    assert row.is_valid is False and row.fail_count == 2
    user = user_row(engine, uid)
    assert user.ws_credentials_fail_count == 2
    assert user.ws_credentials_failed_at == AT + timedelta(hours=1)

    with pytest.raises(cr.CredentialsInvalidError) as info:
        load(engine)
    assert "set them again" in str(info.value) and EMAIL in str(info.value)
    assert_no_leak(info.value, PASSWORD, USERNAME)


def test_auth_failure_default_time_and_missing_row(engine, key):
    uid = add_user(engine)
    cr.record_auth_failure(engine, uid)  # no credentials row: users is still updated
    user = user_row(engine, uid)
    assert user.ws_credentials_fail_count == 1
    assert user.ws_credentials_failed_at is not None
    assert abs(user.ws_credentials_failed_at - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_auth_failure_commits_on_its_own(engine, key):
    uid = add_user(engine)
    store(engine)
    with pytest.raises(RuntimeError):
        with engine.begin():
            cr.record_auth_failure(engine, uid, at=AT)
            raise RuntimeError("the caller's work fails")
    assert cred_row(engine, uid).is_valid is False


def test_auth_success_revalidates_and_stamps_use(engine, key):
    uid = add_user(engine)
    store(engine)
    cr.record_auth_failure(engine, uid, at=AT)
    later = AT + timedelta(days=1)
    cr.record_auth_success(engine, uid, at=later)

    row = cred_row(engine, uid)
    assert row.is_valid is True
    assert row.validated_at == later and row.last_used_at == later
    user = user_row(engine, uid)
    assert user.ws_credentials_last_used_at == later
    assert user.ws_credentials_fail_count == 1  # lifetime count, not reset
    assert user.ws_credentials_failed_at == AT
    assert load(engine).password.reveal() == PASSWORD


def test_nothing_logged_or_raised_leaks(engine, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    a, b = _key(), _key()
    monkeypatch.setenv(cr.ENV_VAR, a)
    uid = add_user(engine)
    store(engine)
    cr.record_auth_failure(engine, uid)
    cr.record_auth_success(engine, uid)
    monkeypatch.setenv(cr.ENV_VAR, f"{b},{a}")
    with engine.begin() as conn:
        cr.rotate_keys(conn)
    errors = [
        cr.CredentialsKeyError("x"),
        cr.UnknownUserError(EMAIL),
        cr.NoCredentialsError(EMAIL),
        cr.CredentialsInvalidError(EMAIL),
        cr.AmbiguousUserError(EMAIL),
    ]
    monkeypatch.setenv(cr.ENV_VAR, _key())
    with pytest.raises(cr.CredentialsDecryptError) as info:
        load(engine)
    errors.append(info.value)
    for err in errors:
        assert_no_leak(err, PASSWORD, USERNAME, a, b)
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and str(again) == str(err)
    assert caplog.records, "expected some log lines to check"
    for record in caplog.records:
        assert_no_leak(record.getMessage(), PASSWORD, USERNAME, a, b)


# ---------------------------------------------------------------------------- the commands:
# `ws-tracker credentials set | check | list | rotate` against the simulator over real HTTP.

@pytest.fixture
def simulator():
    from ws_tracker.simulator.server import SimulatorServer
    from ws_tracker.simulator.world import World, WorldConfig

    server = SimulatorServer(World(WorldConfig(circuits=5)), accounts={USERNAME: PASSWORD}).start()
    yield server
    server.stop()


def table_texts(engine) -> str:
    """Every row of every table in the warehouse, as text."""
    with engine.connect() as conn:
        tables = conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        return "\n".join(t for name in tables for t in conn.execute(sa.text(
            f'SELECT x::text FROM "{name}" x')).scalars())


def test_check_records_accepted_and_rejected_credentials(engine, cli, simulator, key, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-" + PASSWORD
    uid = add_user(engine)
    code, out, err = cli("credentials", "set", EMAIL, "--username", USERNAME, "--password-stdin",
                         stdin=PASSWORD + "\n")
    assert code == 0, err
    code, out, err = cli("credentials", "check", EMAIL, "--base-url", simulator.base_url)
    assert code == 0, err
    assert "accepted by WorkStudio" in out
    ok = cred_row(engine, uid)
    assert (ok.is_valid, ok.fail_count) == (True, 0) and ok.validated_at is not None

    assert cli("credentials", "set", EMAIL, "--username", USERNAME, "--password-stdin",
               stdin=wrong + "\n")[0] == 0
    code, out, err = cli("credentials", "check", EMAIL, "--base-url", simulator.base_url)
    assert code == 1 and "rejected by WorkStudio (HTTP 401)" in out
    bad = cred_row(engine, uid)
    assert (bad.is_valid, bad.fail_count) == (False, 1) and bad.validated_at > ok.validated_at
    assert user_row(engine, uid).ws_credentials_fail_count == 1
    # A deliberate check tries invalid credentials once more, and counts the failure again.
    assert cli("credentials", "check", EMAIL, "--base-url", simulator.base_url)[0] == 1
    assert cred_row(engine, uid).fail_count == 2
    assert simulator.stats()["unauthorized"] == 2

    # WorkStudio out of reach: reported, not recorded as a credentials failure.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    before = tuple(cred_row(engine, uid)), tuple(user_row(engine, uid))
    code, out, err = cli("credentials", "check", EMAIL, "--base-url", closed)
    assert code == 3 and "could not check" in err and "not recorded" in err
    assert (tuple(cred_row(engine, uid)), tuple(user_row(engine, uid))) == before

    code, out, err = cli("credentials", "list")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith(EMAIL))
    assert line.split()[1:3] == ["NO", "2"]
    assert out.splitlines()[-1] == "1 user(s) with stored credentials, 0 valid"

    with engine.connect() as conn:
        audit = conn.execute(sa.text(
            "SELECT action, after FROM audit_log ORDER BY id")).all()
    assert [(a.action, a.after.get("is_valid")) for a in audit] == [
        ("credentials.set", True), ("credentials.check", True), ("credentials.set", True),
        ("credentials.check", False), ("credentials.check", False)]

    # Unreadable everywhere: no output, log line or table holds the password, the username
    # or the key in plaintext.
    dump = table_texts(engine)
    texts = cli.outputs + [r.getMessage() for r in caplog.records] + [dump]
    for secret in (PASSWORD, wrong, USERNAME, key):
        assert not any(secret in t for t in texts), secret
    assert EMAIL in dump  # the dump is real


def test_check_and_set_refuse_clearly_without_a_key_a_user_or_a_workstudio(
        engine, cli, simulator, monkeypatch, key):
    add_user(engine)
    assert cli("credentials", "set", EMAIL, "--username", USERNAME, "--password-stdin",
               stdin=PASSWORD + "\n")[0] == 0
    before = table_texts(engine)
    code, _, err = cli("credentials", "check", EMAIL)
    assert code == 2 and "set WORKSTUDIO_BASE_URL or give --base-url" in err
    code, _, err = cli("credentials", "check", "ghost@example.com", "--base-url", simulator.base_url)
    assert code == 2 and "no user with email 'ghost@example.com'" in err
    monkeypatch.delenv(cr.ENV_VAR)
    code, _, err = cli("credentials", "check", EMAIL, "--base-url", simulator.base_url)
    assert code == 2 and f"{cr.ENV_VAR} is not set" in err
    code, _, err = cli("credentials", "set", EMAIL, "--username", USERNAME, "--password-stdin",
                       stdin="Another-" + PASSWORD + "\n")
    assert code == 2 and f"{cr.ENV_VAR} is not set" in err
    assert table_texts(engine) == before  # nothing stored, nothing lost, no plaintext fallback
    assert simulator.stats()["requests"]["GETQUERY"] == 0


def test_key_rotation_commands(engine, cli, simulator, monkeypatch, key):
    add_user(engine)
    assert cli("credentials", "set", EMAIL, "--username", USERNAME, "--password-stdin",
               stdin=PASSWORD + "\n")[0] == 0
    code, new, _ = cli("credentials", "new-key")
    new = new.strip()
    assert code == 0 and new != key
    monkeypatch.setenv(cr.ENV_VAR, f"{new},{key}")
    code, out, err = cli("credentials", "rotate")
    assert code == 0 and "re-encrypted 1 credential row(s)" in out, err
    monkeypatch.setenv(cr.ENV_VAR, new)
    assert cli("credentials", "check", EMAIL, "--base-url", simulator.base_url)[0] == 0
    monkeypatch.setenv(cr.ENV_VAR, key)  # the old key alone no longer opens them
    code, _, err = cli("credentials", "check", EMAIL, "--base-url", simulator.base_url)
    assert code == 2 and "cannot be decrypted" in err
    assert not any(s in t for t in cli.outputs for s in (PASSWORD, USERNAME, key))


def test_the_installed_command_never_prints_the_secret(db_url, engine, simulator, key, tmp_path):
    """The real ``ws-tracker`` process (its own logging set-up), with --verbose."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    uid = add_user(engine)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKSTUDIO_", "WS_TRACKER_"))}
    env.update({"WS_TRACKER_DATABASE_URL": db_url, cr.ENV_VAR: key,
                "WS_TRACKER_HOME": str(tmp_path), "WORKSTUDIO_BASE_URL": simulator.base_url})
    exe = str(Path(sys.executable).parent / "ws-tracker")
    outputs = []
    for args, stdin in ((["credentials", "set", EMAIL, "--username", USERNAME,
                          "--password-stdin"], PASSWORD + "\n"),
                        (["credentials", "check", EMAIL], None),
                        (["credentials", "list"], None)):
        done = subprocess.run([exe, "-v", *args], input=stdin or "", env=env, text=True,
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    assert "accepted by WorkStudio" in outputs[2]
    for secret in (PASSWORD, USERNAME, key):
        assert not any(secret in text for text in outputs), secret
    assert cred_row(engine, uid).is_valid
