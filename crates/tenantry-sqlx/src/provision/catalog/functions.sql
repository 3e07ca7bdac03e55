SELECT pg_get_functiondef(p.oid), p.proname::text,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                AND d.refclassid = 'pg_type'::regclass
                AND d.refobjid IN (SELECT oid FROM pg_type WHERE typnamespace = $1::regnamespace))
  FROM pg_proc p WHERE p.pronamespace = $1::regnamespace ORDER BY p.oid
