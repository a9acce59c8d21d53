"""The triggers that write the audit trail of row changes, on PostgreSQL.

One PL/pgSQL function, `calls_audit_row`, fires after each row's INSERT, UPDATE (of the columns worth recording,
and only when one of them changed) or DELETE on the audited tables, and writes one AuditEntry with the columns that
changed (before → after; whole rows for an insert or a delete). Who and from which request come from the comment
`calls.audit` puts at the end of every write the app sends (`/*audit u=<user id> r=<request id> w=<reason, hex>
*/`), read with `current_query()`: nothing is set on the connection, so nothing can leak from one
request to the next through a pooled connection, and no statement is added. A write without that comment (psql,
another program, a job with nobody behind it) is still recorded, with nobody as its author.

Migration 0027 holds a frozen copy of this SQL; change it here and in a new migration together.
"""

from __future__ import annotations

from dataclasses import dataclass

FUNCTION = "calls_audit_row"
TABLE = "calls_auditentry"


@dataclass(frozen=True)
class Audited:
    table: str
    kind: str  # the entries' kind is "<kind>.create", ".update", ".delete" (or ".dnc_cleared")
    object_type: str  # what /audit/'s object filter and links name
    object_key: str = "id"  # the column that is the object's id
    contact_key: str = ""  # the column holding the contact's id, if the row belongs to a contact
    skipped: tuple[str, ...] = ()  # columns never recorded (bookkeeping that changes on its own)
    masked: tuple[str, ...] = ()  # columns recorded only as "changed" (secrets, password hashes)
    kept: tuple[str, ...] = ()  # if set, the only columns recorded
    update_of: tuple[str, ...] = ()  # the columns whose update fires the trigger; () for inserts and deletes only
    when: str = ""  # a further condition on an update, checked before the function is called


AUDITED = [
    Audited(
        "calls_contact",
        "contact",
        "contact",
        contact_key="id",
        skipped=("created_at", "updated_at", "last_call_id", "last_called_at", "search_text"),
        update_of=(
            "name",
            "company",
            "email",
            "notes",
            "do_not_call",
            "consent_override",
            "owner_id",
            "external_id",
            "time_zone",
            "priority",
        ),
    ),
    Audited(
        "calls_contactphone",
        "number",
        "number",
        contact_key="contact_id",
        update_of=("label", "number", "is_primary", "do_not_call", "contact_id"),
    ),
    # A call's wrap-up only: following a call changes its row many times, and its history is CallEvent's.
    Audited(
        "calls_call",
        "call",
        "call",
        contact_key="contact_id",
        kept=("id", "contact_id", "disposition_code", "notes"),
        update_of=("disposition_code", "notes"),
        when="OLD.disposition_code IS DISTINCT FROM NEW.disposition_code OR OLD.notes IS DISTINCT FROM NEW.notes",
    ),
    Audited(
        "calls_callbacknumber",
        "callerid",
        "callerid",
        skipped=("vcc_listing_synced_at",),
        update_of=("number", "label", "is_active", "is_default", "local_presence", "vcc_callback_number_id"),
    ),
    Audited("calls_callbacknumber_allowed_agents", "callerid_agent", "callerid", object_key="callbacknumber_id"),
    Audited("calls_callbacknumber_allowed_groups", "callerid_group", "callerid", object_key="callbacknumber_id"),
    Audited("calls_consentrule", "consentrule", "consentrule", update_of=("country", "consent", "note")),
    Audited(
        "calls_dispositioncode",
        "disposition",
        "disposition",
        update_of=("code", "description", "action", "queue_effect", "is_active", "position"),
    ),
    Audited(
        "calls_callinghours",
        "callinghours",
        "callinghours",
        skipped=("updated_at",),
        update_of=("country", "opens_at", "closes_at", "days", "note"),
    ),
    Audited("calls_holiday", "holiday", "holiday", update_of=("country", "date", "name")),
    Audited(
        "calls_callqueue",
        "queue",
        "queue",
        skipped=("live_after", "live_seen", "live_seen_xmax"),
        update_of=("name", "description", "live", "sort", "max_attempts", "retry_minutes", "state"),
    ),
    # A promise to call back: who, when, to whom; when it falls due (announced_at) is bookkeeping.
    Audited(
        "calls_callback",
        "callback",
        "callback",
        contact_key="contact_id",
        skipped=("announced_at",),
        update_of=("due_at", "assigned_to_id", "group_id", "note", "state"),
    ),
    Audited(
        "calls_agent",
        "agent",
        "agent",
        skipped=("presence", "presence_detail", "presence_since"),
        update_of=(
            "display_id",
            "name",
            "is_active",
            "vcc_user_id",
            "user_id",
            "default_callback_number_id",
            "default_group_id",
        ),
    ),
    Audited("calls_agentgroup_members", "group_member", "agent", object_key="agent_id"),
    Audited(
        "calls_agentgroup",
        "group",
        "group",
        update_of=("display_id", "name", "vcc_group_id", "default_callback_number_id", "is_active"),
    ),
    Audited(
        "auth_user",
        "user",
        "user",
        skipped=("last_login",),
        masked=("password",),
        update_of=(
            "password",
            "is_superuser",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_staff",
            "is_active",
        ),
    ),
    Audited("auth_user_groups", "role", "user", object_key="user_id"),
    Audited("auth_group_permissions", "role_permission", "role", object_key="group_id"),
    Audited(
        "calls_apitoken",
        "apitoken",
        "apitoken",
        skipped=("last_used_at",),
        masked=("digest",),
        update_of=("name", "prefix", "scopes", "expires_at", "revoked_at", "revoked_by_id", "user_id"),
    ),
    Audited(
        "calls_webhookendpoint",
        "webhook",
        "webhook",
        skipped=("updated_at", "failing_since", "failures", "retry_at"),
        masked=("secret", "previous_secrets"),  # previous_secrets holds each one's end too: masked whole
        update_of=("url", "description", "event_types", "enabled", "secret", "previous_secrets", "disabled_reason"),
    ),
]

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- TG_ARGV: kind, object type, object key, contact key, skipped, masked, kept (lists comma-separated)
    skipped text[] := string_to_array(TG_ARGV[4], ',');
    masked text[] := string_to_array(TG_ARGV[5], ',');
    kept text[] := string_to_array(TG_ARGV[6], ',');
    old_row jsonb;
    new_row jsonb;
    row_ jsonb;
    before_ jsonb;
    after_ jsonb;
    kind_ text;
    ctx text[];
    actor integer;
    request_ text := '';
    why text := '';
    k text;
BEGIN
    IF current_setting('calls.audit_quiet', true) = 'on' THEN
        RETURN NULL;  -- erasure and retention: they record what they did themselves, never the values they remove
    END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD) - skipped; END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW) - skipped; END IF;
    IF cardinality(kept) > 0 THEN
        old_row := (SELECT jsonb_object_agg(key, value) FROM jsonb_each(old_row) WHERE key = ANY(kept));
        new_row := (SELECT jsonb_object_agg(key, value) FROM jsonb_each(new_row) WHERE key = ANY(kept));
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, new_row -> o.key)
          INTO before_, after_
          FROM jsonb_each(old_row) o
         WHERE o.value IS DISTINCT FROM new_row -> o.key;
        IF before_ IS NULL THEN
            RETURN NULL;  -- saved as it was: nothing to record
        END IF;
        kind_ := TG_ARGV[0] || '.update';
        IF (before_ ->> 'do_not_call')::boolean AND NOT (after_ ->> 'do_not_call')::boolean THEN
            kind_ := TG_ARGV[0] || '.dnc_cleared';
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        after_ := new_row;
        kind_ := TG_ARGV[0] || '.create';
    ELSE
        before_ := old_row;
        kind_ := TG_ARGV[0] || '.delete';
    END IF;
    FOREACH k IN ARRAY masked LOOP
        IF before_ ? k THEN before_ := jsonb_set(before_, ARRAY[k], '"(secret)"'); END IF;
        IF after_ ? k THEN after_ := jsonb_set(after_, ARRAY[k], '"(secret, changed)"'); END IF;
    END LOOP;
    ctx := regexp_match(
        right(current_query(), 4200), '/\\*audit u=([0-9]*) r=([A-Za-z0-9._:-]*) w=([0-9a-f]*) \\*/\\s*$'
    );
    IF ctx IS NOT NULL THEN
        actor := nullif(ctx[1], '')::integer;
        request_ := ctx[2];
        why := convert_from(decode(ctx[3], 'hex'), 'UTF8');
    END IF;
    row_ := coalesce(to_jsonb(NEW), to_jsonb(OLD));
    INSERT INTO {TABLE}
        (at, actor_id, actor_name, request_id, kind, object_type, object_id, contact_id, before, after, reason)
    VALUES (
        now(), actor, coalesce((SELECT username FROM auth_user WHERE id = actor), ''), request_, kind_, TG_ARGV[1],
        coalesce(row_ ->> TG_ARGV[2], ''),
        CASE WHEN TG_ARGV[3] <> '' THEN (row_ ->> TG_ARGV[3])::bigint END,
        before_, after_, why
    );
    RETURN NULL;
END
$$
"""


def create_sql(audited: Audited) -> list[str]:
    """The CREATE TRIGGER statements for one table: with a `when`, updates have a trigger of their own (a DELETE
    trigger's condition cannot name NEW)."""
    args = [
        audited.kind,
        audited.object_type,
        audited.object_key,
        audited.contact_key,
        ",".join(audited.skipped),
        ",".join(audited.masked),
        ",".join(audited.kept),
    ]
    run = f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}({', '.join(repr(arg) for arg in args)})"
    rows = ["DELETE"] if audited.when else ["INSERT", "DELETE"]
    update = f"UPDATE OF {', '.join(audited.update_of)}" if audited.update_of else ""
    if update and not audited.when:
        rows.append(update)
    name = f"audit_{audited.table}"
    sql = [f"CREATE TRIGGER {name} AFTER {' OR '.join(rows)} ON {audited.table} {run}"]
    if update and audited.when:
        sql.append(
            f"CREATE TRIGGER {name}_update AFTER {update} ON {audited.table} FOR EACH ROW WHEN ({audited.when}) "
            f"EXECUTE FUNCTION {FUNCTION}({', '.join(repr(arg) for arg in args)})"
        )
    return sql


def drop_sql(audited: Audited) -> list[str]:
    name = f"audit_{audited.table}"
    return [
        f"DROP TRIGGER IF EXISTS {name} ON {audited.table}",
        f"DROP TRIGGER IF EXISTS {name}_update ON {audited.table}",
    ]


def all_sql() -> list[str]:
    return [FUNCTION_SQL, *(sql for a in AUDITED for sql in create_sql(a))]


def all_drop_sql() -> list[str]:
    return [*(sql for a in AUDITED for sql in drop_sql(a)), f"DROP FUNCTION IF EXISTS {FUNCTION}()"]
