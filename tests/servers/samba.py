"""Samba on 127.0.0.1 for the tests (to be written: the SMB target)."""
