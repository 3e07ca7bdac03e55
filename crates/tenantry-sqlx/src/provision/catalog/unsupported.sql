SELECT kind || ' ' || name FROM (
    SELECT 'type' AS kind, t.typname::text AS name FROM pg_type t
     WHERE t.typnamespace = $1::regnamespace AND t.typtype <> 'c'
       AND NOT (t.typcategory = 'A' AND EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c'))
    UNION ALL
    SELECT 'relation of kind ' || c.relkind::text, c.relname::text FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND (c.relkind NOT IN ('r', 'i', 'S', 'v', 'm', 't') OR c.relispartition)
    UNION ALL
    SELECT 'inherited table', c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT 'row-level security on', c.relname::text FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND (c.relrowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
    UNION ALL
    SELECT 'privileges granted on', c.relname::text FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND c.relacl IS NOT NULL
    UNION ALL
    SELECT 'rule', r.rulename::text FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
     WHERE c.relnamespace = $1::regnamespace AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT 'routine of kind ' || p.prokind::text, p.proname::text FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace AND (p.prokind NOT IN ('f', 'p') OR p.proacl IS NOT NULL)
    UNION ALL
    SELECT 'object', n.nm FROM (
        SELECT oprname::text AS nm FROM pg_operator WHERE oprnamespace = $1::regnamespace
        UNION ALL SELECT collname::text FROM pg_collation WHERE collnamespace = $1::regnamespace
        UNION ALL SELECT stxname::text FROM pg_statistic_ext WHERE stxnamespace = $1::regnamespace
        UNION ALL SELECT cfgname::text FROM pg_ts_config WHERE cfgnamespace = $1::regnamespace
        UNION ALL SELECT conname::text FROM pg_conversion WHERE connamespace = $1::regnamespace
        UNION ALL SELECT opcname::text FROM pg_opclass WHERE opcnamespace = $1::regnamespace
    ) n
    UNION ALL
    SELECT 'trigger (disabled or replica)', t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal AND t.tgenabled <> 'O'
) u ORDER BY 1
