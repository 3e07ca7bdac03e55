
CREATE FUNCTION tenantry_schema_event() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_EVENT <> 'sql_drop'
       OR EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE object_type = 'schema') THEN
        PERFORM pg_notify('tenantry_registry', 'schema');
    END IF;
END
$$;
