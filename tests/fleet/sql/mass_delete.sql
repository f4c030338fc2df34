-- A migration that would empty a table: the guard must refuse it on the site, judged on the controller.
DELETE FROM visits;
