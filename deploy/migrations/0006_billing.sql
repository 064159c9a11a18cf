-- Billing (issue 8): price plans, hourly usage records, invoices, budgets.
--
-- Money is integer micro-units of the plan's currency (1 USD = 1 000 000 micros). Quantities are
-- integers in base units: seconds, GiB-seconds, byte-seconds. Event times are billed at whole-second
-- resolution (truncated). Rounding happens once, on each invoice line, half-up to the cent.
--
-- Flow (billing/, docs/billing.md):
--   instance_events, image_storage_events  --nubo-billing --aggregate-->  usage_records (hourly)
--   usage_records x price plans x overrides --billing_rate()-->  invoice_lines, invoices
-- All billing writers hold the advisory lock billing_lock_key() inside their transactions.

-- Meters (usage_records.meter), with their base unit:
--   instance-running   seconds in state running; sku = instance type; resource = instance
--   instance-minimum   seconds added so that a run shorter than the plan's minimum is billed the
--                      minimum (charged at the instance-running price); sku = instance type
--   stopped-storage    GiB-seconds of root disk of an instance in state stopped; sku = type
--   image-storage      byte-seconds of an image's stored bytes; sku = ''; resource = image
--   network-in         bytes an instance received (agent counters); sku = ''; resource = instance
--   network-out        bytes an instance sent; sku = ''; resource = instance

CREATE FUNCTION billing_lock_key() RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT 7308327111 :: bigint $$;  -- "billing": one key for aggregation, invoicing, closing

-- Price plans are versioned: the version in effect at an hour rates that hour. A new version is a
-- new row with a later effective_from; rows are never edited once an hour they rate is invoiced.
CREATE TABLE price_plans (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    effective_from   timestamptz NOT NULL UNIQUE,
    currency         text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    -- EC2-like per-second billing with a minimum charge for each run of an instance (running
    -- until the next state change).
    min_run_seconds  integer NOT NULL DEFAULT 60 CHECK (min_run_seconds >= 0),
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- A price per meter and unit: 'price_micros' for every 'unit_quantity' base units, e.g. 10400
-- micros per 3600 instance-seconds. sku '' applies to every sku without a price of its own.
CREATE TABLE plan_prices (
    plan_id        text NOT NULL REFERENCES price_plans (id),
    meter          text NOT NULL,
    sku            text NOT NULL DEFAULT '',
    unit           text NOT NULL,             -- shown on invoices: "hour", "GB-month"
    unit_quantity  bigint NOT NULL CHECK (unit_quantity > 0),
    price_micros   bigint NOT NULL CHECK (price_micros >= 0),
    PRIMARY KEY (plan_id, meter, sku)
);

-- Per-tenant overrides: a price of its own and/or a discount in basis points (1/100 %), for a
-- meter ('' = every meter) and sku ('' = every sku), between two times. The most specific override
-- in effect at an hour applies.
CREATE TABLE tenant_price_overrides (
    id              bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id),
    meter           text NOT NULL DEFAULT '',
    sku             text NOT NULL DEFAULT '',
    price_micros    bigint CHECK (price_micros >= 0),  -- NULL: the plan's price
    discount_bp     integer NOT NULL DEFAULT 0 CHECK (discount_bp BETWEEN 0 AND 10000),
    effective_from  timestamptz NOT NULL DEFAULT '-infinity',
    effective_to    timestamptz NOT NULL DEFAULT 'infinity',
    CHECK (effective_from < effective_to)
);
CREATE INDEX tenant_price_overrides_tenant ON tenant_price_overrides (tenant_id);

-- The default plan, in effect from the beginning of time. Prices are in USD micros; instance
-- hours are close to EC2's on-demand Linux prices.
INSERT INTO price_plans (id, name, effective_from, min_run_seconds)
VALUES ('plan-default-1', 'default', '-infinity', 60);
INSERT INTO plan_prices (plan_id, meter, sku, unit, unit_quantity, price_micros) VALUES
    ('plan-default-1', 'instance-running', 't3.nano', 'hour', 3600, 5200),
    ('plan-default-1', 'instance-running', 't3.micro', 'hour', 3600, 10400),
    ('plan-default-1', 'instance-running', 't3.small', 'hour', 3600, 20800),
    ('plan-default-1', 'instance-running', 't3.medium', 'hour', 3600, 41600),
    ('plan-default-1', 'instance-running', 'm5.large', 'hour', 3600, 96000),
    ('plan-default-1', 'instance-running', 'm5.xlarge', 'hour', 3600, 192000),
    ('plan-default-1', 'instance-running', 'c5.large', 'hour', 3600, 85000),
    ('plan-default-1', 'instance-running', 'r5.large', 'hour', 3600, 126000),
    ('plan-default-1', 'instance-running', 'm5d.large', 'hour', 3600, 113000),
    -- GiB-month and GB-month: a month is 730 hours (2 628 000 s).
    ('plan-default-1', 'stopped-storage', '', 'GiB-month', 2628000, 80000),
    ('plan-default-1', 'image-storage', '', 'GB-month', 2628000000000000, 50000),
    -- Egress per GB (10^9 bytes), as EC2's internet egress; ingress is free but metered.
    ('plan-default-1', 'network-out', '', 'GB', 1000000000, 90000),
    ('plan-default-1', 'network-in', '', 'GB', 1000000000, 0);

-- Billing periods: calendar months in UTC, named 'YYYY-MM'. A row exists once a period has been
-- invoiced; 'closed' is final.
CREATE TABLE billing_periods (
    period      text PRIMARY KEY CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    starts_at   timestamptz NOT NULL UNIQUE,
    ends_at     timestamptz NOT NULL,
    state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    closed_at   timestamptz
);

-- Hourly usage per tenant, resource and meter. Written only by nubo-billing --aggregate; the key
-- makes a re-run produce the same rows. 'invoice_id' is set when the record is billed on a closed
-- invoice: from then on it cannot change.
CREATE TABLE usage_records (
    tenant_id    text NOT NULL,
    resource_id  text NOT NULL,
    meter        text NOT NULL,
    -- A whole hour in UTC. date_bin() is integer arithmetic, whatever the session's TimeZone
    -- (date_trunc() on a timestamptz would depend on it, and cost a time zone conversion per row).
    hour         timestamptz NOT NULL
                 CHECK (hour = date_bin('1 hour', hour, '2000-01-01 00:00:00+00')),
    sku          text NOT NULL DEFAULT '',
    quantity     bigint NOT NULL CHECK (quantity > 0),
    invoice_id   text,
    -- sku is part of the key so that an instance whose type changed within an hour (while
    -- stopped) keeps one record per type. The hour comes first: aggregation appends whole hours
    -- in key order at the right end of the index (one index, no random inserts), and every
    -- reader selects a range of hours.
    PRIMARY KEY (hour, tenant_id, resource_id, meter, sku)
);
CREATE INDEX usage_records_invoice ON usage_records (invoice_id) WHERE invoice_id IS NOT NULL;

-- Aggregation progress: every hour before 'aggregated_until' is in usage_records. Advanced in the
-- same transaction as the records of the hours it covers and the carried state below, so a run
-- killed at any point resumes where the last commit left it and never counts an hour twice.
CREATE TABLE billing_watermark (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    aggregated_until  timestamptz,            -- NULL: nothing aggregated yet
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO billing_watermark DEFAULT VALUES;

-- State carried across the watermark: each live instance's state and since when (for a running
-- instance, when its run started), and each stored image's bytes and since when. Replaced in the
-- same transaction as the watermark, so a batch reads only the events of its own hours.
CREATE TABLE billing_instance_carry (
    instance_id    text PRIMARY KEY,
    tenant_id      text NOT NULL,
    instance_type  text NOT NULL,
    state          text NOT NULL,
    since          timestamptz NOT NULL
);
CREATE TABLE billing_image_carry (
    image_id   text PRIMARY KEY,
    tenant_id  text NOT NULL,
    bytes      bigint NOT NULL CHECK (bytes > 0),
    since      timestamptz NOT NULL
);

-- Network bytes, from the compute agents' per-domain counters (cumulative since the domain
-- started), sent with each heartbeat. The gateway's heartbeat handler writes the increase since
-- the last heartbeat as one event per instance (in the statement that updates the last counters
-- seen, below); a counter lower than the last one seen means the domain restarted, and counts
-- again from 0.
CREATE TABLE instance_net_events (
    id           bigserial PRIMARY KEY,
    instance_id  text NOT NULL,
    tenant_id    text NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    rx_bytes     bigint NOT NULL CHECK (rx_bytes >= 0),
    tx_bytes     bigint NOT NULL CHECK (tx_bytes >= 0)
);
CREATE INDEX instance_net_events_at ON instance_net_events (at);
CREATE TABLE instance_net_counters (
    instance_id  text PRIMARY KEY,
    rx_bytes     bigint NOT NULL,
    tx_bytes     bigint NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);

-- Batches read events by time.
CREATE INDEX instance_events_at ON instance_events (at);
CREATE INDEX image_storage_events_at ON image_storage_events (at);

-- One invoice per tenant and period; its id is derived from both, so re-invoicing a period
-- rewrites the same draft.
CREATE TABLE invoices (
    id            text PRIMARY KEY,                     -- 'inv-YYYYMM-TENANT'
    tenant_id     text NOT NULL REFERENCES tenants (id),
    period        text NOT NULL REFERENCES billing_periods (period),
    state         text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'closed')),
    currency      text NOT NULL,
    total_micros  bigint NOT NULL,                      -- sum of the lines' rounded amounts
    created_at    timestamptz NOT NULL DEFAULT now(),
    closed_at     timestamptz,
    UNIQUE (tenant_id, period)
);

-- One line per (kind, meter, sku, resource, plan version, override): quantity in base units,
-- the exact amount (a fraction of a micro-unit is possible), and the rounded amount billed.
-- 'adjustment' lines carry usage of earlier, closed periods that arrived after they closed.
CREATE TABLE invoice_lines (
    invoice_id         text NOT NULL REFERENCES invoices (id),
    line_no            integer NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('usage', 'adjustment')),
    meter              text NOT NULL,
    sku                text NOT NULL,
    resource_id        text NOT NULL,
    plan_id            text NOT NULL,
    unit               text NOT NULL,
    unit_quantity      bigint NOT NULL,
    unit_price_micros  bigint NOT NULL,
    discount_bp        integer NOT NULL,
    quantity           numeric NOT NULL,
    exact_micros       numeric NOT NULL,
    amount_micros      bigint NOT NULL,
    first_hour         timestamptz NOT NULL,
    last_hour          timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);

-- A closed invoice, its lines and the usage it billed are immutable.
CREATE FUNCTION billing_refuse_closed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    inv text;
BEGIN
    IF TG_TABLE_NAME = 'invoices' THEN
        IF OLD.state = 'closed' THEN
            RAISE EXCEPTION 'invoice "%" is closed', OLD.id USING ERRCODE = 'check_violation';
        END IF;
    ELSE
        inv := CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
        IF inv IS NOT NULL AND EXISTS (SELECT 1 FROM invoices WHERE id = inv AND state = 'closed')
        THEN
            RAISE EXCEPTION 'invoice "%" is closed', inv USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_closed();
CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_closed();
CREATE TRIGGER usage_records_immutable BEFORE UPDATE OR DELETE ON usage_records
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_closed();

-- Budgets: a tenant-set threshold on the current period's rated amount; crossing it raises one
-- alert per period and threshold (and a NOTIFY on channel 'nubo_budget_alert').
CREATE TABLE budgets (
    tenant_id         text PRIMARY KEY REFERENCES tenants (id),
    threshold_micros  bigint NOT NULL CHECK (threshold_micros > 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE budget_alerts (
    id                bigserial PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants (id),
    period            text NOT NULL,
    threshold_micros  bigint NOT NULL,
    amount_micros     bigint NOT NULL,
    at                timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, period, threshold_micros)
);

-- The period 'YYYY-MM' of a time, and the bounds of a period, in UTC.
CREATE FUNCTION billing_period_of(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM') $$;
CREATE FUNCTION billing_period_start(p text) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS
$$ SELECT (p || '-01 00:00:00')::timestamp AT TIME ZONE 'UTC' $$;

-- The usage records that the invoice of period 'p_period' bills for tenant 'p_tenant' (NULL:
-- every tenant): the period's own unbilled records, and unbilled records of earlier periods
-- that are already closed (late usage, billed as adjustments).
CREATE FUNCTION billing_selected(p_tenant text, p_period text) RETURNS SETOF usage_records
LANGUAGE sql STABLE AS $$
    SELECT r.* FROM usage_records r
    WHERE (p_tenant IS NULL OR r.tenant_id = p_tenant) AND r.invoice_id IS NULL
      AND r.hour < billing_period_start(p_period) + interval '1 month'
      AND (r.hour >= billing_period_start(p_period)
           OR EXISTS (SELECT 1 FROM billing_periods c WHERE c.state = 'closed'
                      AND r.hour >= c.starts_at AND r.hour < c.ends_at))
$$;

-- Rates the unbilled usage of period 'p_period' (and, as adjustments, unbilled usage of earlier
-- closed periods) for tenant 'p_tenant' (NULL: every tenant): one row per invoice line. The one
-- place where prices, overrides and rounding are applied; nubo-billing and the gateway's usage
-- estimate both call it. A NULL unit_price_micros means the plan has no price for the meter and
-- sku (nubo-billing refuses to invoice that).
CREATE FUNCTION billing_rate(p_tenant text, p_period text)
RETURNS TABLE (tenant_id text, kind text, meter text, sku text, resource_id text, plan_id text,
               unit text, unit_quantity bigint, unit_price_micros bigint, discount_bp integer,
               quantity numeric, exact_micros numeric, amount_micros bigint,
               first_hour timestamptz, last_hour timestamptz)
LANGUAGE sql STABLE AS $$
    WITH plans AS (
        SELECT p.id, p.effective_from,
               coalesce(lead(p.effective_from) OVER (ORDER BY p.effective_from), 'infinity')
                   AS effective_to
        FROM price_plans p
    ), u AS (
        SELECT r.tenant_id, r.meter, r.sku, r.resource_id, r.quantity, r.hour,
               CASE WHEN r.hour < billing_period_start(p_period) THEN 'adjustment'
                    ELSE 'usage' END AS kind,
               CASE r.meter WHEN 'instance-minimum' THEN 'instance-running'
                    ELSE r.meter END AS price_meter
        FROM billing_selected(p_tenant, p_period) r
    ), g AS (
        SELECT u.tenant_id, u.kind, u.meter, u.price_meter, u.sku, u.resource_id, pl.id AS plan_id,
               CASE WHEN u.tenant_id IN (SELECT t.tenant_id FROM tenant_price_overrides t)
               THEN (SELECT o.id FROM tenant_price_overrides o
                WHERE o.tenant_id = u.tenant_id AND o.meter IN (u.price_meter, '')
                  AND o.sku IN (u.sku, '') AND u.hour >= o.effective_from
                  AND u.hour < o.effective_to
                ORDER BY o.meter DESC, o.sku DESC, o.id DESC LIMIT 1) END AS override_id,
               u.quantity, u.hour
        FROM u JOIN plans pl ON u.hour >= pl.effective_from AND u.hour < pl.effective_to
    ), s AS (
        SELECT g.tenant_id, g.kind, g.meter, g.price_meter, g.sku, g.resource_id, g.plan_id,
               g.override_id, sum(g.quantity) AS quantity, min(g.hour) AS first_hour,
               max(g.hour) AS last_hour
        FROM g GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ), priced AS (
        SELECT s.*, pp.unit, pp.unit_quantity,
               coalesce(o.price_micros, pp.price_micros) AS unit_price_micros,
               coalesce(o.discount_bp, 0) AS discount_bp
        FROM s
        LEFT JOIN LATERAL (SELECT x.unit, x.unit_quantity, x.price_micros FROM plan_prices x
                           WHERE x.plan_id = s.plan_id AND x.meter = s.price_meter
                             AND x.sku IN (s.sku, '')
                           ORDER BY x.sku DESC LIMIT 1) pp ON true
        LEFT JOIN tenant_price_overrides o ON o.id = s.override_id
    ), exact AS (
        -- n / d micros, exactly: n = quantity * price * (10000 - discount), d = unit * 10000.
        SELECT priced.*,
               priced.quantity::numeric * priced.unit_price_micros
                   * (10000 - priced.discount_bp) AS n,
               priced.unit_quantity::numeric * 10000 AS d
        FROM priced
    )
    SELECT e.tenant_id, e.kind, e.meter, e.sku, e.resource_id, e.plan_id,
           coalesce(e.unit, ''), e.unit_quantity, e.unit_price_micros, e.discount_bp,
           e.quantity, round(e.n / e.d, 6),
           -- Half-up to the cent (10 000 micros) in integer arithmetic: floor((2n + c) / 2c)
           -- cents with c = 10 000 d. numeric's div() is exact on integers of any size.
           (div(2 * e.n + e.d * 10000, 2 * e.d * 10000) * 10000)::bigint,
           e.first_hour, e.last_hour
    FROM exact e
$$;
