"""Every permission vccweb checks, named once. Roles (calls/roles.py) grant them; views and rules check them."""

from __future__ import annotations

VIEW_CONTACT = "calls.view_contact"
ADD_CONTACT = "calls.add_contact"
CHANGE_CONTACT = "calls.change_contact"
DELETE_CONTACT = "calls.delete_contact"
EXPORT_CONTACTS = "calls.export_contacts"
VIEW_AGENT = "calls.view_agent"
VIEW_CALL = "calls.view_call"
PLACE_CALL = "calls.place_call"
PLACE_GROUP_CALL = "calls.place_group_call"
OVERRIDE_DO_NOT_CALL = "calls.override_do_not_call"
VIEW_ALL_CALLS = "calls.view_all_calls"
VIEW_REPORTS = "calls.view_reports"
VIEW_INTEGRATION_HEALTH = "calls.view_integration_health"
RUN_SYNC = "calls.add_syncrun"
RETRY_JOB = "calls.retry_job"  # admins only (they hold every permission of calls: calls/roles.py)
# The outgoing webhooks' pages (calls/views/webhooks.py): admins only, as they hold every permission of calls.
MANAGE_WEBHOOKS = "calls.change_webhookendpoint"
# Privacy (calls/privacy/): the retention policy is the admins' (they hold every permission of calls); supervisors
# erase contacts and download a contact's data.
CHANGE_RETENTION = "calls.change_retentionpolicy"
ERASE_CONTACT = "calls.erase_contact"
EXPORT_SUBJECT_DATA = "calls.export_subject_data"
# Calling hours (admins set them; supervisors may call outside them, giving a reason).
CHANGE_CALLING_HOURS = "calls.change_callinghours"
OVERRIDE_CALLING_HOURS = "calls.override_calling_hours"
# Callbacks: agents promise and keep their own; supervisors see everyone's.
VIEW_CALLBACK = "calls.view_callback"
ADD_CALLBACK = "calls.add_callback"
CHANGE_CALLBACK = "calls.change_callback"
# Call queues: supervisors make and run them; agents work the ones given to them.
VIEW_QUEUE = "calls.view_callqueue"
WORK_QUEUE = "calls.work_callqueue"
ADD_QUEUE = "calls.add_callqueue"
CHANGE_QUEUE = "calls.change_callqueue"
