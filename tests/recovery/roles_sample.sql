--
-- PostgreSQL database cluster dump
--

\restrict abc123

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE "Odd ""Role""";
ALTER ROLE "Odd ""Role""" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE app_reader;
ALTER ROLE app_reader WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc;def$x:y';
COMMENT ON ROLE app_reader IS 'reads; only';
CREATE ROLE lms_user;
ALTER ROLE lms_user WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;

--
-- User Configurations
--

ALTER ROLE app_reader SET search_path TO 'public';
ALTER ROLE app_reader IN DATABASE lms_slncity SET work_mem TO '8MB';

--
-- Role memberships
--

GRANT app_reader TO "Odd ""Role""" GRANTED BY lms_user;
GRANT app_reader TO lms_user GRANTED BY lms_user;

\unrestrict abc123

--
-- PostgreSQL database cluster dump complete
--

