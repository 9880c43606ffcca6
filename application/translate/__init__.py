"""Cross-format translation (spec 9.11): pure functions between client and upstream formats.

One module per direction; ``common`` holds the tables both directions share.
"""
