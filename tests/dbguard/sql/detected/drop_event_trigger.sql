-- Commands on event triggers fire no event trigger: dropping one is possible, and detected.
DROP EVENT TRIGGER datasafe_guard_drop;
