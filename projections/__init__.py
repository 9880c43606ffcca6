"""Projectors and their read models; each module holds one read model's projection and queries."""
