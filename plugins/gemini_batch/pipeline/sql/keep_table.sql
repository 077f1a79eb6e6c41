-- Publish a built table under its content-addressed name, once: a table of that name already
-- holds the same content (its name is the content's fingerprint), and a job may be reading it,
-- so it is never replaced.
CREATE TABLE IF NOT EXISTS {{destination}} AS
SELECT * FROM {{source}}
