"""Tests of the independent audit-bundle verifier (spec 11.6-11.8)."""
