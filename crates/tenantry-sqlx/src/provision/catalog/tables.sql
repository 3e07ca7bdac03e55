SELECT c.relname::text, c.relpersistence::text, array_to_string(c.reloptions, ', ')
  FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY c.oid
