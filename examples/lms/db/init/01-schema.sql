-- The LMS schema: the tables the protocol calls critical. Runs once, when the
-- postgres_data volume is first initialised (docker-entrypoint-initdb.d).
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    username    text NOT NULL UNIQUE,
    full_name   text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'technician', 'pathologist', 'reception', 'billing')),
    email       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patients (
    id             bigserial PRIMARY KEY,
    mrn            text NOT NULL UNIQUE,            -- medical record number
    full_name      text NOT NULL,
    date_of_birth  date NOT NULL,
    sex            char(1) NOT NULL CHECK (sex IN ('F', 'M', 'O')),
    phone          text,
    address        text,
    medical_notes  text,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE visits (
    id            bigserial PRIMARY KEY,
    patient_id    bigint NOT NULL REFERENCES patients (id),
    registered_by bigint NOT NULL REFERENCES users (id),
    visit_code    text NOT NULL UNIQUE,
    visited_at    timestamptz NOT NULL,
    referring_doctor text,
    clinical_history text,
    status        text NOT NULL CHECK (status IN ('registered', 'collected', 'reported', 'cancelled'))
);
CREATE INDEX visits_patient_id_idx ON visits (patient_id);

CREATE TABLE test_results (
    id            bigserial PRIMARY KEY,
    visit_id      bigint NOT NULL REFERENCES visits (id),
    test_code     text NOT NULL,
    test_name     text NOT NULL,
    result_value  text NOT NULL,
    unit          text,
    reference_range text,
    flag          text CHECK (flag IN ('normal', 'low', 'high', 'critical')),
    interpretation text,
    approved_by   bigint REFERENCES users (id),
    reported_at   timestamptz
);
CREATE INDEX test_results_visit_id_idx ON test_results (visit_id);

CREATE TABLE invoices (
    id            bigserial PRIMARY KEY,
    visit_id      bigint NOT NULL REFERENCES visits (id),
    invoice_no    text NOT NULL UNIQUE,
    amount_cents  bigint NOT NULL CHECK (amount_cents >= 0),
    paid_cents    bigint NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),
    payment_mode  text,
    line_items    text NOT NULL,
    issued_at     timestamptz NOT NULL
);
CREATE INDEX invoices_visit_id_idx ON invoices (visit_id);
