-- expect: truncate
DO $$ BEGIN EXECUTE 'TRUNCATE ' || quote_ident('invoices'); END $$;
