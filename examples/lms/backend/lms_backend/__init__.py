"""The demo LMS backend: just enough of a real service to be deployed, updated and checked."""
