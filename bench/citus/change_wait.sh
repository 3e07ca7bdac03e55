#!/usr/bin/env bash
# How long a change of one busy tenant waits on a worker (node-affine routing, docs/citus.md):
# 8 then 16 pgbench clients on one worker keep one tenant's transactions overlapping (each holds
# the check for 2 ms) while the tenant's epoch is bumped on the coordinator three times; printed
# per check: the UPDATE's waits. `adv` is the check Tenantry sends (the tenant's advisory lock
# shared, a trigger on the workers' copies takes it exclusively), `share` the row lock FOR SHARE
# it sent before session 9.
#
#   scripts/citus.sh start && bench/citus/change_wait.sh
#
# CITUS (default postgres://postgres@127.0.0.1:9700/tenantry) is the coordinator, WORKER
# (default the same on port 9701) a worker. Makes and drops the table public.fair_epochs.
set -euo pipefail
PGB="${PG_BIN:-/usr/lib/postgresql/15/bin}"
C="${CITUS:-postgres://postgres@127.0.0.1:9700/tenantry}?sslmode=disable"
W="${WORKER:-postgres://postgres@127.0.0.1:9701/tenantry}?sslmode=disable"
$PGB/psql -X -q "$C" <<'SQL'
DROP TABLE IF EXISTS public.fair_epochs;
CREATE TABLE public.fair_epochs (tenant_id bigint PRIMARY KEY, epoch bigint NOT NULL DEFAULT 1);
SELECT create_reference_table('public.fair_epochs');
INSERT INTO public.fair_epochs (tenant_id) VALUES (1);
CREATE OR REPLACE FUNCTION public.fair_wait() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF NOT pg_catalog.citus_is_coordinator() THEN
    PERFORM pg_advisory_xact_lock(1952804468, (OLD.tenant_id & 2147483647)::int);
  END IF;
  RETURN NEW;
END $f$;
BEGIN;
SET LOCAL citus.enable_unsafe_triggers TO on;
CREATE TRIGGER fair_wait BEFORE UPDATE ON public.fair_epochs FOR EACH ROW EXECUTE FUNCTION public.fair_wait();
COMMIT;
SQL
shard=$($PGB/psql -X -tA "$C" -c "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'public.fair_epochs'::regclass")
pgb="$(mktemp -d)"
printf 'BEGIN;\nSELECT pg_advisory_xact_lock_shared(1952804468, 1);\nSELECT epoch FROM public.fair_epochs_%s WHERE tenant_id = 1;\nSELECT pg_sleep(0.002);\nCOMMIT;\n' $shard > $pgb/adv.sql
printf 'BEGIN;\nSELECT epoch FROM public.fair_epochs_%s WHERE tenant_id = 1 FOR SHARE;\nSELECT pg_sleep(0.002);\nCOMMIT;\n' $shard > $pgb/share.sql
for mode in adv share; do for clients in 8 16; do
  $PGB/pgbench -n -c $clients -j 2 -T 14 -f $pgb/$mode.sql "$W" > $pgb/out.txt 2>&1 &
  pid=$!; sleep 3; waits=""
  for i in 1 2 3; do
    s=$(date +%s.%N); $PGB/psql -X -q "$C" -c "UPDATE public.fair_epochs SET epoch = epoch + 1 WHERE tenant_id = 1"; e=$(date +%s.%N)
    waits="$waits $(python3 -c "print(f'{$e-$s:.3f}')")"; sleep 1
  done
  wait $pid; tps=$(awk '/^tps/ {print int($3)}' $pgb/out.txt)
  echo "$mode clients=$clients tps=$tps update waits (s):$waits"
done; done
$PGB/psql -X -q "$C" -c "DROP TABLE public.fair_epochs; DROP FUNCTION public.fair_wait()"
rm -rf "$pgb"
