-- Billing (issue 8): metering the on/off events of meter_events (0008: elastic IPs idle and
-- associated, VPN connections) as nubo-billing metered instances and images (0006).
--
-- nubo-billing --aggregate turns each on..off interval of a (tenant, resource, meter) into
-- seconds of usage, cut at hour boundaries, in usage_records (sku from the event, '' for the
-- meters of 0008). An interval still open at the end of a batch is carried here, in the batch's
-- transaction, with the records and the watermark (docs/billing.md); the plan's minimum run is
-- an instance's and does not apply.

-- The meters running at the watermark, and since when (the time of their "on" event, truncated
-- to the second). A stopped meter has no row.
CREATE TABLE billing_meter_carry (
    tenant_id    text NOT NULL,
    resource_id  text NOT NULL,
    meter        text NOT NULL,
    sku          text NOT NULL,
    since        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, resource_id, meter)
);

-- Meter events older than an existing watermark were written before nubo-billing read them:
-- start from the meters running at the watermark, so that usage from there on is billed. (The
-- hours before it can be metered with nubo-billing --aggregate --from, as late usage.) Under the
-- billing lock, so that no batch moves the watermark meanwhile; a nubo-billing older than this
-- migration must not aggregate after it (it would move the watermark past meter events without
-- carrying them).
SELECT pg_advisory_xact_lock(billing_lock_key());
INSERT INTO billing_meter_carry (tenant_id, resource_id, meter, sku, since)
SELECT l.tenant_id, l.resource_id, l.meter, l.sku,
       date_bin('1 second', l.at, '2000-01-01 00:00:00+00')
FROM billing_watermark w
CROSS JOIN LATERAL (
    SELECT DISTINCT ON (e.tenant_id, e.resource_id, e.meter) e.*
    FROM meter_events e WHERE e.at < w.aggregated_until
    ORDER BY e.tenant_id, e.resource_id, e.meter, e.at DESC, e.id DESC
) l
WHERE l.active;
