/**
 * The PostgreSQL tables of distributed batches, in one schema (default `dogged`). One row per
 * (job, input line): the record. Workers upsert it keyed by (job, line) with a guard on the
 * attempt count, so a line executed twice (at-least-once delivery) is recorded once.
 */
export const STORE_SCHEMA_VERSION = 1;

/** The DDL, for schema `s` (a checked SQL name). Idempotent. */
export function storeSchemaSql(s: string): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${s};

CREATE TABLE IF NOT EXISTS ${s}.meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS ${s}.jobs (
  job        TEXT PRIMARY KEY,
  config     JSONB NOT NULL,            -- the JobConfig every worker applies
  input      TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ${s}.requests (
  job              TEXT    NOT NULL,
  line             INTEGER NOT NULL,     -- 1-based input line: with job, the stable id
  line_hash        TEXT    NOT NULL,     -- fingerprint of the raw line
  key              TEXT,
  method           TEXT,
  url              TEXT,
  host             TEXT,
  request_headers  JSONB,
  request_body     TEXT,
  raw              TEXT,                 -- invalid lines only
  state            TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'invalid')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  BIGINT  NOT NULL DEFAULT 0,
  history          JSONB,
  status           INTEGER,
  error_code       TEXT,
  error_message    TEXT,
  reason           TEXT,
  response_headers JSONB,
  body             BYTEA,
  body_size        INTEGER,
  body_path        TEXT,
  first_attempt_at BIGINT,
  last_attempt_at  BIGINT,
  finished_at      BIGINT,
  ttfb_ms          REAL,
  duration_ms      REAL,
  worker           TEXT,                 -- who recorded the final outcome
  unfinished       INTEGER NOT NULL DEFAULT 0,  -- attempts started since the last outcome: a worker died with the line
  PRIMARY KEY (job, line)
);

-- Added after the first stores: a store made by an earlier dogged gets it here.
ALTER TABLE ${s}.requests ADD COLUMN IF NOT EXISTS unfinished INTEGER NOT NULL DEFAULT 0;

-- With --cookies: each host's cookie jar of a job (tough-cookie's JSON), saved by the workers
-- with the outcomes whose responses set them; a worker starts from the saved jars.
CREATE TABLE IF NOT EXISTS ${s}.cookies (
  job        TEXT NOT NULL,
  host       TEXT NOT NULL,
  jar        TEXT NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (job, host)
);

CREATE INDEX IF NOT EXISTS requests_pending ON ${s}.requests (job, line) WHERE state = 'pending';

INSERT INTO ${s}.meta (name, value) VALUES ('schema_version', '${STORE_SCHEMA_VERSION}')
  ON CONFLICT (name) DO NOTHING;
`;
}
