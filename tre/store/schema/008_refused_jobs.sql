-- One word per meaning (issue 27): a job refused at submission is 'refused'; 'rejected'
-- is left to a job whose outputs the checkers rejected. Before this, both were
-- 'rejected'. The two can be told apart by what the job left behind:
--
--   rejected at review: reached awaiting_review, so it ran (attempts >= 1, a backend)
--     and has an output request (the dispatcher writes it in the transaction that
--     makes the job awaiting_review; a release without one is impossible);
--   refused at submission: went submitted -> rejected in the transaction that made it,
--     so it has no output request, no backend and no attempts.
--
-- Rule: a job in state 'rejected' with no output request, attempts 0 (or absent) and
-- no backend (empty or absent) becomes 'refused', in the state column and in its JSON
-- body; its reason and updated_at stay. Every other 'rejected' job stays 'rejected'.
-- The audit log is not touched (it is append-only): its 'job.rejected' events from
-- 'submitted' are read as 'job.refused' (tre.audit.AuditEvent.meaning).
UPDATE jobs
SET state = 'refused', body = json_set(body, '$.state', 'refused')
WHERE state = 'rejected'
  AND NOT EXISTS (SELECT 1 FROM output_requests AS r WHERE r.job_id = jobs.id)
  AND COALESCE(json_extract(body, '$.attempts'), 0) = 0
  AND COALESCE(json_extract(body, '$.backend'), '') = '';
