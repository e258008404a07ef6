-- Demo rows: data_1 holds ids 1-10 and 31-40, data_2 11-20 and 41-50, data_3 21-30 and 51-60,
-- each named 'Test <id>'. Idempotent: existing ids are left as they are.
INSERT INTO data_1 (id, name)
SELECT i, 'Test ' || i FROM generate_series(1, 10) AS i
UNION ALL SELECT i, 'Test ' || i FROM generate_series(31, 40) AS i
ON CONFLICT (id) DO NOTHING;

INSERT INTO data_2 (id, name)
SELECT i, 'Test ' || i FROM generate_series(11, 20) AS i
UNION ALL SELECT i, 'Test ' || i FROM generate_series(41, 50) AS i
ON CONFLICT (id) DO NOTHING;

INSERT INTO data_3 (id, name)
SELECT i, 'Test ' || i FROM generate_series(21, 30) AS i
UNION ALL SELECT i, 'Test ' || i FROM generate_series(51, 60) AS i
ON CONFLICT (id) DO NOTHING;
