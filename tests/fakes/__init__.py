"""Fake upstream providers that speak real provider wire formats, for tests."""
