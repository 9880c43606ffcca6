"""Shipped catalog reference data (JSON), read with importlib.resources by application.catalog_seed.

providers.json: the default provider registry (spec 5.1), every entry disabled until an admin
sets credentials; aliases.json: the seeded alias table (2.2); families.json: vendor-locked
families, organisation fallbacks and id-format rules for provider detection (2.4).
"""
