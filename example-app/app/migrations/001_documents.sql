-- Documents with a translated title (locale tag -> text), and one counter per tenant.
CREATE TABLE documents (
    id         bigserial PRIMARY KEY,
    title      jsonb NOT NULL CHECK (jsonb_typeof(title) = 'object' AND title <> '{}'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE counter (
    id    int PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO counter VALUES (1, 0);
