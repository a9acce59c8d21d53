from __future__ import annotations

from django.urls import path

from calls.views import (
    agents,
    audit,
    callbacks,
    calling,
    calllog,
    contacts,
    health,
    imports,
    privacy,
    queues,
    reports,
    stuck,
    tokens,
    vcc_events,
    webhooks,
)

# In the order README presents the pages: contacts, calling, the call log and reports, integration health.
urlpatterns = [
    # The home page ("Today": the person's callbacks), every open callback, and closing one by hand.
    path("", callbacks.home, name="home"),
    path("callbacks/", callbacks.callback_list, name="callback_list"),
    path("callbacks/<int:pk>/done/", callbacks.callback_done, name="callback_done"),
    path("callbacks/<int:pk>/cancel/", callbacks.callback_cancel, name="callback_cancel"),
    # Contacts: the list and its search, a contact's page, the form, import and export.
    path("contacts/", contacts.contact_list, name="contact_list"),
    path("contacts/new/", contacts.contact_create, name="contact_create"),
    path("contacts/<int:pk>/", contacts.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", contacts.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", contacts.contact_delete, name="contact_delete"),
    path("contacts/import/", imports.import_start, name="contact_import"),
    path("contacts/import/<uuid:pk>/", imports.import_preview, name="contact_import_preview"),
    path("contacts/import/<uuid:pk>/progress/", imports.import_progress, name="contact_import_progress"),
    path("contacts/import/<uuid:pk>/mapping/", imports.import_mapping, name="contact_import_mapping"),
    path("contacts/import/<uuid:pk>/fix/<int:row>/", imports.import_fix, name="contact_import_fix"),
    path("contacts/import/<uuid:pk>/confirm/", imports.import_confirm, name="contact_import_confirm"),
    path("contacts/export/", imports.contact_export, name="contact_export"),
    # Privacy: a contact's erasure and everything held about them (supervisors); retention (admins).
    path("contacts/<int:pk>/erase/", privacy.contact_erase, name="contact_erase"),
    path("contacts/<int:pk>/data/", privacy.contact_data, name="contact_data"),
    path("privacy/retention/", privacy.retention_policy, name="retention_policy"),
    # Calling: the click, what it would send, who is ready, the call panel, and colleagues to call.
    path("contacts/<int:pk>/call/", calling.call_contact, name="call_contact"),
    path("contacts/<int:pk>/dial-preview/", calling.dial_preview, name="dial_preview"),
    path("readiness/", calling.readiness, name="readiness"),
    path("calls/bar/", calling.call_bar, name="call_bar"),
    path("calls/<int:pk>/panel/", calling.call_panel, name="call_panel"),
    path("calls/<int:pk>/recording/", calling.call_recording, name="call_recording"),
    path("calls/<int:pk>/wrapup/", calling.call_wrapup, name="call_wrapup"),
    path("agents/", agents.agent_directory, name="agent_directory"),
    path("agents/availability/", agents.agent_availability, name="agent_availability"),
    path("agents/<int:pk>/call/", agents.call_agent, name="call_agent"),
    # Call queues: the list, making and running one, its report, contacts and CSV, and working it.
    path("queues/", queues.queue_list, name="queue_list"),
    path("queues/new/", queues.queue_new, name="queue_new"),
    path("queues/<int:pk>/", queues.queue_detail, name="queue_detail"),
    path("queues/<int:pk>/edit/", queues.queue_edit, name="queue_edit"),
    path("queues/<int:pk>/state/", queues.queue_state, name="queue_state"),
    path("queues/<int:pk>/contacts/", queues.queue_entries, name="queue_entries"),
    path("queues/<int:pk>/export.csv", queues.queue_export, name="queue_export"),
    path("queues/<int:pk>/next/", queues.queue_next, name="queue_next"),
    path("queues/<int:pk>/skip/", queues.queue_skip, name="queue_skip"),
    path("queues/<int:pk>/stop/", queues.queue_stop, name="queue_stop"),
    path("queues/<int:pk>/bar/", queues.queue_bar, name="queue_bar"),
    # The call log, one call's page, its export, and reports.
    path("calls/", calllog.call_log, name="call_log"),
    path("calls/export.csv", calllog.call_export, name="call_export"),
    path("calls/<int:pk>/", calllog.call_detail, name="call_detail"),
    path("calls/<int:pk>/close/", stuck.close_call, name="call_close"),
    path("reports/", reports.reports, name="reports"),
    # The person's own API tokens (their profile).
    path("profile/tokens/", tokens.token_list, name="api_tokens"),
    path("profile/tokens/<int:pk>/revoke/", tokens.token_revoke, name="api_token_revoke"),
    # Integration health (the admin side: Django's admin is in vccweb/urls.py).
    path("health/", health.integration_health, name="integration_health"),
    path("health/jobs/<int:job_id>/retry/", health.retry_job, name="retry_job"),
    path("health/vcc-events/subscribe/", health.subscribe_vcc_events, name="subscribe_vcc_events"),
    # The audit trail (admins): read only.
    path("audit/", audit.audit_trail, name="audit_trail"),
    # Outgoing webhooks (admins): the endpoints and each one's delivery log.
    path("integrations/webhooks/", webhooks.webhook_list, name="webhooks"),
    path("integrations/webhooks/new/", webhooks.webhook_add, name="webhook_add"),
    path("integrations/webhooks/<int:pk>/", webhooks.webhook_detail, name="webhook_detail"),
    path("integrations/webhooks/<int:pk>/edit/", webhooks.webhook_edit, name="webhook_edit"),
    path("integrations/webhooks/<int:pk>/pause/", webhooks.webhook_pause, name="webhook_pause"),
    path("integrations/webhooks/<int:pk>/resume/", webhooks.webhook_resume, name="webhook_resume"),
    path("integrations/webhooks/<int:pk>/rotate/", webhooks.webhook_rotate, name="webhook_rotate"),
    path("integrations/webhooks/<int:pk>/delete/", webhooks.webhook_delete, name="webhook_delete"),
    path("integrations/webhooks/<int:pk>/replay/", webhooks.webhook_replay, name="webhook_replay"),
    path("integrations/webhooks/<int:pk>/test/", webhooks.webhook_test, name="webhook_test"),
    path(
        "integrations/webhooks/<int:pk>/deliveries/<int:delivery_id>/send-again/",
        webhooks.webhook_send_again,
        name="webhook_send_again",
    ),
    # VCC's events (Webhooks API): signed, no login.
    path("vcc/events/", vcc_events.receive, name="vcc_events"),
]
