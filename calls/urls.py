from __future__ import annotations

from django.urls import path

from calls import views

urlpatterns = [
    path("", views.home, name="home"),
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/new/", views.contact_create, name="contact_create"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", views.contact_delete, name="contact_delete"),
    path("contacts/<int:pk>/call/", views.call_contact, name="call_contact"),
    path("calls/<int:pk>/panel/", views.call_panel, name="call_panel"),
    path("calls/<int:pk>/recording/", views.call_recording, name="call_recording"),
    path("calls/<int:pk>/wrapup/", views.call_wrapup, name="call_wrapup"),
    path("groups/availability/", views.group_availability, name="group_availability"),
    path("agents/", views.agent_directory, name="agent_directory"),
    path("agents/availability/", views.agent_availability, name="agent_availability"),
    path("agents/<int:pk>/call/", views.call_agent, name="call_agent"),
]
