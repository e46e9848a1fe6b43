"""The leak check itself must be able to fail: a planted password is found, in UTF-8 and UTF-16."""

from __future__ import annotations

import leakcheck


def test_leak_check_finds_a_planted_password(tmp_path, monkeypatch):
    monkeypatch.setattr(leakcheck, "PASSWORDS", set())
    monkeypatch.setattr(leakcheck, "OUTPUTS", [])
    pw = leakcheck.register("Plant3d-Secret-42")
    (tmp_path / "journal.jsonl").write_text('{"event": "run"}\n')
    assert leakcheck.scan(tmp_path) == []
    (tmp_path / "smbd.log").write_bytes(b"..." + pw.encode("utf-16-le") + b"...")
    leakcheck.record("deployer apply", f"error: {pw}")
    hits = leakcheck.scan(tmp_path)
    assert str(tmp_path / "smbd.log") in hits and "output of deployer apply" in hits
