-- The three data sources of the demo. Idempotent: safe to run again.
CREATE TABLE IF NOT EXISTS data_1 (id INT PRIMARY KEY, name VARCHAR(255));
CREATE TABLE IF NOT EXISTS data_2 (id INT PRIMARY KEY, name VARCHAR(255));
CREATE TABLE IF NOT EXISTS data_3 (id INT PRIMARY KEY, name VARCHAR(255));
