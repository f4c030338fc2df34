-- The bulk DELETE the dbguard benchmark times (inside a transaction it rolls back).
DELETE FROM bulk_accounts WHERE aid <= 50000;
