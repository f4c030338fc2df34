CREATE INDEX IF NOT EXISTS visits_visited_at_idx ON visits (visited_at);
