-- The request log: one row for every API request the gateway received, including those that
-- failed authentication. The gateway's group-commit writer (api-gateway/reqlog.c) commits the row
-- before the request is answered, so an acknowledged request is always on record.
--
-- The table is partitioned by day of "time" in UTC (request_log_YYYYMMDD), so that old days are
-- dropped whole with DROP TABLE instead of a DELETE that leaves vacuum work. Partitions are made
-- ahead of time by request_log_ensure_partitions(), which the gateway calls at start-up and when
-- the date changes. request_log_default is a safety net for a row whose day has no partition yet
-- (a clock far off, a gateway that could not reach the database at midnight): the row is kept
-- rather than refused, and request_log_ensure_partitions() moves it into its day's partition when
-- it creates that partition. It has to: PostgreSQL refuses to create a partition while the default
-- partition holds rows that belong to it.

CREATE TABLE request_log (
    request_id     uuid        NOT NULL,
    "time"         timestamptz NOT NULL,           -- when the request arrived
    tenant_id      text,                           -- NULL: not authenticated
    access_key_id  text,                           -- NULL: none presented, or not parsed
    action         text        NOT NULL,           -- "DescribeRegions", "GET /v1/...", ...
    params         jsonb       NOT NULL DEFAULT '{}', -- secrets redacted by the gateway
    http_status    integer     NOT NULL CHECK (http_status BETWEEN 100 AND 599),
    error_code     text,                           -- "SignatureDoesNotMatch"; NULL on success
    latency_us     bigint      NOT NULL CHECK (latency_us >= 0),
    source_addr    inet,
    user_agent     text,
    api            text        NOT NULL CHECK (api IN ('ec2', 'rest', 'other')),
    PRIMARY KEY (request_id, "time")
) PARTITION BY RANGE ("time");

-- The operator's queries: one tenant's requests, one action's, errors, everything, newest first.
CREATE INDEX request_log_tenant_time ON request_log (tenant_id, "time");
CREATE INDEX request_log_action_time ON request_log (action, "time");
CREATE INDEX request_log_error_time ON request_log (error_code, "time")
    WHERE error_code IS NOT NULL;
CREATE INDEX request_log_time ON request_log ("time");

CREATE TABLE request_log_default PARTITION OF request_log DEFAULT;

-- Creates the missing daily partitions for today .. today + 'days_ahead' (UTC days), moving into
-- each new partition the rows of its day that were waiting in request_log_default. Safe to call
-- at any time and from several sessions at once (they serialise on an advisory lock); a call that
-- finds every partition present changes nothing. Returns the number of partitions created.
CREATE FUNCTION request_log_ensure_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    today   date := (now() AT TIME ZONE 'UTC')::date;
    day     date;
    part    text;
    lo      timestamptz;
    hi      timestamptz;
    created integer := 0;
BEGIN
    IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
        RAISE EXCEPTION 'invalid number of days ahead: %', days_ahead
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a number from 0 to 366.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('request_log_ensure_partitions'));
    FOR i IN 0 .. days_ahead LOOP
        day := today + i;
        part := 'request_log_' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(quote_ident(part)) IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        -- Built apart and attached, rather than CREATE TABLE ... PARTITION OF, so that the rows
        -- of its day can leave the default partition first. ATTACH adds the primary key and the
        -- indexes of request_log.
        EXECUTE format('CREATE TABLE %I (LIKE request_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part);
        EXECUTE format('WITH moved AS (DELETE FROM request_log_default'
                       ' WHERE "time" >= $1 AND "time" < $2 RETURNING *)'
                       ' INSERT INTO %I SELECT * FROM moved', part)
            USING lo, hi;
        EXECUTE format('ALTER TABLE request_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
