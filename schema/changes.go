package schema

// Change signals: tables opt in with ChangesTrackSQL's function, in a migration; their
// statement triggers send each statement's primary keys with NOTIFY on ChangesChannel,
// which PostgreSQL delivers to listeners only when the transaction commits. Package
// changes listens and hands them to subscribers.

// ChangesChannel is the NOTIFY channel of change signals, in the tenants' database.
const ChangesChannel = "tenant_changes"

// payloadLimit is the most a change signal's payload holds, in bytes: below
// PostgreSQL's 8000-byte NOTIFY limit, which fails the whole transaction when
// exceeded. A statement's keys are split over as many signals as they need.
const payloadLimit = "7900"

// changesVersion marks the functions below (as the trigger function's comment): a
// database whose functions carry another gets these.
const changesVersion = "tenant change signals 4"

// changesSQL installs, in the registry's schema, the trigger function and the
// functions a migration calls to track a table (track_changes), every table of its
// schema (track_schema_changes), or to stop (untrack_changes).
//
// A payload is JSON: {"s": schema, "t": table, "o": "I"|"U"|"D"|"T", "n": the signal's
// number in its transaction, "k": [key, …]}, each key the JSON array of its primary
// key columns as text (in UTC and ISO styles, whatever the writer's settings), in the
// key's column order ("k" is empty for a TRUNCATE). The primary key is read from the
// catalog at each statement, so a migration that changes it needs no new triggers
// (and one that drops it gets null keys). A key is at most a btree entry (about
// 2.7 kB), so one always fits in a payload; one escaped beyond the limit goes as null
// rather than fail the statement. A partition reports as its partitioned table.
const changesSQL = `
DROP FUNCTION IF EXISTS ` + RegistrySchema + `.send_changes(text, text[]);

CREATE OR REPLACE FUNCTION ` + RegistrySchema + `.notify_changes() RETURNS trigger
LANGUAGE plpgsql
-- Keys as text read the same whoever writes: not in the writer's time zone or styles.
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = '1' SET bytea_output = 'hex'
AS $fn$
DECLARE
	rel oid := coalesce(pg_catalog.pg_partition_root(TG_RELID), TG_RELID); -- a partition reports as its table
	head text := '{"s":' || to_json(TG_TABLE_SCHEMA::text) || ',"t":' || to_json(TG_TABLE_NAME::text) ||
		',"o":"' || left(TG_OP, 1) || '"';
	key_sql text;
	items text[] := '{}';
	size int := 0; -- of the items and their commas
	item text;
	chunks text[] := '{}'; -- the signals' keys
	seq int;
BEGIN
	IF rel <> TG_RELID THEN
		SELECT '{"s":' || to_json(n.nspname::text) || ',"t":' || to_json(c.relname::text) || ',"o":"' || left(TG_OP, 1) || '"'
		  INTO head FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
	END IF;
	IF TG_OP = 'TRUNCATE' THEN -- no rows, no key to look up
		key_sql := 'SELECT NULL::text WHERE false';
		chunks := '{""}';
	ELSE
		SELECT 'SELECT json_build_array(' || string_agg(format('%I::text', a.attname), ', ' ORDER BY pk.ord) || ')::text FROM changed'
		  INTO key_sql
		  FROM pg_catalog.pg_index i
		 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS pk(attnum, ord)
		  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = pk.attnum
		 WHERE i.indrelid = TG_RELID AND i.indisprimary;
		-- A key dropped by a later migration: every row is still reported, without a
		-- key, rather than fail the application's statement.
		key_sql := coalesce(key_sql, 'SELECT ''null'' FROM changed');
	END IF;
	FOR item IN EXECUTE key_sql LOOP
		IF octet_length(head) + octet_length(item) + 32 > ` + payloadLimit + ` THEN
			item := 'null';
		END IF;
		IF size > 0 AND octet_length(head) + size + octet_length(item) + 32 > ` + payloadLimit + ` THEN
			chunks := chunks || array_to_string(items, ',');
			items := '{}';
			size := 0;
		END IF;
		items := items || item; -- in place: a statement's keys cost linear time
		size := size + octet_length(item) + 1;
	END LOOP;
	IF size > 0 THEN
		chunks := chunks || array_to_string(items, ',');
	END IF;
	-- Each signal gets a number in the transaction: PostgreSQL delivers identical
	-- payloads of one transaction once, which would fold insert, delete, insert of a
	-- row. (Here, not in a function of the registry's schema, which a tenant's role may
	-- not use.)
	FOREACH item IN ARRAY chunks LOOP
		seq := coalesce(nullif(current_setting('tenant.changes_seq', true), ''), '0')::int + 1;
		PERFORM set_config('tenant.changes_seq', seq::text, true);
		PERFORM pg_notify('` + ChangesChannel + `', head || ',"n":' || seq || ',"k":[' || item || ']}');
	END LOOP;
	RETURN NULL;
END $fn$;

CREATE OR REPLACE FUNCTION ` + RegistrySchema + `.untrack_changes(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	part regclass;
	name text;
BEGIN
	FOR part IN SELECT tbl UNION SELECT relid FROM pg_catalog.pg_partition_tree(tbl) LOOP
		FOR name IN SELECT tgname FROM pg_catalog.pg_trigger WHERE tgrelid = part AND tgname IN
			('tenant_changes_insert', 'tenant_changes_update', 'tenant_changes_delete', 'tenant_changes_truncate')
		LOOP
			EXECUTE format('DROP TRIGGER %I ON %s', name, part);
		END LOOP;
	END LOOP;
END $fn$;

-- A partitioned table's partitions get the triggers too, for statements that name a
-- partition (a statement fires the triggers of the table it names); partitions added
-- later are tracked when track_changes runs again.
CREATE OR REPLACE FUNCTION ` + RegistrySchema + `.track_changes(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	fn text := '` + RegistrySchema + `.notify_changes()';
	part regclass;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = tbl AND indisprimary) THEN
		RAISE EXCEPTION 'tenant: table % has no primary key, which change signals carry', tbl
			USING ERRCODE = 'invalid_table_definition';
	END IF;
	PERFORM ` + RegistrySchema + `.untrack_changes(tbl);
	FOR part IN SELECT tbl UNION SELECT relid FROM pg_catalog.pg_partition_tree(tbl) LOOP
		EXECUTE format('CREATE TRIGGER tenant_changes_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION %s', part, fn);
		EXECUTE format('CREATE TRIGGER tenant_changes_update AFTER UPDATE ON %s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION %s', part, fn);
		EXECUTE format('CREATE TRIGGER tenant_changes_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION %s', part, fn);
		EXECUTE format('CREATE TRIGGER tenant_changes_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s', part, fn);
	END LOOP;
END $fn$;

CREATE OR REPLACE FUNCTION ` + RegistrySchema + `.track_schema_changes() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	tbl regclass;
BEGIN
	FOR tbl IN SELECT c.oid FROM pg_catalog.pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		  AND EXISTS (SELECT 1 FROM pg_catalog.pg_index WHERE indrelid = c.oid AND indisprimary)
		ORDER BY c.relname
	LOOP
		PERFORM ` + RegistrySchema + `.track_changes(tbl);
	END LOOP;
END $fn$;`
