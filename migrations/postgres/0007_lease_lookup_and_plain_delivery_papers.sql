-- Claiming rows whose sender died looks for status = 'sending' AND lease_expires_at < now.
-- Through deliveries_due that meant visiting every row ever claimed since the last vacuum
-- (each claim leaves a dead 'sending' entry behind): 34 ms a claim after 60,000 sends. This
-- index holds in-flight rows by lease, and its dead entries have leases still to come, so the
-- look-up reads only rows whose lease has actually run out.
CREATE INDEX deliveries_leases ON deliveries (lease_expires_at) WHERE status = 'sending';

-- delivery_papers rows are written only in the transaction that inserts their delivery, with
-- the ids it returned, and nothing deletes deliveries: the foreign key checked what cannot
-- happen, at one trigger per row (about half of planning 100,000 digests). The look-ups join
-- deliveries, so a row without its delivery would be ignored anyway.
ALTER TABLE delivery_papers DROP CONSTRAINT IF EXISTS delivery_papers_delivery_id_fkey;
