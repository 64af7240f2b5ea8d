"""Shared fixtures. Each test package may add its own conftest beside its tests."""
