"""Shared pytest set-up: the repository root is importable so tests can use tests.peers."""
