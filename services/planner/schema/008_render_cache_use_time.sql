-- Render cache eviction (issue #23: the cache was never evicted). use_time
-- is when an entry was last written or read (a read refreshes it at most
-- once an hour, so a hot entry costs no write per hit); the planner's
-- RenderCacheEvictor deletes entries unused for --render-cache-max-age and,
-- with --render-cache-max-entries, the least recently used beyond that many.
ALTER TABLE render_cache ADD COLUMN IF NOT EXISTS use_time timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS render_cache_use_time ON render_cache (use_time);
