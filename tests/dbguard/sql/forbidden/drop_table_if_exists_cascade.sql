-- expect: drop-table
drop table if exists public.test_results cascade;
