"""Checking a deployment from outside: the verify command and the voice tester."""
