-- Schema of a tenant's reporting database on SQLite: the same tables as on PostgreSQL,
-- with GUIDs as lower-case hyphenated text and timestamps as RFC 3339 text in UTC.

CREATE TABLE reporting_meta (
    singleton          INTEGER PRIMARY KEY CHECK (singleton = 1),
    tenant_guid        TEXT NOT NULL,
    config_database_id TEXT NOT NULL,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE call_records (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    call_guid     TEXT NOT NULL UNIQUE,
    access_number TEXT NOT NULL,
    media         TEXT NOT NULL CHECK (media IN ('voice', 'text', 'voice_text')),
    agent_guid    TEXT,
    service_guid  TEXT,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    disposition   TEXT
);

CREATE INDEX call_records_started_idx ON call_records (started_at);

CREATE TABLE agent_sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_guid TEXT NOT NULL,
    logged_in  TEXT NOT NULL,
    logged_out TEXT,
    state      TEXT NOT NULL
);

CREATE INDEX agent_sessions_agent_idx ON agent_sessions (agent_guid, logged_in);
