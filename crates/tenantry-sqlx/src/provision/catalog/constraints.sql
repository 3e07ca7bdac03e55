SELECT c.relname::text, k.contype::text, format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)),
       (SELECT r.relname::text FROM pg_class r WHERE r.oid = k.confrelid AND r.relnamespace = $1::regnamespace),
       k.contype <> 'f' OR EXISTS (SELECT 1 FROM pg_constraint u WHERE u.conrelid = k.confrelid
                                    AND u.conindid = k.conindid AND u.contype IN ('p', 'u'))
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE c.relnamespace = $1::regnamespace AND k.contype IN ('p', 'u', 'c', 'x', 'f')
 ORDER BY k.contype = 'f', k.oid
