-- Change signals for the documents and the counter: serve logs each change and the
-- page lists the tenant's recent ones, whoever made them (a request, the sql command,
-- psql, another replica).
SELECT tenant_registry.track_changes('documents');
SELECT tenant_registry.track_changes('counter');
