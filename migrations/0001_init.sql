-- sise read models. Every table lives in the namespace's schema (search_path = namespace),
-- so tests and deployments sharing one PostgreSQL never touch each other's rows.

-- The last stream sequence each projection committed, written in the same transaction as its
-- data: a restart resumes right after it, `sise project rebuild` starts from 0.
CREATE TABLE projection_offsets (
    name       text PRIMARY KEY,
    last_seq   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every tick, keyed by its stream sequence in <ns>_TICKS: a redelivered message is a no-op.
CREATE TABLE ticks (
    seq        bigint PRIMARY KEY,
    instrument text NOT NULL,
    ts         bigint NOT NULL,              -- exchange time, epoch ms
    price      double precision NOT NULL,
    volume     double precision NOT NULL,    -- size of this trade (0: quote update)
    day_volume double precision,
    prev_close double precision,
    source     text NOT NULL,
    source_seq numeric(20, 0) NOT NULL,      -- can exceed 2^63
    ingest_ts  bigint NOT NULL
);
CREATE INDEX ticks_instrument_ts ON ticks (instrument, ts);

-- 1-minute OHLCV candles, upserted from the ticks each batch inserted. Open and close keep the
-- (exchange time, stream sequence) of the tick they came from, so late or out-of-order ticks
-- land in the right place; v is the sum of the ticks' volume.
CREATE TABLE candles_1m (
    instrument text NOT NULL,
    t          bigint NOT NULL,              -- minute start, epoch ms
    o          double precision NOT NULL,
    h          double precision NOT NULL,
    l          double precision NOT NULL,
    c          double precision NOT NULL,
    v          double precision NOT NULL,
    n          integer NOT NULL,             -- ticks in the minute
    o_ts       bigint NOT NULL,
    o_seq      bigint NOT NULL,
    c_ts       bigint NOT NULL,
    c_seq      bigint NOT NULL,
    PRIMARY KEY (instrument, t)
);

-- News articles (the news projection), deduplicated by id (hash of the canonical URL).
CREATE TABLE news (
    id          text PRIMARY KEY,
    seq         bigint NOT NULL,
    source      text NOT NULL,
    title       text NOT NULL,
    summary     text,
    url         text NOT NULL,
    image       text,
    published   bigint NOT NULL,
    language    text,
    instruments text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX news_published ON news (published DESC);
CREATE INDEX news_instruments ON news USING gin (instruments);

-- Dashboard layouts, written by the edge. Only the holder of the secret may change one.
CREATE TABLE layouts (
    id          text PRIMARY KEY,
    secret_hash text NOT NULL,
    layout      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
