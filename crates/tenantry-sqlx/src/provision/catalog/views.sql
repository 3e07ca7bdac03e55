SELECT format('CREATE %s %I%s AS %s %s;',
              CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END, c.relname,
              CASE WHEN c.reloptions IS NULL THEN '' ELSE ' WITH (' || array_to_string(c.reloptions, ', ') || ')' END,
              rtrim(pg_get_viewdef(c.oid), ';'),
              CASE WHEN c.relkind = 'v' THEN '' WHEN c.relispopulated THEN 'WITH DATA' ELSE 'WITH NO DATA' END)
  FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('v', 'm') ORDER BY c.oid
