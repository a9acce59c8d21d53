-- One million contacts with ~1.33 million numbers and ~300,000 calls, for bench/search_bench.py.
-- Deterministic (hashes of the row number, not random()), so every run searches the same data.
-- :contacts is the number of contacts; psql substitutes it.

TRUNCATE calls_callevent, calls_call, calls_contactphone, calls_contact RESTART IDENTITY CASCADE;

CREATE TEMP TABLE first_names(i int, v text);
INSERT INTO first_names SELECT row_number() OVER () - 1, v FROM unnest(string_to_array(
  'Muhammad Olivia Amelia Isla Ava Oliver George Noah Arthur Leo Harry Oscar Archie Henry Theodore Freddie Jack '
  'Charlie Theo Lily Freya Ivy Florence Willow Rosie Sophia Isabella Grace Mia Evie Sienna Ella Poppy Elsie '
  'Alfie Thomas James William Lucas Jacob Ethan Joshua Isaac Edward Max Mohammed Alexander Daniel Samuel Joseph '
  'Priya Aisha Fatima Zara Amir Omar Hassan Yusuf Ibrahim Ali Ravi Anjali Deepak Sanjay Wei Jing Hiroshi Yuki '
  'Kwame Ama Chinedu Ngozi Tunde Femi Siobhan Niamh Ciaran Aoife Eilidh Fraser Hamish Morag Dafydd Gareth Rhys '
  'Catrin Lowri Ewan Callum Ryan Sean Patrick Bridget Margaret Elizabeth Catherine Victoria Alexandra Natalia',
  ' ')) AS v;

CREATE TEMP TABLE last_names(i int, v text);
INSERT INTO last_names SELECT row_number() OVER () - 1, v FROM unnest(string_to_array(
  'Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White Roberts '
  'Green Hall Wood Jackson Clarke Patel Khan Lewis James Phillips Mason Mitchell Rose Davis Rodriguez Cox '
  'Alexander Morris Hughes Turner Martin Cooper Hill Ward Morgan Harris Young King Allen Scott Baker Adams '
  'Campbell Anderson Edwards Stewart Bell Murray Kelly Clark Reid Watson Ahmed Ali Hussain Begum Shah Singh '
  'Kaur Okafor Mensah Nguyen Chen Wang Kowalski Nowak Murphy Byrne Doyle Walsh Macdonald Fraser Grant Hopper '
  'Lovelace Turing Babbage Franklin Curie Darwin Newton Faraday Maxwell Hawking Pankhurst Nightingale Brunel',
  ' ')) AS v;

CREATE TEMP TABLE company_words(i int, v text);
INSERT INTO company_words SELECT row_number() OVER () - 1, v FROM unnest(string_to_array(
  'Brightwater Cobalt Northgate Riverside Summit Oakwood Pennine Harbour Silverline Greenfield Redbrook Westmoor '
  'Highland Meridian Crown Beacon Falcon Kestrel Thames Severn Mersey Clyde Tyne Avon Granite Copper Amber Ivory '
  'Maple Willow Cedar Elm Ash Birch Hazel Rowan Heather Thistle Lakeside Hillcrest Fairview Stonebridge Ironside '
  'Bluebell Orchard Meadow Marsh Quarry Anchor Compass Lantern Harvest Pioneer Sterling Regent Victoria Albion',
  ' ')) AS v;

CREATE TEMP TABLE company_kinds(i int, v text);
INSERT INTO company_kinds SELECT row_number() OVER () - 1, v FROM unnest(string_to_array(
  'Energy Dental Logistics Insurance Solicitors Builders Motors Foods Pharmacy Consulting Software Estates '
  'Engineering Transport Media Print Telecom Security Catering Cleaning Recruitment Finance Plumbing Electrical',
  ' ')) AS v;

-- Owners: 50 users, as a team might have.
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT '!', false, 'owner' || g, 'Owner', g::text, '', false, true, now()
FROM generate_series(1, 50) g
ON CONFLICT (username) DO NOTHING;

CREATE TEMP TABLE owners AS SELECT row_number() OVER (ORDER BY id) - 1 AS i, id FROM auth_user WHERE username LIKE 'owner%';

INSERT INTO calls_contact (id, name, company, email, owner_id, notes, do_not_call, consent_override, created_at, updated_at)
SELECT g,
       f.v || ' ' || l.v || CASE WHEN h % 7 = 0 THEN '-' || l2.v ELSE '' END,
       CASE WHEN h % 10 = 0 THEN '' ELSE cw.v || ' ' || ck.v END,
       CASE WHEN h % 5 = 0 THEN '' ELSE lower(f.v) || '.' || lower(l.v) || g || '@' ||
            CASE WHEN h % 10 = 0 THEN 'example.com' ELSE lower(cw.v) || lower(ck.v) || '.co.uk' END END,
       CASE WHEN h % 3 = 0 THEN NULL ELSE o.id END,
       '', (h % 100 = 0), '',
       timestamptz '2020-01-01' + (g * interval '2 minutes'),
       timestamptz '2020-01-01' + (g * interval '2 minutes')
FROM (SELECT g, (hashtext(g::text) & 2147483647) AS h, (hashtext('x' || g) & 2147483647) AS h2
      FROM generate_series(1, :contacts) g) s
JOIN first_names f ON f.i = s.h % (SELECT count(*) FROM first_names)
JOIN last_names l ON l.i = s.h2 % (SELECT count(*) FROM last_names)
JOIN last_names l2 ON l2.i = (s.h2 / 100) % (SELECT count(*) FROM last_names)
JOIN company_words cw ON cw.i = (s.h / 100) % (SELECT count(*) FROM company_words)
JOIN company_kinds ck ON ck.i = (s.h2 / 10000) % (SELECT count(*) FROM company_kinds)
JOIN owners o ON o.i = (s.h / 1000) % (SELECT count(*) FROM owners);

SELECT setval(pg_get_serial_sequence('calls_contact', 'id'), (SELECT max(id) FROM calls_contact));

-- Numbers: every contact has a primary one; a third have a second. Mobiles (07), London (020), other UK areas,
-- and a few abroad. The digits come from the hash, so they look random and are spread over the whole range.
INSERT INTO calls_contactphone (contact_id, label, number, is_primary, do_not_call)
SELECT g, CASE WHEN h % 2 = 0 THEN 'mobile' ELSE 'work' END,
       CASE WHEN h % 2 = 0 THEN '+447' || lpad(((h / 2) % 1000000000)::text, 9, '0')
            WHEN h % 5 = 1 THEN '+4420' || lpad(((h / 5) % 100000000)::text, 8, '0')
            WHEN h % 5 = 3 THEN '+44' || (ARRAY['161', '113', '121', '117', '131', '141', '151', '191'])[1 + (h / 7) % 8]
                                    || lpad(((h / 11) % 10000000)::text, 7, '0')
            WHEN h % 5 = 4 THEN '+1' || (ARRAY['212', '312', '415', '617'])[1 + (h / 7) % 4]
                                    || lpad(((h / 11) % 10000000)::text, 7, '0')
            ELSE '+33' || (1 + (h / 7) % 5) || lpad(((h / 11) % 100000000)::text, 8, '0') END,
       true, (h % 200 = 0)
FROM (SELECT g, (hashtext('p' || g) & 2147483647) AS h FROM generate_series(1, :contacts) g) s;

INSERT INTO calls_contactphone (contact_id, label, number, is_primary, do_not_call)
SELECT g, 'work', '+4420' || lpad(((h / 5) % 100000000)::text, 8, '0'), false, false
FROM (SELECT g, (hashtext('q' || g) & 2147483647) AS h FROM generate_series(1, :contacts) g) s
WHERE g % 3 = 0;

-- Calls: ~30% of contacts were called, some several times; the outcome varies.
INSERT INTO calls_call (request_id, to_number, presented_clid, clid_reason, consent, consent_reason,
                        dnc_override_reason, regarding, application, vcc_call_id, vcc_status, recording_status,
                        result_code, result_party, result_reason, disposition_code, notes, state, error_message,
                        error_display, requested_at, changed_at, trace_id, contact_id, outcome)
SELECT md5('call' || g || '-' || k)::uuid, '+442079460000', '', '', '', '', '', '', 'vccweb', '', '', '', '', '',
       '', '', '', 'ended', '', '', t, t, '', g,
       (ARRAY['answered', 'answered', 'answered', 'no_answer', 'busy', 'failed', 'agent_no_answer'])[1 + (g + k) % 7]
FROM generate_series(1, :contacts) g, generate_series(1, 3) k,
     LATERAL (SELECT timestamptz '2026-01-01'
                     + ((hashtext('t' || g || k) & 2147483647) % 28000000) * interval '1 second' AS t) at_time
WHERE (hashtext('c' || g) & 2147483647) % 10 < 3 AND k <= 1 + g % 3;

ANALYZE calls_contact;
ANALYZE calls_contactphone;
ANALYZE calls_call;
