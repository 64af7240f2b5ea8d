-- The Hana front end's tables that the voice service reads or that the front end's routes
-- write, with the column types of ../shared/frontend-contract.md. Loaded into a private test
-- PostgreSQL so that a template is read, and a result stored, with the real column types:
-- a fraction sent for an integer column fails here as it does in production.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE hospitals (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(255) NOT NULL,
    name_ar varchar(255)
);

-- Section 1: questionnaire templates.
CREATE TABLE template_versions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    template_id uuid UNIQUE NOT NULL,
    version integer DEFAULT 1,
    name varchar(255),
    name_ar varchar(255),
    description text,
    description_ar text,
    target_audience varchar(50),
    estimated_duration_minutes integer DEFAULT 5,
    is_published boolean DEFAULT false,
    questions_json jsonb NOT NULL,
    created_by uuid,
    created_at timestamptz DEFAULT now()
);

-- Section 2: what the results route stores.
CREATE TABLE template_responses (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    template_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    hospital_id uuid REFERENCES hospitals(id),
    campaign_id uuid,
    call_session_id uuid,
    response_time_seconds integer,
    completion_rate numeric,
    answers_json jsonb NOT NULL,
    metadata_json jsonb,
    response_hash text UNIQUE NOT NULL,
    created_at timestamptz DEFAULT now()
);

-- Section 3: the billing side of a call.
CREATE TABLE call_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id uuid REFERENCES hospitals(id),
    status varchar(50) DEFAULT 'initiated',
    duration integer,
    billed boolean DEFAULT false,
    updated_at timestamptz DEFAULT now()
);

-- The front end's seeded example template (section 1).
INSERT INTO template_versions (template_id, name, name_ar, is_published, questions_json)
VALUES (
    'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
    'Patient satisfaction survey',
    'استبيان رضا المريض',
    true,
    '[
      {"id": "q1", "text": "Were you satisfied with the care you received?",
       "text_ar": "هل كنت راضياً عن الرعاية التي تلقيتها؟", "order": 1, "type": "yes_no",
       "expected_responses": ["نعم", "لا", "غير متأكد"]},
      {"id": "q2", "text": "How would you rate the service from one to five?",
       "text_ar": "كيف تقيم الخدمة من واحد إلى خمسة؟", "order": 2, "type": "rating",
       "min_rating": 1, "max_rating": 5, "expected_responses": ["1", "2", "3", "4", "5"]},
      {"id": "q3", "text": "Would you recommend the hospital to others?",
       "text_ar": "هل تنصح الآخرين بالمستشفى؟", "order": 3, "type": "yes_no",
       "expected_responses": ["نعم", "لا"]}
    ]'::jsonb
);
