-- A new admin role approves nothing until a second, confirmed admin confirms it
-- (Person.admin_confirmed_by; docs/threat-model.md, "People and admins"). Admins of a
-- home made before the rule were trusted as they were, so they are confirmed here, as
-- 'tre' (by construction, as a new home's first admin is).
UPDATE people
SET body = json_set(body, '$.admin_confirmed_by', 'tre')
WHERE EXISTS (SELECT 1 FROM json_each(body, '$.roles') WHERE value = 'admin')
  AND COALESCE(json_extract(body, '$.admin_confirmed_by'), '') = '';
