-- expect: truncate
/* nightly cleanup */ tRuNcAtE TABLE ONLY "invoices" -- reset
;
