"""SQLite recorders with one events table per bounded context, inside one database file."""

from __future__ import annotations

from eventsourcing.sqlite import SQLiteApplicationRecorder


class AccountsRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore, events_table_name: str = "accounts_events") -> None:
        super().__init__(datastore, events_table_name)


class AccessRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore, events_table_name: str = "access_events") -> None:
        super().__init__(datastore, events_table_name)


class RequestsRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore, events_table_name: str = "requests_events") -> None:
        super().__init__(datastore, events_table_name)


class CatalogRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore, events_table_name: str = "catalog_events") -> None:
        super().__init__(datastore, events_table_name)


SQLITE_RECORDERS = {
    "accounts": AccountsRecorder,
    "access": AccessRecorder,
    "requests": RequestsRecorder,
    "catalog": CatalogRecorder,
}
