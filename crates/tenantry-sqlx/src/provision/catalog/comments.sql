SELECT format('COMMENT ON %s IS %L;', target, description) FROM (
    SELECT CASE WHEN d.objsubid > 0 THEN format('COLUMN %I.%I', c.relname, a.attname)
                ELSE format('%s %I', CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW'
                     WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX' END,
                     c.relname) END AS target, d.description, 1 AS ord, c.oid AS o, d.objsubid AS sub
      FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
     WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'i')
    UNION ALL
    SELECT format('CONSTRAINT %I ON %I', k.conname, c.relname), d.description, 2, k.oid, 0
      FROM pg_description d JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = d.objoid
      JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT format('%s %s', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, p.oid::regprocedure),
           d.description, 3, p.oid, 0
      FROM pg_description d JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid
     WHERE p.pronamespace = $1::regnamespace
    UNION ALL
    SELECT format('TRIGGER %I ON %I', t.tgname, c.relname), d.description, 4, t.oid, 0
      FROM pg_description d JOIN pg_trigger t ON d.classoid = 'pg_trigger'::regclass AND t.oid = d.objoid
      JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace
) x ORDER BY ord, o, sub
