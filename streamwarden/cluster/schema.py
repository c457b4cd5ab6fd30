"""The cluster's tables in PostgreSQL. Created by the first node that starts (under an
advisory lock, so nodes starting together do not race on `CREATE TABLE`).

- `cluster_meta`: one row; `catalog_version` goes up with every change to the camera list,
  so a node polls one number to know whether to read the list again.
- `cluster_nodes`: each node's heartbeat lease (`expires`, database clock), URL, capacity,
  whether it is draining for a shutdown, and its load figures for `GET /cluster`.
- `cluster_streams`: the camera list; `config` is the stream's JSON encrypted with the
  cluster's shared key, `digest` an HMAC of the plain JSON (a file loaded again unchanged
  writes nothing), `source` config | api.
- `ownership`: one row per camera: owner, lease end, fencing number (incremented by every
  claim and transfer), a planned move in progress (`handoff_to`, `ready`), and the owner's
  last view of the stream for any node's `/streams` and `/health`.
- `cluster_holds`: who held each camera when (one row per fence: from the claim or transfer
  to the holder's last renewal), the cluster's "service running" for a camera's timeline.
- `cluster_facts`: the timeline facts of each node (periods, recorder gaps: facts.py).
- `cluster_recordings`, `cluster_events`: the cluster-wide index; each row names the node that
  holds the file and the fence it was written under. A segment whose node died or lost the
  camera while writing it is ended `interrupted` by the node that claims the camera (store.py).
"""

from __future__ import annotations

LOCK_KEY = 0x5357_434C  # "SWCL": the advisory lock taken while creating the schema

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS cluster_meta (
        id integer PRIMARY KEY CHECK (id = 1),
        catalog_version bigint NOT NULL)""",
    "INSERT INTO cluster_meta VALUES (1, 0) ON CONFLICT DO NOTHING",
    """CREATE TABLE IF NOT EXISTS cluster_nodes (
        node_id text PRIMARY KEY,
        url text NOT NULL,
        capacity integer,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat timestamptz NOT NULL DEFAULT now(),
        expires timestamptz NOT NULL,
        leaving boolean NOT NULL DEFAULT false,
        load jsonb NOT NULL DEFAULT '{}')""",
    """CREATE TABLE IF NOT EXISTS cluster_streams (
        stream_id text PRIMARY KEY,
        config text NOT NULL,
        digest text NOT NULL,
        source text NOT NULL,
        version bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS ownership (
        stream_id text PRIMARY KEY REFERENCES cluster_streams ON DELETE CASCADE,
        owner text,
        fence bigint NOT NULL DEFAULT 0,
        expires timestamptz NOT NULL DEFAULT now(),
        handoff_to text,
        handoff_at timestamptz,
        ready boolean NOT NULL DEFAULT false,
        view jsonb)""",
    """CREATE TABLE IF NOT EXISTS cluster_recordings (
        id bigserial PRIMARY KEY,
        node_id text NOT NULL,
        local_id bigint NOT NULL,
        stream_id text NOT NULL,
        path text NOT NULL,
        start_ts double precision NOT NULL,
        end_ts double precision,
        duration double precision,
        bytes bigint,
        reason text NOT NULL,
        status text NOT NULL,
        fence bigint NOT NULL,
        UNIQUE (node_id, local_id))""",
    """CREATE INDEX IF NOT EXISTS cluster_recordings_stream_start
        ON cluster_recordings (stream_id, start_ts)""",
    """CREATE TABLE IF NOT EXISTS cluster_holds (
        stream_id text NOT NULL,
        fence bigint NOT NULL,
        node_id text NOT NULL,
        start_ts double precision NOT NULL,
        end_ts double precision NOT NULL,
        PRIMARY KEY (stream_id, fence))""",
    """CREATE TABLE IF NOT EXISTS cluster_facts (
        id bigserial PRIMARY KEY,
        node_id text NOT NULL,
        source text NOT NULL,
        local_id bigint NOT NULL,
        stream_id text NOT NULL,
        kind text NOT NULL,
        start_ts double precision NOT NULL,
        end_ts double precision,
        fence bigint NOT NULL,
        UNIQUE (node_id, source, local_id))""",
    """CREATE INDEX IF NOT EXISTS cluster_facts_stream ON cluster_facts (stream_id, start_ts)""",
    """CREATE INDEX IF NOT EXISTS cluster_recordings_open
        ON cluster_recordings (stream_id) WHERE status = 'recording'""",
    """CREATE TABLE IF NOT EXISTS cluster_events (
        id bigserial PRIMARY KEY,
        node_id text NOT NULL,
        local_id bigint NOT NULL,
        stream_id text NOT NULL,
        label text NOT NULL,
        start_ts double precision NOT NULL,
        end_ts double precision NOT NULL,
        confidence double precision NOT NULL,
        box text NOT NULL,
        detections integer NOT NULL,
        model text NOT NULL,
        pts bigint,
        has_snapshot boolean NOT NULL,
        fence bigint NOT NULL,
        UNIQUE (node_id, local_id))""",
    """CREATE INDEX IF NOT EXISTS cluster_events_start ON cluster_events (start_ts)""",
    # tracked objects (as the node's own index has them, db.py): added to older clusters too
    """ALTER TABLE cluster_events ADD COLUMN IF NOT EXISTS object_id text,
        ADD COLUMN IF NOT EXISTS zones text NOT NULL DEFAULT '[]',
        ADD COLUMN IF NOT EXISTS path text NOT NULL DEFAULT '[]',
        ADD COLUMN IF NOT EXISTS stationary boolean NOT NULL DEFAULT false,
        ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT false""",
)
